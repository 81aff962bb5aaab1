//! What the node stores about buckets and objects: [`BucketRecord`], [`ObjectMeta`],
//! [`ObjectInfo`], a mirror's origin ([`Mirror`]), and the naming rules for buckets and held
//! heads.

use std::collections::BTreeMap;
use std::ops::Range;

use cairn_dag::Cid;
use serde::{Deserialize, Serialize};

/// What is stored about a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// The owning user.
    pub owner: String,
    /// The bucket's `public-read` ACL: anyone may list it (not read its objects: that takes
    /// an object's own ACL or the policy).
    #[serde(default)]
    pub public: bool,
    /// The bucket policy document as set (JSON), if any.
    #[serde(default)]
    pub policy: Option<String>,
    /// The policy allows anonymous `s3:GetObject` on the whole bucket (its current versions).
    #[serde(default)]
    pub policy_public: bool,
    /// The policy allows anonymous `s3:ListBucket`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub policy_list: bool,
    /// Versioning state: `None` (never enabled), `Enabled` or `Suspended`.
    #[serde(default)]
    pub versioning: Option<String>,
    /// Set when the bucket is another node's, mirrored here read-only.
    #[serde(default)]
    pub mirror: Option<crate::model::records::Mirror>,
    /// Set when this node took the bucket over from a mirror (`cairn bucket promote`): whose
    /// it was and the last version seen of it.
    #[serde(default)]
    pub taken_over: Option<crate::model::records::Mirror>,
    /// With `taken_over`: the certificate this node's heads of the bucket carry (signed by the
    /// cluster admin or the previous owner), so nodes that pinned the previous owner follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<crate::model::takeover::Takeover>,
    /// How the cluster keeps this bucket's data and metadata (`replicas:N` or `ec:K+M`), when
    /// not the cluster's default. Writes after a change use it; what was written before keeps
    /// the redundancy it was written with (stripes and copies carry theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redundancy: Option<String>,
    /// The bucket key (sealed to its owner) and whether writes are encrypted by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::model::crypt::BucketCrypt>,
}

/// bucket name → its record.
pub(crate) const BUCKETS: cairn_store::Table<BucketRecord> = cairn_store::Table::new("buckets");

impl BucketRecord {
    /// Anyone may list the bucket (its ACL or its policy says so).
    pub fn listable(&self) -> bool {
        self.public || self.policy_list
    }

    /// Anyone may list the bucket and read its current objects: what `cairn bucket
    /// set-public` makes, and what the gateway publishes whole (the bucket's roots).
    pub fn is_public(&self) -> bool {
        self.listable() && self.policy_public
    }
}

/// What is stored about an object (besides its DAG root).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// S3 ETag without quotes: hex MD5, or `hex-N` for multipart.
    pub etag: String,
    /// Unix milliseconds of the write.
    pub last_modified_ms: i64,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, as sent.
    pub expires: Option<String>,
    /// `x-amz-meta-*` (names lower-case, without the prefix).
    pub user: BTreeMap<String, String>,
    /// Flexible checksums verified at upload, by algorithm (`CRC32` → base64 value).
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// `public-read` object ACL: anyone may read this object.
    #[serde(default)]
    pub public_read: bool,
    /// Part sizes, for an object made by a multipart upload (GET with `partNumber`).
    #[serde(default)]
    pub part_sizes: Vec<u64>,
    /// Object tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Version id (`None`: the version `null`).
    #[serde(default)]
    pub version_id: Option<String>,
    /// The multipart upload that created the object, if any (a repeated Complete of it
    /// answers with the object it made).
    #[serde(default)]
    pub upload_id: Option<String>,
    /// How the object is encrypted, when it is (its DAG is then of ciphertext; `size` and
    /// `etag` are of the plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypt: Option<crate::model::crypt::ObjectCrypt>,
}

impl ObjectMeta {
    /// The byte range of part `number` (1-based) and the part count: a multipart object's
    /// parts, or the whole object as its one part. `None` for a part that does not exist.
    pub fn part_range(&self, number: u32) -> Option<(Range<u64>, u32)> {
        if self.part_sizes.is_empty() {
            return (number == 1).then_some((0..self.size, 1));
        }
        let i = (number as usize).checked_sub(1)?;
        let size = *self.part_sizes.get(i)?;
        let start: u64 = self.part_sizes[..i].iter().sum();
        Some((start..start + size, self.part_sizes.len() as u32))
    }
}

/// An object: key, DAG root, metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key.
    pub key: String,
    /// Root of its UnixFS DAG (equal to `ipfs add` of its bytes).
    pub cid: Cid,
    /// Metadata.
    pub meta: ObjectMeta,
}

/// S3 bucket naming rules (3–63 of `a-z0-9.-`, starting and ending with a letter or digit, no
/// `..`, `.-` or `-.`, not an IPv4 address, no `xn--` prefix or `-s3alias`/`--ol-s3` suffix).
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}

/// Where a mirrored bucket comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// The owner node's ed25519 public key, hex.
    pub owner_key: String,
    /// The head's sequence number now mirrored.
    pub seq: u64,
}

/// The record key under which a bucket's head is kept on its replica set.
pub fn head_key(bucket: &str) -> String {
    format!("head/{bucket}")
}
