//! The second factor: time-based one-time passwords (TOTP, RFC 6238, as
//! every authenticator app speaks them: HMAC-SHA1, 6 digits, 30-second
//! steps) and single-use recovery codes.
//!
//! A code is accepted for the step it belongs to and one step either side
//! (clocks drift), and never twice: the step last used per account is
//! remembered, so a code seen over a shoulder cannot be replayed.
//! Recovery codes are 50 random bits each, stored only as SHA-256 hashes
//! and struck off when used.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

/// Seconds per step.
const STEP: u64 = 30;
/// Digits per code.
const DIGITS: u32 = 6;
/// Recovery codes made at enrolment.
pub(crate) const RECOVERY_CODES: usize = 10;

/// A new secret: 160 random bits, as base32 (what the apps read).
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::fill(&mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

/// HOTP (RFC 4226) of `counter` under `key`, with `digits` digits.
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1>>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The step a code given now would be checked against: the newest of the
/// steps around `unix_secs` that `code` matches and that is later than
/// `last_used`. `None` when it matches none.
pub(crate) fn verify(
    secret: &str,
    code: &str,
    unix_secs: u64,
    last_used: Option<u64>,
) -> Option<u64> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let now = unix_secs / STEP;
    [now + 1, now, now.saturating_sub(1)]
        .into_iter()
        .filter(|step| last_used.is_none_or(|last| *step > last))
        .find(|step| hotp(&key, *step, DIGITS) == wanted)
}

/// The `otpauth://` address an authenticator app takes (as a QR code).
pub(crate) fn uri(issuer: &str, account: &str, secret: &str) -> String {
    let label = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        label(issuer),
        label(account),
        label(issuer)
    )
}

/// `text` as an SVG QR code.
pub(crate) fn qr_svg(text: &str) -> String {
    qrcode::QrCode::new(text.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default()
}

/// New recovery codes, as shown once (`ABCDE-FGHJK`), and their hashes to
/// store.
pub(crate) fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 7];
            rand::fill(&mut bytes);
            let text = BASE32_NOPAD.encode(&bytes);
            let code = format!("{}-{}", &text[..5], &text[5..10]);
            let hash = recovery_hash(&code);
            (code, hash)
        })
        .unzip()
}

/// What a recovery code is stored as: SHA-256 of its letters and digits,
/// upper-cased, as hex.
pub(crate) fn recovery_hash(code: &str) -> String {
    use sha2::Digest as _;
    let clean: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    sha2::Sha256::digest(clean.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `code` looks like a recovery code rather than a TOTP code.
pub(crate) fn is_recovery_code(code: &str) -> bool {
    code.chars().filter(char::is_ascii_alphanumeric).count() == 10
        && code.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1, eight digits.
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (time, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(key, time / STEP, 8), want, "T = {time}");
        }
    }

    #[test]
    fn a_code_is_good_around_its_step_and_only_once() {
        let secret = new_secret();
        let key = BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
        let now = 1_800_000_000u64;
        let code = |step: u64| format!("{:06}", hotp(&key, step, DIGITS));
        let step = now / STEP;
        assert_eq!(verify(&secret, &code(step), now, None), Some(step));
        assert_eq!(verify(&secret, &code(step - 1), now, None), Some(step - 1));
        assert_eq!(verify(&secret, &code(step + 1), now, None), Some(step + 1));
        assert_eq!(verify(&secret, &code(step - 2), now, None), None);
        // Used once: not again, nor an older one.
        assert_eq!(verify(&secret, &code(step), now, Some(step)), None);
        assert_eq!(verify(&secret, &code(step - 1), now, Some(step)), None);
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn recovery_codes_and_the_enrolment_address() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| c.len() == 11 && is_recovery_code(c)));
        assert_eq!(
            recovery_hash(&codes[0].to_lowercase().replace('-', " ")),
            hashes[0]
        );
        assert!(!is_recovery_code("123456"));
        let uri = uri("Haven", "anna", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/Haven:anna?secret=JBSWY3DPEHPK3PXP&issuer=Haven&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&uri).starts_with("<?xml"));
    }
}
