//! Getting events and snapshots out of the node, without ever holding up
//! chat.
//!
//! The router actor publishes each event here as JSON. Without Redis, the
//! in-process feed carries them to this node's dashboard. With Redis, a
//! bounded buffer feeds one publisher task (`PUBLISH haven:events`, and a
//! `SET haven:node:<node>` snapshot with a TTL), and a subscriber task
//! brings every node's events back into the feed. When the buffer is full,
//! because Redis is down or slow, events are dropped and counted; the
//! publisher reconnects by itself, and dashboards resync from the
//! snapshots.

mod control;
mod redis;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use haven_protocol::events::Snapshot;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// The Redis channel events are published on.
pub(crate) const CHANNEL: &str = "haven:events";
/// The Redis key prefix of node snapshots.
pub(crate) const SNAPSHOT_PREFIX: &str = "haven:node:";
/// The Redis key prefix of node histories.
pub(crate) const HISTORY_PREFIX: &str = "haven:history:";
/// How long a history outlives its node in Redis, in seconds.
const HISTORY_TTL: u64 = 24 * 3600;
/// The Redis channel pause and resume orders travel on, between nodes.
pub(crate) const CONTROL: &str = "haven:control";
/// The Redis hash of paused topics and their messages: the state a node
/// takes on when it (re)connects.
pub(crate) const PAUSED: &str = "haven:paused";
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

/// A coordinator's pause or resume of a topic, for every node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PauseOrder {
    /// The topic.
    pub(crate) topic: String,
    /// Paused (`true`) or resumed.
    pub(crate) paused: bool,
    /// The message for help-seekers while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// What a node must make true of its topics' pauses.
#[derive(Clone, Debug)]
pub(crate) enum Pauses {
    /// One topic changed.
    Order(PauseOrder),
    /// The whole state, on (re)connecting to Redis: these topics are
    /// paused with these messages, all others are open.
    All(Vec<PauseOrder>),
}

/// Finishes a snapshot the actor took (see [`Events::snapshot`]).
type TakeSnapshot = Box<dyn FnOnce() -> Snapshot + Send>;

