//! The async shell around `cairn-bitswap`: one task owns the Bitswap state machine and carries
//! out its events — every outgoing message on a new outbound stream (`libp2p-stream`), block
//! lookups and stores on blocking threads through [`LocalBlocks`], timers from
//! `next_deadline`. Inbound streams are read by small tasks that feed frames back in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_bitswap::{Bitswap, BlockQuery, Config, Event, FrameDecoder, Lookup, Stats};
use cairn_dag::Cid;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;

/// The node's own blocks, as Bitswap needs them. Both calls run on blocking threads.
pub trait LocalBlocks: Send + Sync + 'static {
    /// Answers lookups: the verified bytes of a present block of at most `max_data` bytes,
    /// `Have` for a larger one, `Missing` otherwise.
    fn lookup(&self, queries: &[BlockQuery]) -> Vec<(Cid, Lookup)>;
    /// Stores a block received from a peer (already verified against its CID).
    fn store(&self, cid: &Cid, data: &Bytes);
}

pub(crate) enum BsCommand {
    Connected(PeerId),
    Disconnected(PeerId),
    Inbound(PeerId, Bytes),
    Found(PeerId, Vec<(Cid, Lookup)>),
    Sent(PeerId),
    Want(Cid, oneshot::Sender<Result<Bytes, NetError>>),
    Stats(oneshot::Sender<Stats>),
}

/// Longest a single fetch waits before giving up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn protocol() -> StreamProtocol {
    StreamProtocol::new(cairn_bitswap::PROTOCOL)
}

/// Starts the Bitswap task and the inbound-stream acceptor.
pub(crate) fn spawn(
    mut control: libp2p_stream::Control,
    blocks: Arc<dyn LocalBlocks>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<mpsc::Sender<BsCommand>, NetError> {
    let config = Config::default();
    let max_message = config.max_message_size;
    let (tx, mut rx) = mpsc::channel::<BsCommand>(1024);
    let mut incoming = control
        .accept(protocol())
        .map_err(|e| NetError::Setup(format!("bitswap protocol: {e}")))?;
    let inbound_tx = tx.clone();
    tokio::spawn(async move {
        while let Some((peer, mut stream)) = incoming.next().await {
            let tx = inbound_tx.clone();
            tokio::spawn(async move {
                let mut decoder = FrameDecoder::new(max_message);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    decoder.push(&buf[..n]);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => {
                                if tx.send(BsCommand::Inbound(peer, frame)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(%peer, "bitswap stream dropped: {e}");
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let self_tx = tx.clone();
    tokio::spawn(async move {
        let mut engine = Bitswap::<PeerId>::new(config);
        let mut waiters: HashMap<Cid, Vec<oneshot::Sender<Result<Bytes, NetError>>>> =
            HashMap::new();
        loop {
            let deadline = engine.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else { return };
                    let now = Instant::now();
                    match command {
                        BsCommand::Connected(peer) => {
                            engine.peer_connected(peer, now);
                        }
                        BsCommand::Disconnected(peer) => engine.peer_disconnected(&peer, now),
                        BsCommand::Inbound(peer, frame) => engine.handle_message(peer, &frame, now),
                        BsCommand::Found(peer, answers) => engine.blocks_found(&peer, answers),
                        BsCommand::Sent(peer) => engine.message_sent(&peer),
                        BsCommand::Want(cid, reply) => match engine.want(cid, 1, now) {
                            Ok(()) => waiters.entry(cid).or_default().push(reply),
                            Err(e) => {
                                let _ = reply.send(Err(NetError::Fetch(cid, e.to_string())));
                            }
                        },
                        BsCommand::Stats(reply) => {
                            let _ = reply.send(engine.stats());
                        }
                    }
                }
                () = sleep => {}
                _ = stop.changed() => return,
            }
            // Waiters that gave up (fetch timed out) cancel their want.
            let now = Instant::now();
            waiters.retain(|cid, list| {
                let before = list.len();
                list.retain(|w| !w.is_closed());
                for _ in list.len()..before {
                    engine.cancel_want(cid, now);
                }
                !list.is_empty()
            });
            while let Some(event) = engine.poll(Instant::now()) {
                match event {
                    Event::Send { peer, message } => {
                        let mut control = control.clone();
                        let tx = self_tx.clone();
                        let frame = message.encode_frame();
                        tokio::spawn(async move {
                            match control.open_stream(peer, protocol()).await {
                                Ok(mut stream) => {
                                    let written = async {
                                        stream.write_all(&frame).await?;
                                        stream.flush().await?;
                                        stream.close().await
                                    };
                                    if let Err(e) = written.await {
                                        tracing::debug!(%peer, "bitswap send failed: {e}");
                                    }
                                }
                                Err(e) => tracing::debug!(%peer, "bitswap stream not opened: {e}"),
                            }
                            let _ = tx.send(BsCommand::Sent(peer)).await;
                        });
                    }
                    Event::NeedBlocks { peer, queries } => {
                        let blocks = blocks.clone();
                        let tx = self_tx.clone();
                        tokio::spawn(async move {
                            let answers =
                                tokio::task::spawn_blocking(move || blocks.lookup(&queries)).await;
                            if let Ok(answers) = answers {
                                let _ = tx.send(BsCommand::Found(peer, answers)).await;
                            }
                        });
                    }
                    Event::BlockReceived { cid, data, from } => {
                        tracing::trace!(%cid, %from, bytes = data.len(), "block received");
                        engine.block_added(&cid, &data);
                        for w in waiters.remove(&cid).unwrap_or_default() {
                            let _ = w.send(Ok(data.clone()));
                        }
                        let blocks = blocks.clone();
                        tokio::task::spawn_blocking(move || blocks.store(&cid, &data));
                    }
                    Event::WantFailed { cid } => {
                        for w in waiters.remove(&cid).unwrap_or_default() {
                            let _ = w.send(Err(NetError::Fetch(cid, "no peer has it".into())));
                        }
                    }
                    Event::PeerMisbehaved { peer, reason } => {
                        tracing::warn!(%peer, ?reason, "bitswap peer misbehaved");
                    }
                }
            }
        }
    });
    Ok(tx)
}

/// Asks the network for a block; `Ok` holds bytes verified against `cid`.
pub(crate) async fn fetch(tx: &mpsc::Sender<BsCommand>, cid: Cid) -> Result<Bytes, NetError> {
    let (reply, rx) = oneshot::channel();
    tx.send(BsCommand::Want(cid, reply))
        .await
        .map_err(|_| NetError::Stopped)?;
    match tokio::time::timeout(FETCH_TIMEOUT, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(NetError::Stopped),
        Err(_) => Err(NetError::Fetch(cid, "timed out".into())),
    }
}
