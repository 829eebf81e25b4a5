//! Topic pauses between nodes: a coordinator's order on one node is
//! passed on (signed, see `control.rs`) to every other, and with Redis the
//! `haven:paused` hash is the pause state a node takes on whenever it
//! (re)connects.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Events;

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

impl Events {
    /// Tells every node (through Redis, when configured) that `by` paused
    /// or resumed a topic here.
    pub(crate) fn order_pause(&self, order: PauseOrder, by: &str) {
        if let Some(redis) = &self.redis
            && !redis.order_pause(order, by)
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
}
