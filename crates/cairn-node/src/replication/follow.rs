//! Buckets other nodes own, served read-only here, and taking one over.
//!
//! Every node shares the signed heads it knows (`/cairn/heads/1.0.0`, carried by the network
//! layer): those of its own buckets and those it holds for others. In a cluster an owner also
//! pushes each new head to the bucket's replica set before acknowledging the write
//! ([`crate::replication`]), which keeps it as a record (`head/BUCKET`). Received heads are
//! verified, judged ([`crate::ownership::judge`]) and held ([`Replication::hold_heads`]);
//! [`Replication::mirror_held`] then makes each held bucket a read-only mirror of its newest head —
//! bucket record and object rows pointing at the owner's DAGs, whose blocks come from the
//! cluster or Bitswap when read. So S3 GET/HEAD/LIST, the gateway and `cairn cat` on any node
//! serve every bucket, including those of a dead owner (heads are re-shared, so a node that
//! joins later learns them too).
//!
//! The bucket's record (ACL, policy, versioning, sealed key) comes from the signed version
//! ([`crate::model::heads::VersionRecord::settings`], whose digest the head carries), and a change
//! of it alone is a new head. A head without it is not mirrored (the unsigned record a peer
//! may send along, `SharedBucket`'s `bucket`, is never used). A bucket its owner deletes
//! ends with a tombstone head: mirrors drop it and pass the tombstone on; older heads no
//! longer bring it back.
//!
//! A mirror is read-only (S3 writes answer `ServiceUnavailable`). [`Replication::promote`] takes a
//! mirrored bucket over: the node gathers the newest head from its peers, and with a takeover
//! certificate signed by the cluster admin key ([`crate::model::takeover::Takeover`]) becomes the
//! owner; its heads carry the certificate, and a sequence that continues the previous one. A
//! previous owner can also hand a bucket over itself ([`Replication::hand_over`], then
//! [`Replication::take_over`] on the successor). A previous owner that comes back and sees a
//! certified head newer than its own steps down to a mirror.
//!
//! Trust: a head counts only when [`crate::ownership::judge`] accepts it — signed by the
//! bucket's pinned owner (trust on first use for a bucket never seen), or by another key with
//! a takeover certificate this node accepts; its sequence number moves by a bounded step. The
//! rules and their limits are in [`crate::ownership`].
//!
//! Robustness and bounds: each held head is mirrored on its own — one that fails (its version
//! record cannot be fetched, it names another version, it has no settings) is logged, reported
//! in [`Followed::skipped`] and tried again next run, and never stops the others (nor
//! [`Replication::promote`]). At most [`MAX_HELD_HEADS`] heads are held: when the table is full, a
//! head of a bucket not held yet is refused (heads of held buckets still pass). What
//! [`Replication::shared_heads`] encodes stays below [`MAX_SHARED_BYTES`] (the heads protocol answers
//! at most 16 MiB): its own buckets first, then held heads, until the budget is spent.

use crate::Replication;
use serde_bytes::ByteBuf;

use crate::model::codec::{decode, encode, hex, unhex};
use crate::model::heads::{
    HeldHead, ObjectRecord, RECORDS, SharedBucket, SignedHead, VersionRecord,
};
use crate::model::records::BUCKETS;
use crate::ownership::{Ignored, Known, Verdict, judge};
use crate::{Node, NodeError};

use crate::model::records::{Mirror, head_key};

/// At most this many bucket heads are held for other nodes (the records table).
pub const MAX_HELD_HEADS: u64 = 10_000;

/// At most this many bytes of heads are shared in one answer (the heads protocol's answers are
/// limited to 16 MiB).
pub const MAX_SHARED_BYTES: usize = 12 << 20;
const _: () = assert!(MAX_SHARED_BYTES < 16 << 20);

impl HeldHead {
    /// The head it holds, decoded (its signature was checked when it was accepted).
    pub(super) fn signed(&self) -> Result<SignedHead, NodeError> {
        decode(&self.head)
    }

    /// What the record says of its bucket.
    pub(super) fn known(&self, head: &SignedHead) -> Known {
        let owner = self
            .owner
            .as_ref()
            .map_or(head.public_key.as_slice(), |o| o.as_slice());
        Known {
            owner: owner.try_into().unwrap_or([0; 32]),
            seq: head.payload.seq,
            epoch: self.epoch,
        }
    }
}

/// What one run of following did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Followed {
    /// Buckets whose mirror moved to a newer head.
    pub updated: Vec<String>,
    /// Objects written into mirrors.
    pub objects: usize,
    /// Held heads that could not be mirrored this run, and why (tried again next run).
    pub skipped: Vec<(String, String)>,
}

/// What became of one received head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Held (it is the bucket's newest now).
    Kept,
    /// Not held: [`crate::ownership::judge`] ignores it.
    Ignored(Ignored),
    /// Not held: [`MAX_HELD_HEADS`] heads are held already and this bucket is not one of them.
    Full,
}

