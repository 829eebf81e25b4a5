//! Haven's wire protocol: the single source of truth for what travels over
//! the `/ws/seeker` and `/ws/counsellor` WebSockets.
//!
//! The server (`haven-server`), the load generator and the test clients all
//! use these types; the browser code is checked against the golden fixtures
//! in `fixtures/`. `docs/protocol.md` explains the rules around them: the
//! session state machine, sequence numbers, acks and resume.
//!
//! # Layout
//!
//! - [`seeker`] and [`counsellor`]: the messages each role sends and receives,
//!   as `type`-tagged enums (`{"type": "hello", ...}`).
//! - [`common`]: values both roles share (ids, chat text, tokens, limits).
//! - [`close`]: WebSocket close codes and whether a client should reconnect.
//! - [`error`]: error codes carried by `{"type": "error"}` messages.
//! - [`events`]: queue and staffing events for the supervisor view (Redis
//!   channel `haven:events`), documented in `docs/events.md`.
//! - [`decode`]: parsing a text frame into a role's message, with a precise
//!   error code when that fails.
//! - [`text`]: what counts in text people write: lengths in code points,
//!   blank text, characters no name may hold.
//! - [`fast`]: exact shortcuts for the frames every chat message produces
//!   (decoding `send`, encoding `message` and `ack`), held to the derived
//!   serde code by property tests.
//!
//! Every frame is one JSON object in one WebSocket text frame. Privacy lives
//! in the types: [`common::ChatText`] and the token types redact themselves
//! in `Debug`, so a stray `?message` in a log line never prints a body.

pub mod close;
pub mod common;
pub mod counsellor;
pub mod decode;
pub mod error;
pub mod events;
pub mod fast;
pub mod seeker;
pub mod text;

pub use close::{CloseCode, Reconnect};
pub use common::{Alternative, ChatText, ClientMsgId, Epoch, Limits, ResumeToken, Seq, SessionRef};
pub use decode::{DecodeError, decode_counsellor, decode_seeker};
pub use error::ErrorCode;

/// The protocol version this crate speaks. A client states it in `hello`;
/// the server refuses versions it does not know with
/// [`ErrorCode::UnsupportedProtocol`] and close code
/// [`CloseCode::ProtocolViolation`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol name. Clients may offer it in
/// `Sec-WebSocket-Protocol`; the server then echoes it. Offering it is
/// optional because the version also travels in `hello`.
pub const SUBPROTOCOL: &str = "haven.v1";
