//! A supervisor's or admin's hold over staff logins:
//! `POST /api/v1/supervisor/accounts/{name}/logout` ends every login of an
//! account at once, on every node sharing the data dir (a laptop left
//! logged in at home, a volunteer who left). Supervisors may do it for
//! counsellors, admins for anyone. It raises the account's credential
//! epoch, so its device cookies go too; its sockets, feeds and watches
//! close and its sessions go back to the front of their queues. Written to
//! the audit log.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::info;

use super::SUPERVISORS;
use super::audit::{Action, Entry};
use crate::accounts::{AccountError, Role};
use crate::api::{ApiError, authorised};
use crate::app::AppState;

/// `POST /api/v1/supervisor/accounts/{name}/logout`.
pub(crate) async fn end_logins(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authorised(&state, &headers, SUPERVISORS)?;
    let target = state
        .accounts
        .get(&name)
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::NotFound("no such account"))?;
    if who.role != Role::Admin && target.role != Role::Counsellor {
        return Err(ApiError::Forbidden(
            "a supervisor may end counsellors' logins only",
        ));
    }
    let target = match state.accounts.revoke(&name) {
        Ok(account) => account,
        Err(AccountError::NotFound(_)) => return Err(ApiError::NotFound("no such account")),
        Err(_) => return Err(ApiError::Internal),
    };
    let ended = state.logins.end_account(target.id);
    state
        .broker
        .counsellor_revoked(target.counsellor_id())
        .await;
    info!(account = target.id, by = who.id, ended, "logins ended");
    state
        .audit
        .record(Entry::new(&who.name, Action::LoginsEnded).target(&target.name))
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
