//! The async shell around `cairn-bitswap`: one task owns the Bitswap state machine and carries
//! out its events — every outgoing message on a new outbound stream ([`crate::streams`]), block
//! lookups and stores on blocking threads through [`BlockProvider`], timers from
//! `next_deadline`. Inbound streams are read by small tasks that feed frames back in.
//!
//! Members get every block; a stranger only what [`crate::visible`] lets it see — published
//! roots and the links of what it was sent — and DONT_HAVE for the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_bitswap::{Bitswap, BlockQuery, Config, Event, FrameDecoder, Lookup, Stats};
use cairn_dag::Cid;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::NetError;
use crate::providers::BlockProvider;

pub(crate) enum BsCommand {
    Connected(PeerId),
    Disconnected(PeerId),
    Inbound(PeerId, Bytes),
    Found(PeerId, Vec<(Cid, Lookup)>),
    Sent(PeerId),
    Want(Cid, oneshot::Sender<Result<Bytes, NetError>>),
    /// Wants without a waiter (prefetch): blocks are stored as they arrive.
    Prefetch(Vec<Cid>),
    /// The storer committed these received blocks.
    Stored(Vec<Cid>),
    /// Peers that announced `cid` (found in the DHT, now connected).
    Providers(Cid, Vec<PeerId>),
    /// The peer runs Cairn (identify): messages to it may go out in parallel.
    CairnPeer(PeerId),
    /// The peer proved the cluster secret: it may have every block.
    Member(PeerId),
    /// Time to look up providers of a want still unanswered.
    SearchDue(Cid),
    Stats(oneshot::Sender<Stats>),
}

/// Outbound streams open at once to one peer (each message packs up to 1 MiB of blocks). One
/// for other implementations: with several, Helia answered on parallel streams with yamux
/// frames over 1 MiB (its window grown by rust-yamux's auto-tuning), which rust-yamux then
/// refuses, closing the connection.
const SENDS_PER_PEER: usize = 1;
/// The same between Cairn nodes (rust-yamux on both sides splits frames).
const SENDS_PER_CAIRN_PEER: usize = 4;
/// A want that failed is asked again this many times while peers are connected (a message
/// lost in transit otherwise fails a read that a single peer could serve).
const WANT_RETRIES: u8 = 2;
/// Prefetched blocks wanted at once; the rest wait their turn (bounds the memory of received
/// blocks not yet stored).
const PREFETCH_WINDOW: usize = 256;
/// Inbound streams read at once from one peer; past that new ones are closed unread (a peer
/// opens one per message, and a well-behaved one waits for its earlier ones to end).
pub const MAX_INBOUND_STREAMS_PER_PEER: usize = 32;
/// Received blocks are stored in groups of up to this many, or after `STORE_DELAY`.
const STORE_GROUP: usize = 64;
const STORE_DELAY: Duration = Duration::from_millis(20);

