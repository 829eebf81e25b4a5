//! Who may try a password now: the login rules that run before any
//! password is checked, so a refused attempt costs a hash lookup, never
//! Argon2.
//!
//! - **Per source**: attempts per minute from one address (an IPv4
//!   address or an IPv6 /64), whatever the name or the outcome.
//! - **Per source and account**: after `max_failures` failures for one
//!   name from one source, that source waits, twice as long after each
//!   further failure (30 s, 1 min, 2 min, … up to `lockout_window`). The
//!   same name from anywhere else is untouched: an attacker elsewhere
//!   cannot lock the real user out.
//! - **Per account, from untrusted browsers**: past `account_failures`
//!   failures for one name within `lockout_window` (a guess spread over
//!   many addresses), attempts from browsers without a device cookie for
//!   that account wait for the window to pass. A browser the staff member
//!   has logged in from before carries a device cookie and is never held
//!   by this rule, only by its own failures (the same back-off per device).
//!
//! Sources, names and devices are kept as keyed hashes under a random key
//! that lives in memory and is replaced every `source_key_rotation`; the
//! tables are bounded (`auth.max_tracked`), and when one is full a new
//! entry is refused, never let through: a full table degrades to "try
//! again later", never to unlimited guessing.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;
use crate::limits::network;

/// The first wait once a source has used up its failures for a name.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);

/// Why an attempt may not go ahead now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This source tries too often, whatever the name.
    SourceRate(Duration),
    /// Too many failures for this name from here (or from this device, or
    /// from untrusted browsers everywhere); try again after this long.
    Backoff(Duration),
    /// A table is full: refused rather than let through unrecorded.
    Full,
}

/// An attempt let through, to report its outcome with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    generation: u64,
    source: u64,
    name: u64,
    device: Option<u64>,
}

impl Ticket {
    /// The source's keyed hash, for fair queueing of password checks.
    pub(crate) fn source(&self) -> u64 {
        self.source
    }
}

/// Failures counted towards a back-off.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// How long the holder must still wait, if at all.
    fn wait(&self, max_failures: u32, cap: Duration, now: Instant) -> Option<Duration> {
        let over = self.count.checked_sub(max_failures)?;
        let backoff = FIRST_BACKOFF
            .checked_mul(1u32 << over.min(16))
            .unwrap_or(cap)
            .min(cap);
        let until = self.last + backoff;
        (until > now).then(|| until - now)
    }

    fn stale(&self, window: Duration, now: Instant) -> bool {
        now.duration_since(self.last) >= window
    }
}

/// Attempts from one source: a token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The tables under one hashing key.
#[derive(Debug)]
struct State {
    hasher: std::hash::RandomState,
    generation: u64,
    started: Instant,
    sources: HashMap<u64, Bucket>,
    pairs: HashMap<(u64, u64), Failures>,
    devices: HashMap<u64, Failures>,
    /// Untrusted failures per name in the current window.
    accounts: HashMap<u64, Failures>,
}

/// The login rules and their tables.
#[derive(Debug)]
pub(crate) struct Throttle {
    state: Mutex<State>,
    config: AuthConfig,
    rotation: Duration,
}

impl Throttle {
    pub(crate) fn new(config: AuthConfig, rotation: Duration) -> Self {
        Self {
            state: Mutex::new(State::new(0, Instant::now())),
            config,
            rotation,
        }
    }

