//! [`LocalApi`]: the [`NodeApi`] of a node opened in the CLI's own process (no `serve` holds
//! the data folder). It calls the same [`crate::ops`] as the routes, as the operator (root),
//! on a runtime of its own: the CLI's top-level thread blocks on it, which is not a worker
//! thread. What needs a running node (its network, its cluster, its workers) is
//! [`CallError::Unsupported`].

use std::io::{Read, Write};

use bytes::Bytes;
use cairn_node::access::Caller;
use cairn_node::replication::RepairMode;
use cairn_node::snapshot::Forget;
use cairn_node::{CidVersion, Node};
use futures::future::BoxFuture;
use tokio::io::AsyncReadExt;

use crate::api::{Call, CallError, NodeApi, bucket_and_key, public_id};
use crate::types::*;
use crate::{ApiError, ops};

/// The body pieces a caller's reader gives, as the node's streaming operations take them.
type Feed = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A node in this process.
pub struct LocalApi {
    node: Node,
    runtime: tokio::runtime::Runtime,
    not_running: String,
}

impl LocalApi {
    /// The API of `node`, opened by the caller (with its roots settings and user key).
    pub fn new(node: Node) -> std::io::Result<LocalApi> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let not_running = format!(
            "no node is running on {}: start `cairn serve` first",
            node.repo().data_dir().display()
        );
        Ok(LocalApi {
            node,
            runtime,
            not_running,
        })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn unsupported<T>(&self) -> Call<T> {
        Err(CallError::Unsupported(self.not_running.clone()))
    }

    /// Runs `f` over a stream of `input`'s bytes: the node consumes it on the runtime while this
    /// thread reads `input` (a file, stdin) and hands the pieces over.
    fn feed<T: Send + 'static>(
        &self,
        input: &mut dyn Read,
        f: impl FnOnce(Node, Feed) -> BoxFuture<'static, Result<T, ApiError>>,
    ) -> Call<T> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let stream: Feed = Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let task = self.runtime.spawn(f(self.node.clone(), stream));
        let mut failed = None;
        loop {
            let mut buf = vec![0u8; 256 << 10];
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break; // the node stopped reading: its answer says why
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let answer = self
            .runtime
            .block_on(task)
            .map_err(|e| CallError::Transport(e.to_string()))?;
        match failed {
            Some(e) => Err(CallError::Io(e)),
            None => Ok(answer?),
        }
    }

    fn resolve(&self, path: &str) -> Call<cairn_dag::Cid> {
        Ok(ops::resolve(&self.node, path)?)
    }
}

impl NodeApi for LocalApi {
    fn id(&self) -> Call<Id> {
        Ok(Id {
            data: self.node.repo().data_dir().display().to_string(),
            peer_id: Some(self.node.identity().map_err(ApiError::from)?.peer_id()),
            addrs: Vec::new(),
        })
    }

    fn peers(&self) -> Call<Vec<Peer>> {
        self.unsupported()
    }

    fn dial(&self, _addr: &str) -> Call<Connected> {
        self.unsupported()
    }

    fn providers(&self, _cid: &str) -> Call<Vec<String>> {
        self.unsupported()
    }

    fn workers(&self) -> Call<Vec<Worker>> {
        self.unsupported()
    }

    fn margins(&self, _: Option<&str>, _: Option<&str>, _: bool) -> Call<BucketMargins> {
        self.unsupported()
    }

    fn cluster_check(&self, _mode: RepairMode) -> Call<ClusterCheck> {
        self.unsupported()
    }

    fn add(&self, body: &mut dyn Read, version: CidVersion, pin: bool) -> Call<Added> {
        self.feed(body, move |node, stream| {
            Box::pin(async move { ops::add(&node, stream, version, pin).await })
        })
    }

    fn add_many(&self, frames: &mut dyn Read, version: CidVersion) -> Call<Vec<Added>> {
        self.feed(frames, move |node, stream| {
            Box::pin(async move { ops::add_many(&node, stream, version).await })
        })
    }

    fn tree(
        &self,
        manifest: &TreeManifest,
        version: CidVersion,
        pin: bool,
        snapshot: Option<&str>,
    ) -> Call<TreeBuilt> {
        Ok(ops::tree(
            &self.node,
            manifest.clone(),
            version,
            pin,
            snapshot,
        )?)
    }

    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Call<()> {
        let cid = self.resolve(path)?;
        let range = match (offset, length) {
            (0, None) => None,
            (o, l) => Some(o..l.map_or(u64::MAX, |l| o.saturating_add(l))),
        };
        for piece in self.node.files().cat(cid, range) {
            out.write_all(&piece.map_err(ApiError::from)?)?;
        }
        out.flush()?;
        Ok(())
    }

    fn ls(&self, path: &str) -> Call<Vec<Entry>> {
        Ok(ops::ls(&self.node, &self.resolve(path)?)?)
    }

    fn stat(&self, path: &str) -> Call<Stat> {
        Ok(ops::stat(&self.node, &self.resolve(path)?)?)
    }

    fn check(&self, path: &str, hard: bool) -> Call<Checked> {
        Ok(ops::check(&self.node, &self.resolve(path)?, hard)?)
    }

    fn gc(&self) -> Call<Collected> {
        Ok(ops::gc(&self.node)?)
    }

    fn scrub(&self) -> Call<Scrubbed> {
        Ok(ops::scrub(&self.node)?)
    }

    fn pins(&self) -> Call<Vec<Pin>> {
        Ok(ops::pins(&self.node)?)
    }

    fn pin(&self, path: &str) -> Call<Pinned> {
        Ok(ops::pin(&self.node, &self.resolve(path)?)?)
    }

    fn unpin(&self, path: &str) -> Call<Pinned> {
        Ok(ops::unpin(&self.node, &self.resolve(path)?)?)
    }

