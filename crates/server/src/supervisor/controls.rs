//! Watching, whispering in and joining a live session (supervisor role).
//!
//! - `GET /api/v1/supervisor/sessions/{id}/observe`: a server-sent event
//!   stream of the session from now on (`watching` first, then each
//!   `message`, `whisper`, `joined`, `left`). The counsellors are told
//!   they are watched; the help-seeker is not. Closing the stream ends the
//!   watch.
//! - `POST …/whisper` `{"text"}`: a message for the counsellors only.
//! - `POST …/join`, `POST …/leave`: join visibly (the help-seeker is told)
//!   and leave again; `POST …/say` `{"id", "text"}` writes to the
//!   help-seeker once joined, answered with `{"seq"}`.
//! - `GET /api/v1/supervisor/audit?limit=N`: the audit log's last entries.
//!
//! Each action is written to the audit log and published as a
//! `supervision` event, without any text.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use futures_util::stream;
use haven_core::SessionId;
use haven_protocol::common::{ChatText, ClientMsgId};
use haven_protocol::events::{self, SupervisionAction};
use serde::Deserialize;
use serde_json::json;

use super::SUPERVISORS;
use super::audit::Entry;
use crate::accounts::Account;
use crate::api::{ApiError, authorised, authorised_login};
use crate::app::AppState;
use crate::broker::observe::Watch;
use crate::broker::session::{SendRefused, SessionCell};
use crate::ws::validate;

fn live_session(state: &AppState, id: &str) -> Result<Arc<SessionCell>, ApiError> {
    SessionId::parse(id)
        .and_then(|id| state.broker.session(id))
        .ok_or(ApiError::NotFound("no such session"))
}

/// Writes the audit entry and publishes the event.
async fn record(state: &AppState, who: &Account, cell: &SessionCell, action: SupervisionAction) {
    state
        .audit
        .record(Entry::new(&who.name, action.into()).session(&cell.wire.0))
        .await;
    state.events.emit(events::Event::Supervision {
        session: cell.wire.clone(),
        topic: cell.info.topic.clone(),
        supervisor: who.name.clone(),
        action,
    });
}

/// Ends the watch and records that when the stream is dropped.
struct Watching {
    watch: Watch,
    state: AppState,
    who: Account,
    cell: Arc<SessionCell>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let (state, who, cell) = (self.state.clone(), self.who.clone(), self.cell.clone());
        // Dropped by the connection's task; at runtime shutdown there may be
        // no runtime left to record on, and the process is ending anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                record(&state, &who, &cell, SupervisionAction::StopObserving).await;
            });
        }
    }
}

/// `GET /api/v1/supervisor/sessions/{id}/observe`.
pub(crate) async fn observe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (who, login) = authorised_login(&state, &headers, SUPERVISORS)?;
    let cell = live_session(&state, &id)?;
    let watch = cell.observe(&who.display_name).ok_or(ApiError::NotFound(
        "that session is not with a counsellor now",
    ))?;
    record(&state, &who, &cell, SupervisionAction::Observe).await;
    let watching = Watching {
        watch,
        state: state.clone(),
        who,
        cell,
    };
    // The watch ends with the login (logout, expiry, idleness,
    // revocation): dropping the stream records the end.
    let items = stream::unfold(watching, |mut w| async move {
        let item = w.watch.rx.recv().await?;
        Some((Ok::<_, Infallible>(Event::default().data(item.as_ref())), w))
    })
    .take_until(login.ended.clone().cancelled_owned());
    Ok(Sse::new(items)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct Whisper {
    text: ChatText,
}

/// `POST /api/v1/supervisor/sessions/{id}/whisper`.
pub(crate) async fn whisper(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Whisper>,
) -> Result<Response, ApiError> {
    validate::text(&body.text, state.config.session.max_chars)
        .map_err(|_| ApiError::BadRequest("the text is empty or too long"))?;
    act(
        &state,
        &headers,
        &id,
        SupervisionAction::Whisper,
        "that session is not with a counsellor now",
        |cell, who| cell.whisper(&who.display_name, &body.text),
    )
    .await
}

/// A supervisor's change to a session: checked, done and recorded.
async fn act(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    action: SupervisionAction,
    refused: &'static str,
    change: impl FnOnce(&SessionCell, &Account) -> bool,
) -> Result<Response, ApiError> {
    let who = authorised(state, headers, SUPERVISORS)?;
    let cell = live_session(state, id)?;
    if !change(&cell, &who) {
        return Err(ApiError::NotFound(refused));
    }
    record(state, &who, &cell, action).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/supervisor/sessions/{id}/join`.
pub(crate) async fn join(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    act(
        &state,
        &headers,
        &id,
        SupervisionAction::Join,
        "that session is not with a counsellor now",
        |cell, who| cell.join(&who.name, &who.display_name),
    )
    .await
}

/// `POST /api/v1/supervisor/sessions/{id}/leave`.
pub(crate) async fn leave(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    act(
        &state,
        &headers,
        &id,
        SupervisionAction::Leave,
        "you have not joined that session",
        |cell, who| cell.leave(&who.name),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct Say {
    id: ClientMsgId,
    text: ChatText,
}

/// `POST /api/v1/supervisor/sessions/{id}/say`.
pub(crate) async fn say(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Say>,
) -> Result<Response, ApiError> {
    let who = authorised(&state, &headers, SUPERVISORS)?;
    validate::id(&body.id).map_err(|_| ApiError::BadRequest("the id is empty or too long"))?;
    validate::text(&body.text, state.config.session.max_chars)
        .map_err(|_| ApiError::BadRequest("the text is empty or too long"))?;
    let cell = live_session(&state, &id)?;
    match cell.guest_send(&who.name, &body.id, body.text) {
        Ok(acked) => match acked.await {
            Ok(seq) => Ok(Json(json!({ "seq": seq })).into_response()),
            Err(_) => Err(ApiError::Unavailable(
                "the server is stopping; the message may not be recorded",
            )),
        },
        Err(SendRefused::NotYours) => Err(ApiError::Forbidden("join the session first")),
        Err(SendRefused::WrongState) => Err(ApiError::NotFound("that session is over")),
        Err(SendRefused::BacklogFull) => Err(ApiError::Unavailable(
            "the help-seeker is not receiving; retry with the same id",
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct Limit {
    limit: Option<usize>,
}

/// `GET /api/v1/supervisor/audit?limit=N`.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(q): Query<Limit>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorised(&state, &headers, SUPERVISORS)?;
    let entries = state.audit.read(q.limit.unwrap_or(100)).await;
    Ok(Json(json!({ "entries": entries })).into_response())
}
