//! One clock for every socket's lazy frames (see `conn`'s notes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::outbox::Shared;

/// The deadline for lazy frames (see the module notes). A socket is
/// listed, under its deadline, when such a frame finds neither a frame
/// that matters nor another lazy one waiting before it. Every delay is
/// the same, so the list is in deadline order: every tick, while anything
/// is listed, the clock takes the entries due before the next tick off its
/// front and wakes their writers, unless a frame that matters took the
/// lazy frames along in the meantime (the socket's deadline is then gone
/// or a later one). Each entry is looked at once.
#[derive(Debug)]
pub(crate) struct LazyClock {
    pub(super) delay: Duration,
    pub(super) tick: Duration,
    pub(super) listed: Mutex<VecDeque<(Instant, Arc<Shared>)>>,
    work: tokio::sync::Notify,
}

impl LazyClock {
    /// A clock for lazy frames that may wait up to `delay`: it ticks ten
    /// times per delay (at most a thousand times a second) and wakes a
    /// writer in the last tenth of the delay, which sends the frames then
    /// when nothing took them along sooner. A zero delay sends them at
    /// once.
    pub(crate) fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            tick: (delay / 10).max(Duration::from_millis(1)),
            listed: Mutex::default(),
            work: tokio::sync::Notify::new(),
        })
    }

    pub(super) fn listed(&self) -> MutexGuard<'_, VecDeque<(Instant, Arc<Shared>)>> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn list(&self, due: Instant, shared: Arc<Shared>) {
        let mut listed = self.listed();
        let first = listed.is_empty();
        listed.push_back((due, shared));
        drop(listed);
        if first {
            self.work.notify_one();
        }
    }

    /// Wakes the writers whose lazy frames are due before the next tick.
    pub(super) fn sweep(&self, now: Instant) {
        let horizon = now + self.tick;
        let mut due = Vec::new();
        {
            let mut listed = self.listed();
            while listed.front().is_some_and(|(due, _)| *due <= horizon) {
                due.extend(listed.pop_front());
            }
        }
        let mut wake = Vec::new();
        for (due, shared) in due {
            let mut outbox = shared.outbox();
            // Otherwise a frame that matters took them along.
            if outbox.lazy_due == Some(due) {
                // The writer takes the deadline along with the frames and
                // sends them by it.
                outbox.due_now = true;
                wake.extend(outbox.writer.take());
            }
        }
        for writer in wake {
            writer.wake();
        }
    }

    /// Ticks while anything is listed, until `stop` fires. Then lets go
    /// of the listed sockets (each of which holds the clock).
    pub(crate) async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            if self.listed().is_empty() {
                tokio::select! {
                    () = self.work.notified() => {}
                    () = stop.cancelled() => break,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.tick) => {}
                () = stop.cancelled() => break,
            }
            self.sweep(Instant::now());
        }
        self.listed().clear();
    }
}
