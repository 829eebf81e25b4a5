//! The WebSocket endpoints `/ws/seeker` and `/ws/counsellor`.
//!
//! Before upgrading, [`admit`] refuses what must never become a socket:
//! anything while draining (503), a disallowed `Origin` (403, the defence
//! against cross-site WebSocket hijacking), a full server (503), and a
//! source over its limits (429). The socket is then configured with small,
//! explicit buffers and size limits, and handed to the role's loop in
//! [`seeker`] or [`counsellor`].

pub(crate) mod conn;
mod counsellor;
pub(crate) mod frames;
mod reader;
mod seeker;
pub(crate) mod validate;

use std::net::SocketAddr;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use haven_protocol::{CloseCode, ErrorCode};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::debug;

use self::conn::{ConnHandle, WriterSettings, run_writer};
pub(crate) use self::reader::Role;
use self::reader::{Rate, Reader, ReaderLimits};

use crate::api::{ApiError, auth_cookie_name, cookie};
use crate::app::AppState;
use crate::limits::{CapGuard, SourceGuard, SourceRefusal};

/// What a socket holds for its whole life: its slot in the global cap, its
/// count for its source, and its place in the shutdown tracker.
#[derive(Debug)]
pub(crate) struct Admission {
    _cap: CapGuard,
    _source: SourceGuard,
    _task: TaskTrackerToken,
    /// When a block on the source lapses, if one was in force when the
    /// socket was admitted (help-seekers only).
    blocked_until: Option<u64>,
}

/// Checks `Origin`: for help-seekers against `allowed_origins` (exact
/// match only, `null` never); for counsellors, only a staff page
/// ([`crate::auth::origin`]), never a page that merely embeds the widget.
fn origin_allowed(state: &AppState, headers: &HeaderMap, role: Role) -> bool {
    let config = &state.config;
    match (headers.get(header::ORIGIN), role) {
        (None, _) if !config.allow_missing_origin => false,
        (_, Role::Counsellor) => crate::auth::origin::staff_page(config, headers),
        (None, Role::Seeker) => true,
        (Some(origin), Role::Seeker) => config
            .allowed_origins
            .iter()
            .any(|allowed| allowed.as_bytes() == origin.as_bytes()),
    }
}

pub(crate) fn admit(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    role: Role,
) -> Result<Admission, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return Err(ApiError::Unavailable("shutting down; reconnect shortly"));
    }
    if !origin_allowed(state, headers, role) {
        debug!("upgrade refused: origin not allowed");
        return Err(ApiError::Forbidden("origin not allowed"));
    }
    let Some(cap) = state.cap.try_acquire(role == Role::Counsellor) else {
        debug!("upgrade refused: connection cap reached");
        return Err(ApiError::Unavailable("server full; try again later"));
    };
    let ip = crate::limits::client_ip(peer, headers, &state.config.trusted_proxies);
    let blocked_until = match role {
        Role::Seeker => state.blocks.until(ip, crate::broker::session::now_ms()),
        Role::Counsellor => None,
    };
    let source = state.sources.admit(ip).map_err(|why| {
        debug!(reason = ?why, "upgrade refused: source limit");
        match why {
            SourceRefusal::TooFast => ApiError::TooManyRequests(60),
            SourceRefusal::TooMany => ApiError::TooManyRequests(30),
        }
    })?;
    Ok(Admission {
        _cap: cap,
        _source: source,
        _task: state.sockets.token(),
        blocked_until,
    })
}

pub(crate) fn configure(ws: WebSocketUpgrade, state: &AppState) -> WebSocketUpgrade {
    let limits = &state.config.limits;
    let frame = limits.max_frame_bytes as usize;
    ws.read_buffer_size(limits.read_buffer_bytes as usize)
        .write_buffer_size(limits.write_buffer_bytes as usize)
        .max_write_buffer_size(limits.write_buffer_bytes as usize + 4 * frame + 64 * 1024)
        .max_frame_size(frame)
        .max_message_size(frame)
        .protocols([haven_protocol::SUBPROTOCOL])
}

/// Refuses a socket's first frame: an error frame, then a close once it
/// has gone out.
fn refuse(conn: &ConnHandle, role: Role, code: ErrorCode, detail: &str, close: CloseCode) {
    conn.send(role.error(code, detail));
    conn.close_after_queued(close);
}

