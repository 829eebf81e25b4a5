//! Staff logins: `POST /api/v1/login` trades a name and password for a
//! random token, kept here by its hash until it ends.
//!
//! Before any password is checked, [`throttle`] decides whether the
//! attempt may go ahead (per source, per source and account, per account
//! from unknown browsers); refused attempts cost no Argon2. The check
//! itself runs on [`hasher`]'s low-priority threads, browsers known to the
//! account ([`device`] cookies) first. Unknown names are checked against a
//! dummy hash, so neither timing nor answer tells which names exist.
//!
//! Every live login carries a cancellation token: whatever holds the login
//! open (a counsellor socket, a supervisor feed, a watch) ends with it, at
//! once, whether the login was logged out, expired, or revoked.

pub(crate) mod device;
pub(crate) mod hasher;
pub(crate) mod origin;
pub(crate) mod policy;
pub(crate) mod second;
pub(crate) mod throttle;
pub(crate) mod totp;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use self::device::DeviceKeys;
use self::hasher::{Busy, Hasher, Lane};
use self::throttle::{Refusal, Throttle};
use crate::accounts::{self, Account, AccountStore};
use crate::config::AuthConfig;
use crate::tokens::{self, TokenHash};

/// A hash of a random password, to verify against for unknown names.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| accounts::hash_password(&tokens::new_password()).unwrap_or_default());

/// One live login.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) account: u64,
    /// The account's name, for the audit log.
    pub(crate) name: String,
    /// The account's credential epoch when it logged in.
    pub(crate) epoch: u64,
    pub(crate) expires: Instant,
    /// When the staff member last did something, in milliseconds since
    /// the logins' base instant.
    last_active: AtomicU64,
    /// Fires when the login ends, however it ends.
    pub(crate) ended: CancellationToken,
    /// What the login may do yet.
    pub(crate) stage: Stage,
    /// A second factor being set up: its secret, until confirmed.
    pub(crate) enrolling: std::sync::Mutex<Option<String>>,
}

/// A live login as plain data, for the node that leads next: the token's
/// hash (never the token), the account, and its times.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct LoginHandover {
    token: String,
    account: u64,
    name: String,
    epoch: u64,
    expires_in_ms: u64,
    idle_ms: u64,
    stage: u8,
}

/// What a login may do. A login that must first change its password or
/// set up a second factor may do only that (and log out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Everything its role allows.
    Full,
    /// Change the password first (the first start's generated one).
    ChangePassword,
    /// Set up a second factor first (its role requires one).
    EnrolSecondFactor,
}

/// Why a login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Its `token_ttl` ran out.
    Expired,
    /// Nothing was done with it for `idle_timeout`.
    Idle,
    /// Its account was removed.
    Removed,
    /// Its account's credential epoch was raised (a new password, a
    /// second-factor reset, a revocation).
    Revoked,
}

impl Ending {
    /// The word the audit log gives it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ending::Expired => "expired",
            Ending::Idle => "idle",
            Ending::Removed => "removed",
            Ending::Revoked => "revoked",
        }
    }
}

/// A login the sweep ended.
#[derive(Clone, Debug)]
pub(crate) struct Ended {
    pub(crate) account: u64,
    pub(crate) name: String,
    pub(crate) why: Ending,
}

/// A login attempt.
#[derive(Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// Where it comes from (see [`crate::limits::client_ip`]).
    pub(crate) ip: IpAddr,
    pub(crate) name: &'a str,
    pub(crate) password: &'a str,
    /// The browser's device cookie, if it sent one.
    pub(crate) device: Option<&'a str>,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A successful login.
#[derive(Debug)]
pub(crate) struct Granted {
    pub(crate) token: String,
    pub(crate) account: Account,
    /// A fresh device cookie value for the browser.
    pub(crate) device: String,
    /// What it may do yet.
    pub(crate) stage: Stage,
}