/// One inbound stream being read; its peer's count goes down when the reader ends.
struct StreamSlot {
    peer: PeerId,
    reading: Arc<parking_lot::Mutex<HashMap<PeerId, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.reading.lock();
        if let Some(n) = open.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Stores received blocks in groups on one blocking thread; reports what it stored.
fn spawn_storer(
    blocks: Arc<dyn BlockProvider>,
    done: mpsc::Sender<BsCommand>,
) -> std::sync::mpsc::Sender<(Cid, Bytes)> {
    let (tx, rx) = std::sync::mpsc::channel::<(Cid, Bytes)>();
    std::thread::Builder::new()
        .name("bitswap-store".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                let until = Instant::now() + STORE_DELAY;
                while group.len() < STORE_GROUP {
                    let left = until.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(b) => group.push(b),
                        Err(_) => break,
                    }
                }
                blocks.store_many(&group);
                let cids = group.into_iter().map(|(c, _)| c).collect();
                if done.blocking_send(BsCommand::Stored(cids)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the bitswap storer thread");
    tx
}

/// A read no connected peer has answered after this long looks for providers in the DHT
/// (at once when no peer is connected).
const PROVIDER_SEARCH_DELAY: Duration = Duration::from_millis(500);

/// Longest a single fetch waits before giving up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn protocol() -> StreamProtocol {
    StreamProtocol::new(cairn_bitswap::PROTOCOL)
}

/// Starts the Bitswap task and the inbound-stream acceptor.
pub(crate) fn spawn(
    mut incoming: mpsc::Receiver<crate::streams::Inbound>,
    blocks: Arc<dyn BlockProvider>,
    metrics: Option<Arc<crate::metrics::NetMetrics>>,
    net: mpsc::Sender<crate::Command>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    (tx, mut rx): (mpsc::Sender<BsCommand>, mpsc::Receiver<BsCommand>),
) -> Result<(), NetError> {
    let config = Config::default();
    let max_message = config.max_message_size;
    let inbound_tx = tx.clone();
    let reading_metrics = metrics.clone();
    tokio::spawn(async move {
        let reading: Arc<parking_lot::Mutex<HashMap<PeerId, usize>>> = Default::default();
        while let Some(crate::streams::Inbound { peer, mut stream }) = incoming.recv().await {
            {
                let mut open = reading.lock();
                let n = open.entry(peer).or_insert(0);
                if *n >= MAX_INBOUND_STREAMS_PER_PEER {
                    tracing::debug!(%peer, "bitswap stream refused: too many open");
                    if let Some(m) = &reading_metrics {
                        m.refused("stream", 1);
                    }
                    continue;
                }
                *n += 1;
            }
            let tx = inbound_tx.clone();
            let reading = reading.clone();
            tokio::spawn(async move {
                let _done = StreamSlot { peer, reading };
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
        let storer = spawn_storer(blocks.clone(), self_tx.clone());
        // Received blocks not yet stored: a reader asking meanwhile gets them from here.
        let mut unstored: HashMap<Cid, Bytes> = HashMap::new();
        let mut prefetch_queue: std::collections::VecDeque<Cid> = Default::default();
        let mut retries: HashMap<Cid, u8> = HashMap::new();
        let mut connected = 0usize;
        let mut send_slots: HashMap<PeerId, Arc<tokio::sync::Semaphore>> = HashMap::new();
        // Prefetched wants, cancelled when they end (received or failed).
        let mut prefetching: std::collections::HashSet<Cid> = Default::default();
        let mut waiters: HashMap<Cid, Vec<oneshot::Sender<Result<Bytes, NetError>>>> =
            HashMap::new();
        let mut visible = crate::visible::Visibility::default();
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
                            connected += 1;
                            engine.peer_connected(peer, now);
                        }
                        BsCommand::Disconnected(peer) => {
                            connected = connected.saturating_sub(1);
                            send_slots.remove(&peer);
                            visible.disconnected(&peer);
                            engine.peer_disconnected(&peer, now)
                        }
                        BsCommand::Inbound(peer, frame) => engine.handle_message(peer, &frame, now),
                        BsCommand::Found(peer, answers) => {
                            for (cid, answer) in &answers {
                                if let Lookup::Block(data) = answer {
                                    visible.sent(peer, cid, data);
                                }
                            }
                            engine.blocks_found(&peer, answers)
                        }
                        BsCommand::Member(peer) => visible.member(peer),
                        BsCommand::Sent(peer) => engine.message_sent(&peer),
                        BsCommand::Want(cid, reply) => {
                            if let Some(data) = unstored.get(&cid) {
                                let _ = reply.send(Ok(data.clone()));
                            } else {
                                match engine.want(cid, 1, now) {
                                    Ok(()) => {
                                        let list = waiters.entry(cid).or_default();
                                        if list.is_empty() {
                                            let delay = if connected == 0 {
                                                Duration::ZERO
                                            } else {
                                                PROVIDER_SEARCH_DELAY
                                            };
                                            let tx = self_tx.clone();
                                            tokio::spawn(async move {
                                                tokio::time::sleep(delay).await;
                                                let _ = tx.send(BsCommand::SearchDue(cid)).await;
                                            });
                                        }
                                        list.push(reply);
                                    }
                                    Err(e) => {
                                        let _ = reply
                                            .send(Err(NetError::Fetch(cid, e.to_string())));
                                    }
                                }
                            }
                        }
                        BsCommand::Prefetch(cids) => prefetch_queue.extend(cids),
                        BsCommand::Stored(cids) => {
                            for cid in cids {
                                unstored.remove(&cid);
                            }
                        }
                        BsCommand::CairnPeer(peer) => {
                            let slots = send_slots.entry(peer).or_insert_with(|| {
                                Arc::new(tokio::sync::Semaphore::new(SENDS_PER_PEER))
                            });
                            slots.add_permits(SENDS_PER_CAIRN_PEER - SENDS_PER_PEER);
                        }
                        BsCommand::Providers(cid, peers) => engine.add_providers(&cid, peers, now),
                        BsCommand::SearchDue(cid) => {
                            if waiters.contains_key(&cid) {
                                let _ = net.try_send(crate::Command::FindProviders {
                                    cid,
                                    connect: true,
                                    reply: None,
                                });
                            }
                        }
                        BsCommand::Stats(reply) => {
                            let _ = reply.send(engine.stats());
                        }
                    }
                }
                () = sleep => {}
                _ = stop.changed() => return,
            }
            if let Some(m) = &metrics {
                m.observe_bitswap(&engine.stats());
            }
            // Waiters that gave up (fetch timed out) cancel their want.
            let now = Instant::now();
            while prefetching.len() < PREFETCH_WINDOW
                && let Some(cid) = prefetch_queue.pop_front()
            {
                if !unstored.contains_key(&cid)
                    && prefetching.insert(cid)
                    && engine.want(cid, 0, now).is_err()
                {
                    prefetching.remove(&cid);
                }
            }
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
                        let net = net.clone();
                        let tx = self_tx.clone();
                        let frame = message.encode_frame();
                        let slots = send_slots
                            .entry(peer)
                            .or_insert_with(|| {
                                Arc::new(tokio::sync::Semaphore::new(SENDS_PER_PEER))
                            })
                            .clone();
                        tokio::spawn(async move {
                            let _slot = slots.acquire_owned().await;
                            match open_stream(&net, peer).await {
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
                        let granted: Vec<bool> = queries
                            .iter()
                            .map(|q| visible.granted(&peer, &q.cid))
                            .collect();
                        let metrics = metrics.clone();
                        tokio::spawn(async move {
                            let answers = tokio::task::spawn_blocking(move || {
                                lookup_for_peer(&*blocks, &queries, &granted, metrics.as_deref())
                            })
                            .await;
                            if let Ok(answers) = answers {
                                let _ = tx.send(BsCommand::Found(peer, answers)).await;
                            }
                        });
                    }
                    Event::BlockReceived { cid, data, from } => {
                        tracing::trace!(%cid, %from, bytes = data.len(), "block received");
                        engine.block_added(&cid, &data);
                        if prefetching.remove(&cid) {
                            engine.cancel_want(&cid, Instant::now());
                        }
                        retries.remove(&cid);
                        for w in waiters.remove(&cid).unwrap_or_default() {
                            let _ = w.send(Ok(data.clone()));
                        }
                        if unstored.insert(cid, data.clone()).is_none() {
                            let _ = storer.send((cid, data));
                        }
                    }
                    Event::WantFailed { cid } => {
                        prefetching.remove(&cid);
                        let tries = retries.entry(cid).or_insert(0);
                        if waiters.contains_key(&cid)
                            && connected > 0
                            && *tries < WANT_RETRIES
                            && engine.want(cid, 1, Instant::now()).is_ok()
                        {
                            *tries += 1;
                            tracing::debug!(%cid, tries = *tries, "want failed; asking again");
                            continue;
                        }
                        retries.remove(&cid);
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
    Ok(())
}

/// Answers one peer's queries: those `granted` (a member, or a link of a block it was sent)
/// and those of published roots are looked up; the rest are answered as missing (DONT_HAVE)
/// without touching the store.
fn lookup_for_peer(
    blocks: &dyn BlockProvider,
    queries: &[BlockQuery],
    granted: &[bool],
    metrics: Option<&crate::metrics::NetMetrics>,
) -> Vec<(Cid, Lookup)> {
    let mut allowed = Vec::with_capacity(queries.len());
    let mut refused = Vec::new();
    for (q, granted) in queries.iter().zip(granted) {
        if *granted || blocks.published(&q.cid) {
            allowed.push(q.clone());
        } else {
            refused.push((q.cid, Lookup::Missing));
        }
    }
    if let Some(m) = metrics
        && !refused.is_empty()
    {
        m.refused("block", refused.len() as u64);
    }
    let mut answers = if allowed.is_empty() {
        Vec::new()
    } else {
        blocks.lookup(&allowed)
    };
    answers.extend(refused);
    answers
}

/// Opens an outbound Bitswap stream to `peer` through the swarm task.
async fn open_stream(
    net: &mpsc::Sender<crate::Command>,
    peer: PeerId,
) -> Result<libp2p::Stream, crate::streams::OpenError> {
    let (tx, rx) = oneshot::channel();
    let gone = || crate::streams::OpenError::Io("the network task has stopped".into());
    net.send(crate::Command::OpenStream(peer, tx))
        .await
        .map_err(|_| gone())?;
    rx.await.map_err(|_| gone())?
}

/// Asks the network for blocks without waiting for them; they are stored as they arrive.
pub(crate) async fn prefetch(tx: &mpsc::Sender<BsCommand>, cids: Vec<Cid>) -> Result<(), NetError> {
    tx.send(BsCommand::Prefetch(cids))
        .await
        .map_err(|_| NetError::Stopped)
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
