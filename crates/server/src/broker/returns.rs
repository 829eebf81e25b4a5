//! Return codes: what a help-seeker may note at the end of a session to be
//! routed to the same counsellor next time.
//!
//! A code is 40 random bits written as eight characters in two groups
//! (`K7M2-Q9XD`), from an alphabet without look-alikes (no 0/O, 1/I). The
//! router keeps only code → counsellor, for a limited time; nothing else
//! links the two sessions.

/// Digits 2–9 and letters without I and O: 32 symbols, 5 bits each.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const SYMBOLS: usize = 8;

/// A fresh random code.
pub(crate) fn new_code() -> u64 {
    rand::random::<u64>() & ((1 << (5 * SYMBOLS)) - 1)
}

/// Writes a code for people: `K7M2-Q9XD`.
pub(crate) fn format_code(code: u64) -> String {
    let mut out = String::with_capacity(SYMBOLS + 1);
    for i in (0..SYMBOLS).rev() {
        let symbol = (code >> (5 * i)) & 31;
        out.push(char::from(ALPHABET[usize::try_from(symbol).unwrap_or(0)]));
        if i == SYMBOLS / 2 {
            out.push('-');
        }
    }
    out
}

/// Reads a code as people type it: case, spaces and dashes do not matter.
pub(crate) fn parse_code(text: &str) -> Option<u64> {
    let mut code = 0u64;
    let mut count = 0;
    for b in text.bytes().filter(|b| !matches!(b, b'-' | b' ')) {
        let b = b.to_ascii_uppercase();
        let value = ALPHABET.iter().position(|a| *a == b)?;
        code = (code << 5) | u64::try_from(value).ok()?;
        count += 1;
    }
    (count == SYMBOLS).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_tolerate_typing() {
        for _ in 0..1000 {
            let code = new_code();
            let text = format_code(code);
            assert_eq!(text.len(), 9);
            assert_eq!(parse_code(&text), Some(code));
            assert_eq!(
                parse_code(&text.to_lowercase().replace('-', " ")),
                Some(code)
            );
        }
        assert_eq!(parse_code("K7M2-Q9X"), None);
        assert_eq!(parse_code("K7M2-Q9X0"), None, "0 is not in the alphabet");
        assert_eq!(parse_code(""), None);
    }
}
