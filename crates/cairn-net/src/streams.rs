//! A small libp2p behaviour that hands whole streams of one protocol (Bitswap) to the code
//! that reads and writes them: every negotiated inbound stream becomes a swarm event, and
//! [`Behaviour::open`] negotiates an outbound stream and answers with it.
//!
//! It replaces `libp2p-stream`, whose one-slot hand-over channel drops an inbound stream that
//! arrives while the previous one has not been taken yet — so bursts of messages (several
//! peers answering at once, or parallel sends from one peer) were lost. Here nothing is
//! dropped between the connection and the swarm task; the reader of each stream applies
//! back-pressure itself.

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll, Waker};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use tokio::sync::oneshot;

/// Why an outbound stream could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// No connection to the peer.
    #[error("not connected")]
    NotConnected,
    /// The peer does not speak the protocol.
    #[error("the peer does not support the protocol")]
    Unsupported,
    /// Negotiation timed out or the connection failed.
    #[error("stream not opened: {0}")]
    Io(String),
}

/// The answer to [`Behaviour::open`].
pub type OpenReply = oneshot::Sender<Result<Stream, OpenError>>;

/// A request to a connection for an outbound stream; the reply travels with it, so a
/// connection that closes first drops it and the requester sees the channel close.
pub struct OpenRequest(OpenReply);

impl std::fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenRequest")
    }
}

/// An inbound stream from a peer.
#[derive(Debug)]
pub struct Inbound {
    /// Who opened it.
    pub peer: PeerId,
    /// The negotiated stream.
    pub stream: Stream,
}

/// The behaviour: one protocol, streams handed over whole.
pub struct Behaviour {
    protocol: StreamProtocol,
    connections: HashMap<PeerId, usize>,
    events: VecDeque<ToSwarm<Inbound, OpenRequest>>,
    waker: Option<Waker>,
}

impl Behaviour {
    /// A behaviour for `protocol`.
    pub fn new(protocol: StreamProtocol) -> Self {
        Behaviour {
            protocol,
            connections: HashMap::new(),
            events: VecDeque::new(),
            waker: None,
        }
    }

    /// Opens an outbound stream to `peer` on one of its connections; `reply` gets it.
    pub fn open(&mut self, peer: PeerId, reply: OpenReply) {
        if !self.connections.contains_key(&peer) {
            let _ = reply.send(Err(OpenError::NotConnected));
            return;
        }
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::Any,
            event: OpenRequest(reply),
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn handler(&self, peer: PeerId) -> Handler {
        Handler {
            peer,
            protocol: self.protocol.clone(),
            requests: VecDeque::new(),
            inbound: VecDeque::new(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Inbound;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<Handler, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<Handler, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                *self.connections.entry(e.peer_id).or_default() += 1;
            }
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.connections.remove(&e.peer_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Inbound, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(e) => Poll::Ready(e),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The per-connection half.
pub struct Handler {
    peer: PeerId,
    protocol: StreamProtocol,
    /// Outbound streams asked for and not yet requested from the connection.
    requests: VecDeque<OpenRequest>,
    /// Negotiated inbound streams not yet handed to the behaviour.
    inbound: VecDeque<Stream>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OpenRequest;
    type ToBehaviour = Inbound;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OpenRequest;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    fn connection_keep_alive(&self) -> bool {
        !self.requests.is_empty() || !self.inbound.is_empty()
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, OpenRequest, Inbound>> {
        if let Some(stream) = self.inbound.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Inbound {
                peer: self.peer,
                stream,
            }));
        }
        if let Some(request) = self.requests.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), request),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, request: OpenRequest) {
        self.requests.push_back(request);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), OpenRequest>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.inbound.push_back(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info: OpenRequest(reply),
            }) => {
                let _ = reply.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: OpenRequest(reply),
                error,
            }) => {
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported,
                    StreamUpgradeError::Timeout => OpenError::Io("timed out".into()),
                    StreamUpgradeError::Io(e) => OpenError::Io(e.to_string()),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}
