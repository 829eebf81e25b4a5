//! Getting events and snapshots out of the node, without ever holding up
//! chat.
//!
//! The router actor publishes each event here as JSON, and the in-process
//! feed carries it at once to this node's dashboards. With Redis
//! (`redis.rs`), a bounded buffer also feeds one publisher task (`PUBLISH
//! haven:events`, and a `SET haven:node:<node>` snapshot with a TTL), and a
//! subscriber task brings every other node's events into the feed. When
//! the buffer is full, because Redis is down or slow, events for the other
//! nodes are dropped and counted; the publisher reconnects by itself, and
//! dashboards resync from the snapshots. This node's own dashboards never
//! go blank for want of Redis: its own events and snapshot are always
//! here (`snapshots.rs`).
//!
//! `pauses.rs` passes topic pauses between nodes, signed (`control.rs`).

mod control;
mod pauses;
mod redis;
mod snapshots;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use haven_protocol::events::Snapshot;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use self::pauses::{PauseOrder, Pauses};
use self::redis::{HISTORY_PREFIX, SNAPSHOT_PREFIX};
use crate::config::Config;

/// Items buffered for each dashboard feed subscriber.
const FEED_BUFFER: usize = 4096;

/// What the feed carries to dashboards on this node.
#[derive(Clone, Debug)]
pub(crate) enum FeedItem {
    /// One event record, as JSON.
    Event(Arc<str>),
    /// Events may have been lost (Redis reconnected): reload snapshots.
    Resync,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub(crate) struct EventStats {
    /// Events handed to the bus.
    pub(crate) events: AtomicU64,
    /// Events published to Redis.
    pub(crate) published: AtomicU64,
    /// Events dropped: buffer full or Redis failing.
    pub(crate) dropped: AtomicU64,
    /// Whether the last Redis command succeeded.
    pub(crate) redis_connected: AtomicBool,
}

/// The node's event bus. Cheap to share.
#[derive(Debug)]
pub(crate) struct Events {
    node: Arc<str>,
    feed: broadcast::Sender<FeedItem>,
    /// Pause orders from other nodes (through Redis).
    pauses: broadcast::Sender<Pauses>,
    /// Subscribed before the Redis subscriber starts, so its first
    /// `Pauses::All` is never missed; taken by [`Events::apply_pauses`].
    pause_rx: Mutex<Option<broadcast::Receiver<Pauses>>>,
    /// The way to the other nodes, when Redis is configured.
    redis: Option<redis::Bus>,
    /// Signs and checks pause orders between nodes.
    control: Option<control::ControlKey>,
    /// The last event's number on this node.
    seq: AtomicU64,
    /// This node's own snapshot and history.
    local: snapshots::Local,
    pub(crate) stats: EventStats,
}

impl Events {
    /// Starts the bus and, with Redis configured, its publisher and
    /// subscriber tasks on `tracker`, stopping when `shutdown` fires.
    pub(crate) fn start(
        config: &Config,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let (feed, _) = broadcast::channel(FEED_BUFFER);
        let (pauses, pause_rx) = broadcast::channel(64);
        let node: Arc<str> = Arc::from(config.node());
        let (bus, outgoing) = match redis::Bus::new(config) {
            Some((bus, outgoing)) => (Some(bus), Some(outgoing)),
            None => (None, None),
        };
        let events = Arc::new(Self {
            node,
            feed,
            pauses,
            pause_rx: Mutex::new(Some(pause_rx)),
            redis: bus,
            control: config.control_key.as_deref().map(control::ControlKey::new),
            seq: AtomicU64::new(0),
            local: snapshots::Local::default(),
            stats: EventStats::default(),
        });
        if let Some(outgoing) = outgoing {
            let ttl = (config.supervisor.snapshot_interval * 3).as_secs().max(2);
            redis::start(&events, outgoing, ttl, shutdown, tracker);
        }
        events
    }

    /// This node's name.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The last event's number on this node.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Numbers, stamps and publishes one event. Never waits.
    pub(crate) fn emit(&self, event: haven_protocol::events::Event) {
        let record = haven_protocol::events::Record {
            node: self.node.to_string(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at: crate::broker::session::now_ms(),
            event,
        };
        if let Ok(json) = serde_json::to_string(&record) {
            self.publish(Arc::from(json));
        }
    }

    /// Publishes one event record (JSON): on this node's feed at once (no
    /// subscriber is fine: nobody is watching), and to the other nodes
    /// through Redis. Never waits.
    fn publish(&self, json: Arc<str>) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        if let Some(redis) = &self.redis
            && !redis.event(json.clone())
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.feed.send(FeedItem::Event(json));
    }

