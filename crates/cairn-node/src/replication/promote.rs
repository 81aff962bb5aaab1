//! Taking a mirrored bucket over ([`Replication::promote`] with the cluster admin's
//! certificate, or [`Replication::take_over`] with one its owner made by
//! [`Replication::hand_over`]): the newest head the cluster holds is gathered and mirrored
//! first, the certificate checked ([`crate::ownership::takeover_fault`]), then this node owns
//! the bucket, its heads carrying the certificate and continuing the previous owner's
//! sequence.

use super::follow::{Holding, MAX_HELD_HEADS};
use crate::Replication;
use crate::identity::peer_id_of;
use crate::model::codec::{decode, unhex};
use crate::model::heads::{RECORDS, SharedBucket, SignedHead};
use crate::model::records::{BUCKETS, BucketRecord, Mirror, head_key};
use crate::model::takeover::Takeover;
use crate::{Node, NodeError};

impl Node {
    /// Gathers the newest head the cluster holds for `bucket` (each judged like any other).
    fn gather_heads(&self, bucket: &str) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        for bytes in cluster.gather_records_blocking(&head_key(bucket)) {
            let held = decode::<SharedBucket>(&bytes).and_then(|item| {
                let head = SignedHead::verify(&item.head, None)?;
                if head.payload.bucket != bucket {
                    return Err(NodeError::Unsupported("a head of another bucket".into()));
                }
                self.hold_head(&item.head, &head, MAX_HELD_HEADS)
            });
            match held {
                Ok(Holding::Kept) => {}
                Ok(other) => tracing::debug!(bucket, "a gathered head was not kept: {other:?}"),
                Err(e) => tracing::debug!(bucket, "a gathered head was refused: {e}"),
            }
        }
    }

    /// The mirror `bucket` is here (an error when it is this node's).
    fn mirrored(&self, bucket: &str) -> Result<Mirror, NodeError> {
        self.buckets().get(bucket)?.mirror.ok_or_else(|| {
            NodeError::Unsupported(format!("bucket {bucket:?} is already this node's"))
        })
    }

    /// Makes this node the owner of the mirror `bucket` (of `mirror`) by `cert`: its heads
    /// carry the certificate and start at its sequence number at the earliest.
    fn become_owner(&self, bucket: &str, mirror: Mirror, cert: Takeover) -> Result<u64, NodeError> {
        let floor = mirror.seq.max(cert.seq.saturating_sub(1));
        self.store().update(|txn| {
            let Some(record) = txn.get(BUCKETS, bucket)? else {
                return Err(NodeError::NoSuchBucket(bucket.to_owned()));
            };
            if record.mirror.as_ref() != Some(&mirror) {
                return Err(NodeError::Unsupported(format!(
                    "bucket {bucket:?} changed while it was taken over; try again"
                )));
            }
            let record = BucketRecord {
                mirror: None,
                taken_over: Some(Mirror {
                    owner_key: mirror.owner_key.clone(),
                    seq: floor,
                }),
                takeover: Some(cert.clone()),
                ..record
            };
            txn.put(BUCKETS, bucket, &record)?;
            txn.touch_bucket(bucket)?;
            // The bucket is this node's now: the previous owner's held head is not shared on.
            txn.delete(RECORDS, &head_key(bucket))?;
            Ok::<_, NodeError>(())
        })?;
        self.roots().commit()?;
        self.replication().replicate(bucket)?;
        let seq = self.store().latest_root(bucket)?.map_or(0, |r| r.seq);
        tracing::info!(
            bucket,
            seq,
            from = mirror.owner_key,
            "bucket taken over: this node owns it now"
        );
        Ok(seq)
    }
}

