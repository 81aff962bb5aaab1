//! ACLs and bucket policies, reduced to what Cairn enforces: a bucket's `public-read` ACL
//! lets anyone list it, an object version's `public-read` ACL lets anyone read it, and a bucket
//! policy may let anyone read every current object (`s3:GetObject` on `bucket/*`) and list the
//! bucket (`s3:ListBucket`). Canned ACLs `private` and `public-read` and grant lists of exactly
//! those shapes are accepted; a policy is accepted when every statement is one of those two
//! anonymous allows. Anything Cairn could not enforce is refused with `NotImplemented` rather
//! than stored and ignored. The decisions themselves are the node's (`cairn_node::access`).

use s3s::dto::*;
use s3s::{S3Result, s3_error};

/// The group URI of "everyone".
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn owner_grant(owner: &str) -> Grant {
    Grant {
        grantee: Some(Grantee {
            display_name: Some(owner.to_owned()),
            id: Some(owner.to_owned()),
            type_: Type::from_static(Type::CANONICAL_USER),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }
}

fn public_grant() -> Grant {
    Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::GROUP),
            uri: Some(ALL_USERS.to_owned()),
            display_name: None,
            email_address: None,
            id: None,
        }),
        permission: Some(Permission::from_static(Permission::READ)),
    }
}

/// The grants of a private or public resource owned by `owner`.
pub fn grants(owner: &str, public: bool) -> Grants {
    // The group grant first, as RGW lists them (clients compare in order).
    let mut g = Vec::new();
    if public {
        g.push(public_grant());
    }
    g.push(owner_grant(owner));
    g
}

/// Whether a PutBucketAcl/PutObjectAcl makes its resource public: the canned ACL header if
/// given, else the grant list in the body.
pub fn requested_public(
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
) -> S3Result<bool> {
    match (canned, policy) {
        (Some(acl), _) => canned_is_public(acl),
        (None, Some(policy)) => policy_is_public(policy),
        (None, None) => Err(s3_error!(MissingSecurityHeader, "no ACL given")),
    }
}

/// Whether a canned ACL makes a resource public (`None` when it is one Cairn cannot enforce).
pub fn canned_is_public(acl: &str) -> S3Result<bool> {
    match acl {
        "private" | "bucket-owner-full-control" | "bucket-owner-read" => Ok(false),
        "public-read" => Ok(true),
        other => Err(s3_error!(
            NotImplemented,
            "canned ACL {other} is not supported"
        )),
    }
}

/// Whether an explicit grant list means public: owner FULL_CONTROL plus optionally AllUsers
/// READ; anything else is refused.
pub fn policy_is_public(policy: &AccessControlPolicy) -> S3Result<bool> {
    let mut public = false;
    for g in policy.grants.iter().flatten() {
        let perm = g
            .permission
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let grantee = g.grantee.as_ref();
        let all_users = grantee.and_then(|g| g.uri.as_deref()) == Some(ALL_USERS);
        match (all_users, perm.as_str()) {
            (true, "READ") => public = true,
            (false, "FULL_CONTROL") => {}
            _ => {
                return Err(s3_error!(
                    NotImplemented,
                    "only owner FULL_CONTROL and AllUsers READ grants are supported"
                ));
            }
        }
    }
    Ok(public)
}

/// What a bucket policy grants anonymous callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyGrants {
    /// `s3:GetObject` on every object.
    pub get: bool,
    /// `s3:ListBucket` on the bucket.
    pub list: bool,
}

/// Checks a bucket policy document: every statement must allow anonymous `s3:GetObject` on
/// all of the bucket's objects, or anonymous `s3:ListBucket` on the bucket. Returns what it
/// grants.
pub fn bucket_policy_grants(bucket: &str, doc: &str) -> S3Result<PolicyGrants> {
    let v: serde_json::Value = serde_json::from_str(doc)
        .map_err(|e| s3_error!(MalformedPolicy, "policy is not JSON: {e}"))?;
    let statements = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => return Err(s3_error!(MalformedPolicy, "policy has no Statement")),
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let all_objects = [format!("arn:aws:s3:::{bucket}/*"), "*".to_owned()];
    let the_bucket = [format!("arn:aws:s3:::{bucket}"), "*".to_owned()];
    let mut grants = PolicyGrants::default();
    for st in &statements {
        let principal = &st["Principal"];
        let anonymous = principal == "*" || strings(&principal["AWS"]).iter().any(|p| p == "*");
        let effect_allow = st["Effect"] == "Allow";
        let actions = strings(&st["Action"]);
        let only = |action: &str| !actions.is_empty() && actions.iter().all(|a| a == action);
        let resources = strings(&st["Resource"]);
        let on = |allowed: &[String]| {
            !resources.is_empty() && resources.iter().all(|r| allowed.contains(r))
        };
        let plain = anonymous && effect_allow && st.get("Condition").is_none();
        if plain && only("s3:GetObject") && on(&all_objects) {
            grants.get = true;
        } else if plain && only("s3:ListBucket") && on(&the_bucket) {
            grants.list = true;
        } else {
            return Err(s3_error!(
                NotImplemented,
                "only policies allowing anonymous s3:GetObject on the whole bucket and \
                 s3:ListBucket on it are supported"
            ));
        }
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
        assert!(bucket_policy_grants("pics", public).unwrap().get);
        let both = cairn_node::objects::public_policy("pics");
        assert_eq!(
            bucket_policy_grants("pics", &both).unwrap(),
            PolicyGrants {
                get: true,
                list: true
            }
        );
        let aws_star = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::pics/*"]}}"#;
        assert!(bucket_policy_grants("pics", aws_star).unwrap().get);
        let partial = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/public/*"}]}"#;
        assert!(
            bucket_policy_grants("pics", partial).is_err(),
            "a prefix grant must not open the bucket"
        );
        let put = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
        assert!(bucket_policy_grants("pics", put).is_err());
        assert!(bucket_policy_grants("pics", "nope").is_err());
        assert!(canned_is_public("public-read").unwrap());
        assert!(!canned_is_public("private").unwrap());
        assert!(canned_is_public("public-read-write").is_err());
    }
}
