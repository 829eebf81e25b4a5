//! Counsellor logins: `POST /api/v1/login` trades a name and password for a
//! random token, kept here by its hash until it expires or is logged out.
//!
//! Password checks cost ~30 ms of CPU and 19 MiB each, so at most
//! `max_concurrent_hashes` run at once (on the blocking pool) and further
//! attempts are refused at once with "busy" instead of queueing. Unknown
//! names are checked against a dummy hash so timing does not reveal which
//! names exist. Each name may fail `max_failures` times per
//! `lockout_window`.

pub(crate) mod origin;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::accounts::{self, Account, AccountStore};
use crate::config::AuthConfig;
use crate::tokens::{self, TokenHash};

/// The most names whose failures are tracked; beyond it, stale entries are
/// purged first, so guessing random names cannot grow memory without bound.
const MAX_TRACKED_NAMES: usize = 10_000;

/// A hash of a random password, to verify against for unknown names.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| accounts::hash_password(&tokens::new_password()).unwrap_or_default());

/// One live login.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Login {
    pub(crate) account: u64,
    pub(crate) expires: Instant,
}

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginError {
    /// Wrong name or password (deliberately not saying which).
    Invalid,
    /// Too many failures for this name; try again after this long.
    LockedOut(Duration),
    /// Too many password checks running; try again shortly.
    Busy,
    /// The account store could not be read.
    Internal,
}

#[derive(Debug)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The live logins and the login rules.
#[derive(Debug)]
pub(crate) struct Logins {
    live: DashMap<TokenHash, Login>,
    hashing: Arc<Semaphore>,
    failures: Mutex<HashMap<String, Failures>>,
    config: AuthConfig,
}

impl Logins {
    pub(crate) fn new(config: AuthConfig) -> Self {
        Self {
            live: DashMap::new(),
            hashing: Arc::new(Semaphore::new(config.max_concurrent_hashes as usize)),
            failures: Mutex::new(HashMap::new()),
            config,
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.config.token_ttl
    }

    pub(crate) fn secure_cookie(&self) -> bool {
        self.config.secure_cookie
    }

    fn locked_out(&self, name: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let f = failures.get(name)?;
        let window = self.config.lockout_window;
        (f.count >= self.config.max_failures && f.since.elapsed() < window)
            .then(|| window.saturating_sub(f.since.elapsed()))
    }

    fn record_failure(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.config.lockout_window;
        if failures.len() >= MAX_TRACKED_NAMES {
            failures.retain(|_, f| f.since.elapsed() < window);
        }
        if failures.len() >= MAX_TRACKED_NAMES && !failures.contains_key(name) {
            return;
        }
        let f = failures.entry(name.to_owned()).or_insert(Failures {
            since: Instant::now(),
            count: 0,
        });
        if f.since.elapsed() >= window {
            *f = Failures {
                since: Instant::now(),
                count: 0,
            };
        }
        f.count += 1;
    }

    /// Checks a name and password; on success returns a new token.
    pub(crate) async fn login(
        &self,
        store: &Arc<AccountStore>,
        name: &str,
        password: &str,
    ) -> Result<(String, Account), LoginError> {
        if let Some(wait) = self.locked_out(name) {
            return Err(LoginError::LockedOut(wait));
        }
        let permit = self
            .hashing
            .clone()
            .try_acquire_owned()
            .map_err(|_| LoginError::Busy)?;
        let account = store.get(name).map_err(|_| LoginError::Internal)?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Unknown names cost the same as known ones (the dummy hash is
            // also computed here, off the async threads, on first use).
            accounts::verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH))
        })
        .await
        .map_err(|_| LoginError::Internal)?;
        match account {
            Some(account) if ok => {
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(name);
                let token = tokens::new_token();
                self.purge_expired();
                self.live.insert(
                    tokens::hash(&token),
                    Login {
                        account: account.id,
                        expires: Instant::now() + self.config.token_ttl,
                    },
                );
                Ok((token, account))
            }
            _ => {
                self.record_failure(name);
                Err(LoginError::Invalid)
            }
        }
    }

    /// The live login for a token, if it has not expired.
    pub(crate) fn validate(&self, token: &str) -> Option<(TokenHash, Login)> {
        let hash = tokens::hash(token);
        self.validate_hash(hash).map(|login| (hash, login))
    }

    /// The live login for a token hash, if it has not expired.
    pub(crate) fn validate_hash(&self, hash: TokenHash) -> Option<Login> {
        let login = *self.live.get(&hash)?;
        if login.expires <= Instant::now() {
            self.live.remove(&hash);
            return None;
        }
        Some(login)
    }

    /// Ends a login. Returns whether it existed.
    pub(crate) fn logout(&self, hash: TokenHash) -> bool {
        self.live.remove(&hash).is_some()
    }

    fn purge_expired(&self) {
        let now = Instant::now();
        self.live.retain(|_, l| l.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountSpec, Role};

    fn setup(max_failures: u32) -> (tempfile::TempDir, Arc<AccountStore>, Logins) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(AccountStore::new(dir.path()));
        store
            .add(
                "anna",
                Role::Counsellor,
                "correct horse battery",
                &AccountSpec::default(),
            )
            .unwrap();
        let logins = Logins::new(AuthConfig {
            max_failures,
            ..AuthConfig::default()
        });
        (dir, store, logins)
    }

    #[tokio::test]
    async fn login_validate_logout() {
        let (_dir, store, logins) = setup(10);
        let (token, account) = logins
            .login(&store, "anna", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(account.name, "anna");
        let (hash, login) = logins.validate(&token).unwrap();
        assert_eq!(login.account, account.id);
        assert!(logins.logout(hash));
        assert!(logins.validate(&token).is_none());
        assert_eq!(
            logins.login(&store, "anna", "wrong").await.unwrap_err(),
            LoginError::Invalid
        );
        assert_eq!(
            logins
                .login(&store, "nobody", "whatever")
                .await
                .unwrap_err(),
            LoginError::Invalid
        );
    }

    #[tokio::test]
    async fn repeated_failures_lock_the_name_out() {
        let (_dir, store, logins) = setup(3);
        for _ in 0..3 {
            assert_eq!(
                logins.login(&store, "anna", "nope").await.unwrap_err(),
                LoginError::Invalid
            );
        }
        let err = logins
            .login(&store, "anna", "correct horse battery")
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::LockedOut(_)));
    }
}