    /// Replaces this node's snapshot with the one `take` finishes. Never
    /// waits, and never holds up the caller (the router actor) for the
    /// finishing or the JSON: with thousands of sessions that is hundreds
    /// of kilobytes and milliseconds of work, which would stall every
    /// socket served by the same worker thread. A thread of its own at the
    /// lowest CPU priority runs `take` and writes the JSON instead, so on a
    /// busy core it yields to the sockets. While one snapshot is being written
    /// one more may wait and any beyond it are skipped (a later one
    /// follows), so the work stays bounded; so is one that does not fit in
    /// the Redis outbox.
    pub(crate) fn snapshot(self: &Arc<Self>, take: impl FnOnce() -> Snapshot + Send + 'static) {
        match self.local.writer(self) {
            Some(writer) => drop(writer.try_send(Box::new(take))),
            None => self.write_snapshot(take()),
        }
    }

    fn write_snapshot(&self, snapshot: Snapshot) {
        if let Ok(json) = serde_json::to_string(&snapshot) {
            let json: Arc<str> = Arc::from(json);
            if let Some(redis) = &self.redis {
                redis.snapshot(json.clone());
            }
            self.local.set_latest(Arc::new(snapshot), json);
        }
    }

    /// Replaces this node's queue history (JSON). Never waits.
    pub(crate) fn history(&self, json: Arc<str>) {
        if let Some(redis) = &self.redis {
            redis.history(json.clone());
        }
        self.local.set_history(json);
    }

    /// Every node's queue history, as JSON: from Redis when configured,
    /// else (or while it cannot be reached) this node's.
    pub(crate) async fn histories(&self) -> Vec<Arc<str>> {
        if let Some(redis) = &self.redis
            && let Ok(all) = redis.read_all(HISTORY_PREFIX).await
        {
            return all;
        }
        self.local.history().into_iter().collect()
    }

    /// This node's latest snapshot.
    pub(crate) fn latest_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.local.latest().map(|(snapshot, _)| snapshot)
    }

    /// Follows the feed: this node's events, and with Redis every other
    /// node's.
    pub(crate) fn follow(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    /// Every node's latest snapshot, as JSON: from Redis when configured,
    /// else (or while it cannot be reached) this node's.
    pub(crate) async fn snapshots(&self) -> Vec<Arc<str>> {
        if let Some(redis) = &self.redis
            && let Ok(all) = redis.read_all(SNAPSHOT_PREFIX).await
        {
            return all;
        }
        self.local
            .latest()
            .map(|(_, json)| json)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn snapshot(seq: u64) -> Snapshot {
        Snapshot {
            node: "n".to_owned(),
            leading: None,
            seq,
            at: 0,
            service_level_target_secs: 60,
            topics: Vec::new(),
            counsellors: Vec::new(),
            waiting: Vec::new(),
            sessions: Vec::new(),
        }
    }

    #[test]
    fn snapshots_are_written_elsewhere_a_burst_never_waits_and_a_later_one_follows() {
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let events = Events::start(&Config::default(), &shutdown, &tracker);
        // Far more than the writer can take at once: none of these waits.
        for seq in 0..1000 {
            events.snapshot(move || snapshot(seq));
        }
        // Whatever was skipped, a snapshot handed over once the writer is
        // free is written, both as the kept snapshot and as its JSON.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            events.snapshot(|| snapshot(5000));
            if events.latest_snapshot().is_some_and(|s| s.seq == 5000) {
                break;
            }
            assert!(Instant::now() < deadline, "the last snapshot never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let json = events.local.latest().map(|(_, json)| json);
        let written: Snapshot = serde_json::from_str(&json.unwrap_or_default()).unwrap();
        assert_eq!(written, snapshot(5000));
        // Written by a thread of its own, at the lowest priority.
        let nice: Vec<i64> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                (comm.trim() == "haven-snapshots").then_some(())?;
                let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                // The fields after the name in parentheses; nice is the
                // 19th field of the line, the 17th after the name.
                let rest = stat.rsplit_once(')')?.1;
                rest.split_whitespace().nth(16)?.parse().ok()
            })
            .collect();
        assert!(!nice.is_empty(), "no snapshot writer thread");
        assert!(nice.iter().all(|&n| n == 19), "{nice:?}");
    }
}
