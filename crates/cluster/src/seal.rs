//! What Haven stores about a session in Redis, sealed so that Redis (its
//! memory, its persistence files, its replicas and backups) never holds
//! anything readable that a person wrote or anything that identifies them.
//!
//! - Each session has a [`SessionKey`]: 256 random bits, made by the node
//!   that starts the session and kept in nodes' memory only.
//! - A message (or a nickname, a note) is sealed with XSalsa20-Poly1305
//!   under a key derived from the session key for its session, direction
//!   and client id, so it cannot be moved to another session, direction
//!   or id unnoticed.
//! - A client's message id (which the client chose, and might reuse
//!   elsewhere) is stored only as [`IdMac`], a keyed MAC under the session
//!   key: enough to recognise a retry, useless without the key.
//! - A node that never held the key (a resume on another node) gets it
//!   back from the client's resume token: the token's [`TokenKeys`] give
//!   the Redis key the session is found under (`lookup`) and the key that
//!   wraps the session key (`wrap`). Redis sees the lookup and the wrapped
//!   key, never the token, so the session key cannot be unwrapped from
//!   anything Redis holds.
//!
//! Keys are derived with HMAC-SHA256 used as a PRF on uniformly random
//! input keys, each under its own label.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use haven_core::{SessionId, Side};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a nonce, sent before each ciphertext.
const NONCE: usize = 24;

fn prf(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn direction(to: Side) -> u8 {
    match to {
        Side::Seeker => b's',
        Side::Counsellor => b'c',
    }
}

/// A session's own key. It never leaves a node's memory unwrapped.
#[derive(Clone)]
pub struct SessionKey {
    seal: [u8; 32],
    mac: [u8; 32],
    raw: [u8; 32],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<secret>)")
    }
}

/// A client message id as Redis stores it: a MAC under the session key,
/// 16 bytes as 32 hex digits.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct IdMac(String);

