//! ACL and bucket policy operations, over the grant logic of [`crate::acl`].

use super::*;

impl CairnS3 {
    pub(crate) async fn handle_get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let b = self.node.buckets().get(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(acl::grants(&b.owner, b.public)),
            owner: Some(owner(&b.owner)),
        }))
    }

    pub(crate) async fn handle_put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let public = acl::requested_public(
            input.acl.as_ref().map(|a| a.as_str()),
            input.access_control_policy.as_ref(),
        )?;
        let bucket = input.bucket;
        self.blocking(move |node| node.buckets().update(&bucket, |b| b.public = public))
            .await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(crate) async fn handle_get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        let b = self.node.buckets().get(&input.bucket).map_err(s3_err)?;
        let o = self
            .node
            .objects()
            .get(&input.bucket, &input.key)
            .map_err(s3_err)?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(acl::grants(&b.owner, o.meta.public_read)),
            owner: Some(owner(&b.owner)),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        let public = acl::requested_public(
            input.acl.as_ref().map(|a| a.as_str()),
            input.access_control_policy.as_ref(),
        )?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| {
            node.objects()
                .update_meta(&bucket, &key, |m| m.public_read = public)
        })
        .await?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    pub(crate) async fn handle_put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        let grants = acl::bucket_policy_grants(&input.bucket, &input.policy)?;
        let (bucket, policy) = (input.bucket, input.policy);
        self.blocking(move |node| {
            node.buckets().update(&bucket, |b| {
                b.policy_public = grants.get;
                b.policy_list = grants.list;
                b.policy = Some(policy);
            })
        })
        .await?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub(crate) async fn handle_get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let b = self.node.buckets().get(&req.input.bucket).map_err(s3_err)?;
        match b.policy {
            Some(policy) => Ok(S3Response::new(GetBucketPolicyOutput {
                policy: Some(policy),
            })),
            None => Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            )),
        }
    }

    pub(crate) async fn handle_delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| {
            node.buckets().update(&bucket, |b| {
                b.policy = None;
                b.policy_public = false;
                b.policy_list = false;
            })
        })
        .await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }
}
