//! Bucket operations: list, create, head, delete, location; versioning and default encryption
//! settings; and the configurations Cairn does not keep, answered as "none set".

use super::*;

impl CairnS3 {
    pub(crate) async fn handle_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let me = self.user(&req.credentials);
        let buckets = self
            .node
            .buckets()
            .list()
            .map_err(s3_err)?
            .into_iter()
            .filter(|(_, rec)| rec.owner == me)
            .map(|(name, rec)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(rec.created_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&me)),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let me = self.user(&req.credentials);
        let public = match &req.input.acl {
            Some(acl) => acl::canned_is_public(acl.as_str())?,
            None => false,
        };
        let bucket = req.input.bucket;
        let location = format!("/{bucket}");
        self.blocking(move |node| {
            node.buckets().create(&bucket, &me)?;
            if public {
                node.buckets().update(&bucket, |b| b.public = true)?;
            }
            Ok(())
        })
        .await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    pub(crate) async fn handle_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.node.buckets().get(&req.input.bucket).map_err(s3_err)?;
        let mut resp = S3Response::new(HeadBucketOutput::default());
        // The bucket's current IPFS root (committed within a second of the last change).
        if let Some(root) = self
            .node
            .roots()
            .latest(&req.input.bucket)
            .map_err(s3_err)?
        {
            for (name, value) in [
                ("x-cairn-root", root.tree.to_string()),
                ("x-cairn-record", root.record.to_string()),
                ("x-cairn-root-seq", root.seq.to_string()),
            ] {
                if let Ok(value) = value.parse() {
                    resp.headers.insert(name, value);
                }
            }
        }
        Ok(resp)
    }

    pub(crate) async fn handle_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| node.buckets().delete(&bucket))
            .await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    pub(crate) async fn handle_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.node.buckets().get(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(REGION.to_owned())),
        }))
    }

    pub(crate) async fn handle_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let status = input
            .versioning_configuration
            .status
            .map(|s| s.as_str().to_owned())
            .ok_or_else(|| s3_error!(MalformedXML, "VersioningConfiguration without Status"))?;
        if status != cairn_node::versions::ENABLED && status != cairn_node::versions::SUSPENDED {
            return Err(s3_error!(MalformedXML, "versioning status {status:?}"));
        }
        let bucket = input.bucket;
        self.blocking(move |node| node.buckets().set_versioning(&bucket, &status))
            .await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    pub(crate) async fn handle_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let b = self.node.buckets().get(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: b.versioning.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        let rules = &input.server_side_encryption_configuration.rules;
        let mut on = false;
        for rule in rules {
            if let Some(d) = &rule.apply_server_side_encryption_by_default {
                sse::requested(Some(&d.sse_algorithm), None)?;
                on = true;
            }
        }
        if !on {
            return Err(s3_error!(
                MalformedXML,
                "a rule with ApplyServerSideEncryptionByDefault is needed"
            ));
        }
        let bucket = input.bucket;
        self.blocking(move |node| node.buckets().set_encryption(&bucket, true))
            .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    pub(crate) async fn handle_get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        if !self
            .node
            .buckets()
            .encrypted(&req.input.bucket)
            .map_err(s3_err)?
        {
            return Err(not_configured(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "server side encryption",
            ));
        }
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        sse_algorithm: ServerSideEncryption::from_static(
                            ServerSideEncryption::AES256,
                        ),
                        kms_master_key_id: None,
                    }),
                    bucket_key_enabled: None,
                }],
            }),
        }))
    }

    pub(crate) async fn handle_delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| node.buckets().set_encryption(&bucket, false))
            .await?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }

    pub(crate) async fn handle_get_bucket_cors(
        &self,
        _req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        Err(not_configured(S3ErrorCode::NoSuchCORSConfiguration, "CORS"))
    }

    pub(crate) async fn handle_get_bucket_lifecycle_configuration(
        &self,
        _req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        Err(not_configured(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            "lifecycle",
        ))
    }

    pub(crate) async fn handle_get_bucket_website(
        &self,
        _req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        Err(not_configured(
            S3ErrorCode::NoSuchWebsiteConfiguration,
            "website",
        ))
    }

    pub(crate) async fn handle_get_bucket_tagging(
        &self,
        _req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        Err(not_configured(S3ErrorCode::NoSuchTagSet, "tag set"))
    }

    pub(crate) async fn handle_get_bucket_replication(
        &self,
        _req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        Err(not_configured(
            S3ErrorCode::ReplicationConfigurationNotFoundError,
            "replication",
        ))
    }

    pub(crate) async fn handle_get_object_lock_configuration(
        &self,
        _req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        Err(not_configured(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            "object lock",
        ))
    }

    pub(crate) async fn handle_get_bucket_ownership_controls(
        &self,
        _req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        Err(not_configured(
            S3ErrorCode::OwnershipControlsNotFoundError,
            "ownership controls",
        ))
    }

    pub(crate) async fn handle_get_public_access_block(
        &self,
        _req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        Err(not_configured(
            S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "public access block",
        ))
    }
}