/// What this node holds about `bucket`, read in `txn`: its own bucket (pinned to `me`, the
/// sequence its newest root's), else the held head's record, else the mirror's; `None` when
/// it has never seen it.
fn known_in(
    txn: &cairn_store::MetaTxn<'_>,
    bucket: &str,
    me: &[u8; 32],
) -> Result<Option<Known>, NodeError> {
    let local = txn.get(BUCKETS, bucket)?;
    if let Some(local) = &local
        && local.mirror.is_none()
    {
        let ours = txn.latest_root(bucket)?.map_or(0, |r| r.seq);
        let floor = local.taken_over.as_ref().map_or(0, |t| t.seq);
        return Ok(Some(Known {
            owner: *me,
            seq: ours.max(floor),
            epoch: local.takeover.as_ref().map_or(0, |t| t.seq),
        }));
    }
    if let Some(held) = txn.get(RECORDS, &head_key(bucket))? {
        return Ok(Some(held.known(&held.signed()?)));
    }
    Ok(local.and_then(|l| l.mirror).map(|m| Known {
        owner: unhex(&m.owner_key).try_into().unwrap_or([0; 32]),
        seq: m.seq,
        epoch: 0,
    }))
}

impl Node {
    fn shared_heads_within(&self, budget: usize) -> Result<Vec<u8>, NodeError> {
        let mut items = Vec::new();
        for (name, bucket) in self.buckets().list()? {
            if bucket.mirror.is_some() {
                continue;
            }
            if let Some(row) = self.store().latest_root(&name)? {
                items.push(SharedBucket {
                    head: row.head,
                    bucket: Some(bucket),
                });
            }
        }
        for (key, held) in self.store().list(RECORDS)? {
            if key.starts_with("head/") {
                items.push(SharedBucket {
                    head: held.head,
                    bucket: None,
                });
            }
        }
        // A dag-cbor list is its header (at most 9 bytes) and its items.
        let (mut out, mut used, mut left_out) = (Vec::new(), 9, 0);
        for item in items {
            let size = encode(&item)?.len();
            if used + size > budget {
                left_out += 1;
                continue;
            }
            used += size;
            out.push(item);
        }
        if left_out > 0 {
            tracing::warn!(
                left_out,
                "bucket heads left out of the shared answer (over {budget} bytes)"
            );
        }
        encode(&out)
    }

    /// Keeps `head` (verified; `bytes` its encoding) as its bucket's held head when
    /// [`judge`] accepts it against what this node holds, and the table has room (at most
    /// `cap` records) or already holds the bucket. Only accepted heads are ever kept, so held
    /// ones are read back without verifying.
    pub(super) fn hold_head(
        &self,
        bytes: &[u8],
        head: &SignedHead,
        cap: u64,
    ) -> Result<Holding, NodeError> {
        let name = &head.payload.bucket;
        let me = self.identity()?.public_key();
        let admin = self.cluster_admin();
        let key = head_key(name);
        self.store().update(|txn| {
            let known = known_in(txn, name, &me)?;
            let pin = match judge(known.as_ref(), head, &me, admin.as_ref()) {
                Verdict::Accept(pin) => pin,
                Verdict::Ignore(why) => return Ok(Holding::Ignored(why)),
            };
            if txn.get(RECORDS, &key)?.is_none() && txn.count(RECORDS)? >= cap {
                return Ok(Holding::Full);
            }
            let held = HeldHead {
                head: bytes.to_vec(),
                bucket: None,
                owner: Some(ByteBuf::from(pin.owner.to_vec())),
                epoch: pin.epoch,
            };
            txn.put(RECORDS, &key, &held)?;
            Ok::<_, NodeError>(Holding::Kept)
        })
    }

    /// Mirrors one held head record when it is newer than the local mirror; the objects
    /// written, or `None` when there was nothing to do.
    fn mirror_one(&self, held: &HeldHead, me: &[u8; 32]) -> Result<Option<usize>, NodeError> {
        let head = held.signed()?;
        if head.public_key.as_slice() == me {
            return Ok(None); // our own tombstone, kept to be shared
        }
        let name = head.payload.bucket.clone();
        let seq = head.payload.seq;
        // The held head was accepted for the owner the record pins; a record from before
        // owners were pinned (none kept) is judged again against the local mirror.
        let recheck = match self.buckets().get(&name) {
            Ok(local) => match &local.mirror {
                Some(m) if m.seq >= seq => return Ok(None),
                Some(m) if held.owner.is_none() && unhex(&m.owner_key) != head.public_key[..] => {
                    Some(Known {
                        owner: unhex(&m.owner_key).try_into().unwrap_or([0; 32]),
                        seq: m.seq,
                        epoch: 0,
                    })
                }
                Some(_) => None,
                // Ours: a head of another key counts only with a takeover we accept (held
                // before this node made or took the bucket, it may have none).
                None => Some(Known {
                    owner: *me,
                    seq: self
                        .store()
                        .latest_root(&name)?
                        .map_or(0, |r| r.seq)
                        .max(local.taken_over.as_ref().map_or(0, |t| t.seq)),
                    epoch: local.takeover.as_ref().map_or(0, |t| t.seq),
                }),
            },
            Err(NodeError::NoSuchBucket(_)) if head.payload.deleted => return Ok(None),
            Err(NodeError::NoSuchBucket(_)) => None,
            Err(e) => return Err(e),
        };
        if let Some(known) = recheck {
            let admin = self.cluster_admin();
            if let Verdict::Ignore(why) = judge(Some(&known), &head, me, admin.as_ref()) {
                tracing::debug!(bucket = name, seq, "held head not acted on: {why}");
                return Ok(None);
            }
            if known.owner == *me {
                tracing::warn!(
                    bucket = name,
                    seq,
                    "bucket was taken over by another node (certified); serving it read-only"
                );
            }
        } else if held.known(&head).owner[..] != head.public_key[..] {
            return Err(NodeError::Unsupported(format!(
                "held head of {name:?} is not signed by the owner its record pins"
            )));
        }
        if head.payload.deleted {
            self.drop_mirror(&name, seq)?;
            Ok(Some(0))
        } else {
            self.mirror(&head).map(Some)
        }
    }

