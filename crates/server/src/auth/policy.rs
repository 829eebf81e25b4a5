//! Which passwords staff may choose: at least 12 characters, not one of
//! the 10,000 most common passwords (nor one of them with digits and
//! symbols tacked on, as in `Welcome2024!`), not only digits and symbols,
//! not a few characters repeated, and not the account's own name (with
//! digits or symbols added). The list ships in the binary, so the check needs no network.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The shortest password accepted, in characters.
pub(crate) const MIN_LENGTH: usize = 12;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// Why a password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Weak {
    /// Too short.
    #[error("the password must be at least 12 characters")]
    Short,
    /// One of the most common passwords, or one with digits and symbols
    /// added.
    #[error(
        "the password is one of the most common ones; choose another (a few random words work well)"
    )]
    Common,
    /// It is the account's name (with digits or symbols added).
    #[error("the password may not be the account's name")]
    Name,
}

/// Checks a new password for the account `name`.
pub(crate) fn check(password: &str, name: &str) -> Result<(), Weak> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Weak::Short);
    }
    let lower = password.to_lowercase();
    // The word with what people add to it (digits, symbols, spaces) taken
    // off either end.
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    if !name.is_empty() && core == name.to_lowercase() {
        return Err(Weak::Name);
    }
    // Digits and symbols alone are dates, phone numbers and key runs; one
    // character over and over is no better.
    let distinct: HashSet<char> = lower.chars().collect();
    if COMMON.contains(lower.as_str())
        || COMMON.contains(core)
        || core.is_empty()
        || distinct.len() < 5
    {
        return Err(Weak::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_worst_and_takes_the_rest() {
        assert_eq!(COMMON.len(), 10_000);
        assert_eq!(check("short", "anna"), Err(Weak::Short));
        for common in [
            "password1234",
            "Password1234!",
            "Welcome2024!!",
            "1234567890123",
            "!!sunshine2023",
            "qwertyuiop123",
            "aaaaaaaaaaaaaa",
            "abababababab",
        ] {
            assert_eq!(check(common, "anna"), Err(Weak::Common), "{common}");
        }
        assert_eq!(check("Anna1234567890", "anna"), Err(Weak::Name));
        assert_eq!(check("2024!!anna!!2024", "anna"), Err(Weak::Name));
        for fine in [
            "correct horse battery",
            "pw-anna-0123456789",
            "tulpen-fiets-regen-7",
            "a brand new password 42",
        ] {
            assert_eq!(check(fine, "bram"), Ok(()), "{fine}");
        }
    }
}
