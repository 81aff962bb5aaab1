//! `cairn bench`: an S3 load generator that works against any endpoint (Cairn, Garage, MinIO,
//! AWS). It creates a scratch bucket, measures large-object PUT/GET throughput, 4 KiB PUT, GET
//! and HEAD operations per second with p50/p99 latency, listing, and a multipart upload, prints
//! a table, and deletes what it made. Every object's bytes are distinct, so a deduplicating
//! store (like Cairn) cannot skip any write.

#![warn(missing_docs)]

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:8000`.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Region to sign for.
    pub region: String,
    /// Size of each large object.
    pub large_size: usize,
    /// Number of large objects.
    pub large_count: usize,
    /// Number of 4 KiB objects.
    pub small_count: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Size of the multipart object (parts of 8 MiB).
    pub multipart_size: usize,
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An S3 request failed.
    #[error("{op}: {message}")]
    S3 {
        /// Operation.
        op: &'static str,
        /// The SDK's error.
        message: String,
    },
}

fn s3_err<E: std::fmt::Debug>(op: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError::S3 {
        op,
        message: format!("{e:?}").chars().take(400).collect(),
    }
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Row {
    /// Phase name.
    pub name: String,
    /// Operations done.
    pub ops: usize,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Per-operation latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl Row {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// All phases of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The phases, in order.
    pub rows: Vec<Row>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<34} {:>7} {:>9} {:>10} {:>10} {:>9} {:>9}",
            "phase", "ops", "seconds", "MiB/s", "ops/s", "p50 ms", "p99 ms"
        )?;
        for r in &self.rows {
            let secs = r.elapsed.as_secs_f64().max(1e-9);
            writeln!(
                f,
                "{:<34} {:>7} {:>9.2} {:>10.1} {:>10.1} {:>9.2} {:>9.2}",
                r.name,
                r.ops,
                secs,
                r.bytes as f64 / secs / (1 << 20) as f64,
                r.ops as f64 / secs,
                r.percentile(0.5).as_secs_f64() * 1e3,
                r.percentile(0.99).as_secs_f64() * 1e3,
            )?;
        }
        Ok(())
    }
}

/// Distinct pseudo-random bytes for object `seed`.
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Runs `count` operations, `concurrency` at a time, timing each.
async fn measure<F, Fut>(
    name: &str,
    count: usize,
    concurrency: usize,
    bytes_each: u64,
    op: F,
) -> Result<Row, BenchError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), BenchError>>,
{
    let start = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(0..count)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await.map(|()| t.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    latencies.sort();
    Ok(Row {
        name: name.to_owned(),
        ops: count,
        bytes: bytes_each * count as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// A client for the endpoint (path-style, no retries: a failure is a failure).
pub fn client(cfg: &Config) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .endpoint_url(&cfg.endpoint)
        .region(Region::new(cfg.region.clone()))
        .credentials_provider(Credentials::new(
            &cfg.access_key,
            &cfg.secret_key,
            None,
            None,
            "cairn-bench",
        ))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Runs every phase against a new scratch bucket, which is emptied and deleted afterwards.
pub async fn run(cfg: &Config) -> Result<Report, BenchError> {
    let s3 = client(cfg);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let bucket = format!("cairn-bench-{stamp}");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(s3_err("CreateBucket"))?;
    let result = phases(cfg, &s3, &bucket).await;
    cleanup(&s3, &bucket).await;
    result
}

async fn phases(cfg: &Config, s3: &Client, bucket: &str) -> Result<Report, BenchError> {
    let mut report = Report::default();
    let c = cfg.concurrency;
    let large = cfg.large_size as u64;

    let mib = cfg.large_size >> 20;
    report.rows.push(
        measure(&format!("PUT {mib} MiB"), cfg.large_count, c, large, |i| {
            let body = payload(cfg.large_size, i as u64 + 1);
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(format!("large/{i}"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(s3_err("PutObject"))
            }
        })
        .await?,
    );
    report.rows.push(
        measure(
            &format!("GET {mib} MiB"),
            cfg.large_count,
            c,
            large,
            |i| async move {
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(format!("large/{i}"))
                    .send()
                    .await
                    .map_err(s3_err("GetObject"))?;
                let mut body = out.body;
                let mut n = 0u64;
                while let Some(chunk) = body.try_next().await.map_err(s3_err("GetObject body"))? {
                    n += chunk.len() as u64;
                }
                if n != large {
                    return Err(BenchError::S3 {
                        op: "GetObject",
                        message: format!("got {n} bytes, expected {large}"),
                    });
                }
                Ok(())
            },
        )
        .await?,
    );

    let small = 4096u64;
    report.rows.push(
        measure("PUT 4 KiB", cfg.small_count, c, small, |i| {
            let body = payload(4096, 1_000_000 + i as u64);
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(format!("small/{i:07}"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(s3_err("PutObject"))
            }
        })
        .await?,
    );
    report.rows.push(
        measure("GET 4 KiB", cfg.small_count, c, small, |i| async move {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(format!("small/{i:07}"))
                .send()
                .await
                .map_err(s3_err("GetObject"))?;
            out.body.collect().await.map_err(s3_err("GetObject body"))?;
            Ok(())
        })
        .await?,
    );
    report.rows.push(
        measure("HEAD 4 KiB", cfg.small_count, c, 0, |i| async move {
            s3.head_object()
                .bucket(bucket)
                .key(format!("small/{i:07}"))
                .send()
                .await
                .map(|_| ())
                .map_err(s3_err("HeadObject"))
        })
        .await?,
    );

    // listing: every small key, 1000 per page
    let start = Instant::now();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("small/")
        .into_paginator()
        .send();
    let mut keys = 0usize;
    let mut latencies = Vec::new();
    let mut t = Instant::now();
    while let Some(page) = pages.next().await {
        let page = page.map_err(s3_err("ListObjectsV2"))?;
        latencies.push(t.elapsed());
        t = Instant::now();
        keys += page.contents().len();
    }
    latencies.sort();
    report.rows.push(Row {
        name: format!("LIST {keys} keys (pages of 1000)"),
        ops: keys,
        bytes: 0,
        elapsed: start.elapsed(),
        latencies,
    });

    // multipart: 8 MiB parts, `concurrency` at a time
    let part = 8usize << 20;
    let parts = cfg.multipart_size.div_ceil(part).max(1);
    let start = Instant::now();
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("multipart")
        .send()
        .await
        .map_err(s3_err("CreateMultipartUpload"))?;
    let id = upload.upload_id().unwrap_or_default().to_owned();
    let row = measure("UploadPart 8 MiB", parts, c, part as u64, |i| {
        let body = payload(part, 5_000_000 + i as u64);
        let id = id.clone();
        async move {
            s3.upload_part()
                .bucket(bucket)
                .key("multipart")
                .upload_id(id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(|_| ())
                .map_err(s3_err("UploadPart"))
        }
    })
    .await?;
    let listed = s3
        .list_parts()
        .bucket(bucket)
        .key("multipart")
        .upload_id(&id)
        .send()
        .await
        .map_err(s3_err("ListParts"))?;
    let completed: Vec<CompletedPart> = listed
        .parts()
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .set_part_number(p.part_number())
                .set_e_tag(p.e_tag().map(str::to_owned))
                .build()
        })
        .collect();
    let t = Instant::now();
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("multipart")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .map_err(s3_err("CompleteMultipartUpload"))?;
    let complete = t.elapsed();
    report.rows.push(row);
    report.rows.push(Row {
        name: format!("multipart {} MiB (incl. Complete)", (parts * part) >> 20),
        ops: 1,
        bytes: (parts * part) as u64,
        elapsed: start.elapsed(),
        latencies: vec![complete],
    });
    Ok(report)
}

async fn cleanup(s3: &Client, bucket: &str) {
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        let keys: Vec<aws_sdk_s3::types::ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .set_key(o.key().map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if keys.is_empty() {
            continue;
        }
        if let Ok(delete) = aws_sdk_s3::types::Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
        {
            let _ = s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await;
        }
    }
    let _ = s3.delete_bucket().bucket(bucket).send().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_distinct_and_sized() {
        assert_eq!(payload(4096, 1).len(), 4096);
        assert_ne!(payload(64, 1), payload(64, 2));
        let row = Row {
            name: "x".into(),
            ops: 3,
            bytes: 3 << 20,
            elapsed: Duration::from_secs(1),
            latencies: vec![
                Duration::from_millis(1),
                Duration::from_millis(2),
                Duration::from_millis(9),
            ],
        };
        assert_eq!(row.percentile(0.5), Duration::from_millis(2));
        assert_eq!(row.percentile(0.99), Duration::from_millis(9));
        let table = Report { rows: vec![row] }.to_string();
        assert!(table.contains("p99 ms") && table.contains("3.0"), "{table}");
    }
}