    /// Drops the local mirror of a bucket its owner deleted (tombstone head `seq`): its
    /// objects, its record and its history here, in one commit. The held tombstone stays, so an older head of
    /// the bucket is not mirrored again, and is shared on.
    fn drop_mirror(&self, bucket: &str, seq: u64) -> Result<(), NodeError> {
        let keys = self.objects().keys(bucket)?;
        self.store().update(|txn| {
            for key in &keys {
                txn.delete_object(bucket, key)?;
            }
            txn.delete(BUCKETS, bucket)?;
            // The mirror's history of it goes too: it would keep what the bucket held
            // referenced here forever (its newest root never expires). The owner keeps its own.
            txn.forget_history(bucket)?;
            Ok::<_, NodeError>(())
        })?;
        tracing::info!(bucket, seq, "the owner deleted the bucket; mirror dropped");
        Ok(())
    }

    /// Whether a bucket gone from here was this node's: no head of it is held for another
    /// node (or the one held is pinned to this node: its own tombstone).
    pub(crate) fn is_own_or_unheld(&self, bucket: &str) -> Result<bool, NodeError> {
        Ok(match self.store().read(RECORDS, &head_key(bucket))? {
            None => true,
            Some(held) => held.known(&held.signed()?).owner == self.identity()?.public_key(),
        })
    }