impl IdMac {
    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl SessionKey {
    /// A new random key for a new session.
    pub fn generate() -> Self {
        Self::from_raw(rand::random())
    }

    fn from_raw(raw: [u8; 32]) -> Self {
        Self {
            seal: prf(&raw, b"haven session seal v1"),
            mac: prf(&raw, b"haven session id-mac v1"),
            raw,
        }
    }

    /// The MAC of a client's message id, for recognising its retries.
    pub fn id_mac(&self, id: &str) -> IdMac {
        IdMac(hex(&prf(&self.mac, id.as_bytes())[..16]))
    }

    /// The key one message is sealed under: the session's sealing key
    /// narrowed to its session, direction and id, so a ciphertext moved to
    /// another place fails to open. (NaCl's secretbox takes no associated
    /// data; deriving the key binds the same context.)
    fn cipher(&self, session: SessionId, to: Side, id: &IdMac) -> XSalsa20Poly1305 {
        let mut context = Vec::with_capacity(16 + 1 + 32);
        context.extend_from_slice(&session.0.to_be_bytes());
        context.push(direction(to));
        context.extend_from_slice(id.0.as_bytes());
        XSalsa20Poly1305::new((&prf(&self.seal, &context)).into())
    }

    /// Seals what `plain` holds, sent toward `to` in `session` under the
    /// client id `id`: a fresh nonce, then the ciphertext and its tag.
    pub fn seal(&self, session: SessionId, to: Side, id: &IdMac, plain: &[u8]) -> Vec<u8> {
        let cipher = self.cipher(session, to, id);
        let nonce: [u8; NONCE] = rand::random();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_else(|_| unreachable!("XSalsa20-Poly1305 seals any length in memory"));
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SessionKey::seal`] made for the same session,
    /// direction and id; `None` when anything differs or was altered.
    pub fn open(&self, session: SessionId, to: Side, id: &IdMac, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.cipher(session, to, id)
            .decrypt(Nonce::from_slice(nonce), body)
            .ok()
    }
}

/// What a client's resume token gives: where its session is found in
/// Redis, and the key that unwraps the session key. Derived on the node
/// from the token; neither is the token, and the token cannot be
/// recovered from them.
#[derive(Clone)]
pub struct TokenKeys {
    lookup: [u8; 32],
    wrap: [u8; 32],
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<secret>)")
    }
}

impl TokenKeys {
    /// The keys of a resume token (its raw random bytes).
    pub fn of(token: &[u8]) -> Self {
        Self {
            lookup: prf(token, b"haven token lookup v1"),
            wrap: prf(token, b"haven token wrap v1"),
        }
    }

    /// The name under which Redis keeps what this token opens, as hex.
    pub fn lookup(&self) -> String {
        hex(&self.lookup)
    }

    fn cipher(&self, session: SessionId) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new((&prf(&self.wrap, &session.0.to_be_bytes())).into())
    }

    /// `key` sealed for `session` under this token's wrapping key.
    pub fn wrap(&self, session: SessionId, key: &SessionKey) -> Vec<u8> {
        let cipher = self.cipher(session);
        let nonce: [u8; NONCE] = rand::random();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), &key.raw[..])
            .unwrap_or_else(|_| unreachable!("XSalsa20-Poly1305 seals any length in memory"));
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The session key [`TokenKeys::wrap`] sealed for `session`; `None`
    /// for another token, another session, or an altered wrapping.
    pub fn unwrap(&self, session: SessionId, wrapped: &[u8]) -> Option<SessionKey> {
        if wrapped.len() < NONCE {
            return None;
        }
        let (nonce, body) = wrapped.split_at(NONCE);
        let raw = self
            .cipher(session)
            .decrypt(Nonce::from_slice(nonce), body)
            .ok()?;
        let raw: [u8; 32] = raw.try_into().ok()?;
        Some(SessionKey::from_raw(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: SessionId = SessionId(0x1234_5678_9abc_def0_1122_3344_5566_7788);

    #[test]
    fn what_is_sealed_opens_only_in_its_own_place() {
        let key = SessionKey::generate();
        let id = key.id_mac("m1");
        let sealed = key.seal(SID, Side::Counsellor, &id, b"ik voel me zo alleen");
        assert!(!sealed.windows(5).any(|w| w == b"alleen"));
        assert_eq!(
            key.open(SID, Side::Counsellor, &id, &sealed).as_deref(),
            Some(&b"ik voel me zo alleen"[..])
        );
        // Another session, direction, id or key, or one flipped bit: nothing.
        assert!(
            key.open(SessionId(7), Side::Counsellor, &id, &sealed)
                .is_none()
        );
        assert!(key.open(SID, Side::Seeker, &id, &sealed).is_none());
        assert!(
            key.open(SID, Side::Counsellor, &key.id_mac("m2"), &sealed)
                .is_none()
        );
        assert!(
            SessionKey::generate()
                .open(SID, Side::Counsellor, &id, &sealed)
                .is_none()
        );
        let mut bent = sealed.clone();
        let last = bent.len() - 1;
        bent[last] ^= 1;
        assert!(key.open(SID, Side::Counsellor, &id, &bent).is_none());
        assert!(
            key.open(SID, Side::Counsellor, &id, &sealed[..10])
                .is_none()
        );
        // A fresh nonce each time: the same text never seals the same.
        assert_ne!(
            sealed,
            key.seal(SID, Side::Counsellor, &id, b"ik voel me zo alleen")
        );
    }

    #[test]
    fn id_macs_recognise_retries_and_depend_on_the_key() {
        let key = SessionKey::generate();
        assert_eq!(key.id_mac("abc"), key.id_mac("abc"));
        assert_ne!(key.id_mac("abc"), key.id_mac("abd"));
        assert_ne!(key.id_mac("abc"), SessionKey::generate().id_mac("abc"));
        assert_eq!(key.id_mac("abc").as_str().len(), 32);
        assert!(!key.id_mac("abc").as_str().contains("abc"));
    }

    #[test]
    fn a_token_unwraps_its_session_key_and_nothing_else_does() {
        let token: [u8; 32] = rand::random();
        let keys = TokenKeys::of(&token);
        let session = SessionKey::generate();
        let wrapped = keys.wrap(SID, &session);
        let back = keys.unwrap(SID, &wrapped).expect("the token unwraps it");
        let id = session.id_mac("x");
        let sealed = session.seal(SID, Side::Seeker, &id, b"hallo");
        assert_eq!(
            back.open(SID, Side::Seeker, &id, &sealed).as_deref(),
            Some(&b"hallo"[..])
        );
        assert!(
            TokenKeys::of(&rand::random::<[u8; 32]>())
                .unwrap(SID, &wrapped)
                .is_none()
        );
        assert!(keys.unwrap(SessionId(1), &wrapped).is_none());
        // Neither the lookup nor the wrapping shows the token or the key.
        assert_ne!(keys.lookup(), hex(&token));
        assert!(!wrapped.windows(32).any(|w| w == token || w == session.raw));
        assert_eq!(keys.lookup(), TokenKeys::of(&token).lookup());
        assert_ne!(keys.lookup(), TokenKeys::of(&[0; 32]).lookup());
    }
}
