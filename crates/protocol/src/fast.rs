//! Fast paths for the frames every chat message produces.
//!
//! A chat message costs the broker one `send` (and now and then a
//! `received`) to decode, and a `message` and an `ack` to encode. Through
//! the derived serde code, a `type`-tagged enum is first parsed into a
//! buffer of generic values and then into the variant, and every key is
//! escaped on the way out. The paths here do the same work directly.
//!
//! They are exact shortcuts, never a second definition of the wire format:
//! decoding returns `None` for anything unusual (a missing or mistyped
//! field, a frame of another type) and the caller takes the derived path,
//! which has the last word and the precise error. Encoding writes the same
//! bytes serde would. Property tests in `tests/fast.rs` hold both to that.

use std::borrow::Cow;
use std::io::Write as _;

use serde::Deserialize;

use crate::common::{ChatText, ClientMsgId, SessionRef};
use crate::{counsellor, seeker};

/// Every field the hot client frames have. Unknown fields are ignored, as
/// the derived path ignores them.
#[derive(Deserialize)]
struct Hot<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    session: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    up_to: Option<u64>,
    #[serde(default)]
    active: Option<bool>,
}

fn hot(text: &str) -> Option<Hot<'_>> {
    serde_json::from_str(text).ok()
}

/// A help-seeker's `send`, `received`, `typing` or `ping`, or `None`.
pub fn decode_seeker(text: &str) -> Option<seeker::ClientMessage> {
    use seeker::ClientMessage as M;
    let h = hot(text)?;
    Some(match h.ty.as_ref() {
        "send" => M::Send {
            id: ClientMsgId(h.id?.into_owned()),
            text: ChatText(h.text?.into_owned()),
        },
        "received" => M::Received { up_to: h.up_to? },
        "typing" => M::Typing { active: h.active? },
        "ping" => M::Ping,
        _ => return None,
    })
}

/// A counsellor's `send`, `received`, `typing` or `ping`, or `None`.
pub fn decode_counsellor(text: &str) -> Option<counsellor::ClientMessage> {
    use counsellor::ClientMessage as M;
    let h = hot(text)?;
    Some(match h.ty.as_ref() {
        "send" => M::Send {
            session: SessionRef(h.session?.into_owned()),
            id: ClientMsgId(h.id?.into_owned()),
            text: ChatText(h.text?.into_owned()),
        },
        "received" => M::Received {
            session: SessionRef(h.session?.into_owned()),
            up_to: h.up_to?,
        },
        "typing" => M::Typing {
            session: SessionRef(h.session?.into_owned()),
            active: h.active?,
        },
        "ping" => M::Ping,
        _ => return None,
    })
}

/// A frame being written: literal keys, escaped string values.
struct Frame(Vec<u8>);

impl Frame {
    fn new(ty: &str, room: usize) -> Self {
        let mut out = Vec::with_capacity(room + 48);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.push(b'"');
        Self(out)
    }

    /// `,"key":` then the value as a JSON string.
    fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, value);
        self
    }

    /// `,"key":` then the number.
    fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    fn key(&mut self, key: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn finish(mut self) -> String {
        self.0.push(b'}');
        // Only valid UTF-8 went in: literals and serde_json's output.
        String::from_utf8(self.0).unwrap_or_default()
    }
}

/// Encodes a frame for a help-seeker: the chat frames by hand, the rest
/// through serde.
pub fn encode_seeker(msg: &seeker::ServerMessage) -> serde_json::Result<String> {
    use seeker::ServerMessage as M;
    Ok(match msg {
        M::Message {
            seq,
            text,
            at,
            from,
        } => Frame::new("message", text.0.len() + from.len())
            .number("seq", *seq)
            .string("text", &text.0)
            .number("at", *at)
            .string("from", from)
            .finish(),
        M::Ack { id, seq } => Frame::new("ack", id.0.len())
            .string("id", &id.0)
            .number("seq", *seq)
            .finish(),
        M::Delivered { up_to } => Frame::new("delivered", 0).number("up_to", *up_to).finish(),
        other => serde_json::to_string(other)?,
    })
}

/// Encodes a frame for a counsellor: the chat frames by hand, the rest
/// through serde.
pub fn encode_counsellor(msg: &counsellor::ServerMessage) -> serde_json::Result<String> {
    use counsellor::ServerMessage as M;
    Ok(match msg {
        M::Message {
            session,
            seq,
            text,
            at,
        } => Frame::new("message", session.0.len() + text.0.len())
            .string("session", &session.0)
            .number("seq", *seq)
            .string("text", &text.0)
            .number("at", *at)
            .finish(),
        M::Ack { session, id, seq } => Frame::new("ack", session.0.len() + id.0.len())
            .string("session", &session.0)
            .string("id", &id.0)
            .number("seq", *seq)
            .finish(),
        M::Delivered { session, up_to } => Frame::new("delivered", session.0.len())
            .string("session", &session.0)
            .number("up_to", *up_to)
            .finish(),
        other => serde_json::to_string(other)?,
    })
}
