//! Encrypted objects: who holds which key, and the object layout the read path decrypts.
//!
//! * A bucket may have a **bucket key** (random), kept only sealed to X25519 public keys — its
//!   owner's ([`NodeBuilder::user_key`](crate::NodeBuilder::user_key)) and no one else's — in the bucket record
//!   ([`BucketCrypt`]). `default` makes every write to the bucket encrypted (S3
//!   `PutBucketEncryption`, `cairn bucket create --encrypted`); without it only writes that
//!   ask (`x-amz-server-side-encryption`) are.
//! * Every encrypted object has its own random **data key**, wrapped with the bucket key or,
//!   for SSE-C, with the customer's key (which is never stored: only its MD5, to tell a wrong
//!   key from tampering). The bytes are encrypted before they are chunked, so blocks, pieces
//!   on peers and CARs hold ciphertext and the CID is of ciphertext.
//! * The ciphertext is one or more independent STREAM **pieces** ([`cairn_crypt::segment`]),
//!   one per PUT or per multipart part, each with its own nonce prefix, concatenated in the
//!   DAG ([`ObjectCrypt`]). Range reads decrypt only the segments they touch.
//! * **Shares**: the data key sealed to another user's X25519 key ([`Share`]). It travels in
//!   the object record with the bucket head, so the recipient's node (which mirrors the bucket)
//!   reads the object with its own user key. A later version of the key is sealed for the
//!   recipients of the version it replaces, until they are revoked: revoking re-keys the
//!   current version (new data key, new ciphertext), so what comes after is unreadable to them.

use crate::Objects;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use cairn_crypt::identity::{Identity, PublicId};
use cairn_crypt::segment::{self, Decryptor, Encryptor, Params};
use cairn_crypt::wrap::{open, seal, unwrap, wrap};
use cairn_dag::Cid;

use crate::model::codec::now_ms;
use crate::model::records::{BucketRecord, ObjectInfo};
use crate::{Node, NodeError};

use crate::model::crypt::{BucketCrypt, CryptPiece, KeyWrap, ObjectCrypt, Share};

pub use cairn_crypt::Key;

const BUCKET_KEY: &[u8] = b"cairn bucket key v1";
const DATA_KEY: &[u8] = b"cairn data key v1";

/// What a write is encrypted with: the data key (in clear, in memory only) and its wrap.
pub struct Sealing {
    pub(crate) key: Key,
    pub(crate) wrap: KeyWrap,
    pub(crate) segment: u32,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing").finish_non_exhaustive()
    }
}

impl Sealing {
    /// A fresh STREAM for one piece: its encryptor and nonce prefix.
    pub(crate) fn piece(&self) -> Result<(Encryptor, [u8; 16]), NodeError> {
        let params = Params::random(self.segment)?;
        Ok((Encryptor::new(&self.key, &params)?, params.nonce_prefix))
    }

    /// The record of an object made of `pieces` under this key (none yet: a multipart
    /// upload's, whose parts add theirs).
    pub fn object(&self, pieces: Vec<CryptPiece>) -> ObjectCrypt {
        ObjectCrypt {
            segment: self.segment,
            key: self.wrap.clone(),
            pieces,
            shares: Vec::new(),
        }
    }
}

/// What the request said about encryption.
#[derive(Debug, Default)]
pub enum Sse {
    /// Nothing: the bucket's default decides.
    #[default]
    Default,
    /// `x-amz-server-side-encryption`: encrypt with the bucket key.
    Bucket,
    /// SSE-C: the customer's key and the base64 MD5 the client sent for it.
    Customer(Key, String),
}

fn no_key(what: impl std::fmt::Display) -> NodeError {
    NodeError::AccessDenied(format!(
        "{what}: this node's user key cannot open it (not the owner, and no share for it)"
    ))
}

impl Node {
    /// The user key this node acts as: it owns the node's encrypted buckets and opens what
    /// is shared with it. Set once at start (kept in memory only).
    pub(crate) fn set_user_key(&self, identity: Identity) {
        *self.user_key.write() = Some(Arc::new(identity));
    }

