//! ACLs and bucket policies, reduced to what Cairn enforces: a bucket is private or public
//! (anyone may read), an object may be `public-read`. Canned ACLs `private` and `public-read`
//! and grant lists of exactly those shapes are accepted; a bucket policy is accepted when every
//! statement is an anonymous `s3:GetObject` allow over the whole bucket. Anything Cairn could
//! not enforce is refused with `NotImplemented` rather than stored and ignored.

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

/// Checks a bucket policy document: every statement must allow anonymous `s3:GetObject` on
/// all of the bucket's objects. Returns whether the bucket becomes public.
pub fn bucket_policy_is_public(bucket: &str, doc: &str) -> S3Result<bool> {
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
    for st in &statements {
        let principal = &st["Principal"];
        let anonymous = principal == "*" || strings(&principal["AWS"]).iter().any(|p| p == "*");
        let effect_allow = st["Effect"] == "Allow";
        let actions = strings(&st["Action"]);
        let get_only = !actions.is_empty() && actions.iter().all(|a| a == "s3:GetObject");
        let resources = strings(&st["Resource"]);
        let whole = !resources.is_empty() && resources.iter().all(|r| all_objects.contains(r));
        if !(anonymous && effect_allow && get_only && whole && st.get("Condition").is_none()) {
            return Err(s3_error!(
                NotImplemented,
                "only policies allowing anonymous s3:GetObject on the whole bucket are supported"
            ));
        }
    }
    Ok(!statements.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
        assert!(bucket_policy_is_public("pics", public).unwrap());
        let aws_star = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::pics/*"]}}"#;
        assert!(bucket_policy_is_public("pics", aws_star).unwrap());
        let partial = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/public/*"}]}"#;
        assert!(
            bucket_policy_is_public("pics", partial).is_err(),
            "a prefix grant must not open the bucket"
        );
        let put = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
        assert!(bucket_policy_is_public("pics", put).is_err());
        assert!(bucket_policy_is_public("pics", "nope").is_err());
        assert!(canned_is_public("public-read").unwrap());
        assert!(!canned_is_public("private").unwrap());
        assert!(canned_is_public("public-read-write").is_err());
    }
}
