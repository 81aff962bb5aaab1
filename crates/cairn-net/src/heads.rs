//! `/cairn/heads/1.0.0`: a request-response protocol by which one Cairn node asks another for
//! the heads of the buckets it owns (opaque bytes here; the node layer encodes signed heads and
//! verifies what it receives). A request is empty; a response is one length-prefixed blob of at
//! most [`MAX_RESPONSE`] bytes.

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/cairn/heads/1.0.0");
/// Largest response accepted.
pub const MAX_RESPONSE: usize = 16 << 20;

/// The codec: an empty request, a `u32`-length-prefixed response.
#[derive(Debug, Clone, Default)]
pub struct Codec;

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = ();
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<()>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await?;
        Ok(())
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RESPONSE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("heads response of {len} bytes is over the limit"),
            ));
        }
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        _: (),
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&[0]).await?;
        io.close().await
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
        if body.len() > MAX_RESPONSE {
            return Err(std::io::Error::other("heads response over the limit"));
        }
        io.write_all(&(body.len() as u32).to_be_bytes()).await?;
        io.write_all(&body).await?;
        io.close().await
    }
}
