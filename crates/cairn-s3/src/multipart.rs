//! Multipart uploads: create, parts (streamed or copied from an object range), complete
//! (composite checksums), abort and the listings of parts and uploads.

use super::*;
use cairn_node::multipart::CreateUpload;
use cairn_node::put::UploadPart;

impl CairnS3 {
    pub(crate) async fn handle_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let me = self.user(&req.credentials);
        let input = req.input;
        let meta = meta_from(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.expires,
            input.metadata,
        );
        if input
            .checksum_type
            .as_ref()
            .is_some_and(|t| t.as_str() == ChecksumType::FULL_OBJECT)
        {
            return Err(s3_error!(NotImplemented, "full-object multipart checksums"));
        }
        let algorithm = input.checksum_algorithm.clone();
        let algo = algorithm
            .as_ref()
            .and_then(|a| checksum::algorithm(a.as_str()))
            .map(str::to_owned);
        let mut meta = meta;
        if let Some(tagging) = &input.tagging {
            meta.tags = tags_from_header(tagging)?;
        }
        let customer = sse_customer!(input)?;
        let encryption = sse::requested(input.server_side_encryption.as_ref(), customer)?;
        let (bucket, key) = (input.bucket, input.key);
        let (b, k) = (bucket.clone(), key.clone());
        let (id, upload) = self
            .blocking(move |node| {
                node.multipart().create(CreateUpload {
                    bucket: &b,
                    key: &k,
                    meta,
                    owner: &me,
                    checksum_algorithm: algo,
                    encryption,
                })
            })
            .await?;
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) =
            sse::out(&upload.meta);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(id),
            checksum_type: algorithm
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::COMPOSITE)),
            checksum_algorithm: algorithm,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let checks = body_checks!(req);
        let mut input = req.input;
        let number = part_number(input.part_number)?;
        let customer = sse_customer!(input)?;
        let (body, check, cut) = checked_body(input.body.take(), checks);
        let record = self
            .node
            .multipart()
            .upload_part(UploadPart {
                check: Some(check),
                ..self.part(
                    (input.upload_id, input.bucket, input.key),
                    number,
                    body,
                    customer,
                )
            })
            .await
            .map_err(|e| staging_error(&cut, e))?;
        let sums = record.checksums.clone();
        let mut out = UploadPartOutput {
            e_tag: Some(ETag::Strong(record.etag)),
            ..Default::default()
        };
        for (algo, value) in sums {
            match algo.as_str() {
                "CRC32" => out.checksum_crc32 = Some(value),
                "CRC32C" => out.checksum_crc32c = Some(value),
                "CRC64NVME" => out.checksum_crc64nvme = Some(value),
                "SHA1" => out.checksum_sha1 = Some(value),
                _ => out.checksum_sha256 = Some(value),
            }
        }
        Ok(S3Response::new(out))
    }

    pub(crate) async fn handle_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let customer = sse_customer!(input)?;
        // The upload and the part's key first, before the source is read.
        self.node
            .multipart()
            .check_part(
                (&input.upload_id, &input.bucket, &input.key),
                customer.as_ref(),
            )
            .map_err(s3_err)?;
        let source_customer = sse_customer!(copy_source input)?;
        let source = self.copy_source(
            &req.extensions,
            input.copy_source,
            conditions!(copy_source input),
            source_customer,
        )?;
        let range = match &input.copy_source_range {
            Some(r) => Some(copy_source_range(r, source.plan.info().meta.size)?),
            None => None,
        };
        let plan = source.plan.narrowed(range);
        let body = self.node.objects().body(&plan).map_err(s3_err)?;
        let record = self
            .node
            .multipart()
            .upload_part(self.part(
                (input.upload_id, input.bucket, input.key),
                number,
                body,
                customer,
            ))
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(record.etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let parts = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let listed: Vec<(u32, String)> = parts
            .iter()
            .map(|p| {
                let n = part_number(p.part_number.unwrap_or(0))?;
                let etag = p
                    .e_tag
                    .as_ref()
                    .map(|e| e.value().to_owned())
                    .unwrap_or_default();
                Ok((n, etag))
            })
            .collect::<S3Result<_>>()?;
        if listed.is_empty() {
            return Err(s3_error!(MalformedXML, "the upload lists no parts"));
        }
        let whole = Checksum {
            checksum_crc32: input.checksum_crc32,
            checksum_crc32c: input.checksum_crc32c,
            checksum_crc64nvme: input.checksum_crc64nvme,
            checksum_sha1: input.checksum_sha1,
            checksum_sha256: input.checksum_sha256,
            ..Default::default()
        };
        let checksums =
            self.composite_checksum(&input.upload_id, &input.bucket, &input.key, &parts, &whole)?;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        let (b, k) = (bucket.clone(), key.clone());
        let version = self.cid_version;
        let info = self
            .blocking(move |node| {
                node.multipart()
                    .complete((&id, &b, &k), &listed, version, checksums)
            })
            .await?;
        let sums = checksums_out(&info.meta);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{bucket}/{key}")),
            bucket: Some(bucket),
            key: Some(key),
            e_tag: Some(etag(&info.meta)),
            version_id: info.meta.version_id.clone(),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        self.blocking(move |node| node.multipart().abort(&id, &bucket, &key))
            .await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(crate) async fn handle_list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let initiator = self
            .node
            .multipart()
            .get(&input.upload_id, &input.bucket, &input.key)
            .map_err(s3_err)?
            .owner;
        let max = max_keys(input.max_parts);
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let all: Vec<_> = self
            .node
            .multipart()
            .parts(&input.upload_id)
            .map_err(s3_err)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<_> = all.into_iter().take(max).collect();
        let next = page.last().map(|p| p.number as i32);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next,
            is_truncated: Some(truncated),
            owner: Some(owner(&initiator)),
            initiator: Some(Initiator {
                display_name: Some(initiator.clone()),
                id: Some(initiator),
            }),
            parts: Some(
                page.into_iter()
                    .map(|p| Part {
                        part_number: Some(p.number as i32),
                        e_tag: Some(ETag::Strong(p.record.etag)),
                        size: Some(p.record.size as i64),
                        last_modified: Some(timestamp(p.record.last_modified_ms)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_uploads);
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let all: Vec<_> = self
            .node
            .multipart()
            .list(&input.bucket)
            .map_err(s3_err)?
            .into_iter()
            .filter(|(_, r)| r.key.starts_with(&prefix) && r.key.as_str() > key_marker.as_str())
            .collect();
        let truncated = all.len() > max;
        let page: Vec<_> = all.into_iter().take(max).collect();
        let next_key = page.last().map(|(_, r)| r.key.clone());
        let next_id = page.last().map(|(id, _)| id.clone());
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated.then_some(next_key).flatten(),
            next_upload_id_marker: truncated.then_some(next_id).flatten(),
            uploads: Some(
                page.into_iter()
                    .map(|(id, r)| MultipartUpload {
                        key: Some(r.key),
                        upload_id: Some(id),
                        initiated: Some(timestamp(r.initiated_ms)),
                        owner: Some(owner(&r.owner)),
                        initiator: Some(Initiator {
                            display_name: Some(r.owner.clone()),
                            id: Some(r.owner),
                        }),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    /// For an upload created with a checksum algorithm: every listed part must carry its
    /// checksum, equal to the one verified at upload; the composite checksum
    /// (`HASH(part checksums)-N`) must equal the one sent for the whole, if any. Returns the
    /// composite to store with the object.
    pub(crate) fn composite_checksum(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        parts: &[CompletedPart],
        whole: &Checksum,
    ) -> S3Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        let upload = match self.node.multipart().get(id, bucket, key) {
            Ok(u) => u,
            Err(_) => return Ok(out), // complete_upload reports it (or answers a repeat)
        };
        let Some(algo) = upload.checksum_algorithm else {
            return Ok(out);
        };
        let stored: std::collections::BTreeMap<u32, String> = self
            .node
            .multipart()
            .parts(id)
            .map_err(s3_err)?
            .into_iter()
            .filter_map(|p| p.record.checksums.get(&algo).map(|c| (p.number, c.clone())))
            .collect();
        let mut sums = Vec::with_capacity(parts.len());
        for p in parts {
            let listed = match algo.as_str() {
                "CRC32" => &p.checksum_crc32,
                "CRC32C" => &p.checksum_crc32c,
                "CRC64NVME" => &p.checksum_crc64nvme,
                "SHA1" => &p.checksum_sha1,
                _ => &p.checksum_sha256,
            };
            let number = p.part_number.unwrap_or(0).max(0) as u32;
            match (listed, stored.get(&number)) {
                (Some(l), Some(s)) if l == s => sums.push(s.as_str()),
                _ => {
                    return Err(s3_error!(
                        BadDigest,
                        "part {number} lacks its {algo} checksum or it does not match"
                    ));
                }
            }
        }
        let composite = checksum::composite(&algo, &sums)
            .ok_or_else(|| s3_error!(InvalidRequest, "unreadable part checksum"))?;
        let sent = match algo.as_str() {
            "CRC32" => &whole.checksum_crc32,
            "CRC32C" => &whole.checksum_crc32c,
            "CRC64NVME" => &whole.checksum_crc64nvme,
            "SHA1" => &whole.checksum_sha1,
            _ => &whole.checksum_sha256,
        };
        if sent.as_ref().is_some_and(|s| *s != composite) {
            return Err(s3_error!(
                BadDigest,
                "the {algo} of the upload does not match"
            ));
        }
        out.insert(algo, composite);
        Ok(out)
    }

    /// The node's request for one part of `(upload, bucket, key)`, without body checks.
    fn part<S>(
        &self,
        (upload, bucket, key): (String, String, String),
        number: u32,
        body: S,
        customer: Option<(cairn_node::crypt::Key, String)>,
    ) -> UploadPart<S> {
        UploadPart {
            upload,
            bucket,
            key,
            number,
            body,
            version: self.cid_version,
            customer,
            check: None,
        }
    }
}