    /// The user's public key, if one is set.
    pub fn user_public(&self) -> Option<PublicId> {
        self.user_key.read().as_ref().map(|i| i.public())
    }

    fn user(&self) -> Result<Arc<Identity>, NodeError> {
        self.user_key.read().clone().ok_or_else(|| {
            NodeError::Unsupported(
                "this node has no user key (serve --identity KEYFILE): it cannot encrypt".into(),
            )
        })
    }

    /// The bucket key, opened with this node's user key; with `create`, made (and sealed to
    /// the user) if the bucket has none.
    pub(crate) fn bucket_key(&self, bucket: &str, create: bool) -> Result<Key, NodeError> {
        let rec = self.buckets().get(bucket)?;
        if let Some(key) = self.open_bucket_key(&rec)? {
            return Ok(key);
        }
        if !create || rec.encryption.is_some() {
            return Err(no_key(format!("bucket {bucket:?}")));
        }
        let user = self.user()?;
        let key = Key::random()?;
        let sealed = seal(&user.public().boxk, &key, BUCKET_KEY)?;
        let rec = self.buckets().update(bucket, |rec| {
            // Another writer may have made one first: theirs stays.
            rec.encryption.get_or_insert(BucketCrypt {
                default: false,
                keys: vec![sealed],
            });
        })?;
        self.open_bucket_key(&rec)?
            .ok_or_else(|| no_key(format!("bucket {bucket:?}")))
    }

    fn open_bucket_key(&self, rec: &BucketRecord) -> Result<Option<Key>, NodeError> {
        let (Some(crypt), Some(user)) = (&rec.encryption, self.user_key.read().clone()) else {
            return Ok(None);
        };
        let mine = user.public().boxk;
        match crypt.keys.iter().find(|s| s.to == mine) {
            Some(s) => Ok(Some(open(&user, s, BUCKET_KEY)?)),
            None => Ok(None),
        }
    }

    /// The sealing of a multipart upload's parts (the key chosen at its creation).
    pub(crate) fn upload_sealing(
        &self,
        bucket: &str,
        crypt: &ObjectCrypt,
        customer: Option<&Key>,
    ) -> Result<Sealing, NodeError> {
        Ok(Sealing {
            key: self.data_key(bucket, crypt, customer)?,
            wrap: crypt.key.clone(),
            segment: crypt.segment,
        })
    }

    /// An object's data key: by the customer's key (SSE-C), the bucket key, or a share for
    /// this node's user.
    pub(crate) fn data_key(
        &self,
        bucket: &str,
        crypt: &ObjectCrypt,
        customer: Option<&Key>,
    ) -> Result<Key, NodeError> {
        match &crypt.key {
            KeyWrap::Customer { wrapped, .. } => {
                let customer = customer.ok_or_else(|| {
                    NodeError::AccessDenied(
                        "the object is encrypted with a customer key (SSE-C): send it".into(),
                    )
                })?;
                unwrap(customer, wrapped, DATA_KEY).map_err(|_| {
                    NodeError::AccessDenied("the customer key (SSE-C) is not this object's".into())
                })
            }
            KeyWrap::Bucket(wrapped) => {
                let rec = self.buckets().get(bucket)?;
                if let Some(bucket_key) = self.open_bucket_key(&rec)? {
                    return Ok(unwrap(&bucket_key, wrapped, DATA_KEY)?);
                }
                let user = self
                    .user_key
                    .read()
                    .clone()
                    .ok_or_else(|| no_key("the object"))?;
                let mine = user.public().boxk;
                let now = now_ms();
                crypt
                    .shares
                    .iter()
                    .filter(|s| s.expires_ms.is_none_or(|e| e > now))
                    .find(|s| s.sealed.to == mine)
                    .map(|s| open(&user, &s.sealed, DATA_KEY))
                    .transpose()?
                    .ok_or_else(|| no_key("the object"))
            }
        }
    }

