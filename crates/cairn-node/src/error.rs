//! The service core's error, [`NodeError`], and what kind of failure each one is
//! ([`ErrorKind`]): every front door answers from the kind, in one function of its own, so
//! the same failure gets the same answer through S3, the gateway and both APIs.

use cairn_dag::DagError;
use cairn_store::StoreError;

/// Errors of the service core.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// From the block store (including `CorruptBlock`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From decoding a DAG.
    #[error(transparent)]
    Dag(Box<DagError>),
    /// Local filesystem failure on an input or output path.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A string that should be a CID or `CID/path` is not.
    #[error("invalid CID or path {input:?}: {reason}")]
    InvalidPath {
        /// The input.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A CAR file is malformed or holds a block that does not match its CID.
    #[error("CAR: {0}")]
    Car(String),
    /// Input the operation cannot take (a directory without `-r`, a FIFO, ...).
    #[error("{0}")]
    Unsupported(String),
    /// No such bucket.
    #[error("no such bucket {0:?}")]
    NoSuchBucket(String),
    /// No such key.
    #[error("no such key {key:?} in bucket {bucket:?}")]
    NoSuchKey {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The bucket name is taken by another owner.
    #[error("bucket {0:?} already exists")]
    BucketAlreadyExists(String),
    /// The bucket still holds objects.
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name {0:?}")]
    InvalidBucketName(String),
    /// No such multipart upload (or not for this bucket and key).
    #[error("no such upload {0:?}")]
    NoSuchUpload(String),
    /// A listed part is missing or its ETag differs.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// Parts not listed in ascending order.
    #[error("parts must be listed in ascending order")]
    InvalidPartOrder,
    /// A file would take an account past its quota (and its policy is to refuse, or the file
    /// alone is larger than the quota).
    #[error("quota exceeded: account {account:?} would hold {used} bytes of its {quota}")]
    QuotaExceeded {
        /// The account.
        account: String,
        /// Bytes it would hold.
        used: u64,
        /// Its quota.
        quota: u64,
    },
    /// No such SFTP account.
    #[error("no such account {0:?}")]
    NoSuchAccount(String),
    /// No such upload job (or expired).
    #[error("no such job {0:?}")]
    NoSuchJob(String),
    /// No such version of the object.
    #[error("no such version {0:?}")]
    NoSuchVersion(String),
    /// The version asked for is a delete marker.
    #[error("the version is a delete marker")]
    DeleteMarker,
    /// A write precondition (If-Match / If-None-Match) failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A read's `If-None-Match` or `If-Modified-Since` holds: the caller's copy is current.
    #[error("not modified (etag {etag})")]
    NotModified {
        /// The entity tag of the version the caller has.
        etag: String,
    },
    /// A byte range that names no byte of the object.
    #[error("the range names no byte of the object's {size}")]
    InvalidRange {
        /// The object's size.
        size: u64,
    },
    /// The SSE-C parameters of a read do not fit the object (named for a plain object, or
    /// missing for one stored with a customer key).
    #[error("{0}")]
    CustomerKey(&'static str),
    /// A copy of an object onto itself that changes nothing (metadata, encryption).
    #[error("a copy onto itself must change its metadata or encryption")]
    CopyToItself,
    /// A part other than the last is under 5 MiB.
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    /// The cluster could not keep a write with the redundancy it needs (too few peers up).
    #[error("cluster: {0}")]
    Unavailable(String),
    /// The request body failed while streaming (signature, checksum, client gone); the
    /// front end's own error is kept so it can answer with it.
    #[error("request body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// Decryption or key handling failed: tampered, reordered or truncated ciphertext, a
    /// malformed key record.
    #[error("encryption: {0}")]
    Crypt(cairn_crypt::CryptError),
    /// A cluster operation asked of a node outside any cluster.
    #[error("this node is not in a cluster ([storage] redundancy is not set)")]
    NotInCluster,
    /// The caller (or this node's user key) may not have this.
    #[error("access denied: {0}")]
    AccessDenied(String),
}

/// What kind of failure a [`NodeError`] is: the one thing a front door needs to choose its
/// answer (S3 adds its own error code from the variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing by that name: bucket, key, version, upload, job, path, or a block not here.
    NotFound,
    /// The name is taken, or the bucket still holds objects.
    Conflict,
    /// The request cannot be taken as it is: bad name, path, CAR, part list, body.
    Invalid,
    /// A write precondition (If-Match / If-None-Match) failed.
    PreconditionFailed,
    /// The caller may not do this.
    Forbidden,
    /// The cluster cannot keep the write now (too few members up).
    Unavailable,
    /// The DAG asked for is malformed, unsupported or past a walk limit.
    BadDag,
    /// Stored data failed verification (a block's hash, a ciphertext's tag).
    Corrupt,
    /// Anything else: the node's own failure.
    Internal,
}

impl ErrorKind {
    /// The HTTP status the REST APIs (`/api/v0`, `/api/v1`) answer this kind with: a client
    /// mistake is a 4xx, a DAG the node cannot walk a 422, only the node's own failure a 500
    /// (`docs/security.md`, "Errors at the doors"). S3 and the gateway have their own
    /// vocabularies and map kinds themselves.
    pub fn rest_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 400,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::BadDag => 422,
            ErrorKind::Corrupt | ErrorKind::Internal => 500,
        }
    }
}

