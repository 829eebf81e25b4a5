//! Which pages may use a staff login: Haven's own, and those listed in
//! `staff_origins`; never a page that merely embeds the widget.
//!
//! `allowed_origins` lists the helpline sites that embed the widget. They
//! are often the same *site* as Haven (`www.hulplijn.nl` beside
//! `chat.hulplijn.nl`), so a `SameSite=Strict` login cookie is still sent
//! with their requests, and a script on such a page (an analytics tag, a
//! compromised plugin) could otherwise open the counsellor socket or post
//! to the supervisor's API with a logged-in staff member's cookie. So
//! every staff endpoint (the counsellor socket, login and logout, and every
//! login-protected API) asks two questions of a browser's request:
//!
//! - `Origin`, when sent, must be Haven's own origin (its scheme is `http`
//!   or `https` and its host and port are the request's `Host`) or one of
//!   `staff_origins`;
//! - without `Origin` (a same-origin `GET`, a navigation), the browser's
//!   `Sec-Fetch-Site` must be `same-origin` or `none` (typed into the
//!   address bar): `same-site` and `cross-site` requests are refused.
//!
//! A client that sends neither header is not a browser acting for someone
//! else (curl, the load generator) and carries its own token, so it passes.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

/// Whether a request to a staff endpoint comes from a page allowed to use
/// a staff login.
pub(crate) fn staff_page(config: &Config, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            own_origin(origin, headers.get(header::HOST))
                || config
                    .staff_origins
                    .iter()
                    .any(|o| o.as_bytes() == origin.as_bytes())
        }
        None => headers
            .get("sec-fetch-site")
            .is_none_or(|site| matches!(site.as_bytes(), b"same-origin" | b"none")),
    }
}

/// Whether `origin` is `http://HOST` or `https://HOST` for the request's
/// own `Host` (with its port, if any).
fn own_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let Some(host) = host.map(HeaderValue::as_bytes).filter(|h| !h.is_empty()) else {
        return false;
    };
    let origin = origin.as_bytes();
    let authority = origin
        .strip_prefix(b"https://")
        .or_else(|| origin.strip_prefix(b"http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_havens_own_pages_and_listed_ones_use_a_staff_login() {
        let mut config = Config {
            allowed_origins: vec!["https://www.hulplijn.nl".into()],
            ..Config::default()
        };
        let host = ("host", "chat.hulplijn.nl");
        let allowed = [
            // The console itself.
            request(&[host, ("origin", "https://chat.hulplijn.nl")]),
            request(&[host, ("origin", "https://CHAT.hulplijn.nl")]),
            request(&[host, ("sec-fetch-site", "same-origin")]),
            request(&[host, ("sec-fetch-site", "none")]),
            // Not a browser.
            request(&[host]),
        ];
        for headers in &allowed {
            assert!(staff_page(&config, headers), "{headers:?}");
        }
        let refused = [
            // The widget's host page: same site, other origin.
            request(&[host, ("origin", "https://www.hulplijn.nl")]),
            request(&[host, ("sec-fetch-site", "same-site")]),
            request(&[host, ("sec-fetch-site", "cross-site")]),
            request(&[host, ("origin", "null")]),
            request(&[host, ("origin", "https://chat.hulplijn.nl:8443")]),
            request(&[host, ("origin", "https://chat.hulplijn.nl.evil.example")]),
            request(&[host, ("origin", "ftp://chat.hulplijn.nl")]),
            request(&[("origin", "https://chat.hulplijn.nl")]),
        ];
        for headers in &refused {
            assert!(!staff_page(&config, headers), "{headers:?}");
        }
        // A separate console origin, when listed.
        config.staff_origins = vec!["https://console.hulplijn.nl".into()];
        assert!(staff_page(
            &config,
            &request(&[host, ("origin", "https://console.hulplijn.nl")])
        ));
        assert!(!staff_page(&config, &refused[0]));
    }
}
