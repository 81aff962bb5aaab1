//! Request authentication: the secret key of an access key, for s3s's SigV4 checks. An
//! unknown access key answers `InvalidAccessKeyId`, as AWS does.

use std::collections::HashMap;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

/// The access keys this node accepts.
#[derive(Debug, Default, Clone)]
pub struct KeyAuth {
    keys: HashMap<String, String>,
}

impl KeyAuth {
    /// Accepts one key pair.
    pub fn single(access_key: &str, secret_key: &str) -> Self {
        let mut auth = KeyAuth::default();
        auth.insert(access_key, secret_key);
        auth
    }

    /// Adds (or replaces) a key pair.
    pub fn insert(&mut self, access_key: &str, secret_key: &str) {
        self.keys
            .insert(access_key.to_owned(), secret_key.to_owned());
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.get(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.as_str())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