pub(crate) fn refuse_upgrade(rejection: WebSocketUpgradeRejection) -> Response {
    let mut response = rejection.into_response();
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// Why an upgrade was refused before it happened.
#[derive(Debug)]
enum Refused {
    /// Not a valid upgrade request.
    Upgrade(WebSocketUpgradeRejection),
    /// Valid, but not admitted.
    Admission(ApiError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Upgrade(rejection) => refuse_upgrade(rejection),
            Refused::Admission(error) => error.into_response(),
        }
    }
}

/// Everything both endpoints do before upgrading: a well-formed upgrade
/// request, admission, and the socket's limits.
fn prepare(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    ws: Upgrade,
    role: Role,
) -> Result<(WebSocketUpgrade, Admission), Refused> {
    let ws = ws.map_err(Refused::Upgrade)?;
    let admission = admit(state, peer, headers, role).map_err(Refused::Admission)?;
    Ok((configure(ws, state), admission))
}

/// `GET /ws/seeker`.
pub(crate) async fn seeker_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    match prepare(&state, peer, &headers, ws, Role::Seeker) {
        Ok((ws, admission)) => ws.on_upgrade(move |socket| seeker::run(state, socket, admission)),
        Err(refused) => refused.into_response(),
    }
}

/// `GET /ws/counsellor`. The login may come as the login cookie.
pub(crate) async fn counsellor_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    match prepare(&state, peer, &headers, ws, Role::Counsellor) {
        Ok((ws, admission)) => {
            let cookie_token = cookie(&headers, auth_cookie_name(&state.config));
            ws.on_upgrade(move |socket| counsellor::run(state, socket, admission, cookie_token))
        }
        Err(refused) => refused.into_response(),
    }
}

/// An upgraded socket: its outbound queue and writer task, and its reader.
#[derive(Debug)]
pub(crate) struct Socket {
    state: AppState,
    pub(crate) conn: ConnHandle,
    pub(crate) reader: Reader,
    writer: tokio::task::JoinHandle<()>,
    _admission: Admission,
    _gauge: crate::metrics::SocketGauge,
}

impl Socket {
    /// The source this socket came from, as a keyed hash.
    pub(crate) fn source(&self) -> crate::limits::SourceTag {
        self._admission._source.tag()
    }

    /// When the block on this socket's source lapses, if it was blocked
    /// when admitted.
    pub(crate) fn blocked_until(&self) -> Option<u64> {
        self._admission.blocked_until
    }

    /// Splits the socket, starts its writer and sets up its reader with the
    /// role's limits.
    pub(crate) fn open(
        state: &AppState,
        socket: WebSocket,
        role: Role,
        admission: Admission,
    ) -> Self {
        let (sink, stream) = socket.split();
        let conn = ConnHandle::new(state.config.limits.outbound_queue as usize, &state.lazy);
        state.connections.add(&conn);
        let writer = state.sockets.spawn(run_writer(
            sink,
            conn.clone(),
            WriterSettings {
                ping_every: state.config.session.ping_interval,
            },
        ));
        let l = &state.config.limits;
        let (frames, messages) = match role {
            Role::Seeker => (
                Rate {
                    per_minute: l.seeker_frames_per_minute,
                    burst: l.seeker_frame_burst,
                },
                Rate {
                    per_minute: l.seeker_messages_per_minute,
                    burst: l.seeker_message_burst,
                },
            ),
            Role::Counsellor => (
                Rate {
                    per_minute: l.counsellor_frames_per_minute,
                    burst: l.counsellor_frame_burst,
                },
                Rate {
                    per_minute: l.counsellor_messages_per_minute,
                    burst: l.counsellor_message_burst,
                },
            ),
        };
        let limits = ReaderLimits {
            hello_timeout: state.config.session.hello_timeout,
            idle_timeout: state.config.session.idle_timeout,
            frames,
            messages,
            flood_strikes: l.flood_strikes,
        };
        let reader = Reader::new(stream, conn.clone(), role, limits);
        Self {
            state: state.clone(),
            conn,
            reader,
            writer,
            _admission: admission,
            _gauge: crate::metrics::SocketGauge::open(role == Role::Seeker),
        }
    }

    /// Ends the socket: closes it unless a close is already on its way,
    /// runs `farewell` (telling the broker the connection is gone), lets
    /// the client answer the close, and waits for the writer.
    pub(crate) async fn close(self, farewell: impl Future<Output = ()>) {
        if self.conn.close_code() == Some(haven_protocol::CloseCode::SlowConsumer) {
            crate::metrics::slow_consumer();
        }
        self.conn.finish();
        farewell.await;
        self.reader.drain().await;
        let _ = self.writer.await;
        self.state.connections.remove(&self.conn);
    }
}
