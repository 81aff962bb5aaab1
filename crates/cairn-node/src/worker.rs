//! The one shape of Cairn's background jobs: a [`Job`] run on a blocking thread every
//! `interval`, until shutdown: GC, scrub, roots, provider re-announcement, follow, members,
//! repair and margins all have this shape.
//!
//! A run that panics is caught: it is logged (`tracing::error`), shown on the board
//! ([`WorkerStatus::last_failed`], the panic's message in [`WorkerStatus::last`], counted in
//! [`WorkerStatus::panics`]), and the job runs again after a pause of one interval (at least
//! a second), with the same job value (whatever state the panic left in it).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Node, NodeError};

/// What a background job last did (`cairn workers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerStatus {
    /// Runs finished.
    pub runs: u64,
    /// Whether one is running now.
    pub running: bool,
    /// When the last run ended, Unix milliseconds.
    pub last_end_ms: i64,
    /// How long it took.
    pub last_took_ms: u64,
    /// Its summary, or its error.
    pub last: String,
    /// Whether it failed (an error or a panic).
    pub last_failed: bool,
    /// Runs that panicked (each was followed by a restart).
    pub panics: u64,
}

/// Every job's status, by name.
#[derive(Debug, Default)]
pub struct WorkerBoard(parking_lot::Mutex<BTreeMap<&'static str, WorkerStatus>>);

impl WorkerBoard {
    fn update(&self, name: &'static str, f: impl FnOnce(&mut WorkerStatus)) {
        f(self.0.lock().entry(name).or_default());
    }

    /// A copy of every job's status.
    pub fn snapshot(&self) -> Vec<(String, WorkerStatus)> {
        self.0
            .lock()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// A background job.
pub trait Job: Send + 'static {
    /// Name, for logs.
    fn name(&self) -> &'static str;
    /// One run; returns a one-line summary for the log.
    fn run(&mut self, node: &Node) -> Result<String, NodeError>;
}

/// Garbage collection: expires bucket roots past retention, then removes blocks no pin, object,
/// part, version or retained root reaches.
#[derive(Debug, Default)]
pub struct Gc;

impl Job for Gc {
    fn name(&self) -> &'static str {
        "gc"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        let s = node.collect_garbage()?;
        Ok(format!(
            "removed {} blocks ({} bytes), kept {}, missing {}; mark {}",
            s.removed,
            s.freed_bytes,
            s.kept,
            s.missing,
            if s.complete { "complete" } else { "incomplete" }
        ))
    }
}

/// Scrubbing: each run re-hashes about `bytes_per_run` bytes of block files, continuing where
/// the last run stopped, so every block is re-read once per pass; a block that fails is
/// quarantined (and, in a cluster, re-created by repair from its peers).
#[derive(Debug)]
pub struct Scrub {
    /// Bytes re-hashed per run (the throttle, with the run interval).
    pub bytes_per_run: u64,
    cursor: Option<Vec<u8>>,
    passes: u64,
    found: u64,
}

impl Scrub {
    /// A scrubber reading about `bytes_per_run` bytes per run.
    pub fn new(bytes_per_run: u64) -> Self {
        Scrub {
            bytes_per_run,
            cursor: None,
            passes: 0,
            found: 0,
        }
    }
}

impl Job for Scrub {
    fn name(&self) -> &'static str {
        "scrub"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        let page = node
            .store()
            .scrub_page(self.cursor.as_deref(), self.bytes_per_run)?;
        self.cursor = page.next;
        if self.cursor.is_none() {
            self.passes += 1;
        }
        for cid in &page.corrupt {
            tracing::error!(%cid, "scrub: block failed its hash; quarantined");
        }
        self.found += page.corrupt.len() as u64;
        Ok(format!(
            "re-hashed {} blocks ({} bytes), {} corrupt quarantined ({} since start); {} full passes",
            page.checked,
            page.bytes,
            page.corrupt.len(),
            self.found,
            self.passes
        ))
    }
}

