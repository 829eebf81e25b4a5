//! Staff login over HTTP: `POST /api/v1/login` and `/logout`, `GET
//! /api/v1/me`, and [`authorised`], which every login-protected endpoint
//! calls to find the account behind a request.

use axum::Json;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::ApiError;
use crate::accounts::{Account, Role};
use crate::app::AppState;
use crate::auth::{Attempt, Granted, Login, LoginError, Passed, Stage};
use crate::limits::client_ip;
use crate::supervisor::audit::{Action, Entry};
use crate::tokens;

/// The login cookie's name over plain HTTP (testing only).
const AUTH_COOKIE: &str = "haven_auth";
/// Its name when `Secure`: a `__Host-` cookie is set only by Haven's own
/// origin over HTTPS, with `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant or shadow it.
const HOST_AUTH_COOKIE: &str = "__Host-haven_auth";

/// The device cookie's names (see [`crate::auth::device`]).
const DEVICE_COOKIE: &str = "haven_device";
const HOST_DEVICE_COOKIE: &str = "__Host-haven_device";

/// The login cookie's name under this configuration.
pub(crate) fn auth_cookie_name(config: &crate::config::Config) -> &'static str {
    if config.auth.secure_cookie {
        HOST_AUTH_COOKIE
    } else {
        AUTH_COOKIE
    }
}

fn device_cookie_name(config: &crate::config::Config) -> &'static str {
    if config.auth.secure_cookie {
        HOST_DEVICE_COOKIE
    } else {
        DEVICE_COOKIE
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginRequest {
    name: String,
    password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Refuses a browser request from a page that may not use a staff login:
/// every page but Haven's own and `staff_origins`, including the helpline
/// sites that embed the widget (see [`crate::auth::origin`]).
pub(crate) fn check_staff_page(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::auth::origin::staff_page(&state.config, headers) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this page may not use a staff login"))
    }
}

/// A `Set-Cookie` value: HttpOnly, `SameSite=Strict`, `Path=/`, and
/// `Secure` unless turned off for plain-HTTP testing.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.logins.secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    let value =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn auth_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    set_cookie(state, auth_cookie_name(&state.config), token, max_age)
}

/// Reads the login token from `Authorization: Bearer` or the cookie.
pub(crate) fn token_from_headers(state: &AppState, headers: &HeaderMap) -> Option<String> {
    bearer_or_cookie(headers, auth_cookie_name(&state.config))
}

fn bearer_or_cookie(headers: &HeaderMap, cookie_name: &str) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    cookie(headers, cookie_name)
}

