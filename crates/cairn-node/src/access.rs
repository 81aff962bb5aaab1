//! Who may do what: the node's one authorization decision. Every door — S3 (each operation,
//! copy sources included), the gateway, `/api/v1`, `/api/v0` — names the caller, the action
//! and the resource and asks [`Access::authorize`]; none decides on its own. The rules are the
//! table in `docs/security.md`, and [`decide`] is that table as code: a pure function of the
//! caller, the action and the records that matter (the bucket's, and the addressed
//! **version**'s — an old private version stays private whatever the current one is).
//!
//! Deny on doubt: a lookup that fails for any reason other than "not there" denies (the error
//! is returned, never swallowed into an allow); a caller without a basis gets `AccessDenied`,
//! and a missing object answers "not found" only to callers who may list the bucket (as S3
//! does, so a stranger cannot probe which keys exist).
//!
//! S3's semantics, where Cairn used to differ: a bucket's `public-read` ACL lets anyone
//! **list** it; reading an object needs that version's `public-read` ACL, or the bucket policy
//! that allows anonymous `s3:GetObject` (which `cairn bucket set-public` writes) — the policy
//! covers current versions, as `s3:GetObject` does (a named old version needs its own ACL).

use std::collections::BTreeSet;

use cairn_dag::Cid;
use serde::{Deserialize, Serialize};

pub use cairn_store::LoginSeen;

use crate::keys::ROOT_USER;
use crate::model::records::{BucketRecord, ObjectInfo, ObjectMeta};
use crate::{Node, NodeError};

/// Who may do what ([`Node::access`]): the one decision every door asks.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Who may do what: the one authorization decision, logins, CID visibility.
    pub fn access(&self) -> Access<'_> {
        Access { node: self }
    }
}

/// Who may read a CID beyond what is published, kept per CID (`/api/v1` uploads): the users
/// whose upload it is, and whether its pin is private (not published). A pin made by the
/// operator (`cairn add`, `pin add`) or an upload with `?public=true` publishes the CID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidAccess {
    /// Users who uploaded it (each may read it).
    pub owners: BTreeSet<String>,
    /// Its pins are private: pinned, but not published.
    pub private_pin: bool,
}

/// CID (text) → who may read it beyond what is published.
pub(crate) const CID_ACCESS: cairn_store::Table<CidAccess> = cairn_store::Table::new("cid_access");

/// Who is asking, as a door authenticated them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The operator: the root S3 keys, the API secret, the local API token.
    Root,
    /// A user: an S3 access key's owner (by header signature or a presigned URL it signed),
    /// or a user logged in to the HTTP APIs.
    User(String),
    /// Nobody in particular: no credentials.
    Anonymous,
}

impl Caller {
    /// The caller for an S3 user name (`root` is the operator).
    pub fn user(name: &str) -> Caller {
        if name == ROOT_USER {
            Caller::Root
        } else {
            Caller::User(name.to_owned())
        }
    }

    /// The user name the caller acts as (`None`: anonymous).
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Root => Some(ROOT_USER),
            Caller::User(u) => Some(u),
            Caller::Anonymous => None,
        }
    }
}

/// What the caller wants to do. S3 operations map onto these (see `docs/security.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List one's own buckets (ListBuckets).
    ListBuckets,
    /// Make a bucket (CreateBucket).
    CreateBucket,
    /// List a bucket's current objects (ListObjects, ListObjectsV2, HeadBucket,
    /// GetBucketLocation).
    ListBucket,
    /// List a bucket's versions and delete markers (ListObjectVersions).
    ListBucketVersions,
    /// List a bucket's multipart uploads in progress (ListMultipartUploads).
    ListBucketUploads,
    /// Read an object version's bytes and metadata (GetObject, HeadObject, the source of
    /// CopyObject and UploadPartCopy).
    ReadObject,
    /// Read an object's ACL or tags (GetObjectAcl, GetObjectTagging).
    ReadObjectSettings,
    /// Write or delete objects, their ACLs and tags, multipart uploads and their parts.
    WriteObject,
    /// Read a bucket's settings (ACL, policy, versioning, encryption, CORS, …).
    ReadBucketSettings,
    /// Change or delete a bucket and its settings.
    WriteBucketSettings,
    /// Read a DAG by CID (the gateway, `/api/v1/files`, `/api/v0/cat`).
    ReadCid,
    /// Add data that belongs to nobody's bucket (`/api/v0/add`, `/api/v1/files` uploads).
    AddData,
    /// Run the node: users and their keys, pins, GC, the swarm, the cluster, promotions.
    Admin,
}

