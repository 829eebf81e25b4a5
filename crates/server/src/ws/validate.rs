//! Checks on what clients send, beyond what the JSON shape guarantees.

use haven_protocol::ErrorCode;
use haven_protocol::common::{ChatText, ClientMsgId};

/// Longest nickname, in characters.
const MAX_NICKNAME: usize = 32;
/// Longest topic or language tag, in bytes.
const MAX_TAG: usize = 32;

/// A client message id: 1 to 64 bytes.
pub(crate) fn id(id: &ClientMsgId) -> Result<(), ErrorCode> {
    if id.0.is_empty() || id.0.len() > ClientMsgId::MAX_LEN {
        return Err(ErrorCode::InvalidId);
    }
    Ok(())
}

/// Chat text: not blank, at most `max_chars` characters.
pub(crate) fn text(text: &ChatText, max_chars: u32) -> Result<(), ErrorCode> {
    if text.0.trim().is_empty() {
        return Err(ErrorCode::EmptyText);
    }
    // Cheap bound first: a string of n bytes has at most n characters.
    if text.0.len() > max_chars as usize && text.0.chars().count() > max_chars as usize {
        return Err(ErrorCode::TextTooLong);
    }
    Ok(())
}

/// A nickname: trimmed, no control characters, at most 32 characters.
/// Blank means none.
pub(crate) fn nickname(nick: Option<String>) -> Result<Option<String>, &'static str> {
    let Some(nick) = nick else { return Ok(None) };
    let nick = nick.trim();
    if nick.is_empty() {
        return Ok(None);
    }
    if nick.chars().count() > MAX_NICKNAME || nick.chars().any(char::is_control) {
        return Err("nickname: at most 32 characters, no control characters");
    }
    Ok(Some(nick.to_owned()))
}

/// A topic or language tag: letters, digits, `-` and `_`, at most 32 bytes.
pub(crate) fn tag(
    value: Option<String>,
    what: &'static str,
) -> Result<Option<String>, &'static str> {
    let Some(value) = value else { return Ok(None) };
    if value.is_empty()
        || value.len() > MAX_TAG
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(what);
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_characters_not_bytes() {
        assert_eq!(text(&ChatText("é".repeat(10)), 10), Ok(()));
        assert_eq!(
            text(&ChatText("é".repeat(11)), 10),
            Err(ErrorCode::TextTooLong)
        );
        assert_eq!(
            text(&ChatText(" \n ".into()), 10),
            Err(ErrorCode::EmptyText)
        );
    }

    #[test]
    fn nicknames_and_tags() {
        assert_eq!(nickname(Some("  Sam ".into())), Ok(Some("Sam".into())));
        assert_eq!(nickname(Some("   ".into())), Ok(None));
        assert!(nickname(Some("a\u{7}".into())).is_err());
        assert!(nickname(Some("x".repeat(33))).is_err());
        assert_eq!(tag(Some("nl-BE".into()), "bad"), Ok(Some("nl-BE".into())));
        assert!(tag(Some("nl BE".into()), "bad").is_err());
        assert!(tag(Some(String::new()), "bad").is_err());
        assert_eq!(id(&ClientMsgId(String::new())), Err(ErrorCode::InvalidId));
        assert_eq!(id(&ClientMsgId("x".repeat(65))), Err(ErrorCode::InvalidId));
    }
}
