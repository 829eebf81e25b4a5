//! What an authenticator app computes: the TOTP code (RFC 6238: HMAC-SHA1,
//! 30-second steps, six digits) for a base32 secret, written here apart
//! from the server's own so the tests check the two agree.

use hmac::{Hmac, KeyInit as _, Mac as _};

/// The six-digit code for `secret` (base32, as the server hands it out)
/// at `unix_secs`.
pub fn totp_code(secret: &str, unix_secs: u64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let mut mac = <Hmac<sha1::Sha1>>::new_from_slice(&key).unwrap();
    mac.update(&(unix_secs / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let at = usize::from(h[19] & 0xf);
    let n = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]) % 1_000_000;
    format!("{n:06}")
}
