//! Metadata durability in a cluster: a write to a bucket is acknowledged only once the
//! bucket's new signed head (naming a metadata DAG already placed with the data's redundancy)
//! is kept by enough of the bucket's replica set to survive one more node loss — so a
//! replica can serve, and `cairn bucket promote` can take over, every acknowledged write.
//!
//! Concurrent writers share the work (group commit): each round commits every queued change
//! into new roots and pushes the heads of the buckets written since the last round; a writer
//! returns as soon as a round that started after its change finished. Outside a cluster
//! nothing waits: the roots job commits in the background, as before.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::model::codec::encode;
use crate::model::heads::SharedBucket;
use crate::model::records::head_key;
use crate::{Node, NodeError};

/// Rounds of head replication.
#[derive(Debug, Default)]
pub(crate) struct ReplicateState {
    /// Rounds started, and the last one finished successfully.
    started: AtomicU64,
    finished: AtomicU64,
    /// One round at a time.
    round: Mutex<()>,
    /// Buckets written since the last round took them.
    pending: Mutex<BTreeSet<String>>,
    /// The newest head sequence pushed per bucket.
    pushed: Mutex<HashMap<String, u64>>,
}

impl Node {
    /// In a cluster, returns once every change made to `bucket` before the call is in a head
    /// held by enough of the bucket's replica set to survive one more loss; a
    /// [`NodeError::Unavailable`] when too few are reachable. Outside a cluster, at once.
    pub fn replicate_bucket(&self, bucket: &str) -> Result<(), NodeError> {
        if self.cluster().is_none() {
            return Ok(());
        }
        let st = &self.replicate;
        st.pending.lock().insert(bucket.to_owned());
        let ticket = st.started.load(Ordering::SeqCst);
        let _one = st.round.lock();
        if st.finished.load(Ordering::SeqCst) > ticket {
            return Ok(()); // a round that started after the change carried it
        }
        let round = st.started.fetch_add(1, Ordering::SeqCst) + 1;
        let buckets = std::mem::take(&mut *st.pending.lock());
        match self.replicate_round(&buckets) {
            Ok(()) => {
                st.finished.store(round, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                st.pending.lock().extend(buckets);
                Err(e)
            }
        }
    }

    fn replicate_round(&self, buckets: &BTreeSet<String>) -> Result<(), NodeError> {
        let Some(cluster) = self.cluster() else {
            return Ok(());
        };
        self.commit_roots()?;
        for bucket in buckets {
            let record = match self.buckets().get(bucket) {
                Ok(r) if r.mirror.is_none() => Some(r),
                // Deleted here: its tombstone head goes out like any other.
                Err(NodeError::NoSuchBucket(_)) if self.is_own_or_unheld(bucket)? => None,
                Ok(_) | Err(NodeError::NoSuchBucket(_)) => continue,
                Err(e) => return Err(e),
            };
            let Some(row) = self.store().latest_root(bucket)? else {
                continue;
            };
            if self.replicate.pushed.lock().get(bucket) >= Some(&row.seq) {
                continue;
            }
            let shared = encode(&SharedBucket {
                head: row.head,
                bucket: record,
            })?;
            let held = cluster.replicate_record_blocking(&head_key(bucket), shared)?;
            tracing::debug!(bucket, seq = row.seq, held, "head replicated");
            self.replicate.pushed.lock().insert(bucket.clone(), row.seq);
        }
        Ok(())
    }
}
