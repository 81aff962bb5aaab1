//! Reads of a file open over SFTP: one stream of the version opened, serving reads in order.

use cairn_node::Node;
use cairn_node::model::records::ObjectInfo;
use cairn_node::read::{ByteRange, ReadObject};
use futures::StreamExt;
use russh_sftp::protocol::StatusCode;

use crate::status::fail;

/// The most one read answers (OpenSSH's own server answers at most 256 KiB too); a client
/// asking more gets a short read and asks again, so a request's length never sizes a buffer.
pub(crate) const MAX_READ: u32 = 256 << 10;

/// A file open for reading: the version that was current at `open` (every read of the handle
/// reads it, as a file stays itself while open), and its bytes streaming from where the last
/// read ended. Clients read in order (OpenSSH keeps 64 reads in flight, each 32 KiB), so one
/// stream serves them all; each block is fetched and verified once. A read elsewhere (`reget`,
/// random access) starts a new stream there.
pub(crate) struct Reader {
    pub(crate) info: ObjectInfo,
    next: Option<Sequential>,
}

/// An object's bytes streaming from `at`.
struct Sequential {
    at: u64,
    body: cairn_node::ByteStream,
    /// Bytes the stream gave that no read took yet.
    pending: bytes::Bytes,
}

impl Reader {
    /// A reader of the version `info` names.
    pub(crate) fn new(info: ObjectInfo) -> Reader {
        Reader { info, next: None }
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the file); `Eof` past it.
    pub(crate) async fn read(
        &mut self,
        node: &Node,
        account: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, StatusCode> {
        let size = self.info.meta.size;
        if offset >= size {
            return Err(StatusCode::Eof);
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let want = u64::from(len.min(MAX_READ)).min(size - offset) as usize;
        let mut seq = match self.next.take() {
            Some(seq) if seq.at == offset => seq,
            _ => {
                let plan = node
                    .objects()
                    .read(ReadObject {
                        bucket: account,
                        key: &self.info.key,
                        known: Some(self.info.clone()),
                        range: Some(ByteRange::From {
                            first: offset,
                            last: None,
                        }),
                        ..Default::default()
                    })
                    .map_err(|e| fail(account, e))?;
                Sequential {
                    at: offset,
                    body: node.objects().body(&plan).map_err(|e| fail(account, e))?,
                    pending: bytes::Bytes::new(),
                }
            }
        };
        let mut data = Vec::with_capacity(want);
        while data.len() < want {
            if seq.pending.is_empty() {
                match seq.body.next().await {
                    Some(piece) => seq.pending = piece.map_err(|e| fail(account, e))?,
                    // The stream ended before the file's size: never a short file.
                    None => {
                        tracing::warn!(
                            account,
                            key = self.info.key,
                            at = seq.at + data.len() as u64,
                            size,
                            "sftp: the file's bytes ended early"
                        );
                        return Err(StatusCode::Failure);
                    }
                }
                continue;
            }
            let take = (want - data.len()).min(seq.pending.len());
            data.extend_from_slice(&seq.pending.split_to(take));
        }
        if data.is_empty() {
            return Err(StatusCode::Eof);
        }
        seq.at += data.len() as u64;
        self.next = Some(seq);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_node::model::records::ObjectMeta;
    use cairn_node::put::PutObject;

    async fn put(node: &Node, key: &str, data: Vec<u8>) -> ObjectInfo {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(data))]);
        node.objects()
            .put(PutObject {
                bucket: "acct".into(),
                key: key.into(),
                body,
                version: cairn_node::CidVersion::V0,
                meta: ObjectMeta::default(),
                condition: Default::default(),
                sse: Default::default(),
                check: None,
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_read_handle_streams_in_order_jumps_when_asked_and_keeps_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("acct", "acct").unwrap();
        let first: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let info = put(&node, "f", first.clone()).await;
        let mut reader = Reader::new(info);
        let mut read = async |offset: u64, len: u32| reader.read(&node, "acct", offset, len).await;
        // In order, across chunk boundaries: one stream.
        let mut at = 0u64;
        while at < 600_000 {
            let data = read(at, 32768).await.unwrap();
            assert!(data[..] == first[at as usize..at as usize + 32768]);
            at += 32768;
        }
        // Elsewhere, then the end (short), then past it.
        assert!(read(5, 3).await.unwrap() == first[5..8]);
        assert!(read(999_990, 100).await.unwrap() == first[999_990..]);
        assert_eq!(read(1_000_000, 10).await, Err(StatusCode::Eof));
        assert_eq!(read(7, 0).await, Ok(Vec::new()));
        // A request's length never sizes a buffer: at most MAX_READ is answered.
        let most = read(0, u32::MAX).await.unwrap();
        assert!(most[..] == first[..MAX_READ as usize]);
        // The file is replaced: the open handle still reads the version it opened.
        put(&node, "f", b"something else".to_vec()).await;
        assert!(reader.read(&node, "acct", 100, 10).await.unwrap() == first[100..110]);
    }
}