/// Runs `job` every `interval` (first run after one interval) until `stop` turns true.
pub fn spawn_periodic(
    node: Node,
    mut job: impl Job,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            let name = job.name();
            let board = node.workers().clone();
            board.update(name, |w| w.running = true);
            let node = node.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                // A panic is caught here so the job value comes back and runs again.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&node)));
                (job, r, started.elapsed())
            })
            .await;
            match outcome {
                Ok((j, Err(panic), took)) => {
                    job = j;
                    let message = panic_message(&*panic);
                    board.update(name, |w| {
                        w.running = false;
                        w.runs += 1;
                        w.panics += 1;
                        w.last_end_ms = crate::model::codec::now_ms();
                        w.last_took_ms = took.as_millis() as u64;
                        w.last_failed = true;
                        w.last = format!("panicked: {message}");
                    });
                    let pause = interval.max(Duration::from_secs(1));
                    tracing::error!(job = name, "panicked: {message}; restarting in {pause:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                    ticks.reset_immediately();
                }
                Ok((j, Ok(result), took)) => {
                    job = j;
                    board.update(name, |w| {
                        w.running = false;
                        w.runs += 1;
                        w.last_end_ms = crate::model::codec::now_ms();
                        w.last_took_ms = took.as_millis() as u64;
                        w.last_failed = result.is_err();
                        w.last = match &result {
                            Ok(summary) => summary.clone(),
                            Err(e) => e.to_string(),
                        };
                    });
                    match result {
                        Ok(summary) if summary.is_empty() => {
                            tracing::trace!(job = name, ?took, "nothing to do")
                        }
                        Ok(summary) => tracing::info!(job = name, ?took, "{summary}"),
                        Err(e) => tracing::warn!(job = name, "failed: {e}"),
                    }
                }
                Err(e) => {
                    // Only a cancelled blocking task gets here (panics are caught above).
                    board.update(name, |w| {
                        w.running = false;
                        w.last_failed = true;
                        w.last = format!("lost: {e}");
                    });
                    tracing::error!(job = name, "lost: {e}");
                    return;
                }
            }
        }
    })
}

/// The message a panic carried (a `&str` or a `String`, as `panic!` makes them).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(Arc<AtomicUsize>);
    impl Job for Count {
        fn name(&self) -> &'static str {
            "count"
        }
        fn run(&mut self, _: &Node) -> Result<String, NodeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(String::new())
        }
    }

    /// Panics on its first run, then counts.
    struct PanicsOnce(Arc<AtomicUsize>);
    impl Job for PanicsOnce {
        fn name(&self) -> &'static str {
            "panics-once"
        }
        fn run(&mut self, _: &Node) -> Result<String, NodeError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("first run fails");
            }
            Ok("fine".into())
        }
    }

    #[tokio::test]
    async fn a_job_that_panics_is_reported_and_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let h = spawn_periodic(
            node.clone(),
            PanicsOnce(n.clone()),
            Duration::from_millis(20),
            rx,
        );
        let status = || {
            node.workers()
                .snapshot()
                .into_iter()
                .find(|(name, _)| name == "panics-once")
                .map(|(_, s)| s)
        };
        // the panic is on the board first
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while status().is_none_or(|s| s.panics == 0) {
            assert!(tokio::time::Instant::now() < deadline, "no panic reported");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let s = status().unwrap();
        assert!(s.last_failed && s.last.contains("first run fails"), "{s:?}");
        // then, after the pause (at least a second), it runs again
        while n.load(Ordering::SeqCst) < 2 {
            assert!(tokio::time::Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(true).unwrap();
        h.await.unwrap();
        let s = status().unwrap();
        assert_eq!(s.panics, 1);
        assert!(!s.last_failed && s.last == "fine", "{s:?}");
    }

    #[tokio::test]
    async fn runs_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let h = spawn_periodic(node, Count(n.clone()), Duration::from_millis(20), rx);
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(true).unwrap();
        h.await.unwrap();
        let runs = n.load(Ordering::SeqCst);
        assert!((2..=9).contains(&runs), "{runs} runs");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(n.load(Ordering::SeqCst), runs, "ran after stop");
    }
}