impl Action {
    /// Whether the action changes something (refused on a read-only mirror).
    pub fn writes(self) -> bool {
        matches!(self, Action::WriteObject | Action::WriteBucketSettings)
    }
}

/// What the action is about: a bucket, a key in it, a version of that key; or a CID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resource<'a> {
    /// The bucket.
    pub bucket: Option<&'a str>,
    /// The key in it.
    pub key: Option<&'a str>,
    /// The version of the key (`None`: the current one; `"null"`: the null version).
    pub version: Option<&'a str>,
    /// A CID (for [`Action::ReadCid`]).
    pub cid: Option<Cid>,
}

impl<'a> Resource<'a> {
    /// The node itself (no bucket).
    pub fn node() -> Self {
        Resource::default()
    }

    /// A bucket.
    pub fn bucket(bucket: &'a str) -> Self {
        Resource {
            bucket: Some(bucket),
            ..Default::default()
        }
    }

    /// An object (its current version, or `version`).
    pub fn object(bucket: &'a str, key: &'a str, version: Option<&'a str>) -> Self {
        Resource {
            bucket: Some(bucket),
            key: Some(key),
            version,
            cid: None,
        }
    }

    /// A DAG by CID.
    pub fn cid(cid: Cid) -> Self {
        Resource {
            cid: Some(cid),
            ..Default::default()
        }
    }
}

/// Why an action was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The operator.
    Root,
    /// The bucket's owner.
    Owner,
    /// Any signed-in user may (list own buckets, create one, add data).
    SignedIn,
    /// The bucket's `public-read` ACL or its policy (listing).
    Public,
    /// The bucket policy allowing anonymous `s3:GetObject` (current versions).
    BucketPolicy,
    /// The version's own `public-read` ACL.
    ObjectAcl,
    /// The CID is published (pinned, or reachable from what is public).
    Published,
}

/// An allowed request: why, and the version the decision was made on (when one was read),
/// so a door can read exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Why.
    pub basis: Basis,
    /// The object version the decision looked at, when it looked at one.
    pub object: Option<ObjectInfo>,
}

/// The facts a decision rests on, looked up by [`Access::authorize`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The bucket's record, when the resource is in a bucket.
    pub bucket: Option<&'a BucketRecord>,
    /// The addressed object version's metadata, when it was needed and found.
    pub version: Option<&'a ObjectMeta>,
    /// Whether that version is the key's current one.
    pub current: bool,
}

/// The owner of a bucket as a local user name: nobody for a bucket mirrored from another node
/// (its record names a user of that node; a local user of the same name is someone else).
pub fn local_owner(record: &BucketRecord) -> Option<&str> {
    record.mirror.is_none().then_some(record.owner.as_str())
}

