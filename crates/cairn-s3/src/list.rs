//! Listings: `ListObjects` (v1 and v2) and `ListObjectVersions`, paged by the node.

use super::*;

impl CairnS3 {
    pub(crate) async fn handle_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let listing = self
            .node
            .objects()
            .list(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                input.marker.as_deref().filter(|m| !m.is_empty()),
                max,
            )
            .map_err(s3_err)?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            marker: Some(input.marker.clone().unwrap_or_default()),
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            next_marker: listing
                .next_marker
                .filter(|_| input.delimiter.as_deref().is_some_and(|d| !d.is_empty())),
            contents: Some(
                listing
                    .objects
                    .iter()
                    .map(|o| list_entry(o, url, Some(&listing.owner)))
                    .collect(),
            ),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let after = match &input.continuation_token {
            Some(t) => Some(key_from_token(t)?),
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let listing = self
            .node
            .objects()
            .list(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                after.as_deref(),
                max,
            )
            .map_err(s3_err)?;
        let fetch_owner = input.fetch_owner.unwrap_or(false);
        let contents: Vec<Object> = listing
            .objects
            .iter()
            .map(|o| list_entry(o, url, fetch_owner.then_some(listing.owner.as_str())))
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max as i32),
            key_count: Some((contents.len() + listing.common_prefixes.len()) as i32),
            continuation_token: input.continuation_token,
            is_truncated: Some(listing.truncated),
            next_continuation_token: listing.next_marker.as_deref().map(token_from_key),
            contents: Some(contents),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            start_after: input.start_after,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let key_marker = input.key_marker.as_deref().filter(|m| !m.is_empty());
        let version_marker = input.version_id_marker.as_deref().filter(|m| !m.is_empty());
        let (entries, truncated) = self
            .node
            .objects()
            .list_versions(&input.bucket, &prefix, key_marker, version_marker, max)
            .map_err(s3_err)?;
        let owner_id = self
            .node
            .buckets()
            .get(&input.bucket)
            .map_err(s3_err)?
            .owner;
        let name = |k: &str| if url { url_encode(k) } else { k.to_owned() };
        let vid = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".to_owned());
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for e in &entries {
            if e.cid.is_some() {
                versions.push(ObjectVersion {
                    key: Some(name(&e.key)),
                    version_id: Some(vid(&e.version_id)),
                    is_latest: Some(e.is_latest),
                    e_tag: Some(etag(&e.meta)),
                    size: Some(e.meta.size as i64),
                    last_modified: Some(timestamp(e.meta.last_modified_ms)),
                    owner: Some(owner(&owner_id)),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            } else {
                markers.push(DeleteMarkerEntry {
                    key: Some(name(&e.key)),
                    version_id: Some(vid(&e.version_id)),
                    is_latest: Some(e.is_latest),
                    last_modified: Some(timestamp(e.meta.last_modified_ms)),
                    owner: Some(owner(&owner_id)),
                });
            }
        }
        let last = entries.last().filter(|_| truncated);
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: last.map(|e| e.key.clone()),
            next_version_id_marker: last.map(|e| vid(&e.version_id)),
            key_marker: input.key_marker,
            version_id_marker: input.version_id_marker,
            versions: Some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
