//! The second step of a login, and setting a second factor up.
//!
//! A right password for an account with a second factor yields a
//! challenge, not a login: a random token good for five minutes and five
//! codes, which `POST /api/v1/login/second-factor` trades, with a TOTP
//! code or a recovery code, for the login. Setting one up happens on a
//! live login: a new secret is kept on the login (never on disk) until a
//! code from the app confirms it; then the account's earlier logins end
//! and a fresh one takes this one's place.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use super::{Granted, Login, Logins, totp};
use crate::accounts::{Account, AccountStore};
use crate::tokens::{self, TokenHash};

/// How long a challenge may wait for its code.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Wrong codes a challenge takes before it is void.
const CHALLENGE_TRIES: u8 = 5;
/// Challenges kept at most; beyond it the oldest are purged.
const MAX_CHALLENGES: usize = 10_000;

/// A right password waiting for its second factor.
#[derive(Debug)]
struct Pending {
    account: u64,
    epoch: u64,
    expires: Instant,
    failures: u8,
}

/// Challenges, and the TOTP step each account last used (so no code
/// works twice).
#[derive(Debug, Default)]
pub(crate) struct SecondFactors {
    pending: DashMap<TokenHash, Pending>,
    last_step: DashMap<u64, u64>,
}

/// Why a second factor was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The challenge is unknown, used up or expired: log in again.
    Expired,
    /// The code was wrong (for this account).
    Wrong(String),
    /// The account store could not be read or written.
    Internal,
}

/// What a confirmed second factor brings.
#[derive(Debug)]
pub(crate) struct Confirmed {
    pub(crate) granted: Granted,
    /// Whether a recovery code was used (and struck off).
    pub(crate) recovery: bool,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Logins {
    /// A challenge for `account`'s second factor.
    pub(super) fn challenge(&self, account: &Account) -> String {
        let now = Instant::now();
        let pending = &self.second.pending;
        if pending.len() >= MAX_CHALLENGES {
            pending.retain(|_, p| p.expires > now);
        }
        let token = tokens::new_token();
        pending.insert(
            tokens::hash(&token),
            Pending {
                account: account.id,
                epoch: account.epoch,
                expires: now + CHALLENGE_TTL,
                failures: 0,
            },
        );
        token
    }

    /// Checks `code` (a TOTP code or a recovery code) against `secret`,
    /// for `account`, striking a used recovery code off.
    fn check_code(
        &self,
        store: &AccountStore,
        account: &Account,
        secret: &str,
        code: &str,
    ) -> Result<bool, Refused> {
        let wrong = || Refused::Wrong(account.name.clone());
        if totp::is_recovery_code(code) {
            let hash = totp::recovery_hash(code);
            if !account.recovery_codes.contains(&hash) {
                return Err(wrong());
            }
            return match store.use_recovery_code(&account.name, &hash) {
                Ok(true) => Ok(true),
                Ok(false) => Err(wrong()),
                Err(_) => Err(Refused::Internal),
            };
        }
        if self.code_is_right(account, secret, code) {
            Ok(false)
        } else {
            Err(wrong())
        }
    }

    /// Whether `code` is `account`'s current TOTP code, not used before.
    pub(crate) fn code_is_right(&self, account: &Account, secret: &str, code: &str) -> bool {
        let last = self.second.last_step.get(&account.id).map(|s| *s);
        match totp::verify(secret, code, unix_secs(), last) {
            Some(step) => {
                self.second.last_step.insert(account.id, step);
                true
            }
            None => false,
        }
    }

    /// Trades a challenge and a code for a login.
    pub(crate) fn second_factor(
        &self,
        store: &AccountStore,
        challenge: &str,
        code: &str,
    ) -> Result<Confirmed, Refused> {
        let hash = tokens::hash(challenge);
        let (account_id, epoch) = {
            let pending = self.second.pending.get(&hash).ok_or(Refused::Expired)?;
            if pending.expires <= Instant::now() {
                drop(pending);
                self.second.pending.remove(&hash);
                return Err(Refused::Expired);
            }
            (pending.account, pending.epoch)
        };
        let account = store
            .get_by_id(account_id)
            .map_err(|_| Refused::Internal)?
            .filter(|a| a.epoch == epoch)
            .ok_or(Refused::Expired)?;
        let Some(secret) = account.totp.clone() else {
            return Err(Refused::Expired);
        };
        match self.check_code(store, &account, &secret, code) {
            Ok(recovery) => {
                self.second.pending.remove(&hash);
                // A struck-off recovery code changed the file, not the
                // epoch: read the account again for the login.
                let account = store
                    .get_by_id(account_id)
                    .map_err(|_| Refused::Internal)?
                    .ok_or(Refused::Expired)?;
                Ok(Confirmed {
                    granted: self.grant(account),
                    recovery,
                })
            }
            Err(Refused::Wrong(name)) => {
                let spent = self
                    .second
                    .pending
                    .get_mut(&hash)
                    .map(|mut p| {
                        p.failures += 1;
                        p.failures >= CHALLENGE_TRIES
                    })
                    .unwrap_or(true);
                if spent {
                    self.second.pending.remove(&hash);
                }
                Err(Refused::Wrong(name))
            }
            Err(other) => Err(other),
        }
    }

    /// Starts setting up a second factor on `login`: a new secret, kept on
    /// the login until confirmed. Returns the secret and the address for
    /// the app.
    pub(crate) fn start_enrolment(&self, login: &Login, issuer: &str) -> (String, String) {
        let secret = totp::new_secret();
        let uri = totp::uri(issuer, &login.name, &secret);
        *login.enrolling.lock().unwrap_or_else(|p| p.into_inner()) = Some(secret.clone());
        (secret, uri)
    }

    /// Confirms the second factor being set up on `login` with a code from
    /// the app: stores it with new recovery codes, ends the account's
    /// earlier logins and grants a fresh one. Returns it and the recovery
    /// codes, shown once.
    pub(crate) fn confirm_enrolment(
        &self,
        store: &AccountStore,
        login: &Login,
        code: &str,
    ) -> Result<(Granted, Vec<String>), Refused> {
        let secret = login
            .enrolling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Refused::Expired)?;
        let step = totp::verify(&secret, code, unix_secs(), None)
            .ok_or_else(|| Refused::Wrong(login.name.clone()))?;
        let (codes, hashes) = totp::new_recovery_codes();
        let account = store
            .set_second_factor(&login.name, &secret, hashes)
            .map_err(|_| Refused::Internal)?;
        self.second.last_step.insert(account.id, step);
        // The epoch moved on: every login of the account ends here (its
        // sockets may resume with the fresh one), none waits for a sweep.
        self.end_account(account.id);
        Ok((self.grant(account), codes))
    }

    /// Checks an account's password on the checking threads (for changing
    /// it, or a second factor).
    pub(crate) async fn check_password(&self, account: &Account, password: &str) -> Option<bool> {
        let hash = account.password_hash.clone();
        let password = password.to_owned();
        let checks = Arc::clone(&self.checks);
        let source = account.id;
        self.hasher
            .check(super::hasher::Lane::Normal, source, move || {
                checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::accounts::verify_password(&password, &hash)
            })
            .await
            .ok()
    }
}
