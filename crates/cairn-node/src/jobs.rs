//! Upload jobs: a body is spooled to a file in the data folder (synced, then renamed into
//! place), a job record is committed as `ACTIVE`, and the caller gets the job id at once while
//! the import (UnixFS DAG, pinned, placed on the cluster when there is one) runs in the
//! background; the record then says `DONE` with the CID, BLAKE3 and size, or `ERROR`.
//!
//! Jobs survive a restart: [`Jobs::resume`] re-runs every `ACTIVE` job whose spooled
//! body is whole (the import is content-addressed, so running it twice gives the same CID) and
//! marks the others `ERROR`. Finished jobs are forgotten after a retention time
//! ([`ExpireJobs`]).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::model::codec::now_ms;
use crate::{CidVersion, Node, NodeError, io_err};

/// Upload jobs ([`Node::jobs`]).
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Upload jobs: submit, read, wait, resume, expire.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { node: self }
    }
}

/// Folder (in the data folder) holding spooled bodies.
pub const SPOOL_DIR: &str = "jobs";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    /// The import is running (or waiting to resume).
    Active,
    /// The file is stored: `cid`, `blake3` and `size` are set.
    Done,
    /// The import failed: `error` says why.
    Error,
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub job_id: String,
    /// Where it is.
    pub state: JobState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The file's root CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// BLAKE3 of the file's bytes, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// The file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The extension given with the upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
    /// CID version asked for (0: what `ipfs add` gives).
    pub cid_version: u8,
    /// When it was submitted, Unix milliseconds.
    pub created_ms: i64,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// The user who uploaded it (`None`: an anonymous caller); it may read the CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Asked with `?public=true`: the CID is published (else only its owner and the operator
    /// read it).
    #[serde(default)]
    pub public: bool,
}

/// upload job id → its record (the REST API's background imports).
pub(crate) const JOBS: cairn_store::Table<JobRecord> = cairn_store::Table::new("jobs");

/// upload job id → what to do once it is `DONE` (kept until done, so it survives a restart).
pub(crate) const JOB_AFTER: cairn_store::Table<AfterJob> = cairn_store::Table::new("job_after");

/// What a job does once its file is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterJob {
    /// Delete the job's sources (`ssh/process` with `remove`): each `(key, etag)` of
    /// `bucket`, when the object there still has that ETag (one written since stays).
    RemoveSources {
        /// The bucket.
        bucket: String,
        /// The keys and the ETags they had when they were read.
        objects: Vec<(String, String)>,
    },
}

/// Who submits an upload, and whether its CID is to be published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uploader {
    /// The user it acts as (`None`: anonymous).
    pub owner: Option<String>,
    /// Publish the CID.
    pub public: bool,
}

/// Why an upload was refused before it became a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The body is larger than allowed.
    #[error("the body is over the upload limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The body could not be read.
    #[error("reading the body: {0}")]
    Body(String),
    /// Anything else.
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Shared between a node's clones: wakes long-polls when a job changes, and tracks the
/// running imports (shown as the `uploads` worker; drained at shutdown).
#[derive(Debug)]
pub(crate) struct JobsState {
    changed: tokio::sync::watch::Sender<u64>,
    tasks: tokio_util::task::TaskTracker,
}

