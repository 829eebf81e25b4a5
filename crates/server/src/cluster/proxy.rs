//! Passing a client on to the leading node.
//!
//! On a node that does not lead, every `/api/` request and every `/ws/`
//! socket goes on to the leading node; static files, `/healthz`,
//! `/readyz` and `/metrics` stay here. The node still admits the client
//! itself first (origin, capacity, per-source limits, draining), keeps
//! the socket's heartbeat with the client (a client that went silent is
//! closed here and its upstream socket with it), and forwards frames both
//! ways, close codes included. When the leading node goes away mid-socket
//! the client is closed with 1001, so it reconnects (to any node) and
//! resumes. The client's address never goes on: the leading node gets
//! its pseudonym ([`super::Cluster::pseudonym`]).
//!
//! On the leading node, a request that carries the node token has its
//! pseudonym put where a client's address would be.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts as _, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use haven_protocol::CloseCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
use tracing::debug;

use super::{Cluster, NODE_HEADER, SOURCE_HEADER};
use crate::api::ApiError;
use crate::app::AppState;

/// How long connecting to the leading node may take.
const CONNECT: Duration = Duration::from_secs(3);
/// How long the leading node may take to answer a request's headers.
const ANSWER: Duration = Duration::from_secs(15);

/// Headers that belong to one hop and are not passed on.
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The only request headers passed on to the leading node: what it needs
/// to serve the request, and nothing that could carry the client's address
/// (`X-Real-IP`, `Forwarded`, `CF-Connecting-IP`, `Via` and the like stay
/// here).
const PASSED: [&str; 9] = [
    "host",
    "origin",
    "cookie",
    "authorization",
    "content-type",
    "content-length",
    "accept",
    "accept-language",
    "last-event-id",
];

fn passes_on(name: &HeaderName) -> bool {
    PASSED.contains(&name.as_str())
}

fn local(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/ws/"))
}

/// The middleware: serves here what this node serves, passes the rest on.
pub(crate) async fn route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(request).await;
    };
    if local(request.uri().path()) {
        return next.run(request).await;
    }
    if cluster.sent_by_node(request.headers()) {
        if !cluster.leading() {
            return ApiError::Unavailable("this node does not lead; try again").into_response();
        }
        // The pseudonym stands where the client's address would.
        let source = request
            .headers()
            .get(SOURCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<IpAddr>().ok());
        let Some(source) = source else {
            return ApiError::BadRequest("a node's request without a source").into_response();
        };
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(source, 0)));
        let headers = request.headers_mut();
        headers.remove(NODE_HEADER);
        headers.remove(SOURCE_HEADER);
        headers.remove("x-forwarded-for");
        return next.run(request).await;
    }
    // A client's own request never carries what only nodes may say.
    request.headers_mut().remove(NODE_HEADER);
    request.headers_mut().remove(SOURCE_HEADER);
    if cluster.leading() {
        return next.run(request).await;
    }
    let Some(leader) = cluster.leader() else {
        return ApiError::Unavailable("no node leads right now; try again shortly").into_response();
    };
    let ip = crate::limits::client_ip(peer, request.headers(), &state.config.trusted_proxies);
    let pseudonym = cluster.pseudonym(ip);
    if request.uri().path().starts_with("/ws/") {
        socket(state, cluster, leader, peer, pseudonym, request).await
    } else {
        http(&cluster, &leader, pseudonym, request).await
    }
}

/// `host:port` of a node's `http://host:port`.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

fn unavailable() -> Response {
    ApiError::Unavailable("the leading node cannot be reached; try again shortly").into_response()
}

/// Passes a plain request on and streams the answer back.
async fn http(cluster: &Cluster, leader: &str, pseudonym: IpAddr, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut upstream = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        if passes_on(name) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream
        .header(NODE_HEADER, cluster.node_token())
        .header(SOURCE_HEADER, pseudonym.to_string())
        .body(body);
    let Ok(upstream) = upstream else {
        return ApiError::BadRequest("a request that cannot be passed on").into_response();
    };
    let Ok(Ok(stream)) = tokio::time::timeout(CONNECT, TcpStream::connect(authority(leader))).await
    else {
        return unavailable();
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return unavailable();
    };
    // Drives the connection for as long as the answer streams (the
    // supervisor feed lasts).
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "proxied connection ended");
        }
    });
    let Ok(Ok(answer)) = tokio::time::timeout(ANSWER, sender.send_request(upstream)).await else {
        return unavailable();
    };
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !HOP.contains(&name.as_str()) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// Fetches `path` from the node at `address` with the node token: the
/// answer's body, when it is 200.
pub(crate) async fn fetch(cluster: &Cluster, address: &str, path: &str) -> Option<Vec<u8>> {
    use http_body_util::BodyExt as _;
    let stream = tokio::time::timeout(CONNECT, TcpStream::connect(authority(address)))
        .await
        .ok()?
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .uri(path)
        .header(header::HOST, authority(address))
        .header(NODE_HEADER, cluster.node_token())
        .body(Body::empty())
        .ok()?;
    let answer = tokio::time::timeout(ANSWER, sender.send_request(request))
        .await
        .ok()?
        .ok()?;
    if answer.status() != StatusCode::OK {
        return None;
    }
    let body = tokio::time::timeout(ANSWER, answer.into_body().collect())
        .await
        .ok()?
        .ok()?;
    Some(body.to_bytes().to_vec())
}

