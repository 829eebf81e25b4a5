//! The Redis side of the event bus: one publisher task and one subscriber
//! task per node, each reconnecting by itself.
//!
//! Keys and channels: `haven:events` (every node's events), `haven:control`
//! (signed pause orders), `haven:paused` (the pause state), and per node
//! `haven:node:<node>` (its snapshot, expiring with it) and
//! `haven:history:<node>` (its queue history, kept a day).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tokio_util::task::TaskTracker;

use super::{Events, FeedItem, PauseOrder, Pauses};
use crate::config::Config;

/// The Redis channel events are published on.
const CHANNEL: &str = "haven:events";
/// The Redis key prefix of node snapshots.
pub(super) const SNAPSHOT_PREFIX: &str = "haven:node:";
/// The Redis key prefix of node histories.
pub(super) const HISTORY_PREFIX: &str = "haven:history:";
/// How long a history outlives its node in Redis, in seconds.
const HISTORY_TTL: u64 = 24 * 3600;
/// The Redis channel pause and resume orders travel on, between nodes.
const CONTROL: &str = "haven:control";
/// The Redis hash of paused topics and their messages: the state a node
/// takes on when it (re)connects.
const PAUSED: &str = "haven:paused";

/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest pause between subscriber reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the publisher task writes to Redis.
#[derive(Debug)]
pub(super) enum Outgoing {
    Event(Arc<str>),
    Snapshot(Arc<str>),
    History(Arc<str>),
    /// A pause order and the account that gave it.
    Pause(PauseOrder, String),
}

/// The bus's way to Redis: a client, and the bounded buffer the publisher
/// task reads.
#[derive(Debug)]
pub(super) struct Bus {
    client: redis::Client,
    outbox: mpsc::Sender<Outgoing>,
}

impl Bus {
    /// The bus's Redis side and the publisher's end of its buffer, when
    /// `redis_url` is set.
    pub(super) fn new(config: &Config) -> Option<(Self, mpsc::Receiver<Outgoing>)> {
        // The URL was checked with the config; a client is only a parsed URL.
        let client = redis::Client::open(config.redis_url.as_deref()?).ok()?;
        let (outbox, rx) = mpsc::channel(config.supervisor.event_buffer as usize);
        Some((Self { client, outbox }, rx))
    }

    /// Queues an event for the other nodes; `false` when the buffer is full.
    pub(super) fn event(&self, json: Arc<str>) -> bool {
        self.outbox.try_send(Outgoing::Event(json)).is_ok()
    }

    /// Queues this node's snapshot; skipped when the buffer is full (a
    /// later one follows).
    pub(super) fn snapshot(&self, json: Arc<str>) {
        let _ = self.outbox.try_send(Outgoing::Snapshot(json));
    }

    /// Queues this node's history; skipped when the buffer is full.
    pub(super) fn history(&self, json: Arc<str>) {
        let _ = self.outbox.try_send(Outgoing::History(json));
    }

    /// Queues a pause order; `false` when the buffer is full.
    pub(super) fn order_pause(&self, order: PauseOrder, by: &str) -> bool {
        self.outbox
            .try_send(Outgoing::Pause(order, by.to_owned()))
            .is_ok()
    }

    /// Every value under `prefix` (one per node).
    pub(super) async fn read_all(&self, prefix: &str) -> redis::RedisResult<Vec<Arc<str>>> {
        read_all(&self.client, prefix).await
    }
}

/// Starts the publisher and the subscriber on `tracker`.
pub(super) fn start(
    events: &Arc<Events>,
    outgoing: mpsc::Receiver<Outgoing>,
    ttl_secs: u64,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let Some(bus) = &events.redis else { return };
    tracker.spawn(publish(
        events.clone(),
        bus.client.clone(),
        outgoing,
        ttl_secs,
        shutdown.clone(),
    ));
    tracker.spawn(subscribe(
        events.clone(),
        bus.client.clone(),
        shutdown.clone(),
    ));
}

