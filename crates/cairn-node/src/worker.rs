//! The one shape of Cairn's background work: a [`Worker`] (async, as Garage's) stepped by
//! [`spawn`] until shutdown; after each step it says whether it is busy (run again now),
//! throttled (after a pause), idle (at the next interval) or done, and the board shows that
//! state. Work that only needs the store is a sync [`Job`] (GC, scrub, roots, expiring upload
//! jobs, margins) run on a blocking thread through [`Blocking`]; work that talks to the network
//! (follow, provide, members, repair) awaits it, and never calls `block_on`. Upload jobs run as
//! tracked tasks shown as `uploads` (`crate::jobs`).
//!
//! A step that panics is caught: it is logged (`tracing::error`), shown on the board
//! ([`WorkerStatus::last_failed`], the panic's message in [`WorkerStatus::last`], counted in
//! [`WorkerStatus::panics`]), and the worker runs again after a pause of one interval (at least
//! a second), with the same value (whatever state the panic left in it).

use std::collections::BTreeMap;
use std::future::Future;
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
    /// What it is doing: `busy`, `throttled`, `idle` or `done`.
    #[serde(default)]
    pub state: String,
}

/// Every job's status, by name.
#[derive(Debug, Default)]
pub struct WorkerBoard(parking_lot::Mutex<BTreeMap<&'static str, WorkerStatus>>);

impl WorkerBoard {
    pub(crate) fn update(&self, name: &'static str, f: impl FnOnce(&mut WorkerStatus)) {
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
    /// What the job says after a run ([`WorkerState`]): by default it waits for its next
    /// interval.
    fn state(&self) -> WorkerState {
        WorkerState::Idle
    }
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
        let s = node.repo().collect_garbage()?;
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
/// quarantined (and, in a cluster, re-created by repair from its peers). Within a pass it is
/// [`WorkerState::Throttled`] (its budget spent, more to read after `pause`); between passes,
/// idle.
#[derive(Debug)]
pub struct Scrub {
    /// Bytes re-hashed per run (the throttle, with the pause).
    pub bytes_per_run: u64,
    /// The pause between runs within a pass.
    pub pause: Duration,
    cursor: Option<Vec<u8>>,
    passes: u64,
    found: u64,
}

impl Scrub {
    /// A scrubber reading about `bytes_per_run` bytes per run, `pause` apart within a pass.
    pub fn new(bytes_per_run: u64, pause: Duration) -> Self {
        Scrub {
            bytes_per_run,
            pause,
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

    fn state(&self) -> WorkerState {
        match self.cursor {
            Some(_) => WorkerState::Throttled(self.pause),
            None => WorkerState::Idle,
        }
    }
}

/// What a worker says after a step: when it wants to run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// More to do now: run again at once.
    Busy,
    /// Its budget is spent: run again after this pause.
    Throttled(Duration),
    /// Nothing to do: run again at the next interval.
    Idle,
    /// Finished for good.
    Done,
}

impl WorkerState {
    fn label(&self) -> &'static str {
        match self {
            WorkerState::Busy => "busy",
            WorkerState::Throttled(_) => "throttled",
            WorkerState::Idle => "idle",
            WorkerState::Done => "done",
        }
    }
}

/// One step of a worker: its summary (empty: nothing worth a log line) and what comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worked {
    /// A one-line summary for the log and the board.
    pub summary: String,
    /// When to run again.
    pub next: WorkerState,
}

impl Worked {
    /// A step after which the worker waits for its interval.
    pub fn idle(summary: impl Into<String>) -> Worked {
        Worked {
            summary: summary.into(),
            next: WorkerState::Idle,
        }
    }
}

/// A background worker: async, so the network's calls are awaited, never blocked on. Work that
/// reads or writes the store goes to a blocking thread ([`Node::blocking`]); a sync [`Job`]
/// runs as a worker through [`Blocking`].
pub trait Worker: Send + 'static {
    /// Name, for logs and the board.
    fn name(&self) -> &'static str;
    /// One step.
    fn work(&mut self, node: &Node) -> impl Future<Output = Result<Worked, NodeError>> + Send;
}

/// A sync [`Job`] as a worker: each run on a blocking thread, then what the job's
/// [`Job::state`] says (idle until the interval, unless the job says otherwise).
#[derive(Debug)]
pub struct Blocking<J>(Option<J>);

impl<J: Job> Blocking<J> {
    /// Wraps `job`.
    pub fn new(job: J) -> Self {
        Blocking(Some(job))
    }
}

impl<J: Job> Worker for Blocking<J> {
    fn name(&self) -> &'static str {
        self.0.as_ref().map_or("job", Job::name)
    }

    async fn work(&mut self, node: &Node) -> Result<Worked, NodeError> {
        let Some(mut job) = self.0.take() else {
            return Err(NodeError::Unavailable("the job was lost".into()));
        };
        let node = node.clone();
        let (job, result) = tokio::task::spawn_blocking(move || {
            // A panic is caught here so the job value comes back, then raised again for the
            // runner to report as every worker's panic is.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&node)));
            (job, r)
        })
        .await
        .map_err(crate::task_failed)?;
        let next = job.state();
        self.0 = Some(job);
        match result {
            Ok(r) => r.map(|summary| Worked { summary, next }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Runs the sync `job` every `interval` (first run after one interval) until `stop` turns true;
/// a job whose [`Job::state`] says throttled runs again after its pause instead.
pub fn spawn_periodic(
    node: Node,
    job: impl Job,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn(node, Blocking::new(job), interval, stop)
}

/// Runs `worker` until it is done or `stop` turns true: the first step after one `interval`,
/// then as each step asks ([`WorkerState`]). A step that panics is reported on the board and the
/// worker runs again after a pause of one interval (at least a second).
pub fn spawn(
    node: Node,
    mut worker: impl Worker,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use futures::FutureExt;
    tokio::spawn(async move {
        let name = worker.name();
        let board = node.workers().clone();
        board.update(name, |w| w.state = WorkerState::Idle.label().into());
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = WorkerState::Idle;
        // After a busy or throttled step the interval counts from that step's end: ticks
        // missed meanwhile do not make an idle worker run again at once.
        let mut off_the_clock = false;
        loop {
            if next == WorkerState::Done {
                return;
            }
            match next {
                WorkerState::Idle if off_the_clock => {
                    ticks.reset();
                    off_the_clock = false;
                }
                WorkerState::Busy | WorkerState::Throttled(_) => off_the_clock = true,
                _ => {}
            }
            let wait = async {
                match next {
                    WorkerState::Busy => {}
                    WorkerState::Throttled(pause) => tokio::time::sleep(pause).await,
                    WorkerState::Idle => {
                        ticks.tick().await;
                    }
                    WorkerState::Done => {}
                }
            };
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = wait => {}
            }
            if *stop.borrow() {
                return;
            }
            board.update(name, |w| {
                w.running = true;
                w.state = WorkerState::Busy.label().into();
            });
            let started = std::time::Instant::now();
            let outcome = std::panic::AssertUnwindSafe(worker.work(&node))
                .catch_unwind()
                .await;
            let took = started.elapsed();
            match outcome {
                Err(panic) => {
                    let message = panic_message(&*panic);
                    board.update(name, |w| {
                        w.running = false;
                        w.runs += 1;
                        w.panics += 1;
                        w.last_end_ms = crate::model::codec::now_ms();
                        w.last_took_ms = took.as_millis() as u64;
                        w.last_failed = true;
                        w.last = format!("panicked: {message}");
                        w.state = WorkerState::Idle.label().into();
                    });
                    let pause = interval.max(Duration::from_secs(1));
                    tracing::error!(job = name, "panicked: {message}; restarting in {pause:?}");
                    next = WorkerState::Throttled(pause);
                }
                Ok(result) => {
                    next = result.as_ref().map_or(WorkerState::Idle, |w| w.next);
                    board.update(name, |w| {
                        w.running = false;
                        w.runs += 1;
                        w.last_end_ms = crate::model::codec::now_ms();
                        w.last_took_ms = took.as_millis() as u64;
                        w.last_failed = result.is_err();
                        w.last = match &result {
                            Ok(done) => done.summary.clone(),
                            Err(e) => e.to_string(),
                        };
                        w.state = next.label().into();
                    });
                    match result {
                        Ok(done) if done.summary.is_empty() => {
                            tracing::trace!(job = name, ?took, "nothing to do")
                        }
                        Ok(done) => tracing::info!(job = name, ?took, "{}", done.summary),
                        Err(e) => tracing::warn!(job = name, "failed: {e}"),
                    }
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

    #[tokio::test]
    async fn scrub_is_throttled_within_a_pass_and_idle_between_passes() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        // A file of several blocks; a budget of one byte reads about one block per run.
        let data = vec![7u8; 3 * 256 * 1024 + 10];
        node.files()
            .add_reader(&mut &data[..], crate::CidVersion::V1, true)
            .unwrap();
        let mut worker = Blocking::new(Scrub::new(1, Duration::from_secs(60)));
        let mut states = Vec::new();
        for _ in 0..20 {
            let worked = worker.work(&node).await.unwrap();
            states.push(worked.next);
            if worked.next == WorkerState::Idle {
                break;
            }
        }
        assert!(states.len() > 2, "{states:?}");
        let (last, within) = states.split_last().unwrap();
        assert_eq!(
            *last,
            WorkerState::Idle,
            "a finished pass waits its interval"
        );
        assert!(
            within
                .iter()
                .all(|s| *s == WorkerState::Throttled(Duration::from_secs(60))),
            "{states:?}"
        );
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

    /// Busy for `busy` steps, then throttled once, then done.
    struct Steps {
        n: Arc<AtomicUsize>,
        busy: usize,
    }
    impl Worker for Steps {
        fn name(&self) -> &'static str {
            "steps"
        }
        async fn work(&mut self, _: &Node) -> Result<Worked, NodeError> {
            let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
            let next = match n {
                n if n <= self.busy => WorkerState::Busy,
                n if n == self.busy + 1 => WorkerState::Throttled(Duration::from_millis(10)),
                _ => WorkerState::Done,
            };
            Ok(Worked {
                summary: format!("step {n}"),
                next,
            })
        }
    }

    /// Says the states it is given, one a step, then is done.
    struct Script(Vec<WorkerState>, Arc<AtomicUsize>);
    impl Worker for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        async fn work(&mut self, _: &Node) -> Result<Worked, NodeError> {
            let n = self.1.fetch_add(1, Ordering::SeqCst);
            Ok(Worked {
                summary: String::new(),
                next: self.0.get(n).copied().unwrap_or(WorkerState::Done),
            })
        }
    }

    /// An idle step after a throttled one waits a whole interval (as a scrub between passes
    /// does), not the ticks it missed while throttled.
    #[tokio::test(start_paused = true)]
    async fn idle_after_throttled_waits_a_whole_interval() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let hour = Duration::from_secs(3600);
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let n = Arc::new(AtomicUsize::new(0));
        let script = Script(
            vec![WorkerState::Throttled(2 * hour), WorkerState::Idle],
            n.clone(),
        );
        let started = tokio::time::Instant::now();
        spawn(node, script, hour, rx).await.unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 3);
        // First step after one interval, the second after the 2 h throttle, the third a whole
        // interval after that.
        assert_eq!(started.elapsed(), 4 * hour);
    }

    /// A busy worker runs again at once (not after its interval), a throttled one after its
    /// pause, and a done one ends its task by itself; the board shows the state. (Tokio's clock
    /// is paused: the hour-long interval passes at once, and the time that passed is exact.)
    #[tokio::test(start_paused = true)]
    async fn a_worker_steps_as_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let worker = Steps {
            n: n.clone(),
            busy: 3,
        };
        let hour = Duration::from_secs(3600);
        let started = tokio::time::Instant::now();
        let h = spawn(node.clone(), worker, hour, rx);
        h.await.expect("a done worker ends its task");
        assert_eq!(n.load(Ordering::SeqCst), 5);
        // One interval before the first step, the throttle's 10 ms, and nothing else: the busy
        // steps did not wait.
        assert_eq!(started.elapsed(), hour + Duration::from_millis(10));
        let (_, s) = node
            .workers()
            .snapshot()
            .into_iter()
            .find(|(name, _)| name == "steps")
            .unwrap();
        assert_eq!(
            (s.runs, s.state.as_str(), s.last.as_str()),
            (5, "done", "step 5")
        );
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