    /// Makes the local mirror of `head.bucket` exactly that version, whose bucket record comes
    /// from the signed version record (a head without one is not mirrored).
    fn mirror(&self, head: &SignedHead) -> Result<usize, NodeError> {
        let bucket = &head.payload.bucket;
        let Some(digest) = &head.payload.settings else {
            return Err(NodeError::Unsupported(format!(
                "head of {bucket:?} does not sign the bucket's record: not mirrored"
            )));
        };
        let version: VersionRecord = decode(&self.blocks().get(&head.payload.record)?)?;
        if version.bucket != *bucket || version.tree != head.payload.tree {
            return Err(NodeError::Unsupported(format!(
                "head of {bucket:?} names a record of another version"
            )));
        }
        let mut record = version.settings.clone().ok_or_else(|| {
            NodeError::Unsupported(format!(
                "the version of {bucket:?} came without the bucket's record"
            ))
        })?;
        if crate::model::heads::settings_digest(&record)?[..] != digest[..] {
            return Err(NodeError::Unsupported(format!(
                "head of {bucket:?} signs another bucket record than its version's"
            )));
        }
        let objects = self.index_objects(&version.objects)?;
        record.mirror = Some(Mirror {
            owner_key: hex(&head.public_key),
            seq: head.payload.seq,
        });
        record.taken_over = None;
        record.takeover = None;
        let wanted: std::collections::BTreeMap<&str, &ObjectRecord> =
            objects.iter().map(|o| (o.key.as_str(), o)).collect();
        let stale: Vec<String> = self
            .objects()
            .keys(bucket)?
            .into_iter()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .collect();
        self.store().update(|txn| {
            txn.put(BUCKETS, bucket, &record)?;
            for key in &stale {
                txn.delete_object(bucket, key)?;
            }
            for o in &objects {
                txn.put_object(bucket, &o.key, &o.data, &encode(&o.meta)?)?;
            }
            Ok::<_, NodeError>(())
        })?;
        tracing::info!(
            bucket,
            seq = head.payload.seq,
            objects = objects.len(),
            "mirrored"
        );
        Ok(objects.len())
    }
}
impl Replication<'_> {
    /// The heads this node knows, encoded for peers: its own buckets' and those it holds for
    /// others (so a node that joins after an owner died still learns its buckets) — at most
    /// [`MAX_SHARED_BYTES`] of them.
    pub fn shared_heads(&self) -> Result<Vec<u8>, NodeError> {
        self.node.shared_heads_within(MAX_SHARED_BYTES)
    }

    /// Holds every head of `shared` (another node's [`Replication::shared_heads`]) that is accepted
    /// and newer than the one held for its bucket, then mirrors what changed. Bad signatures
    /// are refused.
    pub fn follow_heads(&self, shared: &[u8]) -> Result<Followed, NodeError> {
        self.hold_shared(shared)?;
        self.mirror_held()
    }

    /// Holds every head of `shared` that is accepted and newer than the one held for its
    /// bucket (mirrored by the next [`Replication::mirror_held`]). A bad signature fails the whole
    /// answer; a head not accepted is logged and skipped.
    pub fn hold_shared(&self, shared: &[u8]) -> Result<(), NodeError> {
        for (item, head) in verified_shared(shared)? {
            let bucket = &head.payload.bucket;
            match self.node.hold_head(&item.head, &head, MAX_HELD_HEADS)? {
                Holding::Kept | Holding::Ignored(Ignored::Stale | Ignored::OwnHead) => {}
                Holding::Ignored(why) => tracing::debug!(bucket, "bucket head ignored: {why}"),
                Holding::Full => {
                    tracing::warn!(bucket, "bucket head refused: the held heads table is full")
                }
            }
        }
        Ok(())
    }

    /// Keeps one encoded `SharedBucket` pushed by its owner (a record of the bucket's
    /// replica set) when it verifies, is accepted and is newer than the one held. A head not
    /// accepted (another key's, a sequence jump, the table full) is an error for the pusher.
    pub fn hold_heads(&self, key: &str, bytes: &[u8]) -> Result<(), NodeError> {
        let (item, head) = verified_record(key, bytes)?;
        match self.node.hold_head(&item.head, &head, MAX_HELD_HEADS)? {
            Holding::Kept | Holding::Ignored(Ignored::Stale | Ignored::OwnHead) => Ok(()),
            Holding::Ignored(why) => Err(NodeError::Unsupported(format!(
                "head of bucket {:?} refused: {why}",
                head.payload.bucket
            ))),
            Holding::Full => Err(NodeError::Unavailable(format!(
                "head of bucket {:?} refused: {MAX_HELD_HEADS} heads are held already",
                head.payload.bucket
            ))),
        }
    }

    /// Mirrors every held head newer than the local mirror of its bucket. One that cannot be
    /// mirrored is logged and reported in [`Followed::skipped`]; the others go on.
    pub fn mirror_held(&self) -> Result<Followed, NodeError> {
        let mut done = Followed::default();
        let me = self.node.identity()?.public_key();
        // A row that does not decode is skipped (and said), not a reason to mirror nothing.
        for (key, held) in self.node.store().list_each(RECORDS)? {
            let Some(name) = key.strip_prefix("head/") else {
                continue;
            };
            match held
                .map_err(NodeError::from)
                .and_then(|held| self.node.mirror_one(&held, &me))
            {
                Ok(None) => {}
                Ok(Some(objects)) => {
                    done.objects += objects;
                    done.updated.push(name.to_owned());
                }
                Err(e) => {
                    tracing::warn!(bucket = name, "held head not mirrored: {e}");
                    done.skipped.push((name.to_owned(), e.to_string()));
                }
            }
        }
        if !done.updated.is_empty() {
            self.node.roots().commit()?;
        }
        Ok(done)
    }
}

/// The items of a peer's shared heads (its [`Replication::shared_heads`]), each head verified: a bad
/// signature fails the whole answer.
fn verified_shared(shared: &[u8]) -> Result<Vec<(SharedBucket, SignedHead)>, NodeError> {
    let list: Vec<SharedBucket> = decode(shared)?;
    list.into_iter()
        .map(|item| {
            let head = SignedHead::verify(&item.head, None)?;
            Ok((item, head))
        })
        .collect()
}

/// A head record pushed under `key`, its head verified and of the bucket `key` names.
fn verified_record(key: &str, bytes: &[u8]) -> Result<(SharedBucket, SignedHead), NodeError> {
    let item: SharedBucket = decode(bytes)?;
    let head = SignedHead::verify(&item.head, None)?;
    if key != head_key(&head.payload.bucket) {
        return Err(NodeError::Unsupported(format!(
            "record {key:?} holds the head of bucket {:?}",
            head.payload.bucket
        )));
    }
    Ok((item, head))
}

/// What a node does with heads received from peers, without the node: the decoding and
/// verification of [`Replication::hold_shared`] (a `/cairn/heads/1.0.0` answer) and
/// [`Replication::hold_heads`] (a head record). For the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub mod received {
    use super::*;

    /// [`Replication::hold_shared`]'s reading of `shared`: the verified heads.
    pub fn shared_heads(shared: &[u8]) -> Result<Vec<SignedHead>, NodeError> {
        Ok(verified_shared(shared)?
            .into_iter()
            .map(|(_, h)| h)
            .collect())
    }

    /// [`Replication::hold_heads`]'s reading of a record: its verified head.
    pub fn head_record(key: &str, bytes: &[u8]) -> Result<SignedHead, NodeError> {
        Ok(verified_record(key, bytes)?.1)
    }
}

/// Records received from cluster peers: bucket heads, verified and held by the node.
pub(crate) struct HeadRecords(pub(crate) std::sync::Weak<crate::NodeInner>);

