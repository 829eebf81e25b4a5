//! Identities (private, kept offline) and recipients (public, in the
//! broker's config), as text.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};

/// What an identity file starts with. The broker refuses to start when it
/// finds this anywhere in its configuration or environment.
pub const IDENTITY_PREFIX: &str = "HAVEN-TRANSCRIPT-IDENTITY-1-";
/// What a recipient string starts with.
pub const RECIPIENT_PREFIX: &str = "haven-tr1:";

/// Why a key string was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not in the expected shape.
    #[error("not a Haven transcript {0}")]
    Malformed(&'static str),
}

/// A private key that opens transcripts. Keep it offline.
pub struct Identity {
    secret: SecretKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(<secret>)")
    }
}

/// A public key transcripts are sealed to, with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    kid: String,
    public: PublicKey,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({})", self.kid)
    }
}

/// The key id of a public key: the first 8 bytes of its SHA-256, in hex.
fn kid_of(public: &PublicKey) -> String {
    let digest = Sha256::digest(public.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Self {
        Self {
            secret: SecretKey::generate(&mut OsRng),
        }
    }

    /// The identity as text, for its file.
    pub fn to_text(&self) -> String {
        format!(
            "{IDENTITY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
        )
    }

    /// Reads an identity (comment lines starting with `#` are skipped).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or(KeyError::Malformed("identity"))?;
        let b64 = line
            .strip_prefix(IDENTITY_PREFIX)
            .ok_or(KeyError::Malformed("identity"))?;
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::Malformed("identity"))?;
        Ok(Self {
            secret: SecretKey::from(bytes),
        })
    }

    /// The recipient that seals to this identity.
    pub fn recipient(&self) -> Recipient {
        let public = self.secret.public_key();
        Recipient {
            kid: kid_of(&public),
            public,
        }
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

impl Recipient {
    /// The key id records carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The recipient as one line of text: `haven-tr1:<kid>:<public key>`.
    pub fn to_text(&self) -> String {
        format!(
            "{RECIPIENT_PREFIX}{}:{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(self.public.as_bytes())
        )
    }

    /// Reads a recipient string; the key id must match the key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .trim()
            .strip_prefix(RECIPIENT_PREFIX)
            .ok_or(KeyError::Malformed("recipient"))?;
        let (kid, b64) = rest
            .split_once(':')
            .ok_or(KeyError::Malformed("recipient"))?;
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::Malformed("recipient"))?;
        let public = PublicKey::from(bytes);
        if kid_of(&public) != kid {
            return Err(KeyError::Malformed("recipient (key id does not match)"));
        }
        Ok(Self {
            kid: kid.to_owned(),
            public,
        })
    }

    pub(crate) fn public(&self) -> &PublicKey {
        &self.public
    }
}

/// Whether `text` holds anything that looks like a private transcript key.
pub fn holds_identity(text: &str) -> bool {
    text.contains(IDENTITY_PREFIX)
}
