//! Small records kept on a key's replica set — a bucket's signed head is one. The cluster
//! carries them and counts copies; what a record means, whether it is valid and which of two
//! is newer belongs to the [`RecordSink`] (the node layer, which checks signatures).
//!
//! A record's replica set is the `tolerance + 1` members closest to `sha256("record\0" ‖ key)`,
//! so it survives as many losses as the data it describes. [`Cluster::replicate_record`]
//! returns once the record is on enough nodes to survive one more loss (the writer and at
//! least one other), the same rule as the write quorum of data.

use futures::future::join_all;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::proto::{Request, Response};
use crate::{Cluster, ClusterError};

/// Where records received from peers are kept (the node layer).
pub trait RecordSink: Send + Sync + 'static {
    /// Keeps `bytes` under `key` when they are valid (and newer than what is kept).
    fn accept(&self, key: &str, bytes: &[u8]) -> Result<(), String>;
    /// The record kept under `key`, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
}

/// The placement key of a record.
fn record_key(key: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"record\0");
    h.update(key.as_bytes());
    h.finalize().to_vec()
}

impl Cluster {
    /// The peer ids of `key`'s replica set, this node excluded.
    pub fn record_targets(&self, key: &str) -> Vec<Vec<u8>> {
        let (targets, _) = self.record_order(key);
        targets
    }

    /// `key`'s replica set (this node excluded), then every other member in the key's order:
    /// where a record goes when a member of the set does not keep it.
    fn record_order(&self, key: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let me = self.inner.members.lock().me().id.clone();
        let ring = self.placement_members();
        let members = ring.members();
        let set = self.policy().tolerance() + 1;
        let mut targets = Vec::new();
        let mut spares = Vec::new();
        for (rank, i) in ring
            .targets(&record_key(key), members.len())
            .into_iter()
            .enumerate()
        {
            let id = members[i].id.clone();
            if id == me {
                continue;
            }
            if rank < set {
                targets.push(id);
            } else {
                spares.push(id);
            }
        }
        (targets, spares)
    }

    /// Sends `bytes` (already kept here) to `key`'s replica set and returns how many nodes
    /// hold it, this one included; fewer than two (it would not survive losing this node) is
    /// a quorum error. A member of the set that does not keep it (gone, full, or a member that
    /// takes records and keeps none) is replaced, once each, by the next member in the key's
    /// order — the rule pieces follow ([`crate::Placer`]); readers gather records from every
    /// connected member, so they find it there.
    pub async fn replicate_record(&self, key: &str, bytes: Vec<u8>) -> Result<usize, ClusterError> {
        let (targets, spares) = self.record_order(key);
        let width = targets.len() + 1;
        let request = Request::PutRecord {
            key: key.to_owned(),
            bytes: ByteBuf::from(bytes),
        };
        let mut held = 1;
        let mut spares = spares.into_iter();
        let mut round = targets;
        while !round.is_empty() {
            let answers = join_all(round.iter().map(|t| self.call(t, &request))).await;
            let mut missed = 0;
            for (target, answer) in round.iter().zip(answers) {
                match answer {
                    Ok(Response::Stored) => held += 1,
                    Ok(other) => {
                        missed += 1;
                        tracing::debug!(peer = %crate::write::hex(target), "record refused: {other:?}")
                    }
                    Err(e) => {
                        missed += 1;
                        tracing::debug!(peer = %crate::write::hex(target), "record not sent: {e}")
                    }
                }
            }
            round = spares.by_ref().take(missed).collect();
        }
        if held < 2 {
            return Err(ClusterError::Quorum {
                stored: held,
                nodes: held,
                width,
            });
        }
        Ok(held)
    }

    /// Every copy of `key`'s record the connected members hold (to pick the newest from).
    pub async fn gather_records(&self, key: &str) -> Vec<Vec<u8>> {
        let peers = self.inner.members.lock().connected();
        let request = Request::GetRecord {
            key: key.to_owned(),
        };
        let answers = join_all(peers.iter().map(|p| self.call(p, &request))).await;
        answers
            .into_iter()
            .filter_map(|a| match a {
                Ok(Response::Block(bytes)) => Some(bytes.into_vec()),
                _ => None,
            })
            .collect()
    }

    /// Answers `PutRecord`.
    pub(crate) fn keep_record(&self, key: &str, bytes: &[u8]) -> Response {
        match &self.inner.records {
            Some(sink) => match sink.accept(key, bytes) {
                Ok(()) => Response::Stored,
                Err(e) => Response::Error(e),
            },
            None => Response::Error("this node keeps no records".into()),
        }
    }

    /// Answers `GetRecord`.
    pub(crate) fn record_here(&self, key: &str) -> Response {
        match self.inner.records.as_ref().and_then(|s| s.get(key)) {
            Some(bytes) => Response::Block(ByteBuf::from(bytes)),
            None => Response::NotFound,
        }
    }
}

impl Cluster {
    /// [`replicate_record`](Self::replicate_record) from a blocking thread.
    pub fn replicate_record_blocking(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<usize, ClusterError> {
        self.inner
            .runtime
            .block_on(self.replicate_record(key, bytes))
    }

    /// [`gather_records`](Self::gather_records) from a blocking thread.
    pub fn gather_records_blocking(&self, key: &str) -> Vec<Vec<u8>> {
        self.inner.runtime.block_on(self.gather_records(key))
    }

    /// Whether `id` (peer id bytes) is this node or a connected member.
    pub fn is_up(&self, id: &[u8]) -> bool {
        self.inner.members.lock().is_up(id)
    }
}
