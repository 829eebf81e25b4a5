//! Encoding server messages into text frames, once each.

use axum::extract::ws::Utf8Bytes;
use haven_protocol::common::{ClientMsgId, SessionRef};
use haven_protocol::{ErrorCode, counsellor, seeker};

/// Served if encoding ever failed (it cannot for these types: every map key
/// is a string), so a client still gets a well-formed frame.
const INTERNAL: &str = r#"{"type":"error","code":"internal"}"#;

fn frame(encoded: serde_json::Result<String>) -> Utf8Bytes {
    match encoded {
        Ok(text) => text.into(),
        Err(_) => Utf8Bytes::from_static(INTERNAL),
    }
}

/// Encodes a frame for a help-seeker.
pub(crate) fn encode_seeker(msg: &seeker::ServerMessage) -> Utf8Bytes {
    frame(haven_protocol::fast::encode_seeker(msg))
}

/// Encodes a frame for a counsellor.
pub(crate) fn encode_counsellor(msg: &counsellor::ServerMessage) -> Utf8Bytes {
    frame(haven_protocol::fast::encode_counsellor(msg))
}

/// An error frame for a help-seeker.
pub(crate) fn seeker_error(
    code: ErrorCode,
    id: Option<ClientMsgId>,
    detail: Option<String>,
) -> Utf8Bytes {
    crate::metrics::protocol_error(code);
    encode_seeker(&seeker::ServerMessage::Error { code, id, detail })
}

/// An error frame for a counsellor.
pub(crate) fn counsellor_error(
    code: ErrorCode,
    session: Option<SessionRef>,
    id: Option<ClientMsgId>,
    detail: Option<String>,
) -> Utf8Bytes {
    crate::metrics::protocol_error(code);
    encode_counsellor(&counsellor::ServerMessage::Error {
        code,
        session,
        id,
        detail,
    })
}
