//! Staff login over HTTP: `POST /api/v1/login` and `/logout`, `GET
//! /api/v1/me`, and [`authorised`], which every login-protected endpoint
//! calls to find the account behind a request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use super::ApiError;
use crate::accounts::{Account, Role};
use crate::app::AppState;
use crate::auth::LoginError;
use crate::tokens;

/// The login cookie's name over plain HTTP (testing only).
const AUTH_COOKIE: &str = "haven_auth";
/// Its name when `Secure`: a `__Host-` cookie is set only by Haven's own
/// origin over HTTPS, with `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant or shadow it.
const HOST_AUTH_COOKIE: &str = "__Host-haven_auth";

/// The login cookie's name under this configuration.
pub(crate) fn auth_cookie_name(config: &crate::config::Config) -> &'static str {
    if config.auth.secure_cookie {
        HOST_AUTH_COOKIE
    } else {
        AUTH_COOKIE
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

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_in: u64,
    name: String,
    display_name: String,
    role: String,
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

fn auth_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    let secure = if state.logins.secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    let name = auth_cookie_name(&state.config);
    let value =
        format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
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
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_staff_page(&state, &headers)?;
    let Json(req) =
        body.map_err(|_| ApiError::BadRequest("expected JSON {\"name\", \"password\"}"))?;
    if req.name.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::BadRequest("name or password too long"));
    }
    let (token, account) = match state
        .logins
        .login(&state.accounts, &req.name, &req.password)
        .await
    {
        Ok(ok) => ok,
        Err(LoginError::Invalid) => {
            info!("login refused");
            return Err(ApiError::Unauthorized);
        }
        Err(LoginError::LockedOut(wait)) => {
            warn!("login refused: account locked out after repeated failures");
            return Err(ApiError::LockedOut(wait.as_secs().max(1)));
        }
        Err(LoginError::Busy) => return Err(ApiError::Busy),
        Err(LoginError::Internal) => return Err(ApiError::Internal),
    };
    info!(account = account.id, role = %account.role, "login");
    let ttl = state.logins.ttl().as_secs();
    let mut response = Json(LoginResponse {
        token: token.clone(),
        expires_in: ttl,
        name: account.name,
        display_name: account.display_name,
        role: account.role.to_string(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth_cookie(&state, &token, ttl));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/v1/logout`: ends the login and closes its sockets.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_staff_page(&state, &headers)?;
    let token = token_from_headers(&state, &headers).ok_or(ApiError::Unauthorized)?;
    let hash = tokens::hash(&token);
    if !state.logins.logout(hash) {
        return Err(ApiError::Unauthorized);
    }
    state.broker.logout(hash).await;
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
    let account = authorised(&state, &headers, ANY_ROLE)?;
    Ok(Json(json!({
        "name": account.name,
        "display_name": account.display_name,
        "role": account.role.to_string(),
        "capacity": account.capacity.unwrap_or(state.config.session.default_capacity),
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
    check_staff_page(state, headers)?;
    let token = token_from_headers(state, headers).ok_or(ApiError::Unauthorized)?;
    let (_, login) = state
        .logins
        .validate(&token)
        .ok_or(ApiError::Unauthorized)?;
    let account = state
        .accounts
        .get_by_id(login.account)
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Unauthorized)?;
    if !roles.contains(&account.role) {
        return Err(ApiError::Forbidden("your role may not do this"));
    }
    Ok(account)
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
