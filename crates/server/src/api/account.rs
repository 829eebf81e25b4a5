//! A staff member's own account: the second step of a login, changing the
//! password, and setting up or removing a second factor. A login that must
//! first change its password or set one up may use these (and log out)
//! and nothing else.
//!
//! - `POST /api/v1/login/second-factor` `{"challenge", "code"}`: a TOTP
//!   code or a recovery code, for the challenge a right password gave.
//! - `POST /api/v1/account/password` `{"current", "new"}`.
//! - `POST /api/v1/account/second-factor/start`: a new secret, its
//!   `otpauth://` address and a QR code of it.
//! - `POST /api/v1/account/second-factor/confirm` `{"code"}`: the first
//!   code from the app; answered like a login, with the recovery codes,
//!   shown once.
//! - `POST /api/v1/account/second-factor/remove` `{"code"}`: where the
//!   role does not require one.
//!
//! Every change ends the account's other logins (its credential epoch
//! moves on) and answers with a fresh login for this browser. Each is in
//! the audit log; a wrong second factor is too.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::ApiError;
use super::login::{any_stage, check_staff_page, logged_in};
use crate::app::AppState;
use crate::auth::second::Refused;
use crate::auth::totp;
use crate::supervisor::audit::{Action, Entry};

/// What authenticator apps show the account under.
const ISSUER: &str = "Haven";

#[derive(Deserialize)]
pub(crate) struct SecondFactor {
    challenge: String,
    code: String,
}

fn bad_json(
    what: &'static str,
) -> impl FnOnce(axum::extract::rejection::JsonRejection) -> ApiError {
    move |_| ApiError::BadRequest(what)
}

/// `POST /api/v1/login/second-factor`.
pub(crate) async fn second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SecondFactor>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_staff_page(&state, &headers)?;
    let Json(req) = body.map_err(bad_json("expected JSON {\"challenge\", \"code\"}"))?;
    if req.challenge.len() > 64 || req.code.len() > 32 {
        return Err(ApiError::BadRequest("challenge or code too long"));
    }
    match state
        .logins
        .second_factor(&state.accounts, &req.challenge, &req.code)
    {
        Ok(confirmed) => {
            if confirmed.recovery {
                state
                    .audit
                    .record(Entry::new(
                        &confirmed.granted.account.name,
                        Action::RecoveryCodeUsed,
                    ))
                    .await;
            }
            Ok(logged_in(&state, confirmed.granted, None).await)
        }
        Err(Refused::Wrong(name)) => {
            warn!("second factor refused");
            state
                .audit
                .record(Entry::new(&name, Action::SecondFactorFailed))
                .await;
            Err(ApiError::WrongCode)
        }
        Err(Refused::Expired) => Err(ApiError::Unauthorized),
        Err(Refused::Internal) => Err(ApiError::Internal),
    }
}

#[derive(Deserialize)]
pub(crate) struct NewPassword {
    current: String,
    new: String,
}

/// `POST /api/v1/account/password`.
pub(crate) async fn password(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<NewPassword>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (account, _, _) = any_stage(&state, &headers)?;
    let Json(req) = body.map_err(bad_json("expected JSON {\"current\", \"new\"}"))?;
    if req.current.len() > 1024 || req.new.len() > 1024 {
        return Err(ApiError::BadRequest("password too long"));
    }
    match state.logins.check_password(&account, &req.current).await {
        None => return Err(ApiError::Busy),
        Some(false) => return Err(ApiError::WrongPassword),
        Some(true) => {}
    }
    let changed = match state.accounts.set_password(&account.name, &req.new) {
        Ok(()) => state.accounts.get(&account.name),
        Err(crate::accounts::AccountError::WeakPassword(why)) => {
            return Err(ApiError::WeakPassword(why));
        }
        Err(_) => return Err(ApiError::Internal),
    };
    let account = changed
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Unauthorized)?;
    // The generated first-start password is no longer good: its file goes.
    let initial = state
        .config
        .data_dir
        .join(crate::accounts::INITIAL_PASSWORD_FILE);
    if initial.exists() && std::fs::remove_file(&initial).is_err() {
        warn!("could not remove the initial admin password file");
    }
    info!(account = account.id, "password changed");
    state
        .audit
        .record(Entry::new(&account.name, Action::PasswordChanged))
        .await;
    // The epoch moved on: every login of the account ends, this browser
    // gets a fresh one.
    state.logins.end_account(account.id);
    let granted = state.logins.grant(account);
    Ok(logged_in(&state, granted, None).await)
}

/// `POST /api/v1/account/second-factor/start`.
pub(crate) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (account, login, _) = any_stage(&state, &headers)?;
    if account.totp.is_some() {
        return Err(ApiError::BadRequest("a second factor is already set up"));
    }
    let (secret, uri) = state.logins.start_enrolment(&login, ISSUER);
    Ok(Json(json!({
        "secret": secret,
        "uri": uri,
        "qr_svg": totp::qr_svg(&uri),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct Code {
    code: String,
}

/// `POST /api/v1/account/second-factor/confirm`.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Code>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (account, login, _) = any_stage(&state, &headers)?;
    let Json(req) = body.map_err(bad_json("expected JSON {\"code\"}"))?;
    match state
        .logins
        .confirm_enrolment(&state.accounts, &login, &req.code)
    {
        Ok((granted, codes)) => {
            info!(account = account.id, "second factor set up");
            state
                .audit
                .record(Entry::new(&account.name, Action::SecondFactorEnrolled))
                .await;
            Ok(logged_in(&state, granted, Some(codes)).await)
        }
        Err(Refused::Wrong(_)) => {
            state
                .audit
                .record(Entry::new(&account.name, Action::SecondFactorFailed))
                .await;
            Err(ApiError::WrongCode)
        }
        Err(Refused::Expired) => Err(ApiError::BadRequest("start setting up first")),
        Err(Refused::Internal) => Err(ApiError::Internal),
    }
}

/// `POST /api/v1/account/second-factor/remove`.
pub(crate) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Code>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (account, _, _) = any_stage(&state, &headers)?;
    let Json(req) = body.map_err(bad_json("expected JSON {\"code\"}"))?;
    if state
        .config
        .auth
        .second_factor_roles
        .contains(&account.role)
    {
        return Err(ApiError::Forbidden(
            "your role must log in with a second factor",
        ));
    }
    let Some(secret) = account.totp.clone() else {
        return Err(ApiError::BadRequest("no second factor is set up"));
    };
    if !state.logins.code_is_right(&account, &secret, &req.code) {
        state
            .audit
            .record(Entry::new(&account.name, Action::SecondFactorFailed))
            .await;
        return Err(ApiError::WrongCode);
    }
    let account = state
        .accounts
        .clear_second_factor(&account.name)
        .map_err(|_| ApiError::Internal)?;
    state
        .audit
        .record(Entry::new(&account.name, Action::SecondFactorRemoved))
        .await;
    state.logins.end_account(account.id);
    let granted = state.logins.grant(account);
    Ok(logged_in(&state, granted, None).await)
}