impl Default for JobsState {
    fn default() -> Self {
        JobsState {
            changed: tokio::sync::watch::Sender::new(0),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }
}

/// The board's name of the upload-job imports.
pub const UPLOADS: &str = "uploads";

/// An extension as accepted with an upload: 1–16 characters, ASCII letters or digits in
/// dot-separated runs (`mp4`, `tar.gz`).
pub fn valid_ext(ext: &str) -> bool {
    (1..=16).contains(&ext.len())
        && ext
            .split('.')
            .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn new_job_id() -> Result<String, NodeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Unsupported(format!("randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Whether `id` can name a job (32 hex digits), checked before any lookup (public for the
/// fuzz targets, `fuzz/`).
#[doc(hidden)]
pub fn valid_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Node {
    fn spool_path(&self, id: &str) -> PathBuf {
        self.store()
            .root()
            .join(SPOOL_DIR)
            .join(format!("{id}.body"))
    }

    fn put_job(&self, record: &JobRecord) -> Result<(), NodeError> {
        self.store()
            .update(|txn| txn.put(JOBS, &record.job_id, record))?;
        self.jobs.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Runs a recorded job's import in the background, as a task of the `uploads` worker.
    fn start_job(&self, record: JobRecord) {
        let node = self.clone();
        let board = self.workers().clone();
        board.update(UPLOADS, |w| {
            w.running = true;
            w.state = "busy".into();
        });
        self.jobs.tasks.spawn(async move {
            let id = record.job_id.clone();
            let started = std::time::Instant::now();
            let result = node.import_job(&record).await;
            // This task still counts itself.
            let others = node.jobs.tasks.len().saturating_sub(1);
            board.update(UPLOADS, |w| {
                w.runs += 1;
                w.running = others > 0;
                w.state = if others > 0 { "busy" } else { "idle" }.into();
                w.last_end_ms = now_ms();
                w.last_took_ms = started.elapsed().as_millis() as u64;
                w.last_failed = result.is_err();
                w.last = match &result {
                    Ok(_) => format!("job {id} done; {others} running"),
                    Err(e) => format!("job {id} failed: {e}; {others} running"),
                };
            });
            let mut done = record;
            done.finished_ms = Some(now_ms());
            match result {
                Ok((cid, blake3, size)) => {
                    done.state = JobState::Done;
                    done.cid = Some(cid);
                    done.blake3 = Some(blake3);
                    done.size = Some(size);
                }
                Err(e) => {
                    tracing::warn!(job = %id, "upload job failed: {e}");
                    done.state = JobState::Error;
                    done.error = Some(e.to_string());
                }
            }
            let path = node.spool_path(&id);
            let saved = {
                let node = node.clone();
                tokio::task::spawn_blocking(move || node.put_job(&done)).await
            };
            match saved {
                Ok(Ok(())) => {
                    let _ = tokio::fs::remove_file(path).await;
                    node.after_job(&id).await;
                }
                Ok(Err(e)) => tracing::error!(job = %id, "recording the job's end: {e}"),
                Err(e) => tracing::error!(job = %id, "recording the job's end: {e}"),
            }
        });
    }

    /// Runs what a finished job was to do after it ([`AfterJob`]): when it is `DONE`, then
    /// forgets it; a failed job's sources stay. Failures are logged and the record kept, so
    /// the next start tries again ([`Jobs::resume`]).
    async fn after_job(&self, id: &str) {
        let id = id.to_owned();
        let ran = self
            .blocking(move |node| {
                let Some(after) = node.store().read(JOB_AFTER, &id)? else {
                    return Ok(());
                };
                let job = node.jobs().get(&id)?;
                if job.state == JobState::Done {
                    match &after {
                        AfterJob::RemoveSources { bucket, objects } => {
                            let gone = node.objects().delete_unchanged(bucket, objects)?;
                            tracing::info!(
                                job = %id,
                                bucket,
                                removed = gone.len(),
                                kept = objects.len() - gone.len(),
                                "the job's sources are removed (those unchanged since)"
                            );
                        }
                    }
                }
                node.store()
                    .update(|txn| Ok::<_, NodeError>(txn.delete(JOB_AFTER, &id)?))?;
                Ok(())
            })
            .await;
        if let Err(e) = ran {
            tracing::error!("after an upload job: {e}");
        }
    }

    /// Imports a job's spooled body: (CID, BLAKE3 hex, size).
    async fn import_job(&self, record: &JobRecord) -> Result<(String, String, u64), NodeError> {
        let path = self.spool_path(&record.job_id);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err(format!("open {}", path.display())))?;
        let version = CidVersion::try_from(record.cid_version)
            .map_err(|_| NodeError::Unsupported(format!("cid_version {}", record.cid_version)))?;
        let hasher = std::sync::Arc::new(parking_lot::Mutex::new(blake3::Hasher::new()));
        let hashing = hasher.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
            if let Ok(c) = &chunk {
                hashing.lock().update(c);
            }
            chunk
        });
        let uploader = Uploader {
            owner: record.owner.clone(),
            public: record.public,
        };
        let link = self
            .add_stream_with(stream, version, move |node, staged| {
                node.commit_upload(staged, &uploader)
            })
            .await?;
        let blake3 = hasher.lock().finalize().to_hex().to_string();
        Ok((link.cid.to_string(), blake3, link.file_size))
    }

    /// Commits an upload's file, pinned; who may read it is recorded first, so the pin is
    /// never published for a moment it should not be. A private upload of a CID already
    /// published stays published (the same bytes were made public by someone).
    fn commit_upload(
        &self,
        staged: crate::objects::StagedObject,
        uploader: &Uploader,
    ) -> Result<cairn_dag::file::FileLink, NodeError> {
        let cid = staged.cid();
        let mut access = self.access().cid_access(&cid)?;
        let published_already = self.store().is_pinned(&cid)? && !access.private_pin;
        let before = access.clone();
        access.owners.extend(uploader.owner.clone());
        access.private_pin = !(uploader.public || published_already);
        if access != before {
            self.store()
                .update(|txn| txn.put(crate::access::CID_ACCESS, &cid.to_string(), &access))?;
        }
        self.commit_pinned(staged, uploader.public)
    }
}
impl Jobs<'_> {
    /// Spools `body` (at most `limit` bytes) durably, records an `ACTIVE` job and starts its
    /// import in the background; returns the job as recorded. Must be called inside a tokio
    /// runtime.
    pub async fn submit<S, E>(
        &self,
        body: S,
        ext: Option<String>,
        version: CidVersion,
        limit: u64,
        uploader: Uploader,
    ) -> Result<JobRecord, SubmitError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.submit_then(body, ext, version, limit, uploader, None)
            .await
    }

