//! Object tagging: put, get, delete (the current version or a named one).

use super::*;

impl CairnS3 {
    pub(crate) async fn handle_put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let pairs: Vec<(String, String)> = input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        let tags = check_tags(&pairs)?;
        let info =
            self.current_for_tagging(&input.bucket, &input.key, input.version_id.as_deref())?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| node.objects().update_meta(&bucket, &key, |m| m.tags = tags))
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: info.meta.version_id,
        }))
    }

    pub(crate) async fn handle_get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let info = match &input.version_id {
            Some(v) => self
                .node
                .objects()
                .get_version(&input.bucket, &input.key, v),
            None => self.node.objects().get(&input.bucket, &input.key),
        }
        .map_err(s3_err)?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: info
                .meta
                .tags
                .into_iter()
                .map(|(k, v)| Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
            version_id: info.meta.version_id,
        }))
    }

    pub(crate) async fn handle_delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let info =
            self.current_for_tagging(&input.bucket, &input.key, input.version_id.as_deref())?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| {
            node.objects()
                .update_meta(&bucket, &key, |m| m.tags.clear())
        })
        .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: info.meta.version_id,
        }))
    }

    /// The current object, for tag changes: tags of older versions are read-only here.
    pub(crate) fn current_for_tagging(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<ObjectInfo> {
        let info = self.node.objects().get(bucket, key).map_err(s3_err)?;
        match version {
            Some(v) if Some(v) != info.meta.version_id.as_deref().or(Some("null")) => Err(
                s3_error!(NotImplemented, "changing the tags of a non-current version"),
            ),
            _ => Ok(info),
        }
    }
}
