//! Who may move a bucket's head: the one decision ([`judge`]) every received head goes
//! through before this node keeps it, mirrors it or steps down for it. It is pure (no store,
//! no network, no clock): the caller says what it holds about the bucket ([`Known`]) and gets a
//! [`Verdict`]. A later issue moves this decision into a consensus log with automatic
//! failover; that replaces this function's inputs, not its callers.
//!
//! # Owner binding
//!
//! * **The owner's key is pinned.** A bucket's owner is the ed25519 key of the node that made
//!   it: for a bucket made here, this node's identity; for a bucket first learned from a peer,
//!   the signer of the first head accepted for it (**trust on first use**). Mirrors keep it
//!   ([`crate::model::records::Mirror::owner_key`]), and so does the held head record of the bucket
//!   (`head/BUCKET`), so a tombstone or a dropped mirror still pins it.
//! * **Heads of the pinned owner** are accepted when their `seq` is newer than the one held and
//!   at most [`MAX_SEQ_STEP`] ahead of it, and below [`MAX_SEQ`] (so `seq + 1` never
//!   overflows). A tombstone (`deleted`) counts only from the pinned owner or a certified
//!   successor.
//! * **Heads of any other key** are ignored — their `seq`, `deleted` and `taken_from` are never
//!   acted on — unless they carry a [`Takeover`] certificate this node accepts:
//!   * signed by the cluster's **admin key** (the operator's, used by `cairn bucket
//!     promote`), whatever its `from`; or signed by the **pinned owner** with `from` = that
//!     owner (a hand-over: [`crate::Replication::hand_over`]);
//!   * whose `to` is the head's signer and whose `bucket` is the head's bucket;
//!   * whose `seq` (the first sequence number under the new owner) is above the `seq` of the
//!     certificate that pinned the current owner (the *epoch*; 0 for an owner pinned any other
//!     way) and not above the head's own `seq`: an old certificate cannot be replayed to take
//!     a bucket back.
//!
//!   The head's `seq` rules are those of the owner's. Once accepted, the pinned owner becomes
//!   the certificate's `to` and the epoch its `seq`. The node that owned the bucket steps down
//!   to a mirror only this way.
//! * **The owner's own heads** coming back from peers are never taken (this node is the source
//!   of its own buckets).
//! * `taken_from` in a head is informational (the new owner sets it from its certificate's
//!   `from`); nothing reads it.
//!
//! # Known limits
//!
//! * Trust on first use: the first head of a bucket this node has never seen is taken from any
//!   member of the cluster (its `seq` at most [`MAX_SEQ_STEP`]). Who is a member is gated by the
//!   cluster secret (`cairn-net`), so a member that signs a bucket name first pins it.
//! * A bucket name stays bound to its owner after the owner deletes the bucket (the held
//!   tombstone pins it): a bucket of that name another node makes is not followed by nodes
//!   that pinned the first owner (in a cluster, its heads are refused by those replicas)
//!   unless it comes with a takeover.
//! * A hand-over signed by a previous owner is accepted only by nodes that pinned that owner;
//!   a node that missed the step (it still pins an owner from before) ignores the bucket's
//!   heads until a certificate it accepts comes (an admin one names any `from`).
//! * The old owner steps down once it sees a certified head newer than its own newest;
//!   writes it made meanwhile that the new owner never saw are not in the new owner's history.

use crate::identity::Identity;
use crate::model::heads::SignedHead;
use crate::{Node, NodeError};

use crate::model::takeover::{MAX_SEQ, MAX_SEQ_STEP, Takeover};

/// What this node holds about a bucket when a head of it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The pinned owner's public key (this node's own for a bucket it owns).
    pub owner: [u8; 32],
    /// The newest sequence number held (or committed, for a bucket this node owns).
    pub seq: u64,
    /// The `seq` of the certificate that pinned `owner` (0: pinned another way).
    pub epoch: u64,
}

/// What accepting a head pins: its bucket's owner and epoch from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The owner's public key.
    pub owner: [u8; 32],
    /// The `seq` of the certificate that made it the owner (0: none).
    pub epoch: u64,
}