    /// [`submit`](Self::submit), with `after` to run once the job is `DONE` (recorded with
    /// the job, in one transaction, so a restart does not lose it).
    pub async fn submit_then<S, E>(
        &self,
        mut body: S,
        ext: Option<String>,
        version: CidVersion,
        limit: u64,
        uploader: Uploader,
        after: Option<AfterJob>,
    ) -> Result<JobRecord, SubmitError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if let Some(e) = &ext
            && !valid_ext(e)
        {
            return Err(NodeError::Unsupported(format!(
                "extension {e:?}: 1 to 16 letters or digits, dot-separated runs (tar.gz)"
            ))
            .into());
        }
        let id = new_job_id()?;
        let dir = self.node.store().root().join(SPOOL_DIR);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(format!("create {}", dir.display())))?;
        let part = dir.join(format!("{id}.part"));
        let spooled = async {
            let mut file = tokio::fs::File::create(&part)
                .await
                .map_err(io_err(format!("create {}", part.display())))?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| SubmitError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(SubmitError::TooLarge { limit });
                }
                file.write_all(&chunk)
                    .await
                    .map_err(io_err(format!("write {}", part.display())))?;
            }
            file.sync_all()
                .await
                .map_err(io_err(format!("sync {}", part.display())))?;
            Ok::<_, SubmitError>(())
        }
        .await;
        if let Err(e) = spooled {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        let body_path = self.node.spool_path(&id);
        tokio::fs::rename(&part, &body_path)
            .await
            .map_err(io_err(format!("rename {}", part.display())))?;
        sync_dir(&dir).await?;
        let record = JobRecord {
            job_id: id.clone(),
            state: JobState::Active,
            error: None,
            cid: None,
            blake3: None,
            size: None,
            ext,
            cid_version: version as u8,
            created_ms: now_ms(),
            finished_ms: None,
            owner: uploader.owner,
            public: uploader.public,
        };
        self.node.store().update(|txn| {
            txn.put(JOBS, &record.job_id, &record)?;
            if let Some(after) = &after {
                txn.put(JOB_AFTER, &record.job_id, after)?;
            }
            Ok::<_, NodeError>(())
        })?;
        self.node.jobs.changed.send_modify(|n| *n += 1);
        self.node.start_job(record.clone());
        Ok(record)
    }

    /// A job's record.
    pub fn get(&self, id: &str) -> Result<JobRecord, NodeError> {
        if !valid_job_id(id) {
            return Err(NodeError::NoSuchJob(id.to_owned()));
        }
        self.node
            .store()
            .read(JOBS, id)?
            .ok_or_else(|| NodeError::NoSuchJob(id.to_owned()))
    }

    /// Waits (up to `timeout`) until job `id` is no longer `ACTIVE`; returns its record then,
    /// or as it is when the time is up.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobRecord, NodeError> {
        let mut changes = self.node.jobs.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let owned = id.to_owned();
            let record = self
                .node
                .blocking(move |node| node.jobs().get(&owned))
                .await?;
            if record.state != JobState::Active {
                return Ok(record);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok(record),
            }
        }
    }

    /// Waits up to `timeout` for the upload jobs running now (at shutdown; a job cut off is
    /// resumed from its spooled body at the next start); whether they all ended.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.node.jobs.tasks.close();
        tokio::time::timeout(timeout, self.node.jobs.tasks.wait())
            .await
            .is_ok()
    }

    /// After a restart: re-runs every `ACTIVE` job whose body was spooled whole, marks the
    /// others `ERROR`, and removes spooled parts no job owns. Returns (resumed, failed).
    pub fn resume(&self) -> Result<(u64, u64), NodeError> {
        let (mut resumed, mut failed) = (0, 0);
        // Jobs that ended but did not finish what was to follow: run it now.
        for (id, _) in self.node.store().list(JOB_AFTER)? {
            match self.get(&id) {
                Ok(job) if job.state == JobState::Active => {}
                Ok(_) => {
                    let node = self.node.clone();
                    self.node
                        .jobs
                        .tasks
                        .spawn(async move { node.after_job(&id).await });
                }
                // Its job is gone (expired): nothing to follow.
                Err(_) => {
                    self.node
                        .store()
                        .update(|txn| Ok::<_, NodeError>(txn.delete(JOB_AFTER, &id)?))?;
                }
            }
        }
        for (_, mut record) in self.node.store().list(JOBS)? {
            if record.state != JobState::Active {
                continue;
            }
            if self.node.spool_path(&record.job_id).is_file() {
                tracing::info!(job = %record.job_id, "resuming upload job");
                self.node.start_job(record);
                resumed += 1;
            } else {
                record.state = JobState::Error;
                record.error = Some("the node stopped and the upload's body was lost".into());
                record.finished_ms = Some(now_ms());
                self.node.put_job(&record)?;
                failed += 1;
            }
        }
        let dir = self.node.store().root().join(SPOOL_DIR);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "part") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok((resumed, failed))
    }

    /// Forgets finished jobs older than `retention`; returns how many.
    pub fn expire(&self, retention: Duration) -> Result<u64, NodeError> {
        let before = now_ms() - retention.as_millis() as i64;
        let mut gone = 0;
        for (id, record) in self.node.store().list(JOBS)? {
            if record.state != JobState::Active
                && record.finished_ms.is_some_and(|t| t <= before)
                && self.node.store().update(|txn| {
                    txn.delete(JOB_AFTER, &id)?;
                    txn.delete(JOBS, &id)
                })?
            {
                gone += 1;
            }
        }
        Ok(gone)
    }
}

