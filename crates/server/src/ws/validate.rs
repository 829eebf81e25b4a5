//! Checks on what clients send, beyond what the JSON shape guarantees.

use haven_protocol::ErrorCode;
use haven_protocol::common::{ChatText, ClientMsgId};

/// Longest nickname, in characters.
const MAX_NICKNAME: usize = 32;

/// A client message id: 1 to 64 bytes.
pub(crate) fn id(id: &ClientMsgId) -> Result<(), ErrorCode> {
    if id.0.is_empty() || id.0.len() > ClientMsgId::MAX_LEN {
        return Err(ErrorCode::InvalidId);
    }
    Ok(())
}

/// Chat text: not blank (see [`haven_protocol::text::is_blank`]), at most
/// `max_chars` characters (code points).
pub(crate) fn text(text: &ChatText, max_chars: u32) -> Result<(), ErrorCode> {
    if haven_protocol::text::is_blank(&text.0) {
        return Err(ErrorCode::EmptyText);
    }
    // Cheap bound first: a string of n bytes has at most n characters.
    if text.0.len() > max_chars as usize && text.0.chars().count() > max_chars as usize {
        return Err(ErrorCode::TextTooLong);
    }
    Ok(())
}

/// A nickname: trimmed, no control or bidirectional control characters,
/// at most 32 characters. Blank means none.
pub(crate) fn nickname(nick: Option<String>) -> Result<Option<String>, &'static str> {
    let Some(nick) = nick else { return Ok(None) };
    let nick = nick.trim();
    if haven_protocol::text::is_blank(nick) {
        return Ok(None);
    }
    if haven_protocol::text::length(nick) > MAX_NICKNAME
        || !nick.chars().all(haven_protocol::text::allowed_in_name)
    {
        return Err(
            "nickname: at most 32 characters, no control or bidirectional control characters",
        );
    }
    Ok(Some(nick.to_owned()))
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
    fn nicknames_and_ids() {
        assert_eq!(nickname(Some("  Sam ".into())), Ok(Some("Sam".into())));
        assert_eq!(nickname(Some("   ".into())), Ok(None));
        assert!(nickname(Some("a\u{7}".into())).is_err());
        assert!(nickname(Some("x".repeat(33))).is_err());
        assert!(nickname(Some("Anna\u{202E}".into())).is_err());
        assert!(nickname(Some("\u{2066}x".into())).is_err());
        assert_eq!(nickname(Some("\u{200B}".into())), Ok(None));
        assert_eq!(id(&ClientMsgId(String::new())), Err(ErrorCode::InvalidId));
        assert_eq!(id(&ClientMsgId("x".repeat(65))), Err(ErrorCode::InvalidId));
    }
}