    /// Decrypts plaintext `range` of an object, passing each piece to `send` (which answers
    /// false to stop).
    pub(crate) fn decrypt_range(
        &self,
        cid: Cid,
        crypt: &ObjectCrypt,
        key: &Key,
        range: Range<u64>,
        send: &mut dyn FnMut(Result<Bytes, NodeError>) -> bool,
    ) -> Result<(), NodeError> {
        let (mut plain_base, mut stored_base) = (0u64, 0u64);
        for piece in &crypt.pieces {
            let (start, end) = (
                range.start.max(plain_base),
                range.end.min(plain_base + piece.plain),
            );
            let stored = segment::ciphertext_size(piece.plain, crypt.segment);
            if start < end || (piece.plain == 0 && range.is_empty() && range.start == plain_base) {
                let plan = segment::plan_range(
                    piece.plain,
                    crypt.segment,
                    start - plain_base,
                    end - plain_base,
                )?;
                let params = Params {
                    nonce_prefix: piece.prefix,
                    segment: crypt.segment,
                };
                let mut dec = Decryptor::new_range(key, &params, piece.plain, &plan)?;
                let mut out = Vec::new();
                for chunk in self.files().cat(
                    cid,
                    Some(stored_base + plan.ct_start..stored_base + plan.ct_end),
                ) {
                    dec.update(&chunk?, &mut out)?;
                    if !out.is_empty() && !send(Ok(Bytes::from(std::mem::take(&mut out)))) {
                        return Ok(());
                    }
                }
                dec.finish(&mut out)?;
                if !out.is_empty() && !send(Ok(Bytes::from(out))) {
                    return Ok(());
                }
            }
            plain_base += piece.plain;
            stored_base += stored;
        }
        Ok(())
    }

    /// Writes the plaintext of `src` again under `sealing` as a new version of `dst` with
    /// `meta` (a single piece: size, ETag and key wrap are the new write's); of the shares of
    /// the version it replaces, those `keep` accepts carry over.
    async fn reseal(
        &self,
        (src_bucket, src, customer): (&str, &ObjectInfo, Option<&Key>),
        (dst_bucket, dst_key): (&str, &str),
        mut meta: crate::model::records::ObjectMeta,
        sealing: Sealing,
        keep: impl Fn(&Share) -> bool + Send + 'static,
    ) -> Result<ObjectInfo, NodeError> {
        let body = self.objects().stream(src_bucket, src, None, customer)?;
        let staged = self
            .stage_object_sealed(
                Some(dst_bucket),
                body,
                self.roots_config().version,
                Some(sealing),
            )
            .await?;
        meta.etag = String::new();
        meta.crypt = None;
        meta.version_id = None;
        meta.part_sizes = Vec::new();
        let (b, k) = (dst_bucket.to_owned(), dst_key.to_owned());
        self.blocking(move |node| node.commit_object_keeping(staged, &b, &k, meta, &keep))
            .await
    }

    /// An object's key wrap for another bucket: the data key unwrapped with `from`'s bucket
    /// key and wrapped with `to`'s. A customer (SSE-C) wrap is the same in any bucket.
    pub(crate) fn rewrap_for(
        &self,
        from: &str,
        to: &str,
        crypt: &ObjectCrypt,
    ) -> Result<KeyWrap, NodeError> {
        match &crypt.key {
            KeyWrap::Customer { .. } => Ok(crypt.key.clone()),
            KeyWrap::Bucket(w) => {
                let data = unwrap(&self.bucket_key(from, false)?, w, DATA_KEY)?;
                Ok(KeyWrap::Bucket(wrap(
                    &self.bucket_key(to, true)?,
                    &data,
                    DATA_KEY,
                )?))
            }
        }
    }

