//! Device cookies: a browser a staff member has logged in from before is
//! recognised, so that guessing at their account from elsewhere never
//! keeps them out (see [`super::throttle`]).
//!
//! After a successful login the browser gets `__Host-haven_device` (or
//! `haven_device` over plain HTTP): the account's id and credential epoch,
//! when it was issued and a random device id, signed with HMAC-SHA256
//! under a key kept in the data dir (`device.key`, mode 0600). Nothing is
//! stored per device on the server. A password change, a second-factor
//! reset or a revocation bumps the account's epoch, which voids every
//! device cookie it had; otherwise one lasts `auth.device_ttl`.
//!
//! Staff only: help-seekers never get a cookie.

use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::accounts::Account;

/// The key's file under the data dir.
pub(crate) const KEY_FILE: &str = "device.key";

/// account (8) | epoch (8) | issued (8) | device id (16).
const SIGNED: usize = 40;
const MAC: usize = 32;

/// Signs and checks device cookies.
pub(crate) struct DeviceKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKeys(<redacted>)")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DeviceKeys {
    /// Reads the key from the data dir, or makes one on first start.
    pub(crate) fn load(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(Self { key });
            }
            Ok(_) => {
                tracing::warn!("device.key has the wrong length: making a new one");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        let tmp = path.with_extension("key.tmp");
        let mut file = crate::private::file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(Self { key })
    }

    fn mac(&self, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(signed);
        mac
    }

    /// A new cookie value for `account`.
    pub(crate) fn issue(&self, account: &Account) -> String {
        let mut bytes = [0u8; SIGNED + MAC];
        bytes[..8].copy_from_slice(&account.id.to_be_bytes());
        bytes[8..16].copy_from_slice(&account.epoch.to_be_bytes());
        bytes[16..24].copy_from_slice(&now_secs().to_be_bytes());
        rand::fill(&mut bytes[24..SIGNED]);
        let tag = self.mac(&bytes[..SIGNED]).finalize().into_bytes();
        bytes[SIGNED..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The device id in `value`, when it is a cookie this server signed for
    /// `account` at its current epoch, no older than `ttl_secs`.
    pub(crate) fn check(&self, value: &str, account: &Account, ttl_secs: u64) -> Option<u64> {
        if value.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() != SIGNED + MAC {
            return None;
        }
        self.mac(&bytes[..SIGNED])
            .verify_slice(&bytes[SIGNED..])
            .ok()?;
        let field = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let fresh = now_secs().saturating_sub(field(16)) < ttl_secs;
        (field(0) == account.id && field(8) == account.epoch && fresh).then(|| field(24))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountSpec, AccountStore, Role};

    #[test]
    fn a_cookie_is_good_for_its_account_and_epoch_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::new(dir.path());
        let anna = store
            .add(
                "anna",
                Role::Counsellor,
                "correct horse battery",
                &AccountSpec::default(),
            )
            .unwrap();
        let bram = store
            .add(
                "bram",
                Role::Counsellor,
                "correct horse battery",
                &AccountSpec::default(),
            )
            .unwrap();
        let keys = DeviceKeys::load(dir.path()).unwrap();
        let cookie = keys.issue(&anna);
        let device = keys.check(&cookie, &anna, 3600).unwrap();
        assert_ne!(keys.check(&keys.issue(&anna), &anna, 3600), Some(device));
        assert_eq!(keys.check(&cookie, &bram, 3600), None);
        assert_eq!(keys.check(&cookie, &anna, 0), None, "expired");
        let mut changed = anna.clone();
        changed.epoch += 1;
        assert_eq!(keys.check(&cookie, &changed, 3600), None, "epoch bumped");
        // Tampered, or signed under another key.
        let mut bytes = URL_SAFE_NO_PAD.decode(&cookie).unwrap();
        bytes[0] ^= 1;
        assert_eq!(
            keys.check(&URL_SAFE_NO_PAD.encode(&bytes), &anna, 3600),
            None
        );
        assert_eq!(keys.check("garbage", &anna, 3600), None);
        // The key survives a restart, and is private.
        let again = DeviceKeys::load(dir.path()).unwrap();
        assert_eq!(again.check(&cookie, &anna, 3600), Some(device));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