fn manager(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Publishes events and writes snapshots until shutdown. A failed command
/// drops its event (counted) and the manager reconnects in the background.
async fn publish(
    events: Arc<Events>,
    client: redis::Client,
    mut rx: mpsc::Receiver<Outgoing>,
    ttl_secs: u64,
    shutdown: CancellationToken,
) {
    let mut conn = match manager(client) {
        Ok(conn) => conn,
        Err(e) => {
            warn!(error = %e, "cannot use redis_url; events stay on this node");
            return;
        }
    };
    let key = format!("{SNAPSHOT_PREFIX}{}", events.node());
    let history_key = format!("{HISTORY_PREFIX}{}", events.node());
    let stats = &events.stats;
    loop {
        let item = tokio::select! {
            () = shutdown.cancelled() => break,
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        let result: redis::RedisResult<()> = match &item {
            Outgoing::Event(json) => conn.publish(CHANNEL, json.as_ref()).await,
            Outgoing::Snapshot(json) => conn.set_ex(&key, json.as_ref(), ttl_secs).await,
            Outgoing::History(json) => conn.set_ex(&history_key, json.as_ref(), HISTORY_TTL).await,
            Outgoing::Pause(order, by) => match &events.control {
                Some(key) => publish_pause(&mut conn, key, order, by).await,
                // Checked with the config: Redis needs a control key.
                None => Ok(()),
            },
        };
        let was_up = stats
            .redis_connected
            .swap(result.is_ok(), Ordering::Relaxed);
        match (result, &item) {
            (Ok(()), Outgoing::Event(_)) => {
                stats.published.fetch_add(1, Ordering::Relaxed);
            }
            (Ok(()), Outgoing::Snapshot(_) | Outgoing::History(_) | Outgoing::Pause(..)) => {}
            (Err(e), _) => {
                if matches!(item, Outgoing::Event(_)) {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                if was_up {
                    warn!(error = %e, "redis unreachable; events are dropped and counted until it is back");
                }
                // Do not spin on a dead server: the buffer takes the load.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if !was_up && stats.redis_connected.load(Ordering::Relaxed) {
            info!("redis reachable; publishing events");
        }
    }
}

/// Follows `haven:events` into the node's feed until shutdown, resubscribing
/// after any failure and telling the feed to resync each time. This node's
/// own events are on the feed already and are skipped.
async fn subscribe(events: Arc<Events>, client: redis::Client, shutdown: CancellationToken) {
    // A record starts with its node (`Record`'s first field).
    let own = format!(
        "{{\"node\":{},",
        serde_json::to_string(events.node()).unwrap_or_default()
    );
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&[CHANNEL, CONTROL]).await?;
            // The pauses as they stand, for a node that (re)connects.
            let mut conn = client.get_multiplexed_async_connection().await?;
            let paused: Vec<(String, String)> = conn.hgetall(PAUSED).await?;
            Ok::<_, redis::RedisError>((pubsub, paused))
        };
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(CONNECT_TIMEOUT * 2, attempt) => r,
        };
        if let Ok(Ok((pubsub, paused))) = pubsub {
            backoff = Duration::from_millis(100);
            // Only what a node signed counts: a value someone else wrote
            // into the hash is ignored.
            let paused = paused
                .into_iter()
                .filter_map(|(topic, sealed)| {
                    let (order, _) = opened(&events, &sealed, None)?;
                    (order.topic == topic && order.paused).then_some(order)
                })
                .collect();
            let _ = events.pauses.send(Pauses::All(paused));
            // Anything published while we were away is lost: reload.
            let _ = events.feed.send(FeedItem::Resync);
            let mut stream = pubsub.into_on_message();
            loop {
                let msg = tokio::select! {
                    () = shutdown.cancelled() => return,
                    msg = stream.next() => msg,
                };
                let Some(msg) = msg else { break };
                let Ok(json) = msg.get_payload::<String>() else {
                    continue;
                };
                if msg.get_channel_name() == CONTROL {
                    let now = crate::broker::session::now_ms();
                    if let Some((order, by)) = opened(&events, &json, Some(now)) {
                        info!(
                            topic = order.topic,
                            paused = order.paused,
                            by,
                            "pause order from another node"
                        );
                        let _ = events.pauses.send(Pauses::Order(order));
                    }
                } else if !json.starts_with(&own) {
                    let _ = events.feed.send(FeedItem::Event(Arc::from(json)));
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A signed order's content, or `None` (counted and logged) when it is
/// not signed under this node's key or is too old.
fn opened(events: &Events, sealed: &str, now_ms: Option<u64>) -> Option<(PauseOrder, String)> {
    let key = events.control.as_ref()?;
    match key.open(sealed, now_ms) {
        Ok(opened) => Some(opened),
        Err(why) => {
            warn!(
                ?why,
                "ignored a pause order that is not signed with control_key"
            );
            crate::metrics::refused(match why {
                super::control::Rejected::Unsigned => "control_unsigned",
                super::control::Rejected::Stale => "control_stale",
            });
            None
        }
    }
}

/// Records a pause in the shared state and tells the other nodes, signed.
async fn publish_pause(
    conn: &mut ConnectionManager,
    key: &super::control::ControlKey,
    order: &PauseOrder,
    by: &str,
) -> redis::RedisResult<()> {
    let sealed = key.seal(order, by, crate::broker::session::now_ms());
    if order.paused {
        let () = conn.hset(PAUSED, &order.topic, &sealed).await?;
    } else {
        let () = conn.hdel(PAUSED, &order.topic).await?;
    }
    conn.publish(CONTROL, sealed).await
}

/// Every value under `prefix` (one per node).
async fn read_all(client: &redis::Client, prefix: &str) -> redis::RedisResult<Vec<Arc<str>>> {
    let work = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        let pattern = format!("{prefix}*");
        let keys: Vec<String> = {
            let mut iter = conn.scan_match::<_, String>(&pattern).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            keys
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = conn.mget(&keys).await?;
        Ok(values.into_iter().flatten().map(Arc::from).collect())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, work).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "timed out reading snapshots",
        ))),
    }
}
