//! Parsing one text frame into a role's message.
//!
//! The hot frames (`send`, `received`, `typing`, `ping`) take the exact
//! shortcut in [`crate::fast`]; everything else, and anything unusual about
//! those, is a single typed `serde_json` parse. Only when that fails
//! does the decoder look again to tell the client *why*: not JSON, a `type`
//! nobody knows, a `type` of the other role, or a known `type` with bad
//! fields. The `detail` may quote the client's own input, so it goes back to
//! that client only and must never be logged.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ErrorCode;
use crate::{counsellor, seeker};

/// Longest `detail` text the decoder returns.
const MAX_DETAIL: usize = 200;

/// A frame that is not a valid message for the role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct DecodeError {
    /// The error code to send back.
    pub code: ErrorCode,
    /// An English hint for the client's developer.
    pub detail: String,
}

/// Parses a help-seeker's frame.
pub fn decode_seeker(text: &str) -> Result<seeker::ClientMessage, DecodeError> {
    if let Some(msg) = crate::fast::decode_seeker(text) {
        return Ok(msg);
    }
    decode(
        text,
        seeker::ClientMessage::TYPES,
        counsellor::ClientMessage::TYPES,
    )
}

/// Parses a counsellor's frame.
pub fn decode_counsellor(text: &str) -> Result<counsellor::ClientMessage, DecodeError> {
    if let Some(msg) = crate::fast::decode_counsellor(text) {
        return Ok(msg);
    }
    decode(
        text,
        counsellor::ClientMessage::TYPES,
        seeker::ClientMessage::TYPES,
    )
}

/// Only the tag, to classify a frame that failed the typed parse.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(flatten)]
    _rest: IgnoredAny,
}

fn decode<T: DeserializeOwned>(text: &str, own: &[&str], other: &[&str]) -> Result<T, DecodeError> {
    let typed_err = match serde_json::from_str::<T>(text) {
        Ok(msg) => return Ok(msg),
        Err(e) => e,
    };
    let probe = match serde_json::from_str::<Probe<'_>>(text) {
        Ok(probe) => probe,
        // Valid JSON, but a number no field can hold (1e400): the same
        // answer as for 2^64 or -1 where a count belongs.
        Err(e) if e.to_string().starts_with("number out of range") => {
            return Err(error(
                ErrorCode::InvalidMessage,
                "a number is out of range".into(),
            ));
        }
        Err(_) => {
            return Err(error(
                ErrorCode::Malformed,
                "expected one JSON object with a string `type`".into(),
            ));
        }
    };
    let Some(ty) = probe.ty else {
        return Err(error(ErrorCode::Malformed, "missing `type`".into()));
    };
    if own.contains(&ty.as_ref()) {
        Err(error(ErrorCode::InvalidMessage, typed_err.to_string()))
    } else if other.contains(&ty.as_ref()) {
        Err(error(
            ErrorCode::WrongRole,
            format!("`{ty}` is for the other role"),
        ))
    } else {
        Err(error(
            ErrorCode::UnknownType,
            format!("unknown type `{ty}`"),
        ))
    }
}

fn error(code: ErrorCode, mut detail: String) -> DecodeError {
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    DecodeError { code, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_bad_frames() {
        let code = |s: &str| decode_seeker(s).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::Malformed);
        assert_eq!(code("[1,2]"), ErrorCode::Malformed);
        assert_eq!(code(r#"{"type": 3}"#), ErrorCode::Malformed);
        assert_eq!(code(r#"{"hello": 1}"#), ErrorCode::Malformed);
        assert_eq!(code(r#"{"type": "fly"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type": "set_status", "status": "away"}"#),
            ErrorCode::WrongRole
        );
        assert_eq!(
            code(r#"{"type": "send", "id": "a"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type": "typing", "active": "yes"}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn numbers_no_field_can_hold_are_invalid_not_malformed() {
        let code = |s: &str| decode_seeker(s).unwrap_err().code;
        for n in ["1e400", "-1e400", "18446744073709551616", "-1", "1.5"] {
            assert_eq!(
                code(&format!(r#"{{"type": "received", "up_to": {n}}}"#)),
                ErrorCode::InvalidMessage,
                "{n}"
            );
        }
    }

    #[test]
    fn ignores_unknown_fields_for_forward_compatibility() {
        let msg = decode_seeker(r#"{"type": "ping", "future": [1, 2]}"#).unwrap();
        assert_eq!(msg, seeker::ClientMessage::Ping);
    }

    #[test]
    fn detail_is_bounded() {
        let long = format!(r#"{{"type": "typing", "active": "{}"}}"#, "é".repeat(500));
        let err = decode_seeker(&long).unwrap_err();
        assert!(err.detail.len() <= MAX_DETAIL + '…'.len_utf8());
    }
}
