//! The inbound side shared by both roles: reads frames, enforces the hello
//! deadline, the idle timeout and the per-socket rate limits, and turns
//! transport problems into close codes.
//!
//! Two limits apply. Every frame counts against a generous frame limit that
//! protects the server's CPU; frames over it are dropped with a warning.
//! Chat messages also count against a tighter message limit (what a
//! spammer would abuse); the role loop asks [`Reader::admit_message`] and
//! refuses the message, unacked, when it says no. Either kind of excess is
//! a strike; a socket still flooding after `flood_strikes` warned seconds is
//! closed with 4002.
//!
//! [`Reader::next`] yields only text frames that passed the frame limit.
//! Everything else (pings, pongs, binary frames, floods, oversized frames,
//! broken streams, shutdown) is handled here, so the role loops only ever
//! see messages to decode.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt as _;
use futures_util::stream::SplitStream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use haven_protocol::{CloseCode, ErrorCode};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use super::conn::ConnHandle;
use super::frames::{counsellor_error, seeker_error};

/// A flood warning is sent at most this often.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// How long a closing socket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
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

/// A rate: so many per minute, sustained, with a burst above that.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub(crate) per_minute: u32,
    pub(crate) burst: u32,
}

impl Rate {
    fn limiter(self) -> DefaultDirectRateLimiter {
        RateLimiter::direct(
            Quota::per_minute(nonzero(self.per_minute)).allow_burst(nonzero(self.burst)),
        )
    }
}

/// Settings for one reader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReaderLimits {
    pub(crate) hello_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) frames: Rate,
    pub(crate) messages: Rate,
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
    frames: DefaultDirectRateLimiter,
    messages: DefaultDirectRateLimiter,
    flood: Flood,
    /// Wakes the reader at the hello deadline or the idle timeout. Frames
    /// only move `last_heard`; the timer is re-armed lazily when it fires
    /// early, so a busy socket never touches the timer wheel per frame.
    timer: Pin<Box<Sleep>>,
    /// Whether the timer runs on the idle timeout (after the greeting)
    /// rather than the hello deadline.
    timing_idle: bool,
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
    ) -> Self {
        let now = Instant::now();
        Self {
            stream,
            conn,
            role,
            limits,
            frames: limits.frames.limiter(),
            messages: limits.messages.limiter(),
            flood: Flood::default(),
            timer: Box::pin(tokio::time::sleep_until(now + limits.hello_timeout)),
            timing_idle: false,
            opened: now,
            last_heard: now,
        }
    }

    /// The next text frame, or `None` when the socket is done (a close code
    /// has then been chosen where one applies). `greeted` says whether the
    /// client has sent its `hello`/`resume`: before that, the hello deadline
    /// applies instead of the idle timeout.
    pub(crate) async fn next(&mut self, greeted: bool) -> Option<Utf8Bytes> {
        if greeted != self.timing_idle {
            // The rule changed (the client greeted): the new deadline may be
            // earlier than the one armed, so arm it now.
            self.timing_idle = greeted;
            let (deadline, _) = self.deadline();
            self.timer.as_mut().reset(deadline);
        }
        loop {
            // The stream first: a frame that is there is taken without
            // registering for a close or touching the timer. The close is
            // still seen before every frame (an atomic load), and the
            // timer whenever the stream has nothing (at the latest when
            // Tokio's cooperative budget makes it yield).
            if self.conn.is_closing() {
                return None;
            }
            let msg = tokio::select! {
                biased;
                msg = self.stream.next() => msg,
                () = self.conn.closed() => return None,
                () = &mut self.timer => {
                    let (deadline, on_timeout) = self.deadline();
                    if Instant::now() < deadline {
                        self.timer.as_mut().reset(deadline);
                        continue;
                    }
                    debug!(code = on_timeout.code(), "closing a silent socket");
                    self.conn.close_now(on_timeout);
                    return None;
                }
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
                // Pings are answered by tungstenite itself; both show the
                // peer is alive, and both count against the frame limit
                // (a ping flood is a flood).
                Message::Ping(_) | Message::Pong(_) => {
                    self.admit_frame();
                }
                Message::Close(_) => return None,
            }
        }
    }

    /// When the last frame arrived.
    pub(crate) fn last_heard(&self) -> std::time::Instant {
        self.last_heard.into_std()
    }

    /// When the socket times out if nothing arrives, and with which code.
    fn deadline(&self) -> (Instant, CloseCode) {
        if self.timing_idle {
            (
                self.last_heard + self.limits.idle_timeout,
                CloseCode::HeartbeatTimeout,
            )
        } else {
            (
                self.opened + self.limits.hello_timeout,
                CloseCode::HelloTimeout,
            )
        }
    }

    /// Completes the closing handshake: reads (and discards) until the
    /// client's close frame arrives or `CLOSE_WAIT` passes, so the client
    /// gets to read our close frame before the TCP connection goes away.
    pub(crate) async fn drain(mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(msg)) = self.stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    /// Applies the frame limit. A dropped frame is a strike, warned about
    /// at most once a second.
    fn admit_frame(&mut self) -> bool {
        if self.frames.check().is_ok() {
            return true;
        }
        if self.strike() {
            self.conn.send(
                self.role
                    .error(ErrorCode::RateLimited, "slow down: frame dropped"),
            );
        }
        false
    }

    /// Applies the chat-message limit to a `send`. When it says no, the
    /// caller refuses the message (unacked, so the client retries later);
    /// that refusal is the warning.
    pub(crate) fn admit_message(&mut self) -> bool {
        if self.messages.check().is_ok() {
            return true;
        }
        self.strike();
        false
    }

    /// Counts one excess. Returns whether a warning is due (at most once a
    /// second); closes the socket once more than `flood_strikes` seconds
    /// in a row were warned about.
    fn strike(&mut self) -> bool {
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
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            return false;
        }
        self.flood.last_warning = Some(now);
        self.flood.warnings += 1;
        if self.flood.warnings > self.limits.flood_strikes {
            debug!("closing a flooding socket");
            self.conn.close_now(CloseCode::RateLimited);
            return false;
        }
        true
    }

    fn transport_error(&self, error: axum::Error) {
        let code = match error.into_inner().downcast::<tungstenite::Error>() {
            Ok(e) => match *e {
                tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
                tungstenite::Error::Protocol(_) => Some(CloseCode::ProtocolError),
                tungstenite::Error::Utf8(_) => Some(CloseCode::InvalidPayload),
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