impl NodeError {
    /// The block this node lacks, when that is the whole failure (a door may word it as
    /// "not served", never revealing more).
    pub fn missing_block(&self) -> Option<&cairn_dag::Cid> {
        match self {
            NodeError::Store(StoreError::NotFound(cid)) => Some(cid),
            _ => None,
        }
    }

    /// The block that failed verification (and was quarantined): its path stays in the log.
    pub fn corrupt_block(&self) -> Option<&cairn_dag::Cid> {
        match self {
            NodeError::Store(StoreError::CorruptBlock { cid, .. }) => Some(cid),
            _ => None,
        }
    }

    /// The DAG error inside, if this is one.
    pub fn dag_error(&self) -> Option<&DagError> {
        match self {
            NodeError::Dag(d) | NodeError::Store(StoreError::Dag(d)) => Some(d),
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Store(s) => store_kind(s),
            NodeError::Dag(d) => dag_kind(d),
            NodeError::NoSuchBucket(_)
            | NodeError::NoSuchKey { .. }
            | NodeError::NoSuchUpload(_)
            | NodeError::NoSuchVersion(_)
            | NodeError::NoSuchJob(_)
            | NodeError::NoSuchAccount(_)
            | NodeError::DeleteMarker => ErrorKind::NotFound,
            NodeError::BucketAlreadyExists(_)
            | NodeError::BucketNotEmpty(_)
            | NodeError::NotInCluster => ErrorKind::Conflict,
            NodeError::InvalidPath { .. }
            | NodeError::Car(_)
            | NodeError::Unsupported(_)
            | NodeError::InvalidBucketName(_)
            | NodeError::InvalidPart(_)
            | NodeError::InvalidPartOrder
            | NodeError::EntityTooSmall(_)
            | NodeError::InvalidRange { .. }
            | NodeError::CustomerKey(_)
            | NodeError::CopyToItself
            | NodeError::Body(_) => ErrorKind::Invalid,
            NodeError::PreconditionFailed | NodeError::NotModified { .. } => {
                ErrorKind::PreconditionFailed
            }
            NodeError::AccessDenied(_) | NodeError::QuotaExceeded { .. } => ErrorKind::Forbidden,
            NodeError::Unavailable(_) => ErrorKind::Unavailable,
            NodeError::Crypt(_) => ErrorKind::Corrupt,
            NodeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::CorruptBlock { .. } => ErrorKind::Corrupt,
        StoreError::Dag(d) => dag_kind(d),
        StoreError::Io { .. }
        | StoreError::Db(_)
        | StoreError::Locked(_)
        | StoreError::Sink(_)
        | StoreError::Record { .. }
        | StoreError::GcLockHeld => ErrorKind::Internal,
    }
}

fn dag_kind(e: &DagError) -> ErrorKind {
    match e {
        // a name not in its directory, or a path through a file: no such path
        DagError::NotFound { .. } | DagError::NotADirectory(_) => ErrorKind::NotFound,
        DagError::NotAFile(_) | DagError::Tree(_) => ErrorKind::Invalid,
        DagError::HashMismatch(_)
        | DagError::Unsupported(_)
        | DagError::Malformed { .. }
        | DagError::LimitExceeded { .. } => ErrorKind::BadDag,
    }
}

impl From<cairn_cluster::ClusterError> for NodeError {
    fn from(e: cairn_cluster::ClusterError) -> Self {
        match e {
            cairn_cluster::ClusterError::Store(s) => NodeError::Store(s),
            other => NodeError::Unavailable(other.to_string()),
        }
    }
}

impl From<DagError> for NodeError {
    fn from(e: DagError) -> Self {
        NodeError::Dag(Box::new(e))
    }
}

impl From<cairn_crypt::CryptError> for NodeError {
    fn from(e: cairn_crypt::CryptError) -> Self {
        NodeError::Crypt(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::Cid;

    /// Every kind's REST status, pinned: a change here is a change of both APIs' contract
    /// (`docs/api-v1.yaml` and `docs/security.md` say the same).
    #[test]
    fn every_kind_has_its_rest_status() {
        use ErrorKind::*;
        let rows = [
            (NotFound, 404),
            (Conflict, 409),
            (Invalid, 400),
            (PreconditionFailed, 412),
            (Forbidden, 403),
            (Unavailable, 503),
            (BadDag, 422),
            (Corrupt, 500),
            (Internal, 500),
        ];
        for (kind, status) in rows {
            assert_eq!(kind.rest_status(), status, "{kind:?}");
        }
    }

    /// Every variant's kind, one row each: a new variant must be placed here.
    #[test]
    fn every_variant_has_its_kind() {
        use ErrorKind::*;
        let cid: Cid = "bafkqaaa".parse().unwrap();
        let io = || std::io::Error::other("x");
        let dag = |d: DagError| NodeError::from(d);
        let rows: Vec<(NodeError, ErrorKind)> = vec![
            (StoreError::NotFound(cid).into(), NotFound),
            (
                StoreError::CorruptBlock {
                    cid,
                    quarantined: "/q".into(),
                }
                .into(),
                Corrupt,
            ),
            (
                StoreError::Io {
                    context: "x".into(),
                    source: io(),
                }
                .into(),
                Internal,
            ),
            (StoreError::Locked("/d".into()).into(), Internal),
            (StoreError::Sink("x".into()).into(), Internal),
            (StoreError::GcLockHeld.into(), Internal),
            (
                StoreError::Record {
                    table: "t",
                    reason: "x".into(),
                }
                .into(),
                Internal,
            ),
            (StoreError::from(DagError::HashMismatch(cid)).into(), BadDag),
            (dag(DagError::HashMismatch(cid)), BadDag),
            (dag(DagError::Unsupported("x".into())), BadDag),
            (
                dag(DagError::Malformed {
                    cid,
                    reason: "x".into(),
                }),
                BadDag,
            ),
            (
                dag(DagError::LimitExceeded {
                    root: cid,
                    limit: cairn_dag::Limit::Depth,
                    max: 1,
                }),
                BadDag,
            ),
            (dag(DagError::NotAFile(cid)), Invalid),
            (dag(DagError::NotADirectory(cid)), NotFound),
            (
                dag(DagError::NotFound {
                    parent: cid,
                    name: "n".into(),
                }),
                NotFound,
            ),
            (dag(DagError::Tree("x".into())), Invalid),
            (
                NodeError::Io {
                    context: "x".into(),
                    source: io(),
                },
                Internal,
            ),
            (
                NodeError::InvalidPath {
                    input: "x".into(),
                    reason: "y".into(),
                },
                Invalid,
            ),
            (NodeError::Car("x".into()), Invalid),
            (NodeError::Unsupported("x".into()), Invalid),
            (NodeError::NoSuchBucket("b".into()), NotFound),
            (
                NodeError::NoSuchKey {
                    bucket: "b".into(),
                    key: "k".into(),
                },
                NotFound,
            ),
            (NodeError::BucketAlreadyExists("b".into()), Conflict),
            (NodeError::BucketNotEmpty("b".into()), Conflict),
            (NodeError::InvalidBucketName("b".into()), Invalid),
            (NodeError::NoSuchUpload("u".into()), NotFound),
            (NodeError::InvalidPart("p".into()), Invalid),
            (NodeError::InvalidPartOrder, Invalid),
            (NodeError::NoSuchJob("j".into()), NotFound),
            (NodeError::NoSuchAccount("a".into()), NotFound),
            (
                NodeError::QuotaExceeded {
                    account: "a".into(),
                    used: 2,
                    quota: 1,
                },
                Forbidden,
            ),
            (NodeError::NoSuchVersion("v".into()), NotFound),
            (NodeError::DeleteMarker, NotFound),
            (NodeError::PreconditionFailed, PreconditionFailed),
            (
                NodeError::NotModified { etag: "e".into() },
                PreconditionFailed,
            ),
            (NodeError::InvalidRange { size: 1 }, Invalid),
            (NodeError::CustomerKey("x"), Invalid),
            (NodeError::CopyToItself, Invalid),
            (NodeError::EntityTooSmall(1), Invalid),
            (NodeError::Unavailable("x".into()), Unavailable),
            (NodeError::Body("x".into()), Invalid),
            (
                NodeError::Crypt(cairn_crypt::CryptError::Integrity),
                Corrupt,
            ),
            (NodeError::AccessDenied("x".into()), Forbidden),
            (NodeError::NotInCluster, Conflict),
        ];
        for (e, want) in rows {
            assert_eq!(e.kind(), want, "{e:?}");
        }
    }
}
