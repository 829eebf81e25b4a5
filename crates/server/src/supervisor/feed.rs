//! The supervisor view's live feed: `GET /api/v1/supervisor/feed`, a
//! server-sent event stream for the dashboard (supervisor role).
//!
//! It starts with `snapshot` (every node's latest snapshot), then carries
//! each `event` as published, and a fresh `snapshot` every few seconds, at
//! once after Redis reconnects, when this subscriber fell behind, or when a
//! node's `seq` skips (events were lost). The dashboard replaces its state
//! with each snapshot and applies only events newer than it, so it heals by
//! itself after any loss.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};

use crate::accounts::Role;
use crate::api::{ApiError, authorised, authorised_login};
use crate::app::AppState;
use crate::events::FeedItem;

/// Roles that may watch.
pub(crate) const SUPERVISORS: &[Role] = &[Role::Supervisor, Role::Admin];

/// Snapshots sent because of a gap, at most this often.
const MIN_GAP_REFRESH: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Numbered<'a> {
    #[serde(borrow)]
    node: &'a str,
    seq: u64,
}

struct Feed {
    state: AppState,
    rx: tokio::sync::broadcast::Receiver<FeedItem>,
    refresh: tokio::time::Interval,
    /// The last `seq` seen per node.
    seen: HashMap<String, u64>,
    last_snapshot: Option<Instant>,
    first: bool,
}

impl Feed {
    async fn snapshot(&mut self) -> Event {
        let nodes = self.state.events.snapshots().await;
        self.last_snapshot = Some(Instant::now());
        self.seen.clear();
        // The snapshots are JSON already: join them without re-encoding.
        let mut data = String::from("{\"nodes\":[");
        for (i, node) in nodes.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            data.push_str(node);
        }
        data.push_str("],\"here\":");
        data.push_str(&serde_json::to_string(self.state.events.node()).unwrap_or_default());
        data.push('}');
        Event::default().event("snapshot").data(data)
    }

    /// Whether this event skips numbers on its node (events were lost).
    fn gap(&mut self, json: &str) -> bool {
        let Ok(n) = serde_json::from_str::<Numbered<'_>>(json) else {
            return false;
        };
        match self.seen.insert(n.node.to_owned(), n.seq) {
            Some(last) => n.seq != last + 1,
            None => false,
        }
    }

    async fn next(&mut self) -> Option<Event> {
        if self.first {
            self.first = false;
            return Some(self.snapshot().await);
        }
        tokio::select! {
            _ = self.refresh.tick() => Some(self.snapshot().await),
            item = self.rx.recv() => match item {
                Ok(FeedItem::Event(json)) => {
                    let recent = self
                        .last_snapshot
                        .is_some_and(|t| t.elapsed() < MIN_GAP_REFRESH);
                    if self.gap(&json) && !recent {
                        return Some(self.snapshot().await);
                    }
                    Some(Event::default().event("event").data(json.as_ref()))
                }
                Ok(FeedItem::Resync) | Err(RecvError::Lagged(_)) => Some(self.snapshot().await),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

/// `GET /api/v1/supervisor/feed`.
pub(crate) async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, login) = authorised_login(&state, &headers, SUPERVISORS)?;
    // A full snapshot even when nothing was lost, twice per node refresh.
    let every = (state.config.supervisor.snapshot_interval * 2)
        .clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let feed = Feed {
        rx: state.events.follow(),
        state: state.clone(),
        refresh,
        seen: HashMap::new(),
        last_snapshot: None,
        first: true,
    };
    // The feed ends with the login (logout, expiry, idleness, revocation).
    let events = stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    })
    .take_until(login.ended.clone().cancelled_owned());
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// `GET /api/v1/supervisor/history`: every node's queue history for the
/// chart, as `{"nodes": [...]}`.
pub(crate) async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, SUPERVISORS)?;
    let nodes = state.events.histories().await;
    let body = format!("{{\"nodes\":[{}]}}", nodes.join(","));
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}