    /// Decides whether an attempt for `name` from `ip` may check its
    /// password now. `device` is the id in a valid device cookie for this
    /// very account, if the browser sent one.
    pub(crate) fn check(
        &self,
        ip: IpAddr,
        name: &str,
        device: Option<u64>,
        now: Instant,
    ) -> Result<Ticket, Refusal> {
        let c = &self.config;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(st.started) >= self.rotation {
            let next = st.generation.wrapping_add(1);
            *st = State::new(next, now);
        }
        let source = st.hasher.hash_one(network(ip));
        let name_key = st.hasher.hash_one(name);
        let device = device.map(|d| st.hasher.hash_one(d));
        let window = c.lockout_window;
        let max = c.max_tracked as usize;

        if let Some(device) = device {
            // A browser this account has used before: only its own
            // failures hold it back.
            if let Some(wait) = st
                .devices
                .get(&device)
                .and_then(|f| f.wait(c.max_failures, window, now))
            {
                return Err(Refusal::Backoff(wait));
            }
        } else {
            // The per-source rate: a bucket of `source_login_burst`,
            // refilled at `source_logins_per_minute`.
            let rate = f64::from(c.source_logins_per_minute) / 60.0;
            let burst = f64::from(c.source_login_burst);
            if !st.sources.contains_key(&source) && st.sources.len() >= max {
                st.sources.retain(|_, b| {
                    b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst
                });
                if st.sources.len() >= max {
                    return Err(Refusal::Full);
                }
            }
            let bucket = st.sources.entry(source).or_insert(Bucket {
                tokens: burst,
                at: now,
            });
            bucket.tokens =
                (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate.max(1e-9));
                return Err(Refusal::SourceRate(wait.max(Duration::from_secs(1))));
            }
            bucket.tokens -= 1.0;

            if let Some(wait) = st
                .pairs
                .get(&(source, name_key))
                .and_then(|f| f.wait(c.max_failures, window, now))
            {
                return Err(Refusal::Backoff(wait));
            }
            if let Some(f) = st.accounts.get(&name_key)
                && f.count >= c.account_failures
                && !f.stale(window, now)
            {
                return Err(Refusal::Backoff(window - now.duration_since(f.last)));
            }
            // A failure of this attempt must have room to be recorded.
            if !room(&mut st.pairs, &(source, name_key), max, window, now)
                || !room(&mut st.accounts, &name_key, max, window, now)
            {
                return Err(Refusal::Full);
            }
        }
        if let Some(device) = device
            && !room(&mut st.devices, &device, max, window, now)
        {
            return Err(Refusal::Full);
        }
        Ok(Ticket {
            generation: st.generation,
            source,
            name: name_key,
            device,
        })
    }

    /// The attempt's password was wrong (or the name unknown).
    pub(crate) fn failed(&self, ticket: Ticket, now: Instant) {
        let window = self.config.lockout_window;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.generation != ticket.generation {
            return;
        }
        match ticket.device {
            Some(device) => bump(&mut st.devices, device, window, now),
            None => {
                bump(&mut st.pairs, (ticket.source, ticket.name), window, now);
                bump(&mut st.accounts, ticket.name, window, now);
            }
        }
    }

    /// The attempt's password was right: its source (or device) starts
    /// afresh for this name. The account's untrusted count stays: it
    /// measures guessing from everywhere else.
    pub(crate) fn succeeded(&self, ticket: Ticket) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.generation != ticket.generation {
            return;
        }
        match ticket.device {
            Some(device) => st.devices.remove(&device),
            None => st.pairs.remove(&(ticket.source, ticket.name)),
        };
    }

    /// How many entries each table holds (sources, pairs, accounts,
    /// devices), for tests.
    #[cfg(test)]
    fn sizes(&self) -> [usize; 4] {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        [
            st.sources.len(),
            st.pairs.len(),
            st.accounts.len(),
            st.devices.len(),
        ]
    }
}

impl State {
    fn new(generation: u64, now: Instant) -> Self {
        Self {
            hasher: std::hash::RandomState::new(),
            generation,
            started: now,
            sources: HashMap::new(),
            pairs: HashMap::new(),
            devices: HashMap::new(),
            accounts: HashMap::new(),
        }
    }
}

/// Counts one more failure for `key`, starting afresh after a quiet window.
fn bump<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Failures>,
    key: K,
    window: Duration,
    now: Instant,
) {
    let f = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if f.stale(window, now) {
        f.count = 0;
    }
    f.count = f.count.saturating_add(1);
    f.last = now;
}

