//! The HTTP endpoints besides the sockets and the supervisor's: health,
//! readiness, metrics, the widget's and the console's settings, the queues
//! at a glance and pausing a topic. Staff login lives in [`login`], the
//! error type in [`error`].

mod account;
mod error;
mod login;

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::info;

pub(crate) use self::account::{
    confirm as second_factor_confirm, password as change_password, remove as second_factor_remove,
    second_factor, start as second_factor_start,
};
pub(crate) use self::error::ApiError;
pub(crate) use self::login::{
    ANY_ROLE, auth_cookie_name, authorised, authorised_login, cookie, login, logout, me,
};
use crate::accounts::Role;
use crate::app::AppState;
use crate::supervisor::audit::{Action as AuditAction, Entry as AuditEntry};

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 while accepting, 503 while draining.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response()
    } else {
        // No figures: who is on duty and how busy the line is are for
        // staff and Prometheus (`/metrics`), not for anyone who asks.
        Json(json!({ "status": "ready" })).into_response()
    }
}

/// `GET /api/v1/topics`: every topic's queue at a glance (any logged-in
/// account).
pub(crate) async fn topics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(
        &state,
        &headers,
        &[Role::Counsellor, Role::Supervisor, Role::Admin],
    )?;
    Ok(Json(json!({ "topics": state.broker.queues().await })).into_response())
}

/// `GET /api/v1/helpline`: what the widget's pre-chat form offers, for
/// anyone (help-seekers have no login). Names only: the topics, the
/// languages and the default topic, never who is on duty; and per topic
/// that records chats, whether it always does (`on`) or asks (`ask`), so
/// the widget can say so before the chat starts.
pub(crate) async fn helpline(State(state): State<AppState>) -> Response {
    let plan = state.broker.plan();
    let topics: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
    let default_topic = plan
        .topics
        .get(usize::from(plan.default_topic.0))
        .map(|t| t.name.as_str());
    let transcripts: serde_json::Map<String, serde_json::Value> = plan
        .topics
        .iter()
        .filter(|_| state.transcripts.is_some())
        .filter(|t| t.transcripts != crate::config::TranscriptMode::Off)
        .map(|t| (t.name.clone(), json!(t.transcripts)))
        .collect();
    Json(json!({
        "topics": topics,
        "languages": plan.languages,
        "default_topic": default_topic,
        "transcripts": transcripts,
        "exit_urls": state.config.quick_exit_urls,
    }))
    .into_response()
}

/// `GET /metrics` on the public listener: only with the configured bearer
/// token, and not at all when metrics have a listener of their own.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = &state.config.metrics;
    if config.listen.is_some() {
        return Err(ApiError::NotFound(
            "metrics are served on their own address",
        ));
    }
    let Some(want) = &config.token else {
        return Err(ApiError::Forbidden(
            "metrics are off here: set metrics.token or metrics.listen",
        ));
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared as hashes: the time taken says nothing about the token.
    if crate::tokens::hash(sent) != crate::tokens::hash(want) {
        return Err(ApiError::Unauthorized);
    }
    Ok(metrics_text(&state))
}

/// `GET /metrics` on the metrics listener (a private address).
pub(crate) async fn metrics_private(State(state): State<AppState>) -> Response {
    metrics_text(&state)
}

/// The Prometheus exposition text.
fn metrics_text(state: &AppState) -> Response {
    let snapshot = state.events.latest_snapshot();
    let body = state.metrics.render(
        snapshot.as_deref(),
        &state.events.stats,
        state.config.redis_url.is_some(),
        state.transcripts.as_ref().map(|t| t.stats()),
        state.logins.password_checks(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /api/v1/console`: the console's settings for a logged-in account:
/// the ring, the canned responses and the topics a session can be handed
/// to.
pub(crate) async fn console(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, ANY_ROLE)?;
    let console = &state.config.console;
    let plan = state.broker.plan();
    let topics: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
    Ok(Json(json!({
        "ring": console.ring,
        "ring_repeat_secs": console.ring_repeat.as_secs(),
        "canned": console.canned,
        "topics": topics,
        "block_hours": state.config.abuse.block_hours,
        "block_reasons": state.config.abuse.block_reasons,
    }))
    .into_response())
}

/// `POST /api/v1/activity`: the console or dashboard says its user did
/// something (typed, clicked), which keeps their login from ending as
/// idle. Pages send it at most once a minute, and only after input.
pub(crate) async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, ANY_ROLE)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/colleagues`: the counsellors connected now, with their
/// status and load, for choosing whom to hand a session to.
pub(crate) async fn colleagues(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, ANY_ROLE)?;
    Ok(Json(json!({ "colleagues": state.broker.colleagues().await })).into_response())
}

#[derive(Deserialize, Default)]
pub(crate) struct PauseRequest {
    #[serde(default)]
    message: Option<String>,
}

/// Longest pause message, in characters.
const MAX_PAUSE_MESSAGE: usize = 500;

async fn set_pause(
    state: &AppState,
    headers: &HeaderMap,
    topic: &str,
    paused: bool,
    message: Option<String>,
) -> Result<Response, ApiError> {
    let account = authorised(state, headers, &[Role::Supervisor, Role::Admin])?;
    let id = state
        .broker
        .plan()
        .topic(topic)
        .ok_or(ApiError::NotFound("no such topic"))?;
    if message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_PAUSE_MESSAGE)
    {
        return Err(ApiError::BadRequest(
            "the message may be at most 500 characters",
        ));
    }
    state
        .broker
        .pause(id, paused, message.clone())
        .await
        .map_err(|_| ApiError::Internal)?;
    // Every other node too, when they share a Redis.
    state.events.order_pause(
        crate::events::PauseOrder {
            topic: topic.to_owned(),
            paused,
            message,
        },
        &account.name,
    );
    let action = if paused {
        AuditAction::TopicPaused
    } else {
        AuditAction::TopicResumed
    };
    state
        .audit
        .record(AuditEntry::new(&account.name, action).target(topic))
        .await;
    info!(
        account = account.id,
        topic, paused, "topic paused or resumed"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/topics/{topic}/pause`: stop taking new help-seekers, with
/// an optional message for those waiting and arriving.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Option<Json<PauseRequest>>,
) -> Result<Response, ApiError> {
    let message = body
        .and_then(|Json(b)| b.message)
        .filter(|m| !m.trim().is_empty());
    set_pause(&state, &headers, &topic, true, message).await
}

/// `POST /api/v1/topics/{topic}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_pause(&state, &headers, &topic, false, None).await
}

/// Any other path.
pub(crate) async fn not_found() -> Response {
    ApiError::NotFound("no such endpoint").into_response()
}