type Upstream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Passes a socket on: admits it here, opens the leading node's socket
/// first (so a refusal there reaches the client as its HTTP answer), then
/// upgrades and forwards frames both ways.
async fn socket(
    state: AppState,
    cluster: Arc<Cluster>,
    leader: Arc<str>,
    peer: SocketAddr,
    pseudonym: IpAddr,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let role = if parts.uri.path() == "/ws/counsellor" {
        crate::ws::Role::Counsellor
    } else {
        crate::ws::Role::Seeker
    };
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return crate::ws::refuse_upgrade(rejection),
    };
    let admission = match crate::ws::admit(&state, peer, &parts.headers, role) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let url = format!(
        "ws://{}{}",
        authority(&leader),
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(mut upstream) = url.into_client_request() else {
        return unavailable();
    };
    for (name, value) in &parts.headers {
        if passes_on(name) && name != header::HOST {
            upstream.headers_mut().append(name, value.clone());
        }
    }
    if let Some(host) = parts.headers.get(header::HOST) {
        upstream.headers_mut().insert(header::HOST, host.clone());
    }
    if let Some(offered) = parts.headers.get(header::SEC_WEBSOCKET_PROTOCOL) {
        upstream
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, offered.clone());
    }
    let token = HeaderValue::from_str(cluster.node_token()).ok();
    let source = HeaderValue::from_str(&pseudonym.to_string()).ok();
    if let (Some(token), Some(source)) = (token, source) {
        upstream.headers_mut().insert(NODE_HEADER, token);
        upstream.headers_mut().insert(SOURCE_HEADER, source);
    }
    let limits = &state.config.limits;
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes as usize)
        .write_buffer_size(limits.write_buffer_bytes as usize)
        .max_write_buffer_size(limits.write_buffer_bytes as usize + (1 << 20) + 64 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let connect = tokio_tungstenite::connect_async_with_config(upstream, Some(config), true);
    let upstream = match tokio::time::timeout(CONNECT, connect).await {
        Ok(Ok((upstream, _))) => upstream,
        Ok(Err(tungstenite::Error::Http(answer))) => {
            // The leading node refused it (origin, login, limits): say so.
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let (parts, body) = answer.into_parts();
            let mut response = Response::new(Body::from(body.unwrap_or_default()));
            *response.status_mut() = status;
            // Retry-After (when to try again) and the body's type go along.
            for (name, value) in &parts.headers {
                if !HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
                    response.headers_mut().append(name, value.clone());
                }
            }
            return response;
        }
        _ => return unavailable(),
    };
    let ping = state.config.session.ping_interval;
    let idle = state.config.session.idle_timeout;
    let task = state.sockets.token();
    let changes = cluster.leader_changes();
    crate::ws::configure(ws, &state).on_upgrade(move |client| async move {
        let _admission = admission;
        let _task = task;
        let ends = Ends {
            ping,
            idle,
            leader,
            changes,
        };
        pipe(client, upstream, &state, ends).await;
    })
}

fn to_upstream(message: Message) -> Option<tungstenite::Message> {
    Some(match message {
        Message::Text(t) => tungstenite::Message::text(t.as_str()),
        Message::Binary(b) => tungstenite::Message::Binary(b),
        Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|f| tungstenite::protocol::CloseFrame {
                code: f.code.into(),
                reason: f.reason.as_str().into(),
            }))
        }
        Message::Ping(_) | Message::Pong(_) => return None,
    })
}

fn to_client(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(t) => Message::Text(t.as_str().into()),
        tungstenite::Message::Binary(b) => Message::Binary(b),
        tungstenite::Message::Close(frame) => Message::Close(frame.map(|f| CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        _ => return None,
    })
}

fn close(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: code.reason().into(),
    }))
}