/// Why a head is not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The bucket name breaks the naming rules.
    InvalidName,
    /// The head is signed by this node (it is the source of its own heads).
    OwnHead,
    /// The signer's key is not an ed25519 public key.
    BadKey,
    /// Not newer than the sequence number held.
    Stale,
    /// More than [`MAX_SEQ_STEP`] past the one held.
    SeqJump,
    /// At or above [`MAX_SEQ`].
    SeqTooLarge,
    /// Signed by a key other than the pinned owner's, without a takeover certificate.
    NotOwner,
    /// Signed by another key with a certificate this node does not accept.
    Takeover(CertFault),
}

/// What is wrong with a takeover certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFault {
    /// It is for another bucket.
    WrongBucket,
    /// Its `to` is not the head's signer (or not the node taking over).
    WrongTo,
    /// Signed by the pinned owner but naming another `from`.
    WrongFrom,
    /// Signed by neither the cluster admin nor the pinned owner.
    UnknownSigner,
    /// The signature does not verify.
    BadSignature,
    /// Its `seq` is not above the epoch of the current owner (an old certificate).
    Replayed,
    /// Its `seq` is above the head's, or at or above [`MAX_SEQ`].
    BadSeq,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Ignored::InvalidName => "not a valid bucket name",
            Ignored::OwnHead => "signed by this node",
            Ignored::BadKey => "not signed by an ed25519 key",
            Ignored::Stale => "not newer than the head held",
            Ignored::SeqJump => "its sequence number jumps too far ahead",
            Ignored::SeqTooLarge => "its sequence number is too large",
            Ignored::NotOwner => {
                "signed by a key other than the bucket owner's, without a takeover"
            }
            Ignored::Takeover(fault) => {
                return write!(f, "its takeover certificate is refused: {fault}");
            }
        };
        f.write_str(text)
    }
}

impl std::fmt::Display for CertFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertFault::WrongBucket => "it is for another bucket",
            CertFault::WrongTo => "it names another new owner",
            CertFault::WrongFrom => "the owner signed it for another previous owner",
            CertFault::UnknownSigner => "signed by neither the cluster admin nor the owner",
            CertFault::BadSignature => "bad signature",
            CertFault::Replayed => "older than the current owner's",
            CertFault::BadSeq => "its sequence number does not fit the head",
        })
    }
}

/// What to do with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it (and act on it); the bucket's owner and epoch are then these.
    Accept(Pin),
    /// Ignore it, for this reason.
    Ignore(Ignored),
}

/// Whether a head of a bucket this node holds `known` about (`None`: never seen) is taken,
/// `me` being this node's public key and `admin` the cluster admin's, if the cluster has one.
/// The head's own signature is already verified. See the module docs for the rules.
pub fn judge(
    known: Option<&Known>,
    head: &SignedHead,
    me: &[u8; 32],
    admin: Option<&[u8; 32]>,
) -> Verdict {
    use Verdict::Ignore;
    let p = &head.payload;
    if !crate::model::records::valid_bucket_name(&p.bucket) {
        return Ignore(Ignored::InvalidName);
    }
    let Ok(signer) = <[u8; 32]>::try_from(head.public_key.as_slice()) else {
        return Ignore(Ignored::BadKey);
    };
    if signer == *me {
        return Ignore(Ignored::OwnHead);
    }
    let pin = match known {
        // Trust on first use: the first head pins its signer; a certificate it carries
        // for that signer sets the epoch (so it cannot be replayed later).
        None => Pin {
            owner: signer,
            epoch: p
                .takeover
                .as_ref()
                .filter(|t| {
                    t.bucket == p.bucket
                        && t.to.as_slice() == signer
                        && t.seq <= p.seq
                        && t.signature_ok()
                })
                .map_or(0, |t| t.seq),
        },
        Some(k) if k.owner == signer => Pin {
            owner: k.owner,
            epoch: k.epoch,
        },
        Some(k) => {
            let Some(cert) = &p.takeover else {
                return Ignore(Ignored::NotOwner);
            };
            if let Some(fault) = takeover_fault(cert, &p.bucket, &k.owner, &signer, k.epoch, admin)
            {
                return Ignore(Ignored::Takeover(fault));
            }
            if cert.seq > p.seq {
                return Ignore(Ignored::Takeover(CertFault::BadSeq));
            }
            Pin {
                owner: signer,
                epoch: cert.seq,
            }
        }
    };
    let held = known.map_or(0, |k| k.seq);
    if p.seq >= MAX_SEQ {
        Ignore(Ignored::SeqTooLarge)
    } else if known.is_some() && p.seq <= held {
        Ignore(Ignored::Stale)
    } else if p.seq - held > MAX_SEQ_STEP {
        Ignore(Ignored::SeqJump)
    } else {
        Verdict::Accept(pin)
    }
}