/// The value of a cookie, if sent.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `POST /api/v1/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_staff_page(&state, &headers)?;
    let Json(req) =
        body.map_err(|_| ApiError::BadRequest("expected JSON {\"name\", \"password\"}"))?;
    if req.name.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::BadRequest("name or password too long"));
    }
    let device = cookie(&headers, device_cookie_name(&state.config));
    let attempt = Attempt {
        ip: client_ip(peer, &headers, &state.config.trusted_proxies),
        name: &req.name,
        password: &req.password,
        device: device.as_deref(),
    };
    let passed = match state.logins.login(&state.accounts, attempt).await {
        Ok(ok) => ok,
        Err(LoginError::Invalid) => {
            info!("login refused");
            return Err(ApiError::Unauthorized);
        }
        Err(LoginError::SourceRate(wait)) => {
            warn!("login refused: too many attempts from one source");
            return Err(ApiError::TooManyRequests(whole_secs(wait)));
        }
        Err(LoginError::Backoff(wait)) => {
            warn!("login refused: repeated failures for this account from this source");
            return Err(ApiError::Backoff(whole_secs(wait)));
        }
        Err(LoginError::Busy) => return Err(ApiError::Busy),
        Err(LoginError::Internal) => return Err(ApiError::Internal),
    };
    match passed {
        Passed::Granted(granted) => Ok(logged_in(&state, *granted, None).await),
        // The password was right; the code must follow.
        Passed::SecondFactor { challenge } => {
            let mut response = Json(json!({
                "second_factor": "totp",
                "challenge": challenge,
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
    }
}

/// The answer to a successful login (or a fresh one after a change): the
/// token in the body and the cookie, a device cookie, and what the login
/// must do first, if anything. Written to the audit log.
pub(crate) async fn logged_in(
    state: &AppState,
    granted: Granted,
    recovery_codes: Option<Vec<String>>,
) -> Response {
    let Granted {
        token,
        account,
        device,
        stage,
    } = granted;
    info!(account = account.id, role = %account.role, "login");
    state
        .audit
        .record(Entry::new(&account.name, Action::Login))
        .await;
    let ttl = state.logins.ttl().as_secs();
    let mut body = json!({
        "token": token,
        "expires_in": ttl,
        "name": account.name,
        "display_name": account.display_name,
        "role": account.role.to_string(),
        "second_factor": account.totp.is_some(),
        "change_password": stage == Stage::ChangePassword,
        "enrol_second_factor": stage == Stage::EnrolSecondFactor,
    });
    if let Some(codes) = recovery_codes {
        body["recovery_codes"] = json!(codes);
    }
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, auth_cookie(state, &token, ttl));
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            state,
            device_cookie_name(&state.config),
            &device,
            state.logins.device_ttl().as_secs(),
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A wait in whole seconds for `Retry-After`, rounded up, at least one.
fn whole_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// `POST /api/v1/logout`: ends the login and closes its sockets.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_staff_page(&state, &headers)?;
    let token = token_from_headers(&state, &headers).ok_or(ApiError::Unauthorized)?;
    let hash = tokens::hash(&token);
    let login = state
        .logins
        .validate_hash(hash)
        .ok_or(ApiError::Unauthorized)?;
    state.logins.end(hash);
    state
        .audit
        .record(Entry::new(&login.name, Action::Logout))
        .await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth_cookie(&state, "", 0));
    Ok(response)
}

/// Every role: any logged-in account.
pub(crate) const ANY_ROLE: &[Role] = &[Role::Counsellor, Role::Supervisor, Role::Admin];

/// `GET /api/v1/me`: who the login belongs to.
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (account, login, _) = any_stage(&state, &headers)?;
    Ok(Json(json!({
        "name": account.name,
        "display_name": account.display_name,
        "role": account.role.to_string(),
        "capacity": account.capacity.unwrap_or(state.config.session.default_capacity),
        "second_factor": account.totp.is_some(),
        "second_factor_required": state.config.auth.second_factor_roles.contains(&account.role),
        "change_password": login.stage == Stage::ChangePassword,
        "enrol_second_factor": login.stage == Stage::EnrolSecondFactor,
    }))
    .into_response())
}

/// The account behind a request's login, if it has one of `roles` and the
/// request comes from a page that may use a staff login.
pub(crate) fn authorised(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Account, ApiError> {
    authorised_login(state, headers, roles).map(|(account, _)| account)
}

/// [`authorised`], with the login itself, for what stays open as long as
/// the login does (a feed, a watch). The request counts as activity.
pub(crate) fn authorised_login(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<(Account, Arc<Login>), ApiError> {
    let (account, login, _) = any_stage(state, headers)?;
    match login.stage {
        Stage::Full => {}
        Stage::ChangePassword => {
            return Err(ApiError::Forbidden("change your password first"));
        }
        Stage::EnrolSecondFactor => {
            return Err(ApiError::Forbidden("set up your second factor first"));
        }
    }
    if !roles.contains(&account.role) {
        return Err(ApiError::Forbidden("your role may not do this"));
    }
    Ok((account, login))
}

/// The account and login behind a request, whatever the login may do yet
/// (for what a login that must first change its password or set up a
/// second factor may do: that, and log out). The request counts as
/// activity.
pub(crate) fn any_stage(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Account, Arc<Login>, tokens::TokenHash), ApiError> {
    check_staff_page(state, headers)?;
    let token = token_from_headers(state, headers).ok_or(ApiError::Unauthorized)?;
    let (hash, login) = state
        .logins
        .validate(&token)
        .ok_or(ApiError::Unauthorized)?;
    let account = state
        .accounts
        .get_by_id(login.account)
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Unauthorized)?;
    if account.epoch != login.epoch {
        // Changed since (a new password, a revocation): the login is void.
        // The next sweep ends it and hands its sessions on.
        return Err(ApiError::Unauthorized);
    }
    state.logins.touch(&login, std::time::Instant::now());
    Ok((account, login, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_and_bearer_tokens() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; haven_auth=tok; b=2"),
        );
        assert_eq!(
            bearer_or_cookie(&headers, AUTH_COOKIE).as_deref(),
            Some("tok")
        );
        assert_eq!(bearer_or_cookie(&headers, HOST_AUTH_COOKIE), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer other"),
        );
        assert_eq!(
            bearer_or_cookie(&headers, AUTH_COOKIE).as_deref(),
            Some("other")
        );
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
