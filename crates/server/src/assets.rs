//! The browser code, served from the binary: the widget's loader
//! (`/widget.js`), the chat app it frames (`/embed/`), the counsellor
//! console (`/console/`) and a sample helpline page (`/demo/`).
//!
//! The files live in `web-widget/public/`. Release builds embed them, so
//! `haven` stays one file; debug builds read them from disk, so a browser
//! reload shows an edit.
//!
//! Every page gets a strict Content-Security-Policy: scripts, styles and
//! connections only from Haven's own origin, nothing from third parties.
//! Only the chat app (`/embed/`) may be framed, and only by the origins in
//! `allowed_origins`: the helpline sites that embed the widget. Files are
//! revalidated on every load (`no-cache` with an ETag), so a deployment
//! never leaves a browser with a stale mix of old and new files.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rust_embed::Embed;

use crate::api;
use crate::app::AppState;

#[derive(Embed)]
#[folder = "../../web-widget/public/"]
struct Public;

/// What every page may load: its own origin's scripts, styles, images and
/// sounds, and connections (fetch, WebSocket) back to Haven.
const BASE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'";

/// Serves a file of the browser code, or the API's 404.
pub(crate) async fn serve(State(state): State<AppState>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return api::not_found().await;
    }
    let path = request.uri().path().trim_start_matches('/');
    if path.is_empty() {
        return Redirect::temporary("/demo/").into_response();
    }
    let file = if path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let Some(asset) = Public::get(&file) else {
        // `/console` means `/console/`.
        if Public::get(&format!("{path}/index.html")).is_some() {
            return Redirect::permanent(&format!("/{path}/")).into_response();
        }
        return api::not_found().await;
    };
    let etag = etag(&asset.metadata.sha256_hash());
    let mut response = if matches(request.headers(), &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if request.method() == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        asset.data.into_owned().into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type(asset.metadata.mimetype())) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if file == "widget.js" {
        // Loaded by helpline pages on other origins.
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
    } else if let Ok(value) = HeaderValue::from_str(&policy(&state, &file)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The page's policy: who may frame it, and whether it may frame Haven.
fn policy(state: &AppState, file: &str) -> String {
    if file.starts_with("embed/") {
        let mut ancestors = String::from("'self'");
        for origin in &state.config.allowed_origins {
            ancestors.push(' ');
            ancestors.push_str(origin);
        }
        format!("{BASE_POLICY}; frame-ancestors {ancestors}")
    } else if file.starts_with("demo/") {
        format!("{BASE_POLICY}; frame-src 'self'; frame-ancestors 'none'")
    } else {
        format!("{BASE_POLICY}; frame-ancestors 'none'")
    }
}

fn etag(hash: &[u8; 32]) -> String {
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &hash[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_exactly_weakly_or_by_star() {
        let tag = etag(&[0xab; 32]);
        assert_eq!(tag.len(), 34);
        let mut headers = HeaderMap::new();
        assert!(!matches(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!matches(&headers, &tag));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(matches(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&headers, &tag));
    }

    #[test]
    fn text_gets_a_charset() {
        assert_eq!(content_type("text/html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("text/javascript"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("image/svg+xml"), "image/svg+xml");
    }
}
