//! Error codes carried by `{"type": "error", "code": ...}`.
//!
//! An error message never closes the socket by itself: the client may go
//! on. When the server also closes, it says so with a close code from
//! [`crate::close`]. Clients localise by code; the optional `detail` text
//! is an English hint for developers, never meant for end users.

use serde::{Deserialize, Serialize};

/// Why the server refused a frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not a JSON object (or not valid UTF-8 text).
    Malformed,
    /// The `type` is not one this protocol version knows.
    UnknownType,
    /// The `type` exists, but only for the other role.
    WrongRole,
    /// The `type` is known but a field is missing or has the wrong shape.
    InvalidMessage,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The message is not allowed in the session's current state (for
    /// example `send` while still queued).
    WrongState,
    /// `hello` asked for a protocol version the server does not speak.
    UnsupportedProtocol,
    /// The chat text is longer than `limits.max_chars`.
    TextTooLong,
    /// The chat text is empty (only whitespace).
    EmptyText,
    /// The client message id is empty or too long.
    InvalidId,
    /// The session named in the message is not one of this counsellor's.
    UnknownSession,
    /// There is no such offer to answer (it timed out, or was withdrawn).
    NoOffer,
    /// The session is already being transferred; wait for the answer.
    TransferPending,
    /// The colleague named in a transfer cannot take it (unknown, offline,
    /// or already in the session).
    TransferTargetUnavailable,
    /// The topic named does not exist.
    UnknownTopic,
    /// The other side is not receiving and its backlog is full. The message
    /// was **not** accepted; retry it later with the same id.
    PeerBacklogFull,
    /// The client is sending too fast; the frame was dropped. Slow down or
    /// the socket will be closed.
    RateLimited,
    /// Authentication is missing, wrong or expired.
    Unauthorized,
    /// The resume token is unknown, already used or expired.
    ResumeFailed,
    /// The server is shutting down and takes no new sessions.
    Unavailable,
    /// Something went wrong inside the server. Nothing was changed.
    Internal,
}