impl HeadRecords {
    /// The node, while it runs.
    fn node(&self) -> Option<Node> {
        self.0.upgrade().map(Node::from_inner)
    }
}

impl cairn_cluster::RecordSink for HeadRecords {
    fn accept(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
        let node = self.node().ok_or("this node is stopping")?;
        node.replication()
            .hold_heads(key, bytes)
            .map_err(|e| e.to_string())
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let held = self.node()?.store().read(RECORDS, key).ok().flatten()?;
        encode(&SharedBucket {
            head: held.head,
            bucket: None,
        })
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::identity::peer_id_of;
    use crate::model::heads::HeadPayload;
    use crate::model::takeover::Takeover;
    use bytes::Bytes;
    use cairn_dag::{Cid, CidVersion};

    /// Other nodes' stores as the network.
    struct Peers(Vec<cairn_store::Store>);

    impl cairn_store::RemoteBlocks for Peers {
        fn fetch(&self, cid: &Cid) -> Option<Bytes> {
            self.0.iter().find_map(|s| s.get_local(cid).ok())
        }
    }

    /// `node` (over the same store, with its roots settings and admin key) reading the blocks
    /// it misses from `from`.
    fn reads_from(node: &Node, from: &[&Node]) -> Node {
        let stores = from.iter().map(|n| n.store().clone()).collect();
        let signer = node
            .cluster_admin_signer()
            .map(|s| Identity::from_seed(s.secret_seed()));
        Node::builder(node.store().clone())
            .roots(node.roots_config())
            .cluster_admin(node.cluster_admin(), signer)
            .remote(std::sync::Arc::new(Peers(stores)))
            .build()
            .unwrap()
    }

    fn node() -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        (dir, node)
    }

    /// A node whose blocks come from `from` when missing.
    fn reading(from: &Node) -> (tempfile::TempDir, Node) {
        let (dir, node) = node();
        (dir, reads_from(&node, &[from]))
    }