/// What the publisher task writes to Redis.
#[derive(Debug)]
enum Outgoing {
    Event(Arc<str>),
    Snapshot(Arc<str>),
    History(Arc<str>),
    /// A pause order and the account that gave it.
    Pause(PauseOrder, String),
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
    /// Set when Redis is configured.
    outbox: Option<mpsc::Sender<Outgoing>>,
    redis: Option<::redis::Client>,
    /// Signs and checks pause orders between nodes.
    control: Option<control::ControlKey>,
    /// The last event's number on this node.
    seq: AtomicU64,
    /// This node's latest snapshot, and the same as JSON.
    latest: Mutex<Option<(Arc<Snapshot>, Arc<str>)>>,
    /// Hands snapshots to the thread that writes them as JSON (see
    /// [`Events::snapshot`]); `None` when that thread could not start.
    snapshot_writer: OnceLock<Option<SyncSender<TakeSnapshot>>>,
    /// This node's latest history, as JSON.
    history: Mutex<Option<Arc<str>>>,
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
        // The URL was checked with the config; a client is only a parsed URL.
        let client = config
            .redis_url
            .as_deref()
            .and_then(|url| ::redis::Client::open(url).ok());
        let (outbox, rx) = match client {
            Some(_) => {
                let (tx, rx) = mpsc::channel(config.supervisor.event_buffer as usize);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let events = Arc::new(Self {
            node,
            feed,
            pauses,
            pause_rx: Mutex::new(Some(pause_rx)),
            outbox,
            redis: client.clone(),
            control: config.control_key.as_deref().map(control::ControlKey::new),
            seq: AtomicU64::new(0),
            latest: Mutex::new(None),
            snapshot_writer: OnceLock::new(),
            history: Mutex::new(None),
            stats: EventStats::default(),
        });
        if let (Some(client), Some(rx)) = (client, rx) {
            let ttl = (config.supervisor.snapshot_interval * 3).as_secs().max(2);
            tracker.spawn(redis::publish(
                events.clone(),
                client.clone(),
                rx,
                ttl,
                shutdown.clone(),
            ));
            tracker.spawn(redis::subscribe(events.clone(), client, shutdown.clone()));
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

    /// Publishes one event record (JSON). Never waits.
    fn publish(&self, json: Arc<str>) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        match &self.outbox {
            Some(outbox) => {
                if outbox.try_send(Outgoing::Event(json)).is_err() {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                // No subscriber is fine: nobody is watching.
                let _ = self.feed.send(FeedItem::Event(json));
            }
        }
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
        let writer = self.snapshot_writer.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<TakeSnapshot>(1);
            let events = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("haven-snapshots".to_owned())
                .spawn(move || write_snapshots(&rx, &events));
            started.ok().map(|_| tx)
        });
        match writer {
            Some(writer) => drop(writer.try_send(Box::new(take))),
            None => self.write_snapshot(take()),
        }
    }

    fn write_snapshot(&self, snapshot: Snapshot) {
        if let Ok(json) = serde_json::to_string(&snapshot) {
            self.snapshot_written(Arc::new(snapshot), Arc::from(json));
        }
    }

    fn snapshot_written(&self, snapshot: Arc<Snapshot>, json: Arc<str>) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.try_send(Outgoing::Snapshot(json.clone()));
        }
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some((snapshot, json));
    }

    /// Replaces this node's queue history (JSON). Never waits.
    pub(crate) fn history(&self, json: Arc<str>) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.try_send(Outgoing::History(json.clone()));
        }
        *self.history.lock().unwrap_or_else(|p| p.into_inner()) = Some(json);
    }

    /// Every node's queue history, as JSON.
    pub(crate) async fn histories(&self) -> Vec<Arc<str>> {
        match &self.redis {
            Some(client) => redis::read_all(client, HISTORY_PREFIX)
                .await
                .unwrap_or_default(),
            None => self
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }

    /// This node's latest snapshot.
    pub(crate) fn latest_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(snapshot, _)| snapshot.clone())
    }

    /// Tells every node (through Redis, when configured) that `by` paused
    /// or resumed a topic here.
    pub(crate) fn order_pause(&self, order: PauseOrder, by: &str) {
        if let Some(outbox) = &self.outbox
            && outbox
                .try_send(Outgoing::Pause(order, by.to_owned()))
                .is_err()
        {
            tracing::warn!("a pause could not be passed on to the other nodes: the buffer is full");
        }
    }

    /// Applies every node's pause orders to this node's broker until
    /// shutdown. With Redis, its `haven:paused` hash is the pause state:
    /// each (re)connection makes this node's topics match it.
    pub(crate) fn apply_pauses(
        self: &Arc<Self>,
        broker: crate::broker::Broker,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let taken = self
            .pause_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (Some(mut rx), Some(_)) = (taken, &self.redis) else {
            return;
        };
        tracker.spawn(async move {
            loop {
                let pauses = tokio::select! {
                    () = shutdown.cancelled() => break,
                    p = rx.recv() => p,
                };
                let orders = match pauses {
                    Ok(Pauses::Order(order)) => vec![order],
                    Ok(Pauses::All(paused)) => broker
                        .plan()
                        .topics
                        .iter()
                        .map(|t| {
                            paused
                                .iter()
                                .find(|o| o.topic == t.name)
                                .cloned()
                                .unwrap_or_else(|| PauseOrder {
                                    topic: t.name.clone(),
                                    paused: false,
                                    message: None,
                                })
                        })
                        .collect(),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                for order in orders {
                    if let Some(topic) = broker.plan().topic(&order.topic) {
                        let _ = broker.pause(topic, order.paused, order.message).await;
                    }
                }
            }
        });
    }

    /// Follows the feed: every node's events (with Redis) or this node's.
    pub(crate) fn follow(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    /// Every node's latest snapshot, as JSON: from Redis when configured
    /// (an empty list when it cannot be reached), else this node's.
    pub(crate) async fn snapshots(&self) -> Vec<Arc<str>> {
        match &self.redis {
            Some(client) => redis::read_all(client, SNAPSHOT_PREFIX)
                .await
                .unwrap_or_default(),
            None => self
                .latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(_, json)| json.clone())
                .collect(),
        }
    }
}

/// The snapshot writer's thread: takes each snapshot handed over while it
/// was free, until the bus is gone. Lowers its own priority first (on
/// Linux a thread's nice value is its own), so writing a large snapshot
/// never takes the core from the sockets.
fn write_snapshots(rx: &Receiver<TakeSnapshot>, events: &Weak<Events>) {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    while let Ok(take) = rx.recv() {
        let Some(events) = events.upgrade() else {
            return;
        };
        events.write_snapshot(take());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn snapshot(seq: u64) -> Snapshot {
        Snapshot {
            node: "n".to_owned(),
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
        let json = events
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, json)| json.clone());
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