async fn sync_dir(dir: &std::path::Path) -> Result<(), NodeError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(io_err(format!("sync {}", dir.display())))
    })
    .await
    .map_err(|e| NodeError::Unsupported(e.to_string()))?
}

/// Forgets finished upload jobs after a retention time.
#[derive(Debug)]
pub struct ExpireJobs {
    /// How long a finished job stays readable.
    pub retention: Duration,
}

impl crate::worker::Job for ExpireJobs {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        Ok(format!(
            "{} finished upload jobs forgotten",
            node.jobs().expire(self.retention)?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter([Ok(Bytes::from_static(bytes))])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_finish_resume_after_a_restart_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let job = node
            .jobs()
            .submit(
                body(b"hello"),
                Some("txt".into()),
                CidVersion::V0,
                100,
                Uploader::default(),
            )
            .await
            .unwrap();
        assert_eq!(job.state, JobState::Active);
        let done = node
            .jobs()
            .wait(&job.job_id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(done.state, JobState::Done, "{done:?}");
        // The import ran as a task of the `uploads` worker, and says so on the board.
        let uploads = node
            .workers()
            .snapshot()
            .into_iter()
            .find(|(name, _)| name == UPLOADS)
            .map(|(_, s)| s)
            .expect("uploads on the board");
        assert_eq!(
            (uploads.runs, uploads.last_failed),
            (1, false),
            "{uploads:?}"
        );
        assert!(uploads.last.contains(&job.job_id), "{uploads:?}");
        assert_eq!(
            done.cid.as_deref(),
            Some("QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"),
            "what `ipfs add` gives"
        );
        assert_eq!(
            done.blake3.as_deref(),
            Some(blake3::hash(b"hello").to_hex().as_str())
        );
        // (The spool goes right after the record says DONE.)
        for _ in 0..100 {
            if !node.spool_path(&job.job_id).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!node.spool_path(&job.job_id).exists(), "the spool is gone");
        assert!(matches!(
            node.jobs()
                .submit(
                    body(b"too long"),
                    None,
                    CidVersion::V0,
                    4,
                    Uploader::default()
                )
                .await,
            Err(SubmitError::TooLarge { limit: 4 })
        ));

        // As a crash would leave them: one job whose body was spooled, one whose was not.
        let mut resumable = done.clone();
        resumable.job_id = new_job_id().unwrap();
        resumable.state = JobState::Active;
        (resumable.cid, resumable.finished_ms) = (None, None);
        std::fs::write(node.spool_path(&resumable.job_id), b"hello").unwrap();
        node.put_job(&resumable).unwrap();
        let mut lost = resumable.clone();
        lost.job_id = new_job_id().unwrap();
        node.put_job(&lost).unwrap();
        std::fs::write(dir.path().join(SPOOL_DIR).join("x.part"), b"half").unwrap();
        assert_eq!(node.jobs().resume().unwrap(), (1, 1));
        let resumed = node
            .jobs()
            .wait(&resumable.job_id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!((resumed.state, resumed.cid), (JobState::Done, done.cid));
        let failed = node.jobs().get(&lost.job_id).unwrap();
        assert_eq!(failed.state, JobState::Error);
        assert!(!dir.path().join(SPOOL_DIR).join("x.part").exists());

        assert_eq!(node.jobs().expire(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(node.jobs().expire(Duration::ZERO).unwrap(), 3);
        assert!(matches!(
            node.jobs().get(&job.job_id),
            Err(NodeError::NoSuchJob(_))
        ));
    }

    /// Issue 17: an upload is not published unless asked; its uploader (and the operator) may
    /// read its CID, another user may not; `?public=true` or the operator's pin publishes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_are_private_unless_asked() {
        use crate::access::{Action, Caller, Resource};
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let upload = |bytes: &'static [u8], owner: &str, public: bool| {
            let node = node.clone();
            let uploader = Uploader {
                owner: Some(owner.to_owned()),
                public,
            };
            async move {
                let job = node
                    .jobs()
                    .submit(body(bytes), None, CidVersion::V0, 100, uploader)
                    .await
                    .unwrap();
                let done = node
                    .jobs()
                    .wait(&job.job_id, Duration::from_secs(30))
                    .await
                    .unwrap();
                assert_eq!(done.state, JobState::Done, "{done:?}");
                cairn_dag::Cid::try_from(done.cid.unwrap().as_str()).unwrap()
            }
        };
        let may_read = |who: &Caller, cid| {
            node.access()
                .authorize(who, Action::ReadCid, &Resource::cid(cid))
                .is_ok()
        };
        let (alice, bob) = (Caller::user("alice"), Caller::user("bob"));

        let private = upload(b"alice's own", "alice", false).await;
        assert!(node.store().is_pinned(&private).unwrap(), "kept from GC");
        assert_eq!(node.access().published(&private).unwrap(), None);
        assert!(may_read(&alice, private));
        assert!(may_read(&Caller::Root, private));
        assert!(!may_read(&bob, private));
        assert!(!may_read(&Caller::Anonymous, private));
        let (swept, _) = node.roots().provide_sweep(None, 100).unwrap();
        assert!(!swept.contains(&private), "a private pin is not announced");

        let public = upload(b"for everyone", "bob", true).await;
        assert!(node.access().published(&public).unwrap().is_some());
        assert!(may_read(&Caller::Anonymous, public));
        // the same bytes uploaded privately later stay published
        assert_eq!(upload(b"for everyone", "alice", false).await, public);
        assert!(node.access().published(&public).unwrap().is_some());

        // the operator's pin publishes a private upload
        node.repo().pin(&private).unwrap();
        assert!(may_read(&Caller::Anonymous, private));
    }
}