/// What a right password leads to.
#[derive(Debug)]
pub(crate) enum Passed {
    /// A login.
    Granted(Box<Granted>),
    /// The account has a second factor: the code must follow, with this
    /// challenge (`POST /api/v1/login/second-factor`).
    SecondFactor { challenge: String },
}

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginError {
    /// Wrong name or password (deliberately not saying which).
    Invalid,
    /// This source tries too often; try again after this long.
    SourceRate(Duration),
    /// Too many failures for this account from here; try again after this
    /// long.
    Backoff(Duration),
    /// Too many logins waiting, or a failure table full; try again shortly.
    Busy,
    /// The account store could not be read.
    Internal,
}

/// The live logins and the login rules.
#[derive(Debug)]
pub(crate) struct Logins {
    live: DashMap<TokenHash, Arc<Login>>,
    throttle: Throttle,
    hasher: Hasher,
    devices: DeviceKeys,
    config: AuthConfig,
    /// Passwords checked (Argon2id runs), for `/metrics`.
    checks: Arc<AtomicU64>,
    /// What `Login::last_active` counts from.
    base: Instant,
    /// Second factors: challenges waiting for a code, steps used.
    second: second::SecondFactors,
}

impl Drop for Logins {
    fn drop(&mut self) {
        self.hasher.stop();
    }
}

impl Logins {
    /// The login rules, with the device-cookie key kept in `data_dir`.
    pub(crate) fn new(
        config: AuthConfig,
        key_rotation: Duration,
        data_dir: &Path,
    ) -> std::io::Result<Self> {
        Ok(Self {
            live: DashMap::new(),
            throttle: Throttle::new(config.clone(), key_rotation),
            hasher: Hasher::start(
                config.max_concurrent_hashes,
                config.max_queued_logins as usize,
                config.source_queued_logins,
            ),
            devices: DeviceKeys::load(data_dir)?,
            config,
            checks: Arc::new(AtomicU64::new(0)),
            base: Instant::now(),
            second: second::SecondFactors::default(),
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// Records that the staff member behind `login` did something at
    /// `at`, which keeps it from ending as idle.
    pub(crate) fn touch(&self, login: &Login, at: Instant) {
        login
            .last_active
            .fetch_max(self.millis(at), Ordering::Relaxed);
    }

    /// Whether `login` is still good at `now`: not expired, not idle.
    fn current(&self, login: &Login, now: Instant) -> Result<(), Ending> {
        if login.expires <= now {
            return Err(Ending::Expired);
        }
        let idle = self
            .millis(now)
            .saturating_sub(login.last_active.load(Ordering::Relaxed));
        if Duration::from_millis(idle) >= self.config.idle_timeout {
            return Err(Ending::Idle);
        }
        Ok(())
    }

    /// Ends the logins that expired or went idle, and, when the account
    /// file changed since `seen`, those whose account is gone or whose
    /// credential epoch moved on. Returns what it ended.
    pub(crate) fn sweep(&self, store: &AccountStore, seen: &mut u64, now: Instant) -> Vec<Ended> {
        let epochs: Option<std::collections::HashMap<u64, u64>> = match store.changed_since(seen) {
            Ok(Some(accounts)) => Some(accounts.iter().map(|a| (a.id, a.epoch)).collect()),
            Ok(None) => None,
            Err(_) => {
                // Unreadable now: try again on the next sweep.
                *seen = seen.wrapping_sub(1);
                None
            }
        };
        let mut ended = Vec::new();
        self.live.retain(|_, login| {
            let why = match self.current(login, now) {
                Err(why) => Some(why),
                Ok(()) => epochs.as_ref().and_then(|e| match e.get(&login.account) {
                    None => Some(Ending::Removed),
                    Some(epoch) if *epoch != login.epoch => Some(Ending::Revoked),
                    Some(_) => None,
                }),
            };
            match why {
                Some(why) => {
                    login.ended.cancel();
                    ended.push(Ended {
                        account: login.account,
                        name: login.name.clone(),
                        why,
                    });
                    false
                }
                None => true,
            }
        });
        ended
    }

    /// How many passwords this server has checked.
    pub(crate) fn password_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.config.token_ttl
    }

    pub(crate) fn secure_cookie(&self) -> bool {
        self.config.secure_cookie
    }

    pub(crate) fn device_ttl(&self) -> Duration {
        self.config.device_ttl
    }

    /// Checks a name and password; on success returns a new token.
    pub(crate) async fn login(
        &self,
        store: &Arc<AccountStore>,
        attempt: Attempt<'_>,
    ) -> Result<Passed, LoginError> {
        let account = store.get(attempt.name).map_err(|_| LoginError::Internal)?;
        let device = match (&account, attempt.device) {
            (Some(account), Some(cookie)) => {
                self.devices
                    .check(cookie, account, self.config.device_ttl.as_secs())
            }
            _ => None,
        };
        let ticket = self
            .throttle
            .check(attempt.ip, attempt.name, device, Instant::now())
            .map_err(|refusal| {
                crate::metrics::refused(match refusal {
                    Refusal::SourceRate(_) => "login_source_rate",
                    Refusal::Backoff(_) => "login_backoff",
                    Refusal::Full => "login_table_full",
                });
                match refusal {
                    Refusal::SourceRate(wait) => LoginError::SourceRate(wait),
                    Refusal::Backoff(wait) => LoginError::Backoff(wait),
                    Refusal::Full => LoginError::Busy,
                }
            })?;
        let lane = if device.is_some() {
            Lane::Trusted
        } else {
            Lane::Normal
        };
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let password = attempt.password.to_owned();
        let checks = self.checks.clone();
        let ok = self
            .hasher
            .check(lane, ticket.source(), move || {
                checks.fetch_add(1, Ordering::Relaxed);
                // Unknown names cost the same as known ones (the dummy hash
                // is made here too, off the async threads, on first use).
                accounts::verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH))
            })
            .await
            .map_err(|Busy| {
                crate::metrics::refused("login_busy");
                LoginError::Busy
            })?;
        match account {
            Some(account) if ok => {
                self.throttle.succeeded(ticket);
                if account.totp.is_some() {
                    return Ok(Passed::SecondFactor {
                        challenge: self.challenge(&account),
                    });
                }
                Ok(Passed::Granted(Box::new(self.grant(account))))
            }
            _ => {
                self.throttle.failed(ticket, Instant::now());
                Err(LoginError::Invalid)
            }
        }
    }

