//! Cairn's request-response protocols between nodes, both carrying opaque bytes (the layers
//! above encode and verify them):
//! * `/cairn/heads/1.0.0` — "which buckets do you own": an empty request, answered with the
//!   node's signed bucket heads;
//! * `/cairn/piece/1.0.0` — the cluster's piece requests (store, get, has, locate).
//!
//! A request and a response are each one `u32`-length-prefixed blob, of at most
//! [`MAX_REQUEST`] and [`MAX_RESPONSE`] bytes.

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The bucket heads protocol.
pub const HEADS: StreamProtocol = StreamProtocol::new("/cairn/heads/1.0.0");
/// The cluster piece protocol.
pub const PIECES: StreamProtocol = StreamProtocol::new("/cairn/piece/1.0.0");
/// Largest request accepted.
pub const MAX_REQUEST: usize = 8 << 20;
/// Largest response accepted.
pub const MAX_RESPONSE: usize = 16 << 20;

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
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
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

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_blob(io, MAX_REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_blob(io, MAX_RESPONSE).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        body: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_blob(io, &body, MAX_REQUEST).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        body: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_blob(io, &body, MAX_RESPONSE).await
    }
}