/// Sends the client its close and waits (a moment) for its answer, so the
/// close code, which tells it whether to resume, is read rather than lost
/// to a reset.
async fn farewell(client: &mut WebSocket, close: Message) {
    if !matches!(
        tokio::time::timeout(SEND, client.send(close)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(m)) = client.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long a send to either side may take before that side counts as
/// stuck: a client that stops reading is closed with 4000 (it resumes).
const SEND: Duration = Duration::from_secs(10);

/// What ends a socket passed on, besides either side closing.
struct Ends {
    /// How often both sides are pinged.
    ping: Duration,
    /// How long either side may stay silent.
    idle: Duration,
    /// The leading node this socket goes to.
    leader: Arc<str>,
    /// Says when another node leads.
    changes: tokio::sync::watch::Receiver<Option<Arc<str>>>,
}

/// Forwards frames both ways until either side closes, either falls
/// silent or stops reading, another node leads, or this node shuts down.
/// Whatever ends it on the leading node's side, the client is closed with
/// a code that sends it back to resume (1001, or 4000 when it stopped
/// reading).
async fn pipe(mut client: WebSocket, mut upstream: Upstream, state: &AppState, mut ends: Ends) {
    let mut heartbeat = tokio::time::interval(ends.ping);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    let mut leader_heard = heard;
    let away = close(CloseCode::GoingAway);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                // This node stops; the session lives on at the leading
                // node: reconnect (elsewhere) and resume.
                farewell(&mut client, away).await;
                let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                return;
            }
            changed = ends.changes.changed() => {
                let moved = changed.is_err()
                    || ends.changes.borrow().as_deref() != Some(&*ends.leader);
                if moved {
                    // Another node leads: come back through it.
                    farewell(&mut client, away).await;
                    let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                    return;
                }
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > ends.idle {
                    farewell(&mut client, close(CloseCode::HeartbeatTimeout)).await;
                    let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                    return;
                }
                if leader_heard.elapsed() > ends.idle {
                    // The leading node stalled: come back (elsewhere).
                    farewell(&mut client, away).await;
                    return;
                }
                let pinged = tokio::time::timeout(SEND, client.send(Message::Ping(Default::default()))).await;
                let up = tokio::time::timeout(SEND, upstream.send(tungstenite::Message::Ping(Default::default()))).await;
                if !matches!(pinged, Ok(Ok(()))) {
                    let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                    return;
                }
                if !matches!(up, Ok(Ok(()))) {
                    farewell(&mut client, away).await;
                    return;
                }
            }
            from_client = client.recv() => {
                heard = tokio::time::Instant::now();
                let Some(Ok(message)) = from_client else {
                    // Gone without a close: the leading node hears it as a
                    // lost connection, and starts the grace period.
                    let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                    return;
                };
                let closing = matches!(message, Message::Close(_));
                if let Some(m) = to_upstream(message)
                    && !matches!(tokio::time::timeout(SEND, upstream.send(m)).await, Ok(Ok(())))
                {
                    farewell(&mut client, away).await;
                    return;
                }
                if closing {
                    return;
                }
            }
            from_leader = upstream.next() => {
                leader_heard = tokio::time::Instant::now();
                let Some(Ok(message)) = from_leader else {
                    // The leading node went away mid-socket.
                    farewell(&mut client, away).await;
                    return;
                };
                if let tungstenite::Message::Close(_) = message {
                    if let Some(m) = to_client(message) {
                        farewell(&mut client, m).await;
                    }
                    return;
                }
                if let Some(m) = to_client(message) {
                    match tokio::time::timeout(SEND, client.send(m)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                            return;
                        }
                        Err(_) => {
                            // The client stopped reading.
                            crate::metrics::slow_consumer();
                            let _ = tokio::time::timeout(SEND, upstream.close(None)).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_leading_node_needs_is_passed_on() {
        for name in [
            "host",
            "origin",
            "cookie",
            "authorization",
            "content-type",
            "last-event-id",
        ] {
            assert!(passes_on(&HeaderName::from_static(name)), "{name}");
        }
        // Anything that may carry the client's address, or that only nodes
        // may say, stays here.
        for name in [
            "x-forwarded-for",
            "x-real-ip",
            "forwarded",
            "via",
            "cf-connecting-ip",
            "true-client-ip",
            "x-client-ip",
            "x-haven-node",
            "x-haven-source",
            "transfer-encoding",
            "connection",
            "upgrade",
            "sec-websocket-key",
        ] {
            assert!(!passes_on(&HeaderName::from_static(name)), "{name}");
        }
    }
}