    /// The shares of the version being replaced that carry over to a new one sealed with
    /// `data`: unexpired ones that `keep` accepts, re-sealed.
    pub(crate) fn renew_shares(
        previous: Option<&crate::model::records::ObjectMeta>,
        data: &Key,
        keep: &dyn Fn(&Share) -> bool,
    ) -> Result<Vec<Share>, NodeError> {
        let now = now_ms();
        let Some(crypt) = previous.and_then(|m| m.crypt.as_ref()) else {
            return Ok(Vec::new());
        };
        crypt
            .shares
            .iter()
            .filter(|s| s.expires_ms.is_none_or(|e| e > now) && keep(s))
            .map(|s| {
                Ok(Share {
                    sealed: seal(&s.sealed.to, data, DATA_KEY)?,
                    to: s.to.clone(),
                    expires_ms: s.expires_ms,
                })
            })
            .collect()
    }
}
impl Objects<'_> {
    /// How a write to `bucket` is encrypted, if it is: SSE-C with the customer's key, the
    /// bucket key when asked or by default, else not at all.
    pub(crate) fn sealing_for(&self, bucket: &str, sse: Sse) -> Result<Option<Sealing>, NodeError> {
        let data = Key::random()?;
        let wrap = match sse {
            Sse::Customer(customer, key_md5) => KeyWrap::Customer {
                wrapped: wrap(&customer, &data, DATA_KEY)?,
                key_md5,
            },
            Sse::Bucket => {
                KeyWrap::Bucket(wrap(&self.node.bucket_key(bucket, true)?, &data, DATA_KEY)?)
            }
            Sse::Default => {
                if !self.node.buckets().encrypted(bucket)? {
                    return Ok(None);
                }
                KeyWrap::Bucket(wrap(
                    &self.node.bucket_key(bucket, false)?,
                    &data,
                    DATA_KEY,
                )?)
            }
        };
        Ok(Some(Sealing {
            key: data,
            wrap,
            segment: segment::DEFAULT_SEGMENT,
        }))
    }

    /// Shares the current version of `bucket/key` with `to`: its data key sealed for them,
    /// kept in the record (renewed on later versions until `expires_ms` or revocation).
    pub fn share(
        &self,
        bucket: &str,
        key: &str,
        to: &PublicId,
        expires_ms: Option<i64>,
    ) -> Result<ObjectInfo, NodeError> {
        let info = self.get(bucket, key)?;
        let crypt = info.meta.crypt.as_ref().ok_or_else(|| {
            NodeError::Unsupported(format!(
                "{bucket}/{key} is not encrypted: share it with a presigned URL or the gateway"
            ))
        })?;
        let data = self.node.data_key(bucket, crypt, None)?;
        let sealed = seal(&to.boxk, &data, DATA_KEY)?;
        let share = Share {
            sealed,
            to: to.to_string(),
            expires_ms,
        };
        let expected = info.cid;
        let updated = self.update_meta(bucket, key, |meta| {
            if let Some(c) = meta.crypt.as_mut()
                && c.key == crypt.key
            {
                c.shares.retain(|s| s.sealed.to != to.boxk);
                c.shares.push(share);
            }
        })?;
        if updated.cid != expected {
            return Err(NodeError::Unsupported(format!(
                "{bucket}/{key} changed while sharing it: share again"
            )));
        }
        Ok(updated)
    }

    /// Revokes `to`'s share of `bucket/key` and re-keys the current version: its bytes are
    /// written again under a new data key (a new version when versioning is on), so they and
    /// every later version are unreadable with what `to` was given.
    pub async fn revoke(
        &self,
        bucket: &str,
        key: &str,
        to: &PublicId,
    ) -> Result<ObjectInfo, NodeError> {
        let info = self.get(bucket, key)?;
        let Some(crypt) = info.meta.crypt.clone() else {
            return Err(NodeError::Unsupported(format!(
                "{bucket}/{key} is not encrypted: nothing to revoke"
            )));
        };
        if matches!(crypt.key, KeyWrap::Customer { .. }) {
            return Err(NodeError::Unsupported(
                "SSE-C objects are never shared: nothing to revoke".into(),
            ));
        }
        let sealing = self
            .sealing_for(bucket, Sse::Bucket)?
            .ok_or_else(|| NodeError::Unsupported("the bucket key is gone".into()))?;
        let revoked = to.boxk;
        self.node
            .reseal(
                (bucket, &info, None),
                (bucket, key),
                info.meta.clone(),
                sealing,
                move |s: &Share| s.sealed.to != revoked,
            )
            .await
    }

    /// How a copy of an object encrypted as `src` is encrypted in `dst` when the request asks
    /// `want`: `None` when the copy can name the source's DAG (plaintext into a plaintext
    /// bucket, a bucket-key object whose key is re-wrapped, SSE-C under the same customer
    /// key); else the sealing to re-encrypt it with. An encrypted source never turns into
    /// plaintext: unless asked otherwise it takes `dst`'s bucket key.
    pub(crate) fn copy_sealing(
        &self,
        src: Option<&ObjectCrypt>,
        dst: &str,
        want: Sse,
    ) -> Result<Option<Sealing>, NodeError> {
        match (src.map(|c| &c.key), want) {
            (Some(KeyWrap::Customer { key_md5, .. }), Sse::Customer(_, md5)) if *key_md5 == md5 => {
                Ok(None)
            }
            (Some(KeyWrap::Bucket(_)), Sse::Default | Sse::Bucket) => Ok(None),
            (Some(KeyWrap::Customer { .. }), Sse::Default) => self.sealing_for(dst, Sse::Bucket),
            (_, want) => self.sealing_for(dst, want),
        }
    }

    /// Copies `src` (read with the customer's key when it is SSE-C) to `dst_bucket/dst_key`
    /// re-encrypted with `sealing` (from [`copy_sealing`](Self::copy_sealing)), with `meta`.
    pub(crate) async fn copy_resealed(
        &self,
        src: (&str, &ObjectInfo, Option<&Key>),
        dst: (&str, &str),
        meta: crate::model::records::ObjectMeta,
        sealing: Sealing,
    ) -> Result<ObjectInfo, NodeError> {
        self.node
            .reseal(src, dst, meta, sealing, |_: &Share| true)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CidVersion;
    use crate::model::records::ObjectMeta;
    use futures::StreamExt;

    const MARKER: &[u8] = b"CAIRN-PLAINTEXT-MARKER-7f3a";

    fn body(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let pieces: Vec<_> = data
            .chunks(100_003)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(pieces)
    }

    /// Plaintext with the marker every 1000 bytes among pseudo-random bytes.
    fn plaintext(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut v: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for at in (0..len.saturating_sub(MARKER.len())).step_by(1000) {
            v[at..at + MARKER.len()].copy_from_slice(MARKER);
        }
        v
    }

    fn node_with(owner: &Identity) -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.set_user_key(owner.clone());
        node.buckets().create("sec", "root").unwrap();
        node.buckets().set_encryption("sec", true).unwrap();
        (dir, node)
    }

    async fn put(node: &Node, key: &str, data: &[u8], sse: Sse) -> ObjectInfo {
        let sealing = node.objects().sealing_for("sec", sse).unwrap();
        let staged = node
            .stage_object_sealed(Some("sec"), body(data), CidVersion::V1, sealing)
            .await
            .unwrap();
        node.objects()
            .commit(staged, "sec", key, ObjectMeta::default())
            .unwrap()
    }

    async fn read(
        node: &Node,
        info: &ObjectInfo,
        range: Option<Range<u64>>,
        customer: Option<&Key>,
    ) -> Result<Vec<u8>, NodeError> {
        let mut stream = node.objects().stream("sec", info, range, customer)?;
        let mut out = Vec::new();
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_contain(&path, needle)
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                bytes.windows(needle.len()).any(|w| w == needle)
            }
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encrypted_objects_store_no_plaintext_and_read_back_by_range() {
        let owner = Identity::generate().unwrap();
        let (dir, node) = node_with(&owner);
        let data = plaintext(1_000_000 + 12_345);
        let info = put(&node, "a", &data, Sse::Default).await;
        let crypt = info.meta.crypt.as_ref().expect("encrypted");
        assert_eq!(info.meta.size, data.len() as u64);
        assert_eq!(crypt.stored_size(), {
            let mut n = 0;
            for p in node.files().cat(info.cid, None) {
                n += p.unwrap().len() as u64;
            }
            n
        });
        assert!(
            !files_contain(dir.path(), MARKER),
            "a stored file holds plaintext"
        );
        assert_eq!(read(&node, &info, None, None).await.unwrap(), data);
        let len = data.len() as u64;
        for r in [
            0..1,
            65_535..65_537,
            65_536..131_072,
            1000..900_000,
            len - 10..len,
            len..len,
        ] {
            assert_eq!(
                read(&node, &info, Some(r.clone()), None).await.unwrap(),
                &data[r.start as usize..r.end as usize],
                "range {r:?}"
            );
        }
        // The same bytes in a plaintext bucket keep the IPFS CID; encrypted ones do not.
        node.buckets().create("open", "root").unwrap();
        let staged = node
            .objects()
            .stage(Some("open"), body(&data), CidVersion::V1)
            .await
            .unwrap();
        let plain = node
            .objects()
            .commit(staged, "open", "a", ObjectMeta::default())
            .unwrap();
        assert!(plain.meta.crypt.is_none());
        assert_ne!(plain.cid, info.cid);
        assert!(files_contain(dir.path(), MARKER));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tampered_reordered_or_truncated_ciphertext_fails_the_read() {
        let owner = Identity::generate().unwrap();
        let (_dir, node) = node_with(&owner);
        let data = plaintext(300_000);
        let info = put(&node, "a", &data, Sse::Default).await;
        let mut ct = Vec::new();
        for p in node.files().cat(info.cid, None) {
            ct.extend_from_slice(&p.unwrap());
        }
        let seg = segment::DEFAULT_SEGMENT as usize + segment::TAG;
        let mut flipped = ct.clone();
        flipped[seg + 100] ^= 1;
        let mut swapped = ct.clone();
        swapped[..2 * seg].rotate_left(seg);
        let truncated = ct[..ct.len() - (ct.len() - 4 * seg)].to_vec();
        for (name, bad) in [
            ("flipped", flipped),
            ("swapped", swapped),
            ("truncated", truncated),
        ] {
            // The altered ciphertext as a valid DAG under the original record: only the
            // authentication can catch it.
            let staged = node
                .objects()
                .stage(Some("sec"), body(&bad), CidVersion::V1)
                .await
                .unwrap();
            let forged = ObjectInfo {
                key: name.into(),
                cid: staged.cid(),
                meta: info.meta.clone(),
            };
            node.commit_file(staged, true).unwrap();
            let err = read(&node, &forged, None, None).await.map(|v| v.len());
            assert!(matches!(err, Err(NodeError::Crypt(_))), "{name}: {err:?}");
            // A range over the damage fails too (one before it reads authentic bytes).
            let err = read(&node, &forged, Some(100_000..300_000), None)
                .await
                .map(|v| v.len());
            assert!(
                matches!(err, Err(NodeError::Crypt(_))),
                "{name} range: {err:?}"
            );
        }
        // A record claiming fewer bytes (truncation by metadata) fails too.
        let mut short = info.clone();
        short.meta.size = 4 * segment::DEFAULT_SEGMENT as u64;
        short.meta.crypt.as_mut().unwrap().pieces[0].plain = short.meta.size;
        assert!(matches!(
            read(&node, &short, None, None).await.map(|v| v.len()),
            Err(NodeError::Crypt(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_owner_and_those_shared_with_can_read() {
        let owner = Identity::generate().unwrap();
        let friend = Identity::generate().unwrap();
        let (_dir, node) = node_with(&owner);
        let v1 = plaintext(200_000);
        put(&node, "doc", &v1, Sse::Default).await;
        let as_user = |who: &Identity| node.set_user_key(who.clone());

        // The friend's node (same records, the friend's key) cannot open it...
        as_user(&friend);
        let current = node.objects().get("sec", "doc").unwrap();
        assert!(matches!(
            read(&node, &current, None, None).await.unwrap_err(),
            NodeError::AccessDenied(_)
        ));
        // ... until the owner shares it.
        as_user(&owner);
        node.objects()
            .share("sec", "doc", &friend.public(), None)
            .unwrap();
        as_user(&friend);
        let current = node.objects().get("sec", "doc").unwrap();
        assert_eq!(read(&node, &current, None, None).await.unwrap(), v1);

        // A new version stays shared (its new data key is sealed for the friend too).
        as_user(&owner);
        let v2 = plaintext(150_000);
        put(&node, "doc", &v2, Sse::Default).await;
        as_user(&friend);
        let current = node.objects().get("sec", "doc").unwrap();
        assert_eq!(read(&node, &current, None, None).await.unwrap(), v2);

        // Revoked: the object is re-keyed; neither it nor later versions open for the friend.
        as_user(&owner);
        let rekeyed = node
            .objects()
            .revoke("sec", "doc", &friend.public())
            .await
            .unwrap();
        assert_ne!(rekeyed.cid, current.cid);
        assert_eq!(read(&node, &rekeyed, None, None).await.unwrap(), v2);
        let v3 = plaintext(1000);
        put(&node, "doc", &v3, Sse::Default).await;
        as_user(&friend);
        let current = node.objects().get("sec", "doc").unwrap();
        assert!(current.meta.crypt.as_ref().unwrap().shares.is_empty());
        assert!(matches!(
            read(&node, &current, None, None).await.unwrap_err(),
            NodeError::AccessDenied(_)
        ));
        // An expired share is not used.
        as_user(&owner);
        node.objects()
            .share("sec", "doc", &friend.public(), Some(now_ms() - 1))
            .unwrap();
        as_user(&friend);
        let current = node.objects().get("sec", "doc").unwrap();
        assert!(read(&node, &current, None, None).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn customer_keys_are_needed_and_never_stored() {
        let owner = Identity::generate().unwrap();
        let (dir, node) = node_with(&owner);
        let customer = Key::from_bytes([42u8; 32]);
        let data = plaintext(70_000);
        let info = put(
            &node,
            "c",
            &data,
            Sse::Customer(customer.clone(), "md5".into()),
        )
        .await;
        assert!(matches!(
            info.meta.crypt.as_ref().unwrap().key,
            KeyWrap::Customer { .. }
        ));
        assert!(matches!(
            read(&node, &info, None, None).await.unwrap_err(),
            NodeError::AccessDenied(_)
        ));
        let wrong = Key::from_bytes([43u8; 32]);
        assert!(read(&node, &info, None, Some(&wrong)).await.is_err());
        assert_eq!(
            read(&node, &info, Some(10..70_000), Some(&customer))
                .await
                .unwrap(),
            &data[10..]
        );
        assert!(!files_contain(dir.path(), &[42u8; 32]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encrypted_multipart_uploads_read_across_parts() {
        let owner = Identity::generate().unwrap();
        let (_dir, node) = node_with(&owner);
        let (id, upload) = node
            .multipart()
            .create(crate::multipart::CreateUpload {
                bucket: "sec",
                key: "mp",
                meta: ObjectMeta::default(),
                owner: "root",
                checksum_algorithm: None,
                encryption: Sse::Default,
            })
            .unwrap();
        // The bucket's default key sealed the upload.
        let template = upload.meta.crypt.clone().unwrap();
        let data = plaintext((5 << 20) + 300_000);
        let (a, b) = data.split_at(5 << 20);
        let mut listed = Vec::new();
        for (n, part) in [(1u32, a), (2, b)] {
            let sealing = node.upload_sealing("sec", &template, None).unwrap();
            let staged = node
                .stage_object_sealed(Some("sec"), body(part), CidVersion::V1, Some(sealing))
                .await
                .unwrap();
            let rec = node
                .commit_part(staged, (&id, "sec", "mp"), n, Default::default())
                .unwrap();
            listed.push((n, rec.etag));
        }
        let info = node
            .multipart()
            .complete(
                (&id, "sec", "mp"),
                &listed,
                CidVersion::V1,
                Default::default(),
            )
            .unwrap();
        assert_eq!(info.meta.size, data.len() as u64);
        assert_eq!(info.meta.crypt.as_ref().unwrap().pieces.len(), 2);
        assert_eq!(read(&node, &info, None, None).await.unwrap(), data);
        let r = (5 << 20) - 1000..(5 << 20) + 1000;
        assert_eq!(
            read(&node, &info, Some(r.clone()), None).await.unwrap(),
            &data[r.start as usize..r.end as usize]
        );
    }
}
