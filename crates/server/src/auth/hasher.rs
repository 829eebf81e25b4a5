//! Password checks off the chat's CPU: a few threads of their own, at a
//! low priority, fed from two bounded queues.
//!
//! An Argon2id check costs about 30 ms of CPU and 19 MiB. A flood of
//! logins must neither slow chat nor keep genuine staff out, so:
//!
//! - the checks run on `max_concurrent_hashes` dedicated threads at nice
//!   10: the runtime's threads (nice 0) always come first on the CPU, and
//!   an idle machine still checks at full speed;
//! - a browser with a valid device cookie for the account queues in the
//!   priority lane, served before any other;
//! - in the normal lane each source may have one check waiting or running
//!   at a time (`source_queued_logins`), so sixteen flooding clients hold
//!   at most sixteen places and a genuine login from anywhere else is
//!   served after them, not after their thousands;
//! - both lanes are bounded; beyond them (or when a check waits longer
//!   than `CHECK_DEADLINE`) the answer is "busy, try again", at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// The longest a login waits for its password check before "busy".
const CHECK_DEADLINE: Duration = Duration::from_secs(10);

/// Which queue a check waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A browser the account has logged in from before.
    Trusted,
    /// Everyone else, one place per source.
    Normal,
}

/// The check could not be queued, or waited too long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Busy;

type Work = Box<dyn FnOnce() -> bool + Send>;

struct Job {
    source: Option<u64>,
    work: Work,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Queues {
    trusted: VecDeque<Job>,
    normal: VecDeque<Job>,
    /// Sources with a check waiting or running in the normal lane.
    sources: HashMap<u64, u32>,
    stopped: bool,
}

struct Inner {
    queues: Mutex<Queues>,
    ready: Condvar,
    per_lane: usize,
    per_source: u32,
}

/// The password-check threads.
#[derive(Clone)]
pub(crate) struct Hasher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// Starts `threads` checking threads with room for `per_lane` checks
    /// waiting in each lane, and `per_source` at a time for one source in
    /// the normal lane.
    pub(crate) fn start(threads: u32, per_lane: usize, per_source: u32) -> Self {
        let inner = Arc::new(Inner {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            per_lane,
            per_source: per_source.max(1),
        });
        for i in 0..threads.max(1) {
            let inner = inner.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("haven-password-{i}"))
                .spawn(move || work(&inner));
            if spawned.is_err() {
                tracing::warn!("could not start a password-check thread");
            }
        }
        Self { inner }
    }

    /// Runs `check` on a checking thread and returns its answer.
    pub(crate) async fn check(
        &self,
        lane: Lane,
        source: u64,
        check: impl FnOnce() -> bool + Send + 'static,
    ) -> Result<bool, Busy> {
        let (reply, answer) = oneshot::channel();
        {
            let mut q = self.inner.queues.lock().unwrap_or_else(|p| p.into_inner());
            if q.stopped {
                return Err(Busy);
            }
            let job = |source| Job {
                source,
                work: Box::new(check),
                reply,
            };
            match lane {
                Lane::Trusted if q.trusted.len() < self.inner.per_lane => {
                    q.trusted.push_back(job(None));
                }
                Lane::Normal
                    if q.normal.len() < self.inner.per_lane
                        && q.sources.get(&source).copied().unwrap_or(0) < self.inner.per_source =>
                {
                    *q.sources.entry(source).or_insert(0) += 1;
                    q.normal.push_back(job(Some(source)));
                }
                _ => return Err(Busy),
            }
        }
        self.inner.ready.notify_one();
        match tokio::time::timeout(CHECK_DEADLINE, answer).await {
            Ok(Ok(ok)) => Ok(ok),
            _ => Err(Busy),
        }
    }

    /// Lets the threads finish what they hold and end.
    pub(crate) fn stop(&self) {
        let mut q = self.inner.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.stopped = true;
        q.trusted.clear();
        q.normal.clear();
        drop(q);
        self.inner.ready.notify_all();
    }
}

/// One checking thread: the trusted lane first, then the normal one.
fn work(inner: &Inner) {
    // On Linux a thread's nice value is its own: below the runtime's.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
    loop {
        let job = {
            let mut q = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if q.stopped {
                    return;
                }
                if let Some(job) = q.trusted.pop_front().or_else(|| q.normal.pop_front()) {
                    break job;
                }
                q = inner.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        // A login that gave up waiting has dropped its receiver: skip the
        // 30 ms it would cost.
        let answer = if job.reply.is_closed() {
            false
        } else {
            (job.work)()
        };
        if let Some(source) = job.source {
            let mut q = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = q.sources.get_mut(&source) {
                *n -= 1;
                if *n == 0 {
                    q.sources.remove(&source);
                }
            }
        }
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_place_per_source_and_the_trusted_lane_first() {
        let hasher = Hasher::start(1, 4, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let order = Arc::new(Mutex::new(Vec::new()));
        // The one thread is busy until released.
        let first = {
            let h = hasher.clone();
            tokio::spawn(async move { h.check(Lane::Normal, 1, move || hold.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Source 1 already has its place.
        assert_eq!(hasher.check(Lane::Normal, 1, || true).await, Err(Busy));
        let queued: Vec<_> = [(Lane::Normal, 2, "normal"), (Lane::Trusted, 0, "trusted")]
            .into_iter()
            .map(|(lane, source, name)| {
                let (h, order) = (hasher.clone(), order.clone());
                tokio::spawn(async move {
                    h.check(lane, source, move || {
                        order.lock().unwrap().push(name);
                        true
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        for q in queued {
            assert_eq!(q.await.unwrap(), Ok(true));
        }
        assert_eq!(*order.lock().unwrap(), ["trusted", "normal"]);
        hasher.stop();
    }

    #[tokio::test]
    async fn a_full_lane_answers_busy_at_once() {
        let hasher = Hasher::start(1, 2, 1);
        let ran = Arc::new(AtomicU32::new(0));
        // The one thread takes a check that holds it until released.
        let (started, on_start) = tokio::sync::oneshot::channel::<()>();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = {
            let h = hasher.clone();
            tokio::spawn(async move {
                h.check(Lane::Normal, 0, move || {
                    let _ = started.send(());
                    hold.recv().is_ok()
                })
                .await
            })
        };
        on_start.await.unwrap();
        // Two more wait: the lane is full.
        let waiting: Vec<_> = (1..3u64)
            .map(|source| {
                let (h, ran) = (hasher.clone(), ran.clone());
                tokio::spawn(async move {
                    h.check(Lane::Normal, source, move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                        true
                    })
                    .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        while hasher.inner.queues.lock().unwrap().normal.len() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.check(Lane::Normal, 9, || true).await, Err(Busy));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        for w in waiting {
            assert_eq!(w.await.unwrap(), Ok(true));
        }
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        hasher.stop();
    }

    #[test]
    fn the_checking_threads_run_below_the_runtime() {
        let hasher = Hasher::start(2, 4, 1);
        // Wait until both threads have set their priority.
        let mut nice = Vec::new();
        for _ in 0..100 {
            nice = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| {
                    let dir = t.ok()?.path();
                    let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                    if !comm.starts_with("haven-password") {
                        return None;
                    }
                    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                    // The fields after the name in parentheses; nice is
                    // the 19th field of the line.
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(16)?.parse::<i64>().ok()
                })
                .collect();
            if nice.len() >= 2 && nice.iter().all(|&n| n == 10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(nice.len() >= 2 && nice.iter().all(|&n| n == 10), "{nice:?}");
        hasher.stop();
    }
}
