//! What counts in text people write: its length, whether it is blank, and
//! which characters a name may not hold. One set of rules for the server
//! and, generated into `shared/protocol.js`, for the browser code.
//!
//! - Lengths are counted in **Unicode code points** (Rust's `chars()`,
//!   JavaScript's `[...text].length`), not bytes and not UTF-16 units.
//! - A text is **blank** when every character is white space or
//!   [invisible](INVISIBLE): zero-width spaces and joiners, the
//!   bidirectional controls, variation selectors, fillers, tag characters.
//!   A chat message of only those shows nothing and is refused.
//! - A **name** people see (a help-seeker's nickname, a counsellor's
//!   display name) may hold no control character and no
//!   [bidirectional control](BIDI_CONTROLS): U+202E and its kin can make
//!   "Anna" read as something else, or reverse the text beside it.

/// Characters that show nothing by themselves, as inclusive ranges.
pub const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian selectors and vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, joiners, marks
    ('\u{202A}', '\u{202E}'),   // bidirectional embeddings and overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{1D173}', '\u{1D17A}'), // musical formatting
    ('\u{E0000}', '\u{E0FFF}'), // tags and variation selectors supplement
];

/// The Unicode `Bidi_Control` characters, as inclusive ranges.
pub const BIDI_CONTROLS: &[(char, char)] = &[
    ('\u{061C}', '\u{061C}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(a, b)| (a..=b).contains(&c))
}

/// Whether `c` shows nothing by itself.
pub fn is_invisible(c: char) -> bool {
    // Every range starts at U+00AD or above: ASCII and Latin-1 letters,
    // nearly every character of a chat, are decided by one comparison.
    c >= '\u{00AD}' && within(INVISIBLE, c)
}

/// Whether `c` is a bidirectional control.
pub fn is_bidi_control(c: char) -> bool {
    within(BIDI_CONTROLS, c)
}

/// Whether `text` would show nothing: empty, or only white space and
/// invisible characters.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Whether a name people see may hold `c`.
pub fn allowed_in_name(c: char) -> bool {
    !c.is_control() && !is_bidi_control(c)
}

/// A length in code points, the unit every limit on text uses.
pub fn length(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_means_nothing_to_see() {
        assert!(is_blank(""));
        assert!(is_blank(" \n\t"));
        assert!(is_blank("\u{200B}\u{200B}"));
        assert!(is_blank(" \u{FEFF}\u{2060} \u{202E}"));
        assert!(!is_blank("\u{200B}a"));
        assert!(!is_blank("👍"));
        // An emoji with a variation selector is not blank; the selector
        // alone is.
        assert!(!is_blank("❤\u{FE0F}"));
        assert!(is_blank("\u{FE0F}"));
    }

    #[test]
    fn names_hold_no_controls_of_either_kind() {
        assert!("Anna".chars().all(allowed_in_name));
        assert!("Zoë 🌱".chars().all(allowed_in_name));
        for c in [
            '\u{202E}', '\u{2066}', '\u{200F}', '\u{061C}', '\u{0007}', '\n',
        ] {
            assert!(!allowed_in_name(c), "{c:?}");
        }
        // The shortcut in `is_invisible` holds: no range starts lower.
        assert!(INVISIBLE.iter().all(|&(a, _)| a >= '\u{00AD}'));
        // Every bidirectional control is also invisible.
        for &(a, b) in BIDI_CONTROLS {
            assert!(is_invisible(a) && is_invisible(b));
        }
        assert_eq!(length("é👍"), 2);
    }
}
