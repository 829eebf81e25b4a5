//! What a coordinator does about abuse: the cool-downs counsellors put on
//! abusive help-seekers (listed and lifted here), and clearing a queue of
//! a suspected flood of fake help-seekers. Each is written to the audit
//! log.
//!
//! - `GET /api/v1/supervisor/blocks`: the blocks in force (who set them,
//!   why, in which topic, until when; never where they came from).
//! - `POST /api/v1/supervisor/blocks/{id}/lift`: lifts one early.
//! - `POST /api/v1/supervisor/topics/{topic}/clear` `{"within_secs": 600}`:
//!   ends the waits of the help-seekers who arrived in that topic within
//!   that time, have written nothing and are not returning; answered with
//!   `{"cleared": n}`. Those cleared are told (`ended`, reason `cleared`)
//!   and may start again.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::SUPERVISORS;
use super::audit::{Action, Entry};
use crate::api::{ApiError, authorised};
use crate::app::AppState;
use crate::broker::session::now_ms;

/// How far back a clear reaches by default.
const CLEAR_WITHIN: Duration = Duration::from_secs(600);
/// And at most.
const CLEAR_WITHIN_MAX: Duration = Duration::from_secs(24 * 3600);

/// `GET /api/v1/supervisor/blocks`.
pub(crate) async fn blocks(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, SUPERVISORS)?;
    Ok(Json(json!({ "blocks": state.blocks.list(now_ms()) })).into_response())
}

/// `POST /api/v1/supervisor/blocks/{id}/lift`.
pub(crate) async fn lift(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authorised(&state, &headers, SUPERVISORS)?;
    let lifted = state
        .blocks
        .lift(&id, now_ms())
        .ok_or(ApiError::NotFound("no such block in force"))?;
    info!(by = who.id, "block lifted");
    state
        .audit
        .record(
            Entry::new(&who.name, Action::BlockLifted)
                .target(&lifted.id)
                .detail(&lifted.reason),
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct Clear {
    within_secs: Option<u64>,
}

/// `POST /api/v1/supervisor/topics/{topic}/clear`.
pub(crate) async fn clear(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Clear>>,
) -> Result<Response, ApiError> {
    let who = authorised(&state, &headers, SUPERVISORS)?;
    let id = state
        .broker
        .plan()
        .topic(&topic)
        .ok_or(ApiError::NotFound("no such topic"))?;
    let within = body
        .and_then(|Json(b)| b.within_secs)
        .map_or(CLEAR_WITHIN, Duration::from_secs)
        .min(CLEAR_WITHIN_MAX);
    let cleared = state.broker.clear_queue(id, within).await;
    state
        .audit
        .record(
            Entry::new(&who.name, Action::QueueCleared)
                .target(&topic)
                .detail(&cleared.to_string()),
        )
        .await;
    Ok(Json(json!({ "cleared": cleared })).into_response())
}
