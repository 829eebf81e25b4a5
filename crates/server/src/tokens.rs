//! Secrets the broker hands out: resume tokens, login tokens and session
//! ids, all from the operating system's CSPRNG via `rand`'s thread RNG.
//!
//! Tokens are looked up by their SHA-256 hash, so the maps holding them
//! never contain a usable token, and comparing hashes leaks nothing useful
//! through timing. Nothing here is ever logged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use haven_core::SessionId;
use sha2::{Digest, Sha256};

/// The SHA-256 of a token; what the registries store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

impl TokenHash {
    /// The hash as hex, for handing a registry to another node.
    pub(crate) fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A hash from [`TokenHash::to_hex`].
    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// A fresh token: 256 random bits, base64url without padding (43 chars).
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The hash a token is stored under.
pub(crate) fn hash(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// A fresh session id: 128 random bits.
pub(crate) fn new_session_id() -> SessionId {
    SessionId(rand::random())
}

/// A short random id for one run of the broker.
pub(crate) fn new_epoch() -> String {
    let mut bytes = [0u8; 6];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A password for generated accounts: 120 random bits, base64url (20 chars).
pub(crate) fn new_password() -> String {
    let mut bytes = [0u8; 15];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let tokens: HashSet<String> = (0..100_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 100_000);
        assert!(tokens.iter().all(|t| t.len() == 43));
        assert_ne!(hash("a"), hash("b"));
        assert_eq!(hash("a"), hash("a"));
        assert_eq!(format!("{:?}", hash("a")), "TokenHash(<redacted>)");
    }
}