    /// Makes a live login for `account`, at the stage its state calls for,
    /// with a device cookie for the browser.
    pub(crate) fn grant(&self, account: Account) -> Granted {
        let stage = if account.must_change_password {
            Stage::ChangePassword
        } else if account.totp.is_none() && self.config.second_factor_roles.contains(&account.role)
        {
            Stage::EnrolSecondFactor
        } else {
            Stage::Full
        };
        let token = tokens::new_token();
        let now = Instant::now();
        self.live.insert(
            tokens::hash(&token),
            Arc::new(Login {
                account: account.id,
                name: account.name.clone(),
                epoch: account.epoch,
                expires: now + self.config.token_ttl,
                last_active: AtomicU64::new(self.millis(now)),
                ended: CancellationToken::new(),
                stage,
                enrolling: std::sync::Mutex::new(None),
            }),
        );
        let device = self.devices.issue(&account);
        Granted {
            token,
            account,
            device,
            stage,
        }
    }

    /// Every live login as plain data, for the node that leads next.
    pub(crate) fn hand_over(&self) -> Vec<LoginHandover> {
        let now = Instant::now();
        let now_ms = self.millis(now);
        self.live
            .iter()
            .filter(|e| self.current(e.value(), now).is_ok())
            .map(|e| {
                let login = e.value();
                LoginHandover {
                    token: e.key().to_hex(),
                    account: login.account,
                    name: login.name.clone(),
                    epoch: login.epoch,
                    expires_in_ms: u64::try_from(
                        login.expires.saturating_duration_since(now).as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                    idle_ms: now_ms.saturating_sub(login.last_active.load(Ordering::Relaxed)),
                    stage: match login.stage {
                        Stage::Full => 0,
                        Stage::ChangePassword => 1,
                        Stage::EnrolSecondFactor => 2,
                    },
                }
            })
            .collect()
    }

    /// Takes over the logins the node that led before handed over: staff
    /// stay logged in.
    pub(crate) fn take_over(&self, logins: Vec<LoginHandover>) {
        let now = Instant::now();
        let now_ms = self.millis(now);
        for l in logins {
            let Some(hash) = TokenHash::from_hex(&l.token) else {
                continue;
            };
            let stage = match l.stage {
                0 => Stage::Full,
                1 => Stage::ChangePassword,
                _ => Stage::EnrolSecondFactor,
            };
            self.live.insert(
                hash,
                Arc::new(Login {
                    account: l.account,
                    name: l.name,
                    epoch: l.epoch,
                    expires: now + Duration::from_millis(l.expires_in_ms),
                    last_active: AtomicU64::new(now_ms.saturating_sub(l.idle_ms)),
                    ended: CancellationToken::new(),
                    stage,
                    enrolling: std::sync::Mutex::new(None),
                }),
            );
        }
    }

    /// The live login for a token, if it has not ended.
    pub(crate) fn validate(&self, token: &str) -> Option<(TokenHash, Arc<Login>)> {
        let hash = tokens::hash(token);
        self.validate_hash(hash).map(|login| (hash, login))
    }

    /// The live login for a token hash, if it has not ended.
    pub(crate) fn validate_hash(&self, hash: TokenHash) -> Option<Arc<Login>> {
        let login = self.live.get(&hash)?.clone();
        if self.current(&login, Instant::now()).is_err() {
            self.end(hash);
            return None;
        }
        Some(login)
    }

    /// Ends every login of an account (a supervisor or admin ended them).
    /// Returns how many there were.
    pub(crate) fn end_account(&self, account: u64) -> usize {
        let mut n = 0;
        self.live.retain(|_, login| {
            if login.account != account {
                return true;
            }
            login.ended.cancel();
            n += 1;
            false
        });
        n
    }

    /// Ends a login: whatever holds it open closes. Returns whether it
    /// existed.
    pub(crate) fn end(&self, hash: TokenHash) -> bool {
        match self.live.remove(&hash) {
            Some((_, login)) => {
                login.ended.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountSpec, Role};

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn setup() -> (tempfile::TempDir, Arc<AccountStore>, Logins) {
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
        let logins = Logins::new(
            AuthConfig::default(),
            Duration::from_secs(86_400),
            dir.path(),
        )
        .unwrap();
        (dir, store, logins)
    }

    fn granted(passed: Passed) -> Granted {
        match passed {
            Passed::Granted(g) => *g,
            Passed::SecondFactor { .. } => panic!("a second factor was asked for"),
        }
    }

    fn attempt<'a>(name: &'a str, password: &'a str) -> Attempt<'a> {
        Attempt {
            ip: HOME,
            name,
            password,
            device: None,
        }
    }

    #[tokio::test]
    async fn login_validate_logout() {
        let (_dir, store, logins) = setup();
        let granted = granted(
            logins
                .login(&store, attempt("anna", "correct horse battery"))
                .await
                .unwrap(),
        );
        assert_eq!(granted.account.name, "anna");
        let (hash, login) = logins.validate(&granted.token).unwrap();
        assert_eq!(login.account, granted.account.id);
        assert!(!login.ended.is_cancelled());
        assert!(logins.end(hash));
        assert!(login.ended.is_cancelled(), "ending a login fires its token");
        assert!(logins.validate(&granted.token).is_none());
        assert_eq!(
            logins
                .login(&store, attempt("anna", "wrong"))
                .await
                .unwrap_err(),
            LoginError::Invalid
        );
        assert_eq!(
            logins
                .login(&store, attempt("nobody", "whatever"))
                .await
                .unwrap_err(),
            LoginError::Invalid
        );
    }

    #[tokio::test]
    async fn a_known_browser_gets_in_while_its_source_backs_off() {
        let (_dir, store, logins) = setup();
        let granted = granted(
            logins
                .login(&store, attempt("anna", "correct horse battery"))
                .await
                .unwrap(),
        );
        for _ in 0..5 {
            let _ = logins.login(&store, attempt("anna", "nope")).await;
        }
        assert!(matches!(
            logins
                .login(&store, attempt("anna", "correct horse battery"))
                .await,
            Err(LoginError::Backoff(_))
        ));
        let known = Attempt {
            device: Some(&granted.device),
            ..attempt("anna", "correct horse battery")
        };
        assert!(logins.login(&store, known).await.is_ok());
    }
}