/// Why `cert` does not pass `bucket` from its pinned `owner` (pinned since the certificate of
/// sequence `epoch`) to `to`, with `admin` the cluster admin's key; `None` when it does.
pub fn takeover_fault(
    cert: &Takeover,
    bucket: &str,
    owner: &[u8; 32],
    to: &[u8; 32],
    epoch: u64,
    admin: Option<&[u8; 32]>,
) -> Option<CertFault> {
    let signer = cert.signer_key.as_slice();
    if cert.bucket != bucket {
        Some(CertFault::WrongBucket)
    } else if cert.to.as_slice() != to {
        Some(CertFault::WrongTo)
    } else if admin.is_none_or(|a| a.as_slice() != signer) && signer != owner {
        Some(CertFault::UnknownSigner)
    } else if admin.is_none_or(|a| a.as_slice() != signer) && cert.from.as_slice() != owner {
        Some(CertFault::WrongFrom)
    } else if !cert.signature_ok() {
        Some(CertFault::BadSignature)
    } else if cert.seq >= MAX_SEQ {
        Some(CertFault::BadSeq)
    } else if cert.seq <= epoch {
        Some(CertFault::Replayed)
    } else {
        None
    }
}

/// The cluster's admin key as this node knows it: the public half (to accept takeovers it
/// signed) and, on the operator's node, the secret half (to sign one: `cairn bucket promote`).
#[derive(Debug, Default)]
pub(crate) struct ClusterAdmin {
    public: Option<[u8; 32]>,
    signer: Option<std::sync::Arc<Identity>>,
}

impl Node {
    /// Sets the cluster admin key: its public half (`public`; taken from `signer` when not
    /// given) makes this node accept takeovers it signed; its secret half (`signer`) lets this
    /// node's operator promote buckets ([`Replication::promote`]). Both `None`: no admin.
    pub(crate) fn set_cluster_admin(
        &self,
        public: Option<[u8; 32]>,
        signer: Option<Identity>,
    ) -> Result<(), NodeError> {
        if let (Some(p), Some(s)) = (&public, &signer)
            && *p != s.public_key()
        {
            return Err(NodeError::Unsupported(
                "the cluster admin's public key is not the one of its secret key".into(),
            ));
        }
        *self.admin.write() = ClusterAdmin {
            public: public.or(signer.as_ref().map(Identity::public_key)),
            signer: signer.map(std::sync::Arc::new),
        };
        Ok(())
    }

    /// The cluster admin's public key, if set.
    pub fn cluster_admin(&self) -> Option<[u8; 32]> {
        self.admin.read().public
    }

