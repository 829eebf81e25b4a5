//! What a run measures, shared by every client task: the run clock and
//! measurement window, latency histograms, and counters.
//!
//! Tasks record as they go. Counters are relaxed atomics; histograms are
//! split into a few mutex-guarded shards picked by session, so thousands
//! of tasks never queue on one lock.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::order::Tally;

const SHARDS: usize = 16;
/// Latencies are kept in microseconds, up to a minute, to three
/// significant digits.
const MAX_US: u64 = 60_000_000;

/// A histogram split into shards.
#[derive(Debug)]
pub struct Shards(Vec<Mutex<Histogram<u64>>>);

impl Default for Shards {
    fn default() -> Self {
        Self((0..SHARDS).map(|_| Mutex::new(new_histogram())).collect())
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("1 µs to 60 s at 3 digits is a valid range")
}

impl Shards {
    /// Records a latency for session `key`.
    pub fn record(&self, key: usize, value: Duration) {
        let us = u64::try_from(value.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        let mut h = self.0[key % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(us);
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.0 {
            let h = shard.lock().unwrap_or_else(|p| p.into_inner());
            let _ = all.add(&*h);
        }
        all
    }
}

/// A counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One direction of the chat: what was sent, accepted and received.
#[derive(Debug, Default)]
pub struct Direction {
    /// Messages written to the socket.
    pub sent: Counter,
    /// Messages the server accepted (acked; every sent one for servers
    /// without acks).
    pub accepted: Counter,
    /// Distinct messages received on the other side.
    pub received: Counter,
    /// Order checks of the finished streams.
    pub tally: Mutex<Tally>,
}

impl Direction {
    /// Adds a finished stream's order check.
    pub fn add_tally(&self, t: Tally) {
        self.tally.lock().unwrap_or_else(|p| p.into_inner()).add(t);
    }

    /// The order checks so far.
    pub fn tally(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepted but not (yet) received.
    pub fn outstanding(&self) -> u64 {
        self.accepted.get().saturating_sub(self.received.get())
    }
}

/// Everything one run measures.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    window_from: AtomicU64,
    window_to: AtomicU64,
    /// Help-seeker (or side `a`) to counsellor (side `b`).
    pub out: Direction,
    /// The echoes back.
    pub back: Direction,
    /// Round trips of messages due inside the window, from their send.
    pub rtt: Shards,
    /// Send to the server's ack, for help-seekers' messages due inside the
    /// window (with transcripts on, the ack waits for the record's sync).
    pub ack: Shards,
    /// How late sends went out against the open-loop schedule.
    pub send_lag: Shards,
    /// Hello to matched, for sessions of the main load.
    pub matched: Shards,
    /// Hello to matched, for churn sessions.
    pub churn_matched: Shards,
    /// Chat messages received inside the window (both directions).
    pub window_msgs: Counter,
    /// Sessions matched, as initiators see it.
    pub sessions_matched: Counter,
    /// Sessions matched, as responders see it (assigned, joined).
    pub peers_matched: Counter,
    /// Sessions that ran their course (queue and churn).
    pub sessions_done: Counter,
    /// Violations of the server's own `seq` order (gaps, repeats).
    pub seq: Mutex<Tally>,
    /// Queue position updates received.
    pub positions: Counter,
    /// Counsellor bots that went available.
    pub bots_ready: Counter,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// A run starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            window_from: AtomicU64::new(u64::MAX),
            window_to: AtomicU64::new(u64::MAX),
            out: Direction::default(),
            back: Direction::default(),
            rtt: Shards::default(),
            ack: Shards::default(),
            send_lag: Shards::default(),
            matched: Shards::default(),
            churn_matched: Shards::default(),
            window_msgs: Counter::default(),
            sessions_matched: Counter::default(),
            peers_matched: Counter::default(),
            sessions_done: Counter::default(),
            seq: Mutex::new(Tally::default()),
            positions: Counter::default(),
            bots_ready: Counter::default(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// Microseconds from the run's start to `at`.
    pub fn us_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the start.
    pub fn instant(&self, us: u64) -> Instant {
        self.start + Duration::from_micros(us)
    }

    /// Opens the measurement window now.
    pub fn open_window(&self) {
        self.window_from.store(self.now_us(), Ordering::Release);
    }

    /// Closes it now.
    pub fn close_window(&self) {
        self.window_to.store(self.now_us(), Ordering::Release);
    }

    /// Whether `us` falls inside the window.
    pub fn in_window(&self, us: u64) -> bool {
        us >= self.window_from.load(Ordering::Acquire)
            && us < self.window_to.load(Ordering::Acquire)
    }

    /// The window's length, once closed.
    pub fn window(&self) -> Duration {
        let from = self.window_from.load(Ordering::Acquire);
        let to = self.window_to.load(Ordering::Acquire);
        if from == u64::MAX || to == u64::MAX {
            return Duration::ZERO;
        }
        Duration::from_micros(to.saturating_sub(from))
    }

    /// A message arrived: counted for throughput when inside the window.
    pub fn relayed(&self) {
        if self.in_window(self.now_us()) {
            self.window_msgs.incr();
        }
    }

    /// Records an error by kind (an error code, a close code, a reason).
    pub fn error(&self, kind: impl Into<String>) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.into())
            .or_default() += 1;
    }

    /// Errors by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds a finished stream's check of the server's `seq`s.
    pub fn add_seq(&self, t: Tally) {
        self.seq.lock().unwrap_or_else(|p| p.into_inner()).add(t);
    }

    /// Messages accepted in either direction and not yet received.
    pub fn outstanding(&self) -> u64 {
        self.out.outstanding() + self.back.outstanding()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_bounds_what_counts() {
        let s = Stats::new();
        s.relayed();
        assert_eq!(s.window_msgs.get(), 0);
        s.open_window();
        s.relayed();
        s.relayed();
        std::thread::sleep(Duration::from_millis(2));
        s.close_window();
        s.relayed();
        assert_eq!(s.window_msgs.get(), 2);
        assert!(s.window() >= Duration::from_millis(2));
    }

    #[test]
    fn shards_merge_and_clamp() {
        let s = Shards::default();
        for i in 0..100u64 {
            s.record(usize::try_from(i).unwrap(), Duration::from_micros(i * 10));
        }
        s.record(0, Duration::from_secs(3600));
        let h = s.merged();
        assert_eq!(h.len(), 101);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_US - MAX_US / 1000);
    }
}
