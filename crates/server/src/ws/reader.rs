//! The inbound side shared by both roles: reads frames, enforces the hello
//! deadline, the idle timeout and the per-socket rate limit, and turns
//! transport problems into close codes.
//!
//! [`Reader::next`] yields only text frames that passed the rate limit.
//! Everything else (pings, pongs, binary frames, floods, oversized frames,
//! broken streams, shutdown) is handled here, so the role loops only ever
//! see messages to decode.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt as _;
use futures_util::stream::SplitStream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use haven_protocol::{CloseCode, ErrorCode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::conn::ConnHandle;
use super::frames::{counsellor_error, seeker_error};

/// A flood warning is sent at most this often.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// After this long without a dropped frame, earlier warnings are forgiven.
const FORGIVE_AFTER: Duration = Duration::from_secs(60);

/// Which role's error frames to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Seeker,
    Counsellor,
}

impl Role {
    pub(crate) fn error(self, code: ErrorCode, detail: &str) -> Utf8Bytes {
        match self {
            Role::Seeker => seeker_error(code, None, Some(detail.to_owned())),
            Role::Counsellor => counsellor_error(code, None, None, Some(detail.to_owned())),
        }
    }
}

/// Settings for one reader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReaderLimits {
    pub(crate) hello_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) per_minute: u32,
    pub(crate) burst: u32,
    pub(crate) flood_strikes: u32,
}

#[derive(Debug, Default)]
struct Flood {
    warnings: u32,
    last_warning: Option<Instant>,
    last_drop: Option<Instant>,
}

pub(crate) struct Reader {
    stream: SplitStream<WebSocket>,
    conn: ConnHandle,
    role: Role,
    limits: ReaderLimits,
    limiter: DefaultDirectRateLimiter,
    flood: Flood,
    shutdown: CancellationToken,
    opened: Instant,
    last_heard: Instant,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Reader {
    pub(crate) fn new(
        stream: SplitStream<WebSocket>,
        conn: ConnHandle,
        role: Role,
        limits: ReaderLimits,
        shutdown: CancellationToken,
    ) -> Self {
        let quota =
            Quota::per_minute(nonzero(limits.per_minute)).allow_burst(nonzero(limits.burst));
        let now = Instant::now();
        Self {
            stream,
            conn,
            role,
            limits,
            limiter: RateLimiter::direct(quota),
            flood: Flood::default(),
            shutdown,
            opened: now,
            last_heard: now,
        }
    }

    /// The next text frame, or `None` when the socket is done (a close code
    /// has then been chosen where one applies). `greeted` says whether the
    /// client has sent its `hello`/`resume`: before that, the hello deadline
    /// applies instead of the idle timeout.
    pub(crate) async fn next(&mut self, greeted: bool) -> Option<Utf8Bytes> {
        loop {
            let (deadline, on_timeout) = if greeted {
                (
                    self.last_heard + self.limits.idle_timeout,
                    CloseCode::HeartbeatTimeout,
                )
            } else {
                (
                    self.opened + self.limits.hello_timeout,
                    CloseCode::HelloTimeout,
                )
            };
            let msg = tokio::select! {
                biased;
                () = self.conn.closed() => return None,
                () = self.shutdown.cancelled() => {
                    self.conn.close_now(CloseCode::GoingAway);
                    return None;
                }
                () = tokio::time::sleep_until(deadline) => {
                    debug!(code = on_timeout.code(), "closing a silent socket");
                    self.conn.close_now(on_timeout);
                    return None;
                }
                msg = self.stream.next() => msg,
            };
            let msg = match msg {
                None => return None,
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    self.transport_error(e);
                    return None;
                }
            };
            self.last_heard = Instant::now();
            match msg {
                Message::Text(text) => {
                    if self.admit_frame() {
                        return Some(text);
                    }
                }
                Message::Binary(_) => {
                    if self.admit_frame() {
                        self.conn.send(
                            self.role
                                .error(ErrorCode::BinaryNotSupported, "send JSON in text frames"),
                        );
                    }
                }
                // Pings are answered by tungstenite itself; both only show
                // the peer is alive.
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return None,
            }
        }
    }

    /// Applies the rate limit. A dropped frame earns a warning at most once
    /// a second; after `flood_strikes` warnings the socket is closed.
    fn admit_frame(&mut self) -> bool {
        if self.limiter.check().is_ok() {
            return true;
        }
        let now = Instant::now();
        if self
            .flood
            .last_drop
            .is_some_and(|t| now.duration_since(t) >= FORGIVE_AFTER)
        {
            self.flood.warnings = 0;
        }
        self.flood.last_drop = Some(now);
        if self
            .flood
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.flood.last_warning = Some(now);
            self.flood.warnings += 1;
            if self.flood.warnings > self.limits.flood_strikes {
                debug!("closing a flooding socket");
                self.conn.close_now(CloseCode::RateLimited);
            } else {
                self.conn.send(
                    self.role
                        .error(ErrorCode::RateLimited, "slow down: frame dropped"),
                );
            }
        }
        false
    }

    fn transport_error(&self, error: axum::Error) {
        let code = match error.into_inner().downcast::<tungstenite::Error>() {
            Ok(e) => match *e {
                tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
                tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
                    Some(CloseCode::ProtocolViolation)
                }
                _ => None,
            },
            Err(_) => None,
        };
        if let Some(code) = code {
            debug!(
                code = code.code(),
                "closing a socket after a transport error"
            );
            self.conn.close_now(code);
        }
    }
}