    async fn put(node: &Node, bucket: &str, key: &str, data: &[u8]) -> Cid {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(data))]);
        let staged = node
            .objects()
            .stage(None, body, CidVersion::V0)
            .await
            .unwrap();
        node.objects()
            .commit(staged, bucket, key, Default::default())
            .unwrap()
            .cid
    }

    fn key_of(node: &Node) -> [u8; 32] {
        node.identity().unwrap().public_key()
    }

    fn newest(node: &Node, bucket: &str) -> cairn_store::RootRow {
        node.store().latest_root(bucket).unwrap().unwrap()
    }

    /// A head of `bucket` naming `row`'s tree and record, as `signer` would sign it.
    fn payload(bucket: &str, seq: u64, row: &cairn_store::RootRow) -> HeadPayload {
        HeadPayload {
            bucket: bucket.into(),
            seq,
            time_ms: 0,
            tree: row.tree,
            record: row.record,
            taken_from: None,
            settings: None,
            deleted: false,
            takeover: None,
        }
    }

    /// The record bytes a peer pushes for a head.
    fn record_of(payload: HeadPayload, signer: &Identity) -> Vec<u8> {
        let head = SignedHead::sign(payload, signer).unwrap();
        encode(&SharedBucket {
            head: head.to_bytes().unwrap(),
            bucket: None,
        })
        .unwrap()
    }

    /// A held-head row that does not decode (a bug, a disk error) is skipped with its reason;
    /// the other held heads are still mirrored.
    #[tokio::test]
    async fn an_undecodable_held_head_skips_only_itself() {
        let (_d, owner) = node();
        owner.buckets().create("bkt", "root").unwrap();
        put(&owner, "bkt", "k", b"one").await;
        owner.roots().commit().unwrap();
        let (_m, mirror) = reading(&owner);
        mirror
            .replication()
            .hold_shared(&owner.replication().shared_heads().unwrap())
            .unwrap();
        // The same table, written as another record type: a row the node cannot read.
        const GARBAGE: cairn_store::Table<String> = cairn_store::Table::new("records");
        mirror
            .store()
            .update(|txn| txn.put(GARBAGE, "head/broken", &"not a head".to_owned()))
            .unwrap();
        let done = mirror.replication().mirror_held().unwrap();
        assert_eq!(done.updated, ["bkt"]);
        assert_eq!(done.skipped.len(), 1, "{:?}", done.skipped);
        assert_eq!(done.skipped[0].0, "broken");
    }

    /// The review's attack (C2) on the owner's own node: a head signed by another key, naming
    /// the owner in `taken_from`, with a tombstone, a plain update or `seq = u64::MAX`.
    #[tokio::test]
    async fn a_forged_head_neither_drops_nor_takes_the_owners_own_bucket() {
        let (_d, owner) = node();
        owner.buckets().create("bkt", "root").unwrap();
        let k = put(&owner, "bkt", "k", b"mine").await;
        owner.roots().commit().unwrap();
        let row = newest(&owner, "bkt");
        let attacker = Identity::from_seed([9; 32]);
        for (seq, deleted) in [
            (row.seq + 1, true),
            (row.seq + 1, false),
            (u64::MAX, false),
            (u64::MAX, true),
        ] {
            let mut p = payload("bkt", seq, &row);
            p.taken_from = Some(serde_bytes::ByteBuf::from(key_of(&owner).to_vec()));
            p.deleted = deleted;
            let _ = owner
                .replication()
                .hold_heads("head/bkt", &record_of(p, &attacker));
            let _ = owner.replication().mirror_held();
            let bucket = owner
                .buckets()
                .get("bkt")
                .expect("the owner's bucket is still there");
            assert!(
                bucket.mirror.is_none(),
                "seq {seq} deleted {deleted}: taken"
            );
            assert_eq!(owner.objects().get("bkt", "k").unwrap().cid, k);
        }
        // and it still writes: its next head continues its own sequence
        put(&owner, "bkt", "k2", b"more").await;
        owner.roots().commit().unwrap();
        assert_eq!(newest(&owner, "bkt").seq, row.seq + 1);
    }

    /// The same on a mirror: forged heads from another key are ignored, the owner's objects
    /// are still served, and the owner's next head is still mirrored (not frozen).
    #[tokio::test]
    async fn a_forged_head_neither_drops_freezes_nor_takes_a_mirror() {
        let (_a, owner) = node();
        owner.buckets().create("bkt", "root").unwrap();
        let k = put(&owner, "bkt", "k", b"mine").await;
        owner.roots().commit().unwrap();
        let (_m, m) = reading(&owner);
        assert_eq!(
            m.replication()
                .follow_heads(&owner.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        let row = newest(&owner, "bkt");
        let attacker = Identity::from_seed([9; 32]);
        let mut cases = Vec::new();
        for seq in [row.seq + 1, row.seq + 1000, u64::MAX] {
            for deleted in [false, true] {
                for taken in [false, true] {
                    cases.push((seq, deleted, taken));
                }
            }
        }
        for (seq, deleted, taken) in cases {
            let mut p = payload("bkt", seq, &row);
            p.deleted = deleted;
            if taken {
                p.taken_from = Some(serde_bytes::ByteBuf::from(key_of(&owner).to_vec()));
            }
            let forged = record_of(p, &attacker);
            let _ = m.replication().hold_heads("head/bkt", &forged);
            let _ = m.replication().mirror_held();
            let _ = m
                .replication()
                .follow_heads(&encode(&vec![decode::<SharedBucket>(&forged).unwrap()]).unwrap());
            let mirror = m
                .buckets()
                .get("bkt")
                .expect("the mirror is still there")
                .mirror
                .unwrap();
            assert_eq!(
                mirror.owner_key,
                hex(&key_of(&owner)),
                "{seq} {deleted} {taken}"
            );
            assert_eq!(mirror.seq, row.seq);
            assert_eq!(m.objects().get("bkt", "k").unwrap().cid, k);
        }
        // the owner's next head is still mirrored
        let k2 = put(&owner, "bkt", "k2", b"more").await;
        owner.roots().commit().unwrap();
        assert_eq!(
            m.replication()
                .follow_heads(&owner.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        assert_eq!(m.objects().get("bkt", "k2").unwrap().cid, k2);
    }

    /// M4: a held head whose version record exists nowhere does not stop the mirroring of
    /// the other buckets.
    #[tokio::test]
    async fn a_bad_held_head_does_not_block_the_others() {
        let (_a, owner) = node();
        owner.buckets().create("zzz", "root").unwrap();
        let k = put(&owner, "zzz", "k", b"mine").await;
        owner.roots().commit().unwrap();
        let (_m, m) = reading(&owner);
        // "aaa" sorts first; its record is a CID nobody has
        let (_z, stranger) = node();
        stranger.buckets().create("aaa", "root").unwrap();
        put(&stranger, "aaa", "x", b"x").await;
        stranger.roots().commit().unwrap();
        m.replication()
            .hold_shared(&stranger.replication().shared_heads().unwrap())
            .unwrap();
        m.replication()
            .hold_shared(&owner.replication().shared_heads().unwrap())
            .unwrap();
        let done = m
            .replication()
            .mirror_held()
            .expect("one bad head fails only itself");
        assert_eq!(done.updated, ["zzz"]);
        assert_eq!(m.objects().get("zzz", "k").unwrap().cid, k);
    }

    #[test]
    fn hex_round_trips_and_peer_ids_follow_the_libp2p_spec() {
        let key = [7u8; 32];
        assert_eq!(unhex(&hex(&key)), key.to_vec());
        assert!(unhex("zz").is_empty());
        let id = peer_id_of(&key);
        assert_eq!(id.len(), 38);
        assert_eq!(&id[..6], &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    }

    const ADMIN: [u8; 32] = [42; 32];

    /// The signed head of `bucket`'s newest root on `node`.
    fn head_of(node: &Node, bucket: &str) -> SignedHead {
        decode(&newest(node, bucket).head).unwrap()
    }

    /// An owner `a` with bucket `bkt` holding `k`, and mirrors of it: `m` (a plain mirror) and
    /// `p` (the node that takes over); every node knows the cluster admin's public key.
    async fn cluster() -> (Vec<tempfile::TempDir>, Node, Node, Node) {
        let (da, a) = node();
        a.buckets().create("bkt", "root").unwrap();
        put(&a, "bkt", "k", b"one").await;
        a.roots().commit().unwrap();
        let (dm, m) = node();
        let (dp, p) = node();
        let m = reads_from(&m, &[&a, &p]);
        let p = reads_from(&p, &[&a]);
        for n in [&a, &m, &p] {
            n.set_cluster_admin(Some(Identity::from_seed(ADMIN).public_key()), None)
                .unwrap();
        }
        for n in [&m, &p] {
            assert_eq!(
                n.replication()
                    .follow_heads(&a.replication().shared_heads().unwrap())
                    .unwrap()
                    .updated,
                ["bkt"]
            );
        }
        (vec![da, dm, dp], a, m, p)
    }

    fn owner_of(node: &Node, bucket: &str) -> Option<String> {
        node.buckets()
            .get(bucket)
            .unwrap()
            .mirror
            .map(|m| m.owner_key)
    }

    #[tokio::test]
    async fn an_owner_head_that_jumps_too_far_is_ignored() {
        let (_d, a, m, _p) = cluster().await;
        let row = newest(&a, "bkt");
        let mut jump = head_of(&a, "bkt").payload;
        jump.seq = row.seq + crate::model::takeover::MAX_SEQ_STEP + 1;
        let forged = record_of(jump, a.identity().unwrap());
        let err = m
            .replication()
            .hold_heads("head/bkt", &forged)
            .unwrap_err()
            .to_string();
        assert!(err.contains("jumps"), "{err}");
        assert!(m.replication().mirror_held().unwrap().updated.is_empty());
        assert_eq!(m.buckets().get("bkt").unwrap().mirror.unwrap().seq, row.seq);
        // within the step it is the owner's to choose
        let mut step = head_of(&a, "bkt").payload;
        step.seq = row.seq + crate::model::takeover::MAX_SEQ_STEP;
        m.replication()
            .hold_heads("head/bkt", &record_of(step, a.identity().unwrap()))
            .unwrap();
        assert_eq!(m.replication().mirror_held().unwrap().updated, ["bkt"]);
    }

    #[tokio::test]
    async fn an_admin_certificate_moves_the_bucket_and_everyone_follows() {
        let (_d, a, m, p) = cluster().await;
        p.set_cluster_admin(None, Some(Identity::from_seed(ADMIN)))
            .unwrap();
        let seq = p.replication().promote("bkt", false).unwrap();
        assert!(p.buckets().get("bkt").unwrap().mirror.is_none());
        let k2 = put(&p, "bkt", "k2", b"two").await;
        p.roots().commit().unwrap();
        // the mirror pinned `a`; `p`'s certified heads move it over, and `p`'s next heads
        // (no certificate needed any more) keep it moving
        assert_eq!(
            m.replication()
                .follow_heads(&p.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        assert_eq!(owner_of(&m, "bkt"), Some(hex(&key_of(&p))));
        assert_eq!(m.objects().get("bkt", "k2").unwrap().cid, k2);
        assert!(m.buckets().get("bkt").unwrap().mirror.unwrap().seq > seq);
        // the old owner steps down when it sees them, and serves the new owner's version
        let a = reads_from(&a, &[&p]);
        assert_eq!(
            a.replication()
                .follow_heads(&p.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        assert_eq!(owner_of(&a, "bkt"), Some(hex(&key_of(&p))));
        assert_eq!(a.objects().get("bkt", "k2").unwrap().cid, k2);
        // and the old owner's own heads no longer move the mirror back
        let mut old = head_of(&a, "bkt").payload;
        old.seq = head_of(&p, "bkt").payload.seq + 1;
        old.takeover = None;
        let stale = record_of(old, a.identity().unwrap());
        assert!(m.replication().hold_heads("head/bkt", &stale).is_err());
        assert_eq!(owner_of(&m, "bkt"), Some(hex(&key_of(&p))));
    }

    #[tokio::test]
    async fn the_owner_hands_a_bucket_over() {
        let (_d, a, m, p) = cluster().await;
        // no admin signer anywhere: the owner's own certificate is enough
        let cert = a.replication().hand_over("bkt", key_of(&p)).unwrap();
        assert!(
            m.replication().hand_over("bkt", key_of(&p)).is_err(),
            "only the owner hands over"
        );
        // a certificate for someone else is not taken
        let other = a.replication().hand_over("bkt", key_of(&m)).unwrap();
        assert!(p.replication().take_over("bkt", other).is_err());
        p.replication().take_over("bkt", cert).unwrap();
        let k2 = put(&p, "bkt", "k2", b"two").await;
        p.roots().commit().unwrap();
        assert_eq!(
            m.replication()
                .follow_heads(&p.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        assert_eq!(m.objects().get("bkt", "k2").unwrap().cid, k2);
        let a = reads_from(&a, &[&p]);
        assert_eq!(
            a.replication()
                .follow_heads(&p.replication().shared_heads().unwrap())
                .unwrap()
                .updated,
            ["bkt"]
        );
        assert_eq!(owner_of(&a, "bkt"), Some(hex(&key_of(&p))));
    }

    #[tokio::test]
    async fn a_certificate_that_does_not_hold_moves_nothing() {
        let (_d, a, m, p) = cluster().await;
        let base = head_of(&a, "bkt").payload;
        let (ka, kp) = (key_of(&a), key_of(&p));
        let stranger = Identity::from_seed([9; 32]);
        let admin = Identity::from_seed(ADMIN);
        let seq = base.seq + 1;
        let bad = [
            // signed by a random key
            Takeover::sign("bkt", ka, kp, seq, &stranger),
            // signed by the admin, but for another new owner than the head's signer
            Takeover::sign("bkt", ka, key_of(&m), seq, &admin),
            // for another bucket
            Takeover::sign("other", ka, kp, seq, &admin),
            // by the new owner itself
            Takeover::sign("bkt", ka, kp, seq, p.identity().unwrap()),
        ];
        for cert in bad {
            let mut payload = base.clone();
            payload.seq = seq;
            payload.takeover = Some(cert.clone());
            let forged = record_of(payload, p.identity().unwrap());
            for n in [&a, &m] {
                assert!(
                    n.replication().hold_heads("head/bkt", &forged).is_err(),
                    "{cert:?}"
                );
                n.replication().mirror_held().unwrap();
            }
            assert!(a.buckets().get("bkt").unwrap().mirror.is_none(), "{cert:?}");
            assert_eq!(owner_of(&m, "bkt"), Some(hex(&ka)), "{cert:?}");
            // taking over with it is refused too
            assert!(p.replication().take_over("bkt", cert).is_err());
        }
        // the same head with a good certificate is taken
        let mut payload = base.clone();
        payload.seq = seq;
        payload.takeover = Some(Takeover::sign("bkt", ka, kp, seq, &admin));
        m.replication()
            .hold_heads("head/bkt", &record_of(payload, p.identity().unwrap()))
            .unwrap();
        assert_eq!(m.replication().mirror_held().unwrap().updated, ["bkt"]);
        assert_eq!(owner_of(&m, "bkt"), Some(hex(&kp)));
    }

    #[tokio::test]
    async fn a_head_without_signed_settings_is_skipped_and_reported() {
        let (_a, owner) = node();
        owner.buckets().create("bkt", "root").unwrap();
        put(&owner, "bkt", "k", b"one").await;
        owner.roots().commit().unwrap();
        let (_m, m) = reading(&owner);
        let mut legacy = head_of(&owner, "bkt").payload;
        legacy.settings = None;
        let shared = encode(&SharedBucket {
            head: SignedHead::sign(legacy, owner.identity().unwrap())
                .unwrap()
                .to_bytes()
                .unwrap(),
            // the unsigned record a relay sends along is never used
            bucket: Some(owner.buckets().get("bkt").unwrap()),
        })
        .unwrap();
        m.replication().hold_heads("head/bkt", &shared).unwrap();
        let done = m.replication().mirror_held().unwrap();
        assert!(done.updated.is_empty());
        assert_eq!(done.skipped.len(), 1);
        assert_eq!(done.skipped[0].0, "bkt");
        assert!(m.buckets().get("bkt").is_err());
    }

    #[tokio::test]
    async fn held_heads_are_bounded_and_updates_still_pass() {
        let (_a, owner) = node();
        for name in ["aaa", "bbb", "ccc"] {
            owner.buckets().create(name, "root").unwrap();
            put(&owner, name, "k", b"one").await;
        }
        owner.roots().commit().unwrap();
        let (_m, m) = reading(&owner);
        let hold = |name: &str, cap| {
            let head = head_of(&owner, name);
            m.hold_head(&head.to_bytes().unwrap(), &head, cap).unwrap()
        };
        assert_eq!(hold("aaa", 2), Holding::Kept);
        assert_eq!(hold("bbb", 2), Holding::Kept);
        assert_eq!(hold("ccc", 2), Holding::Full);
        put(&owner, "aaa", "k2", b"two").await;
        owner.roots().commit().unwrap();
        assert_eq!(hold("aaa", 2), Holding::Kept, "a held bucket moves on");
        assert_eq!(
            m.replication().mirror_held().unwrap().updated,
            ["aaa", "bbb"]
        );
    }

    #[tokio::test]
    async fn shared_heads_stay_within_their_budget() {
        let (_a, owner) = node();
        for name in ["aaa", "bbb", "ccc"] {
            owner.buckets().create(name, "root").unwrap();
            put(&owner, name, "k", b"one").await;
        }
        owner.roots().commit().unwrap();
        let all = owner.replication().shared_heads().unwrap();
        assert_eq!(decode::<Vec<SharedBucket>>(&all).unwrap().len(), 3);
        let some = owner.shared_heads_within(all.len() * 2 / 3).unwrap();
        assert!(some.len() <= all.len() * 2 / 3);
        let n = decode::<Vec<SharedBucket>>(&some).unwrap().len();
        assert!((1..3).contains(&n), "{n} heads");
    }
}