    /// The cluster admin's signing key, if this node holds it.
    pub(crate) fn cluster_admin_signer(&self) -> Option<std::sync::Arc<Identity>> {
        self.admin.read().signer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::codec::encode;
    use crate::model::heads::HeadPayload;
    use cairn_dag::{Block, CidVersion, DAG_CBOR};

    fn id(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    fn head(bucket: &str, seq: u64, signer: &Identity, takeover: Option<Takeover>) -> SignedHead {
        let cid = Block::new(CidVersion::V1, DAG_CBOR, vec![0xa0])
            .unwrap()
            .cid;
        SignedHead::sign(
            HeadPayload {
                bucket: bucket.into(),
                seq,
                time_ms: 0,
                tree: cid,
                record: cid,
                taken_from: None,
                settings: None,
                deleted: false,
                takeover,
            },
            signer,
        )
        .unwrap()
    }

    const ME: u8 = 1;
    const OWNER: u8 = 2;
    const NEW: u8 = 3;
    const ADMIN: u8 = 4;
    const STRANGER: u8 = 9;

    fn known(seq: u64) -> Known {
        Known {
            owner: id(OWNER).public_key(),
            seq,
            epoch: 0,
        }
    }

    fn pin(owner: u8, epoch: u64) -> Verdict {
        Verdict::Accept(Pin {
            owner: id(owner).public_key(),
            epoch,
        })
    }

    fn cert(from: u8, to: u8, seq: u64, signer: u8) -> Takeover {
        Takeover::sign(
            "bkt",
            id(from).public_key(),
            id(to).public_key(),
            seq,
            &id(signer),
        )
    }

    #[test]
    fn heads_of_the_pinned_owner_advance_by_a_bounded_step() {
        use Ignored::*;
        let me = id(ME).public_key();
        let admin = id(ADMIN).public_key();
        let k = known(10);
        let cases: &[(Option<&Known>, SignedHead, Verdict)] = &[
            // the pinned owner, newer, within the step
            (Some(&k), head("bkt", 11, &id(OWNER), None), pin(OWNER, 0)),
            (
                Some(&k),
                head("bkt", 10 + MAX_SEQ_STEP, &id(OWNER), None),
                pin(OWNER, 0),
            ),
            // not newer, too far, too large
            (
                Some(&k),
                head("bkt", 10, &id(OWNER), None),
                Verdict::Ignore(Stale),
            ),
            (
                Some(&k),
                head("bkt", 3, &id(OWNER), None),
                Verdict::Ignore(Stale),
            ),
            (
                Some(&k),
                head("bkt", 11 + MAX_SEQ_STEP, &id(OWNER), None),
                Verdict::Ignore(SeqJump),
            ),
            (
                Some(&k),
                head("bkt", u64::MAX, &id(OWNER), None),
                Verdict::Ignore(SeqTooLarge),
            ),
            (
                Some(&k),
                head("bkt", MAX_SEQ, &id(OWNER), None),
                Verdict::Ignore(SeqTooLarge),
            ),
            // another key: never, whatever its seq
            (
                Some(&k),
                head("bkt", 11, &id(STRANGER), None),
                Verdict::Ignore(NotOwner),
            ),
            (
                Some(&k),
                head("bkt", u64::MAX, &id(STRANGER), None),
                Verdict::Ignore(NotOwner),
            ),
            // our own heads coming back, and bad names
            (
                Some(&k),
                head("bkt", 11, &id(ME), None),
                Verdict::Ignore(OwnHead),
            ),
            (
                None,
                head("bkt", 11, &id(ME), None),
                Verdict::Ignore(OwnHead),
            ),
            (
                None,
                head("B", 1, &id(OWNER), None),
                Verdict::Ignore(InvalidName),
            ),
            // first use: pinned, seq bounded as from 0
            (None, head("bkt", 5, &id(STRANGER), None), pin(STRANGER, 0)),
            (
                None,
                head("bkt", MAX_SEQ_STEP + 1, &id(STRANGER), None),
                Verdict::Ignore(SeqJump),
            ),
            (
                None,
                head("bkt", u64::MAX, &id(STRANGER), None),
                Verdict::Ignore(SeqTooLarge),
            ),
        ];
        for (i, (known, head, want)) in cases.iter().enumerate() {
            assert_eq!(judge(*known, head, &me, Some(&admin)), *want, "case {i}");
        }
    }

    #[test]
    fn another_key_takes_over_only_with_an_accepted_certificate() {
        use CertFault::*;
        let me = id(ME).public_key();
        let admin = id(ADMIN).public_key();
        let k = known(10);
        let with = |c: Takeover, seq: u64| head("bkt", seq, &id(NEW), Some(c));
        let refused = |f| Verdict::Ignore(Ignored::Takeover(f));
        let other_bucket = Takeover::sign(
            "other",
            id(OWNER).public_key(),
            id(NEW).public_key(),
            11,
            &id(ADMIN),
        );
        let mut tampered = cert(OWNER, NEW, 11, ADMIN);
        tampered.seq = 12;
        let cases: Vec<(Known, SignedHead, Option<[u8; 32]>, Verdict)> = vec![
            // signed by the admin: any `from`
            (
                k,
                with(cert(OWNER, NEW, 11, ADMIN), 11),
                Some(admin),
                pin(NEW, 11),
            ),
            (
                k,
                with(cert(7, NEW, 11, ADMIN), 12),
                Some(admin),
                pin(NEW, 11),
            ),
            // signed by the pinned owner, from itself
            (k, with(cert(OWNER, NEW, 11, OWNER), 11), None, pin(NEW, 11)),
            (
                k,
                with(cert(OWNER, NEW, 11, OWNER), 11),
                Some(admin),
                pin(NEW, 11),
            ),
            // ... not for another `from`
            (
                k,
                with(cert(7, NEW, 11, OWNER), 11),
                None,
                refused(WrongFrom),
            ),
            // a random signer, or the admin key unknown here
            (
                k,
                with(cert(OWNER, NEW, 11, STRANGER), 11),
                Some(admin),
                refused(UnknownSigner),
            ),
            (
                k,
                with(cert(OWNER, NEW, 11, NEW), 11),
                Some(admin),
                refused(UnknownSigner),
            ),
            (
                k,
                with(cert(OWNER, NEW, 11, ADMIN), 11),
                None,
                refused(UnknownSigner),
            ),
            // `to` is not the signer, another bucket, a changed statement
            (
                k,
                with(cert(OWNER, 7, 11, ADMIN), 11),
                Some(admin),
                refused(WrongTo),
            ),
            (k, with(other_bucket, 11), Some(admin), refused(WrongBucket)),
            (k, with(tampered, 12), Some(admin), refused(BadSignature)),
            // the certificate's seq: after the head's, or not above the current epoch
            (
                k,
                with(cert(OWNER, NEW, 12, ADMIN), 11),
                Some(admin),
                refused(BadSeq),
            ),
            (
                Known { epoch: 11, ..k },
                with(cert(OWNER, NEW, 11, ADMIN), 12),
                Some(admin),
                refused(Replayed),
            ),
            // accepted certificate, but the head's seq rules still hold
            (
                k,
                with(cert(OWNER, NEW, 5, ADMIN), 10),
                Some(admin),
                Verdict::Ignore(Ignored::Stale),
            ),
            (
                k,
                with(cert(OWNER, NEW, 11, ADMIN), 11 + MAX_SEQ_STEP),
                Some(admin),
                Verdict::Ignore(Ignored::SeqJump),
            ),
            // a certified head from the pinned owner itself: the certificate is not needed
            (
                k,
                head("bkt", 11, &id(OWNER), Some(cert(9, 9, 99, 9))),
                None,
                pin(OWNER, 0),
            ),
            // this node's own bucket is taken only with a certificate naming it
            (
                Known {
                    owner: me,
                    seq: 10,
                    epoch: 0,
                },
                with(cert(ME, NEW, 11, ME), 11),
                None,
                pin(NEW, 11),
            ),
            (
                Known {
                    owner: me,
                    seq: 10,
                    epoch: 0,
                },
                head("bkt", 11, &id(STRANGER), None),
                Some(admin),
                Verdict::Ignore(Ignored::NotOwner),
            ),
        ];
        for (i, (known, head, admin, want)) in cases.iter().enumerate() {
            assert_eq!(
                judge(Some(known), head, &me, admin.as_ref()),
                *want,
                "case {i}"
            );
        }
        // first use with a certificate: the epoch is the certificate's, so it is not
        // replayed later
        let first = with(cert(OWNER, NEW, 11, ADMIN), 12);
        assert_eq!(judge(None, &first, &me, None), pin(NEW, 11));
    }

    #[test]
    fn certificates_round_trip_and_old_heads_still_verify() {
        let c = cert(OWNER, NEW, 11, ADMIN);
        assert!(c.signature_ok());
        let bytes = encode(&c).unwrap();
        let back: Takeover = crate::model::codec::decode(&bytes).unwrap();
        assert_eq!(back, c);
        // a head without a certificate encodes as before the field existed
        let h = head("bkt", 1, &id(OWNER), None);
        let bytes = h.to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("takeover"));
        assert_eq!(SignedHead::verify(&bytes, None).unwrap(), h);
        let h = head("bkt", 1, &id(NEW), Some(c));
        assert_eq!(SignedHead::verify(&h.to_bytes().unwrap(), None).unwrap(), h);
    }

    #[test]
    fn the_admin_key_halves_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        assert_eq!(node.cluster_admin(), None);
        assert!(
            node.set_cluster_admin(Some([7; 32]), Some(id(ADMIN)))
                .is_err()
        );
        node.set_cluster_admin(None, Some(id(ADMIN))).unwrap();
        assert_eq!(node.cluster_admin(), Some(id(ADMIN).public_key()));
        assert!(node.cluster_admin_signer().is_some());
        node.set_cluster_admin(Some([7; 32]), None).unwrap();
        assert!(node.cluster_admin_signer().is_none());
    }
}
