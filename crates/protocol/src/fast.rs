//! Fast paths for the frames every chat message produces.
//!
//! A chat message costs the broker one `send` (and now and then a
//! `received`) to decode, and a `message` and an `ack` to encode. Through
//! the derived serde code, a `type`-tagged enum is first parsed into a
//! buffer of generic values and then into the variant, and every key is
//! escaped on the way out. The paths here do the same work directly: a
//! one-pass scan of the flat object in, literal keys and a copy of any
//! string that needs no escaping out.
//!
//! They are exact shortcuts, never a second definition of the wire format:
//! decoding returns `None` for anything unusual (a missing or mistyped
//! field, a frame of another type) and the caller takes the derived path,
//! which has the last word and the precise error. Encoding writes the same
//! bytes serde would. Property tests in `tests/fast.rs` hold both to that.

use std::borrow::Cow;

use crate::common::{ChatText, ClientMsgId, SessionRef};
use crate::{counsellor, seeker};

/// Every field the hot client frames have.
#[derive(Default)]
struct Hot<'a> {
    ty: Option<Cow<'a, str>>,
    session: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    text: Option<Cow<'a, str>>,
    up_to: Option<u64>,
    received: Option<u64>,
    active: Option<bool>,
}

/// Reads a flat JSON object of the hot frames' fields in one pass. `None`
/// for anything else: an unknown field, a repeated one, a `null`, a number
/// that is not a plain unsigned integer, broken JSON. Strings without
/// escapes are borrowed; one with escapes is decoded by serde_json.
fn hot(text: &str) -> Option<Hot<'_>> {
    let mut scan = Scan { src: text, at: 0 };
    let mut hot = Hot::default();
    scan.skip_space();
    scan.eat(b'{')?;
    scan.skip_space();
    if scan.peek()? != b'}' {
        loop {
            let key = scan.string()?;
            scan.skip_space();
            scan.eat(b':')?;
            scan.skip_space();
            let fresh = match key.as_ref() {
                "type" => hot.ty.replace(scan.string()?).is_none(),
                "session" => hot.session.replace(scan.string()?).is_none(),
                "id" => hot.id.replace(scan.string()?).is_none(),
                "text" => hot.text.replace(scan.string()?).is_none(),
                "up_to" => hot.up_to.replace(scan.number()?).is_none(),
                "received" => hot.received.replace(scan.number()?).is_none(),
                "active" => hot.active.replace(scan.boolean()?).is_none(),
                _ => false,
            };
            if !fresh {
                return None;
            }
            scan.skip_space();
            match scan.peek()? {
                b',' => {
                    scan.at += 1;
                    scan.skip_space();
                }
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.at += 1;
    scan.skip_space();
    (scan.at == text.len()).then_some(hot)
}

/// A cursor over a frame.
struct Scan<'a> {
    src: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A JSON string.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.src.as_bytes();
        let mut escaped = false;
        // Most of a chat message is plain text: skip it sixteen bytes at a
        // time (a loop without an early exit, which vectorises).
        while let Some(chunk) = bytes
            .get(self.at..self.at + 16)
            .and_then(|c| <&[u8; 16]>::try_from(c).ok())
        {
            if chunk.iter().fold(false, |odd, &b| odd | special(b)) {
                break;
            }
            self.at += 16;
        }
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                0..0x20 => return None,
                _ => self.at += 1,
            }
        }
        // Both ends are ASCII quotes, so these are char boundaries.
        let inner = self.src.get(start..self.at)?;
        self.at += 1;
        if escaped {
            let quoted = self.src.get(start - 1..self.at)?;
            serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(inner))
        }
    }

    /// An unsigned integer as serde_json reads one into a `u64`: digits,
    /// no leading zero, no sign, fraction or exponent.
    fn number(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.src.as_bytes()[start] == b'0';
        let more = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(n)
    }

    fn boolean(&mut self) -> Option<bool> {
        let rest = self.src.get(self.at..)?;
        let (value, len) = if rest.starts_with("true") {
            (true, 4)
        } else if rest.starts_with("false") {
            (false, 5)
        } else {
            return None;
        };
        self.at += len;
        Some(value)
    }
}

