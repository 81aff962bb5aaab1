//! Who is asking: request authentication (the secret key of an access key, for s3s's SigV4
//! checks) and authorization (`CairnAccess`): a bucket's owner — and root, the administrator —
//! may do anything with it; anyone, even without credentials, may read a public bucket or a
//! `public-read` object; a request about a bucket that does not exist reaches the operation, so
//! it answers 404 as S3 does. Everything else is `AccessDenied`.

use cairn_node::Node;
use cairn_node::keys::ROOT_USER;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

/// The root key pair and the node holding users' keys.
#[derive(Debug, Clone)]
pub struct Identities {
    root_access: String,
    root_secret: String,
    node: Node,
}

impl Identities {
    /// Root credentials plus the keys stored in `node`.
    pub fn new(node: Node, root_access: &str, root_secret: &str) -> Self {
        Identities {
            root_access: root_access.to_owned(),
            root_secret: root_secret.to_owned(),
            node,
        }
    }

    /// The user behind authenticated credentials (`None`: anonymous).
    pub fn user(&self, credentials: &Option<Credentials>) -> Option<String> {
        let access = &credentials.as_ref()?.access_key;
        if *access == self.root_access {
            return Some(ROOT_USER.to_owned());
        }
        match self.node.key(access) {
            Ok(Some(rec)) => Some(rec.user),
            _ => Some(access.clone()),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for Identities {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root_access {
            return Ok(SecretKey::from(self.root_secret.as_str()));
        }
        match self.node.key(access_key) {
            Ok(Some(rec)) => Ok(SecretKey::from(rec.secret.as_str())),
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
            Err(e) => Err(crate::convert::s3_err(e)),
        }
    }
}

/// Operations anyone may run on a public bucket.
const PUBLIC_BUCKET_READS: &[&str] = &[
    "GetObject",
    "HeadObject",
    "ListObjects",
    "ListObjectsV2",
    "HeadBucket",
    "GetBucketLocation",
];

/// Authorization of every S3 request.
#[derive(Debug, Clone)]
pub struct CairnAccess {
    ids: Identities,
}

impl CairnAccess {
    /// Authorization over these identities.
    pub fn new(ids: Identities) -> Self {
        CairnAccess { ids }
    }
}

#[async_trait::async_trait]
impl S3Access for CairnAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let user = self.ids.user(&cx.credentials().cloned());
        let op = cx.s3_op().name().to_owned();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => {
                return match user {
                    Some(_) => Ok(()),
                    None => Err(s3_error!(AccessDenied, "Signature is required")),
                };
            }
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        let record = match self.ids.node.bucket(&bucket) {
            Ok(record) => record,
            // NoSuchBucket (or CreateBucket of a new name): let the operation answer.
            Err(_) => return Ok(()),
        };
        if let Some(mirror) = &record.mirror
            && !["Get", "Head", "List"].iter().any(|p| op.starts_with(p))
        {
            return Err(s3_error!(
                ServiceUnavailable,
                "bucket {bucket} is owned by another node (key {}…, version {}); it is served \
                 read-only here — write through its owner, or run `cairn bucket promote \
                 {bucket}` on this node if the owner is gone",
                &mirror.owner_key[..mirror.owner_key.len().min(16)],
                mirror.seq
            ));
        }
        if let Some(user) = &user
            && (*user == record.owner || user == ROOT_USER || op == "CreateBucket")
        {
            return Ok(());
        }
        if PUBLIC_BUCKET_READS.contains(&op.as_str()) {
            if record.is_public() {
                return Ok(());
            }
            if let Some(key) = key
                && (op == "GetObject" || op == "HeadObject")
                && self
                    .ids
                    .node
                    .object(&bucket, &key)
                    .is_ok_and(|o| o.meta.public_read)
            {
                return Ok(());
            }
        }
        Err(s3_error!(AccessDenied, "Access Denied"))
    }
}
