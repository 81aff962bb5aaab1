//! Who is asking: request authentication (the secret key of an access key, for s3s's SigV4
//! checks) and the S3 door's question to the node (`CairnAccess`): each operation is mapped
//! to a node [`Action`] on its bucket, key and version, and [`cairn_node::Access::authorize`] decides — this
//! door decides nothing itself. A copy's source is asked about too, as a read of the source
//! version.

use cairn_node::Node;
use cairn_node::access::{Action, Caller, Grant, Resource};
use cairn_node::keys::ROOT_USER;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::dto::CopySource;
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
        match self.node.keys().get(access) {
            Ok(Some(rec)) => Some(rec.user),
            // A lookup that fails names nobody: the request goes on as anonymous (least
            // privilege), never as a user the key string might spell.
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for Identities {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root_access {
            return Ok(SecretKey::from(self.root_secret.as_str()));
        }
        match self.node.keys().get(access_key) {
            Ok(Some(rec)) => Ok(SecretKey::from(rec.secret.as_str())),
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
            Err(e) => Err(crate::convert::s3_err(e)),
        }
    }
}

/// The node action an S3 operation is (the table of `docs/security.md`). An operation not
/// named here is a bucket setting: only its owner and root may run it.
pub fn action_of(op: &str) -> Action {
    match op {
        "ListBuckets" => Action::ListBuckets,
        "CreateBucket" => Action::CreateBucket,
        "HeadBucket" | "GetBucketLocation" | "ListObjects" | "ListObjectsV2" => Action::ListBucket,
        "ListObjectVersions" => Action::ListBucketVersions,
        "ListMultipartUploads" | "ListParts" => Action::ListBucketUploads,
        "GetObject" | "HeadObject" => Action::ReadObject,
        "GetObjectAcl" | "GetObjectTagging" | "GetObjectAttributes" => Action::ReadObjectSettings,
        "PutObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "PutObjectAcl"
        | "PutObjectTagging"
        | "DeleteObjectTagging" => Action::WriteObject,
        op if op.starts_with("Get") => Action::ReadBucketSettings,
        _ => Action::WriteBucketSettings,
    }
}

/// The value of query parameter `name` (names and values percent-decoded), if present.
pub fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// The caller a request's credentials name.
pub fn caller(ids: &Identities, credentials: Option<&Credentials>) -> Caller {
    match ids.user(&credentials.cloned()) {
        Some(user) => Caller::user(&user),
        None => Caller::Anonymous,
    }
}

/// The node's grant for a request's own resource, left by the gate for the operation.
#[derive(Debug, Clone)]
pub struct Granted(pub Grant);

/// The node's grant for a copy's source (a read of the source version).
#[derive(Debug, Clone)]
pub struct SourceGrant(pub Grant);

/// Authorization of every S3 request: the operation (and, for a copy, its source read as a
/// `GetObject` of the source version) is put to [`cairn_node::Access::authorize`]; the node decides.
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
        let caller = caller(&self.ids, cx.credentials());
        let op = cx.s3_op().name().to_owned();
        let action = action_of(&op);
        let version = query_param(cx.uri(), "versionId");
        let resource = match (cx.s3_path(), action) {
            (_, Action::ListBuckets | Action::CreateBucket) | (S3Path::Root, _) => Resource::node(),
            (S3Path::Bucket { bucket }, _) => Resource::bucket(bucket),
            (S3Path::Object { bucket, key }, _) => {
                Resource::object(bucket, key, version.as_deref())
            }
        };
        let node = &self.ids.node;
        let grant = node
            .access()
            .authorize(&caller, action, &resource)
            .map_err(crate::convert::s3_err)?;
        cx.extensions_mut().insert(Granted(grant));
        if matches!(op.as_str(), "CopyObject" | "UploadPartCopy") {
            let header = cx
                .headers()
                .get("x-amz-copy-source")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "x-amz-copy-source is missing"))?;
            let CopySource::Bucket {
                bucket,
                key,
                version_id,
            } = CopySource::parse(header)
                .map_err(|e| s3_error!(InvalidArgument, "x-amz-copy-source: {e}"))?
            else {
                return Err(s3_error!(NotImplemented, "access point copy sources"));
            };
            let source = Resource::object(&bucket, &key, version_id.as_deref());
            let grant = node
                .access()
                .authorize(&caller, Action::ReadObject, &source)
                .map_err(crate::convert::s3_err)?;
            cx.extensions_mut().insert(SourceGrant(grant));
        }
        Ok(())
    }
}