/// A help-seeker's `send`, `received`, `typing` or `ping`, or `None`.
pub fn decode_seeker(text: &str) -> Option<seeker::ClientMessage> {
    use seeker::ClientMessage as M;
    let h = hot(text)?;
    Some(match h.ty?.as_ref() {
        "send" => M::Send {
            id: ClientMsgId(h.id?.into_owned()),
            text: ChatText(h.text?.into_owned()),
            received: h.received,
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
    Some(match h.ty?.as_ref() {
        "send" => M::Send {
            session: SessionRef(h.session?.into_owned()),
            id: ClientMsgId(h.id?.into_owned()),
            text: ChatText(h.text?.into_owned()),
            received: h.received,
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
struct Frame(String);

/// A byte that ends or interrupts a plain JSON string: a quote, a
/// backslash or a control character.
fn special(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Whether serde_json would write `value` as it is between the quotes:
/// it escapes only `"`, `\\` and the control characters below 0x20.
/// Without an early exit, so the loop vectorises.
fn plain(value: &str) -> bool {
    !value.bytes().fold(false, |odd, b| odd | special(b))
}

impl Frame {
    fn new(ty: &str, room: usize) -> Self {
        let mut out = String::with_capacity(room + 64);
        out.push_str("{\"type\":\"");
        out.push_str(ty);
        out.push('"');
        Self(out)
    }

    /// `,"key":` then the value as a JSON string.
    fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        if plain(value) {
            self.0.push('"');
            self.0.push_str(value);
            self.0.push('"');
        } else {
            // Rare (quotes, backslashes, newlines): serde_json escapes.
            // Writing a string to a string cannot fail.
            let escaped = serde_json::to_string(value).unwrap_or_default();
            self.0.push_str(&escaped);
        }
        self
    }

    /// `,"key":` then the number.
    fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        self.0.push_str(itoa::Buffer::new().format(value));
        self
    }

    fn key(&mut self, key: &str) {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A help-seeker's `message`, from borrowed parts: what
/// [`encode_seeker`] writes for [`seeker::ServerMessage::Message`].
pub fn seeker_message(seq: u64, text: &str, at: u64, from: &str) -> String {
    Frame::new("message", text.len() + from.len())
        .number("seq", seq)
        .string("text", text)
        .number("at", at)
        .string("from", from)
        .finish()
}

/// A help-seeker's `ack`: what [`encode_seeker`] writes for
/// [`seeker::ServerMessage::Ack`].
pub fn seeker_ack(id: &str, seq: u64) -> String {
    Frame::new("ack", id.len())
        .string("id", id)
        .number("seq", seq)
        .finish()
}

/// A counsellor's `message`, from borrowed parts: what
/// [`encode_counsellor`] writes for [`counsellor::ServerMessage::Message`].
pub fn counsellor_message(session: &str, seq: u64, text: &str, at: u64) -> String {
    Frame::new("message", session.len() + text.len())
        .string("session", session)
        .number("seq", seq)
        .string("text", text)
        .number("at", at)
        .finish()
}

/// A counsellor's `ack`: what [`encode_counsellor`] writes for
/// [`counsellor::ServerMessage::Ack`].
pub fn counsellor_ack(session: &str, id: &str, seq: u64) -> String {
    Frame::new("ack", session.len() + id.len())
        .string("session", session)
        .string("id", id)
        .number("seq", seq)
        .finish()
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
        } => seeker_message(*seq, &text.0, *at, from),
        M::Ack { id, seq } => seeker_ack(&id.0, *seq),
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
        } => counsellor_message(&session.0, *seq, &text.0, *at),
        M::Ack { session, id, seq } => counsellor_ack(&session.0, &id.0, *seq),
        M::Delivered { session, up_to } => Frame::new("delivered", session.0.len())
            .string("session", &session.0)
            .number("up_to", *up_to)
            .finish(),
        other => serde_json::to_string(other)?,
    })
}
