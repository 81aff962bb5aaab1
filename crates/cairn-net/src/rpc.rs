//! Cairn's request-response protocols between nodes, both carrying opaque bytes (the layers
//! above encode and verify them):
//! * `/cairn/heads/1.0.0` — "which buckets do you own": an empty request, answered with the
//!   node's signed bucket heads;
//! * `/cairn/piece/1.0.0` — the cluster's piece requests (store, get, has, locate);
//! * `/cairn/member/1.0.0` — a cluster membership challenge and its proof
//!   ([`crate::member`]), 32 bytes each way.
//!
//! A request and a response are each one `u32`-length-prefixed blob, of at most
//! [`MAX_REQUEST`] and [`MAX_RESPONSE`] bytes (32 for the membership protocol). A body is read
//! as it arrives: the length prefix alone allocates nothing.

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The bucket heads protocol.
pub const HEADS: StreamProtocol = StreamProtocol::new("/cairn/heads/1.0.0");
/// The cluster piece protocol.
pub const PIECES: StreamProtocol = StreamProtocol::new("/cairn/piece/1.0.0");
/// The membership protocol.
pub const MEMBER: StreamProtocol = StreamProtocol::new("/cairn/member/1.0.0");
/// Largest membership challenge or proof.
pub const MAX_MEMBER: usize = 32;
/// Largest request accepted.
pub const MAX_REQUEST: usize = 3 << 20;
/// Largest response accepted.
pub const MAX_RESPONSE: usize = 16 << 20;

fn limit(protocol: &StreamProtocol, other: usize) -> usize {
    if *protocol == MEMBER {
        MAX_MEMBER
    } else {
        other
    }
}

/// The codec: one length-prefixed blob each way.
#[derive(Debug, Clone, Default)]
pub struct Codec;

async fn read_blob<T>(io: &mut T, limit: usize) -> std::io::Result<Vec<u8>>
where
    T: futures::AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("message of {len} bytes is over the {limit}-byte limit"),
        ));
    }
    let mut body = Vec::new();
    io.take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

async fn write_blob<T>(io: &mut T, body: &[u8], limit: usize) -> std::io::Result<()>
where
    T: futures::AsyncWrite + Unpin + Send,
{
    if body.len() > limit {
        return Err(std::io::Error::other(format!(
            "message of {} bytes is over the {limit}-byte limit",
            body.len()
        )));
    }
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(body).await?;
    io.close().await
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_blob(io, limit(p, MAX_REQUEST)).await
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_blob(io, limit(p, MAX_RESPONSE)).await
    }

    async fn write_request<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        body: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_blob(io, &body, limit(p, MAX_REQUEST)).await
    }

    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        body: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_blob(io, &body, limit(p, MAX_RESPONSE)).await
    }
}