/// Whether `key` has (or can be given) an entry in a table of at most
/// `max`, purging stale entries when it is full.
fn room<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Failures>,
    key: &K,
    max: usize,
    window: Duration,
    now: Instant,
) -> bool {
    if map.contains_key(key) || map.len() < max {
        return true;
    }
    map.retain(|_, f| !f.stale(window, now));
    map.len() < max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(tweak: impl FnOnce(&mut AuthConfig)) -> Throttle {
        let mut config = AuthConfig {
            source_logins_per_minute: 600,
            source_login_burst: 1000,
            ..AuthConfig::default()
        };
        tweak(&mut config);
        Throttle::new(config, Duration::from_secs(86_400))
    }

    const HOME: [u8; 4] = [192, 0, 2, 1];
    const ATTACKER: [u8; 4] = [198, 51, 100, 7];

    fn fail(t: &Throttle, ip: [u8; 4], name: &str, device: Option<u64>, now: Instant) {
        let ticket = t.check(IpAddr::from(ip), name, device, now).unwrap();
        t.failed(ticket, now);
    }

    #[test]
    fn failures_elsewhere_never_hold_back_the_real_user() {
        let t = throttle(|c| c.max_failures = 5);
        let now = Instant::now();
        for _ in 0..5 {
            fail(&t, ATTACKER, "anna", None, now);
        }
        // The attacker waits 30 s, then twice as long after each failure.
        let wait = |t: &Throttle, at| match t.check(IpAddr::from(ATTACKER), "anna", None, at) {
            Err(Refusal::Backoff(wait)) => wait,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(&t, now), Duration::from_secs(30));
        let later = now + Duration::from_secs(31);
        fail(&t, ATTACKER, "anna", None, later);
        assert_eq!(wait(&t, later), Duration::from_secs(60));
        // Anna, from home, is not affected, nor is another name from the
        // attacker's address.
        assert!(t.check(IpAddr::from(HOME), "anna", None, later).is_ok());
        assert!(t.check(IpAddr::from(ATTACKER), "bram", None, later).is_ok());
    }

    #[test]
    fn one_source_is_refused_past_its_rate_whatever_the_names() {
        let t = throttle(|c| {
            c.source_logins_per_minute = 6;
            c.source_login_burst = 3;
        });
        let now = Instant::now();
        for i in 0..3 {
            assert!(
                t.check(IpAddr::from(ATTACKER), &format!("n{i}"), None, now)
                    .is_ok()
            );
        }
        assert!(matches!(
            t.check(IpAddr::from(ATTACKER), "n9", None, now),
            Err(Refusal::SourceRate(_))
        ));
        assert!(t.check(IpAddr::from(HOME), "n9", None, now).is_ok());
        // Ten seconds later one more attempt is allowed.
        let later = now + Duration::from_secs(10);
        assert!(t.check(IpAddr::from(ATTACKER), "n9", None, later).is_ok());
    }

    #[test]
    fn guessing_from_many_sources_holds_untrusted_browsers_not_known_devices() {
        let t = throttle(|c| c.account_failures = 20);
        let now = Instant::now();
        for i in 0..20u8 {
            fail(&t, [203, 0, 113, i], "anna", None, now);
        }
        assert!(matches!(
            t.check(IpAddr::from(HOME), "anna", None, now),
            Err(Refusal::Backoff(_))
        ));
        // Anna's own browser, with its device cookie, gets in.
        assert!(t.check(IpAddr::from(HOME), "anna", Some(42), now).is_ok());
        // And a device has its own back-off.
        for _ in 0..5 {
            fail(&t, HOME, "anna", Some(7), now);
        }
        assert!(matches!(
            t.check(IpAddr::from(HOME), "anna", Some(7), now),
            Err(Refusal::Backoff(_))
        ));
        assert!(t.check(IpAddr::from(HOME), "anna", Some(42), now).is_ok());
    }

    #[test]
    fn a_full_table_refuses_instead_of_letting_guesses_through() {
        let t = throttle(|c| c.max_tracked = 50);
        let now = Instant::now();
        for i in 0..50 {
            fail(&t, ATTACKER, &format!("junk{i}"), None, now);
        }
        assert_eq!(t.sizes()[1], 50);
        // A name not yet in the table cannot be tried: a failure would go
        // unrecorded.
        assert_eq!(
            t.check(IpAddr::from(ATTACKER), "anna", None, now)
                .unwrap_err(),
            Refusal::Full
        );
        // Once the window has passed, stale entries make room again.
        let later = now + AuthConfig::default().lockout_window;
        assert!(t.check(IpAddr::from(ATTACKER), "anna", None, later).is_ok());
        assert!(t.sizes()[1] <= 1);
    }

    #[test]
    fn success_starts_afresh_and_rotation_forgets() {
        let t = throttle(|c| c.max_failures = 2);
        let now = Instant::now();
        fail(&t, HOME, "anna", None, now);
        let ticket = t.check(IpAddr::from(HOME), "anna", None, now).unwrap();
        t.succeeded(ticket);
        fail(&t, HOME, "anna", None, now);
        assert!(t.check(IpAddr::from(HOME), "anna", None, now).is_ok());

        let short = Throttle::new(AuthConfig::default(), Duration::ZERO);
        fail(&short, HOME, "anna", None, now);
        assert_eq!(short.sizes(), [1, 1, 1, 0]);
        let _ = short.check(IpAddr::from(HOME), "bram", None, now).unwrap();
        // A new key: yesterday's entries are gone with the old one.
        assert_eq!(short.sizes(), [1, 0, 0, 0]);
    }
}