    fn car_export(&self, path: &str, out: &mut dyn Write) -> Call<()> {
        let cid = self.resolve(path)?;
        let (writer, mut reader) = tokio::io::duplex(256 << 10);
        let node = self.node.clone();
        let export = self
            .runtime
            .spawn(async move { node.files().car_export(cid, writer).await });
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = self.runtime.block_on(reader.read(&mut buf))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        self.runtime
            .block_on(export)
            .map_err(|e| CallError::Transport(e.to_string()))?
            .map_err(ApiError::from)?;
        out.flush()?;
        Ok(())
    }

    fn car_import(&self, car: &mut dyn Read, pin: bool) -> Call<CarImported> {
        self.feed(car, move |node, stream| {
            Box::pin(async move {
                let reader = tokio_util::io::StreamReader::new(stream);
                ops::car_import(&node, reader, pin).await
            })
        })
    }

    fn create_key(&self, user: &str) -> Call<NewKey> {
        Ok(ops::create_key(&self.node, user)?)
    }

    fn keys(&self) -> Call<Vec<Key>> {
        Ok(ops::keys(&self.node)?)
    }

    fn delete_key(&self, access: &str) -> Call<Deleted> {
        Ok(ops::delete_key(&self.node, access)?)
    }

    fn sftp_add(
        &self,
        name: &str,
        key: &str,
        quota: Option<u64>,
        policy: Option<&str>,
    ) -> Call<Account> {
        Ok(ops::sftp_add(&self.node, name, key, quota, policy)?)
    }

    fn sftp_list(&self) -> Call<Vec<Account>> {
        Ok(ops::sftp_list(&self.node)?)
    }

    fn sftp_usage(&self, name: &str) -> Call<AccountUsage> {
        Ok(ops::sftp_usage(&self.node, name)?)
    }

    fn sftp_remove(&self, name: &str) -> Call<Deleted> {
        Ok(ops::sftp_remove(&self.node, name)?)
    }

    fn sftp_set_quota(
        &self,
        name: &str,
        quota: Option<u64>,
        policy: Option<&str>,
    ) -> Call<Account> {
        Ok(ops::sftp_set_quota(&self.node, name, quota, policy)?)
    }

    fn buckets(&self) -> Call<Vec<Bucket>> {
        Ok(ops::buckets(&self.node, &Caller::Root)?)
    }

    fn set_public(&self, bucket: &str, public: bool) -> Call<Public> {
        Ok(ops::set_public(&self.node, bucket, public)?)
    }

    fn root(&self, bucket: &str) -> Call<Root> {
        Ok(ops::root(&self.node, bucket)?)
    }

    fn history(&self, bucket: &str) -> Call<Vec<Root>> {
        Ok(ops::history(&self.node, bucket)?)
    }

    fn restore(&self, bucket: &str, root: &str) -> Call<Restored> {
        Ok(ops::restore(&self.node, bucket, root)?)
    }

    fn head(&self, bucket: &str) -> Call<Vec<u8>> {
        Ok(self.node.roots().head(bucket).map_err(ApiError::from)?)
    }

    fn promote(&self, bucket: &str, force: bool) -> Call<Promoted> {
        Ok(ops::promote(&self.node, bucket, force)?)
    }

    fn redundancy(&self, bucket: &str, set: Option<&str>) -> Call<Redundancy> {
        Ok(ops::redundancy(&self.node, bucket, set)?)
    }

    fn import_bucket(&self, bucket: &str, car: &mut dyn Read) -> Call<BucketImported> {
        let bucket = bucket.to_owned();
        let done = self.feed(car, move |node, stream| {
            Box::pin(async move {
                let reader = tokio_util::io::StreamReader::new(stream);
                ops::import_bucket(&node, &bucket, cairn_node::keys::ROOT_USER, reader).await
            })
        })?;
        // No roots job runs here: fold the new bucket's root in now.
        self.node.roots().commit().map_err(ApiError::from)?;
        Ok(done)
    }

    fn create_bucket(&self, bucket: &str, encrypted: bool) -> Call<Encryption> {
        let root = cairn_node::keys::ROOT_USER;
        Ok(ops::create_bucket(&self.node, bucket, root, encrypted)?)
    }

    fn encryption(&self, bucket: &str, set: Option<bool>) -> Call<Encryption> {
        Ok(ops::encryption(&self.node, bucket, set)?)
    }

    fn share(&self, target: &str, to: &str, expires_ms: Option<i64>) -> Call<Shared> {
        let (bucket, key) = bucket_and_key(target)?;
        Ok(ops::share(
            &self.node,
            bucket,
            key,
            &public_id(to)?,
            expires_ms,
        )?)
    }

    fn revoke(&self, target: &str, to: &str) -> Call<Revoked> {
        let (bucket, key) = bucket_and_key(target)?;
        let to = public_id(to)?;
        Ok(self
            .runtime
            .block_on(ops::revoke(&self.node, bucket, key, &to))?)
    }

    fn user(&self) -> Call<User> {
        Ok(ops::user(&self.node))
    }

    fn snapshot_add(&self, name: &str, path: &str) -> Call<Snapshot> {
        Ok(ops::snapshot_add(&self.node, name, &self.resolve(path)?)?)
    }

    fn snapshots(&self, name: Option<&str>) -> Call<Vec<Snapshot>> {
        Ok(ops::snapshots(&self.node, name)?)
    }

    fn snapshot_rm(&self, name: &str, which: &Forget) -> Call<Vec<Snapshot>> {
        Ok(ops::snapshot_rm(&self.node, name, which)?)
    }

    fn repo_stat(&self) -> Call<RepoStat> {
        Ok(ops::repo_stat(&self.node)?)
    }
}