impl Replication<'_> {
    /// Takes over `bucket`, a mirror of a node that is gone: gathers the newest head the
    /// cluster holds, mirrors it, and makes this node the owner with a takeover certificate
    /// signed by the cluster admin key (so it needs [`NodeBuilder::cluster_admin`](crate::NodeBuilder::cluster_admin) with the
    /// secret key), its next head continuing the previous owner's sequence. Refused while the
    /// owner is connected (unless `force`) and for a bucket that is already this node's.
    /// Returns the new head's sequence.
    pub fn promote(&self, bucket: &str, force: bool) -> Result<u64, NodeError> {
        let Some(admin) = self.node.cluster_admin_signer() else {
            return Err(NodeError::Unsupported(
                "promoting a bucket needs the cluster admin key (its secret half, on the \
                 operator's node): peers follow a new owner only with a takeover it signed"
                    .into(),
            ));
        };
        self.node.gather_heads(bucket);
        self.mirror_held()?;
        let mirror = self.node.mirrored(bucket)?;
        if !force
            && let Some(cluster) = self.node.cluster()
            && cluster.is_up(&peer_id_of(&unhex(&mirror.owner_key)))
        {
            return Err(NodeError::Unsupported(format!(
                "the owner of {bucket:?} is connected; write through it (or force the takeover)"
            )));
        }
        let from: [u8; 32] = unhex(&mirror.owner_key)
            .try_into()
            .map_err(|_| NodeError::Unsupported("the mirror's owner key is not a key".into()))?;
        let seq = next_seq(mirror.seq)?;
        let cert = Takeover::sign(
            bucket,
            from,
            self.node.identity()?.public_key(),
            seq,
            &admin,
        );
        self.node.become_owner(bucket, mirror, cert)
    }

    /// The current owner's certificate handing `bucket` (this node's) over to the node whose
    /// public key is `to`, from the sequence number after this node's newest head; the
    /// successor takes it with [`Replication::take_over`]. This node keeps owning the bucket until it
    /// sees the successor's first head (then it steps down to a mirror).
    pub fn hand_over(&self, bucket: &str, to: [u8; 32]) -> Result<Takeover, NodeError> {
        if self.node.buckets().get(bucket)?.mirror.is_some() {
            return Err(NodeError::Unsupported(format!(
                "bucket {bucket:?} is another node's: only its owner hands it over"
            )));
        }
        self.node.roots().commit()?;
        let seq = self.node.store().latest_root(bucket)?.map_or(0, |r| r.seq);
        let me = self.node.identity()?;
        Ok(Takeover::sign(
            bucket,
            me.public_key(),
            to,
            next_seq(seq)?,
            me,
        ))
    }

    /// Takes over `bucket`, a mirror here, with a certificate naming this node (one its owner
    /// made with [`Replication::hand_over`], or one the cluster admin signed). Returns the new head's
    /// sequence.
    pub fn take_over(&self, bucket: &str, cert: Takeover) -> Result<u64, NodeError> {
        self.node.gather_heads(bucket);
        self.mirror_held()?;
        let mirror = self.node.mirrored(bucket)?;
        let owner: [u8; 32] = unhex(&mirror.owner_key).try_into().unwrap_or([0; 32]);
        let me = self.node.identity()?.public_key();
        let epoch = match self.node.store().read(RECORDS, &head_key(bucket))? {
            Some(held) => held.known(&held.signed()?).epoch,
            None => 0,
        };
        let admin = self.node.cluster_admin();
        if let Some(fault) =
            crate::ownership::takeover_fault(&cert, bucket, &owner, &me, epoch, admin.as_ref())
        {
            return Err(NodeError::Unsupported(format!(
                "the takeover certificate of {bucket:?} is refused: {fault}"
            )));
        }
        self.node.become_owner(bucket, mirror, cert)
    }
}

/// The sequence number after `seq` (an error at [`crate::model::takeover::MAX_SEQ`]).
fn next_seq(seq: u64) -> Result<u64, NodeError> {
    seq.checked_add(1)
        .filter(|s| *s < crate::model::takeover::MAX_SEQ)
        .ok_or_else(|| NodeError::Unsupported("the bucket's sequence numbers ran out".into()))
}