/// The table of `docs/security.md`: may `caller` do `action`, given `facts`? `None`: no.
/// Published CIDs are decided by [`Access::authorize`] (they need the store), not here.
pub fn decide(caller: &Caller, action: Action, facts: Facts<'_>) -> Option<Basis> {
    if *caller == Caller::Root {
        return Some(Basis::Root);
    }
    let signed_in = *caller != Caller::Anonymous;
    match action {
        Action::ListBuckets | Action::CreateBucket | Action::AddData => {
            signed_in.then_some(Basis::SignedIn)
        }
        Action::Admin | Action::ReadCid => None,
        _ => {
            let bucket = facts.bucket?;
            if let (Some(me), Some(owner)) = (caller.name(), local_owner(bucket))
                && me == owner
            {
                return Some(Basis::Owner);
            }
            match action {
                Action::ListBucket => bucket.listable().then_some(Basis::Public),
                Action::ReadObject => {
                    let version = facts.version?;
                    if version.public_read {
                        Some(Basis::ObjectAcl)
                    } else if bucket.policy_public && facts.current {
                        Some(Basis::BucketPolicy)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        }
    }
}

fn denied(what: &str) -> NodeError {
    NodeError::AccessDenied(what.to_owned())
}

impl Node {
    /// May `caller` read the DAG `cid`? Root: anything stored. Others: what is published,
    /// and a signed-in user also the objects of buckets it owns.
    fn authorize_cid(&self, caller: &Caller, cid: Option<Cid>) -> Result<Basis, NodeError> {
        let cid = cid.ok_or_else(|| denied("no CID named"))?;
        if *caller == Caller::Root {
            return Ok(Basis::Root);
        }
        if self.access().published(&cid)?.is_some() {
            return Ok(Basis::Published);
        }
        if let Some(me) = caller.name() {
            if self.access().cid_access(&cid)?.owners.contains(me) {
                return Ok(Basis::Owner);
            }
            for (bucket, _) in self.store().objects_with_cid(&cid)? {
                if let Ok(record) = self.buckets().get(&bucket)
                    && local_owner(&record) == Some(me)
                {
                    return Ok(Basis::Owner);
                }
            }
        }
        Err(denied("this CID is not published"))
    }
}

/// The most API logins remembered at once (a clock window's worth); past it, new logins are
/// refused until older ones leave the window.
pub const MAX_LOGINS: u64 = 100_000;

impl Access<'_> {
    /// The one authorization decision: `Ok(grant)` when `caller` may do `action` on
    /// `resource`, else `AccessDenied` (or the lookup's own error — never an allow). For a
    /// resource in a bucket that does not exist the answer is `NoSuchBucket` (a write to a
    /// bucket mirrored from another node is `Unavailable`: it is read-only here).
    pub fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource<'_>,
    ) -> Result<Grant, NodeError> {
        let grant = |basis| Grant {
            basis,
            object: None,
        };
        if action == Action::ReadCid {
            return self.node.authorize_cid(caller, resource.cid).map(grant);
        }
        let Some(bucket) = resource.bucket else {
            return decide(caller, action, Facts::default())
                .map(grant)
                .ok_or_else(|| denied(action_name(action)));
        };
        let record = self.node.buckets().get(bucket)?;
        if action.writes()
            && let Some(mirror) = &record.mirror
        {
            return Err(NodeError::Unavailable(format!(
                "bucket {bucket} is owned by another node (key {}…, version {}); it is served \
                 read-only here — write through its owner, or run `cairn bucket promote \
                 {bucket}` on this node if the owner is gone",
                &mirror.owner_key[..mirror.owner_key.len().min(16)],
                mirror.seq
            )));
        }
        let facts = Facts {
            bucket: Some(&record),
            ..Default::default()
        };
        if let Some(basis) = decide(caller, action, facts) {
            return Ok(grant(basis));
        }
        let (Action::ReadObject, Some(key)) = (action, resource.key) else {
            return Err(denied(action_name(action)));
        };
        // Only now is the version needed: owners and root were decided on the bucket alone.
        let read = match resource.version {
            Some(v) => self.node.objects().get_version(bucket, key, v),
            None => self.node.objects().get(bucket, key),
        };
        let info = match read {
            Ok(info) => info,
            // Whether a key exists is told only to those who may list the bucket.
            Err(
                e @ (NodeError::NoSuchKey { .. }
                | NodeError::NoSuchVersion(_)
                | NodeError::DeleteMarker),
            ) => {
                return match decide(caller, Action::ListBucket, facts) {
                    Some(_) => Err(e),
                    None => Err(denied(action_name(action))),
                };
            }
            Err(e) => return Err(e),
        };
        let current = match resource.version {
            None => true,
            Some(v) => {
                let now = self.node.store().object(bucket, key)?;
                now.is_some_and(|(_, rec)| {
                    crate::model::codec::decode::<ObjectMeta>(&rec)
                        .is_ok_and(|m| m.version_id.as_deref().unwrap_or("null") == v)
                })
            }
        };
        let facts = Facts {
            bucket: Some(&record),
            version: Some(&info.meta),
            current,
        };
        match decide(caller, action, facts) {
            Some(basis) => Ok(Grant {
                basis,
                object: Some(info),
            }),
            None => Err(denied(action_name(action))),
        }
    }

    /// Remembers an API login of `user` signed for `epoch_ms` (already verified), durably: a
    /// login seen before — also before a restart — is `Replayed`. Logins signed more than
    /// `window_ms` before `now_ms` are forgotten (they fail the clock check anyway), and at
    /// most [`MAX_LOGINS`] are kept.
    pub fn remember_login(
        &self,
        user: &str,
        epoch_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<LoginSeen, NodeError> {
        let forget_before = now_ms.saturating_sub(window_ms);
        Ok(self
            .node
            .store()
            .update(|txn| txn.remember_login(user, epoch_ms, forget_before, MAX_LOGINS))?)
    }

    /// Who may read `cid` beyond what is published (empty when nothing was kept).
    pub fn cid_access(&self, cid: &Cid) -> Result<CidAccess, NodeError> {
        Ok(self
            .node
            .store()
            .read(CID_ACCESS, &cid.to_string())?
            .unwrap_or_default())
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::ListBuckets => "listing buckets needs credentials",
        Action::CreateBucket => "creating a bucket needs credentials",
        Action::AddData => "adding data needs credentials",
        Action::Admin => "this needs the node's administrator",
        Action::ReadCid => "this CID is not published",
        Action::ListBucket | Action::ListBucketVersions | Action::ListBucketUploads => {
            "listing this bucket is not allowed"
        }
        Action::ReadObject => "reading this object is not allowed",
        Action::ReadObjectSettings => "reading this object's settings is not allowed",
        Action::WriteObject => "writing to this bucket is not allowed",
        Action::ReadBucketSettings => "reading this bucket's settings is not allowed",
        Action::WriteBucketSettings => "changing this bucket is not allowed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(public: bool, policy: bool) -> BucketRecord {
        BucketRecord {
            owner: "alice".into(),
            public,
            policy_public: policy,
            ..Default::default()
        }
    }

    fn facts<'a>(b: &'a BucketRecord, v: Option<&'a ObjectMeta>, current: bool) -> Facts<'a> {
        Facts {
            bucket: Some(b),
            version: v,
            current,
        }
    }

    #[test]
    fn the_table() {
        let alice = Caller::User("alice".into());
        let bob = Caller::User("bob".into());
        let anon = Caller::Anonymous;
        let private = bucket(false, false);
        let listed = bucket(true, false);
        let policy = bucket(false, true);
        let secret = ObjectMeta::default();
        let open = ObjectMeta {
            public_read: true,
            ..Default::default()
        };
        let (private, listed, policy) = (&private, &listed, &policy);
        let (secret, open) = (&secret, &open);
        // the owner and root may do anything with the bucket
        for action in [
            Action::WriteObject,
            Action::WriteBucketSettings,
            Action::ListBucketVersions,
            Action::ReadObject,
        ] {
            assert_eq!(
                decide(&alice, action, facts(private, None, true)),
                Some(Basis::Owner)
            );
            assert_eq!(
                decide(&Caller::Root, action, facts(private, None, true)),
                Some(Basis::Root)
            );
            assert_eq!(
                decide(&bob, action, facts(private, Some(secret), true)),
                None
            );
        }
        // public-read bucket ACL: listing, not reading
        assert_eq!(
            decide(&anon, Action::ListBucket, facts(listed, None, true)),
            Some(Basis::Public)
        );
        assert_eq!(
            decide(&anon, Action::ReadObject, facts(listed, Some(secret), true)),
            None
        );
        assert_eq!(
            decide(&anon, Action::ListBucketVersions, facts(listed, None, true)),
            None
        );
        // the policy: current versions, not listing
        assert_eq!(
            decide(&anon, Action::ReadObject, facts(policy, Some(secret), true)),
            Some(Basis::BucketPolicy)
        );
        assert_eq!(
            decide(
                &anon,
                Action::ReadObject,
                facts(policy, Some(secret), false)
            ),
            None
        );
        assert_eq!(
            decide(&anon, Action::ListBucket, facts(policy, None, true)),
            None
        );
        // the version's own ACL, whatever the bucket
        assert_eq!(
            decide(&bob, Action::ReadObject, facts(private, Some(open), false)),
            Some(Basis::ObjectAcl)
        );
        assert_eq!(
            decide(
                &anon,
                Action::ReadObjectSettings,
                facts(private, Some(open), true)
            ),
            None
        );
        // node-level actions
        assert_eq!(decide(&anon, Action::CreateBucket, Facts::default()), None);
        assert_eq!(
            decide(&bob, Action::CreateBucket, Facts::default()),
            Some(Basis::SignedIn)
        );
        assert_eq!(decide(&bob, Action::Admin, Facts::default()), None);
        assert_eq!(
            decide(&Caller::Root, Action::Admin, Facts::default()),
            Some(Basis::Root)
        );
        // a mirrored bucket's owner name is another node's user
        let mut mirrored = bucket(false, false);
        mirrored.mirror = Some(crate::model::records::Mirror {
            owner_key: "00".into(),
            seq: 1,
        });
        let f = Facts {
            bucket: Some(&mirrored),
            ..Default::default()
        };
        assert_eq!(decide(&alice, Action::ListBucket, f), None);
    }

    /// M6: the login memory outlives a restart, forgets what left the window, and is bounded.
    #[test]
    fn logins_are_remembered_durably_and_bounded() {
        use cairn_store::LoginSeen;
        let dir = tempfile::tempdir().unwrap();
        let (now, window) = (1_700_000_000_000u64, 300_000u64);
        {
            let node = Node::open(dir.path()).unwrap();
            assert_eq!(
                node.access()
                    .remember_login("cpk1a", now, now, window)
                    .unwrap(),
                LoginSeen::Fresh
            );
            assert_eq!(
                node.access()
                    .remember_login("cpk1a", now, now, window)
                    .unwrap(),
                LoginSeen::Replayed
            );
            assert_eq!(
                node.access()
                    .remember_login("cpk1b", now, now, window)
                    .unwrap(),
                LoginSeen::Fresh
            );
        }
        let node = Node::open(dir.path()).unwrap();
        assert_eq!(
            node.access()
                .remember_login("cpk1a", now, now + 1000, window)
                .unwrap(),
            LoginSeen::Replayed,
            "a restart forgets no login"
        );
        // Once out of the window, entries are pruned (the clock check refuses them anyway).
        let later = now + window + 1;
        assert_eq!(
            node.access()
                .remember_login("cpk1a", later, later, window)
                .unwrap(),
            LoginSeen::Fresh
        );
        // Left: that one login (the two of the old window were pruned), so a cap of 2 takes one
        // more and then refuses.
        let remember = |who: &str| {
            node.store()
                .update(|txn| txn.remember_login(who, later, later - window, 2))
                .unwrap()
        };
        assert_eq!(remember("probe1"), LoginSeen::Fresh);
        assert_eq!(remember("probe2"), LoginSeen::Full);
    }
}
