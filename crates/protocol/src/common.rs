//! Values both roles share: identifiers, sequence numbers, chat text and
//! tokens.
//!
//! Ids are opaque strings on the wire. Chat text and tokens are newtypes
//! whose `Debug` prints only a length, so they cannot leak into logs by
//! accident.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A per-session, per-direction sequence number. The first message in each
/// direction has sequence number 1; 0 means "nothing yet".
pub type Seq = u64;

/// The opaque id of a session (one conversation, from queue entry to end).
/// Random, never derived from anything about the help-seeker.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionRef(pub String);

impl fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionRef({})", self.0)
    }
}

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id a client gives each chat message it sends. Retrying a `send` with
/// the same id is idempotent: the broker answers with the original `ack`
/// and never delivers the message twice. At most
/// [`ClientMsgId::MAX_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMsgId(pub String);

impl ClientMsgId {
    /// The longest id the server accepts, in bytes.
    pub const MAX_LEN: usize = 64;
}

impl fmt::Debug for ClientMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientMsgId({})", self.0)
    }
}

/// The text of a chat message. Its `Debug` never prints the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatText(pub String);

impl fmt::Debug for ChatText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChatText(<{} bytes>)", self.0.len())
    }
}

/// A resume token: 256 random bits, base64url. Single use: every successful
/// resume returns a new one. Its `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResumeToken(pub String);

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken(<redacted>)")
    }
}

/// A counsellor's login token, as returned by `POST /api/v1/login`. Its
/// `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthToken(pub String);

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Identifies one run of the broker. Sessions live in memory, so a broker
/// restart loses them; a client that sees a different epoch in a reply knows
/// why its resume failed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);

/// Limits the server enforces, sent in `welcome` so clients can enforce them
/// before sending.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Limits {
    /// Longest chat message, in Unicode scalar values (characters).
    pub max_chars: u32,
    /// Largest WebSocket frame or message the server reads, in bytes.
    pub max_frame_bytes: u32,
}

/// Why a session ended. Sent to both sides in `ended` / `session_ended`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The help-seeker ended the chat (or left the queue).
    SeekerEnded,
    /// The counsellor ended the chat.
    CounsellorEnded,
    /// The help-seeker's connection dropped and did not come back within
    /// the grace period.
    SeekerTimedOut,
    /// The topic closed and no counsellor was left to serve the queue.
    TopicClosed,
    /// (Counsellors only.) You handed the session on, or left it to a
    /// colleague; it continues without you.
    Transferred,
    /// A coordinator cleared the queue of a suspected flood of fake
    /// help-seekers, and this wait with it. A genuine help-seeker may
    /// start again.
    Cleared,
    /// The service restarted (or stopped) and could not carry the session
    /// over. Nothing can be resumed; a help-seeker may start a new chat
    /// at once.
    ServiceRestarted,
}

/// A place to turn to instead (an emergency number, another service),
/// from the helpline's configuration. Shown while waiting and whenever chat
/// is unavailable.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Alternative {
    /// What it is, as the helpline wrote it (e.g. "113 Zelfmoordpreventie").
    pub name: String,
    /// A phone number to call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A web address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
