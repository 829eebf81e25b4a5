//! Admission limits: a global cap on open sockets, and per-source limits
//! on WebSocket upgrades (rate and open sockets) and on plain HTTP
//! connections (open at once), so that no single source can hold every
//! slot the accept loop has.
//!
//! Source addresses are never stored. Each is reduced to its network (an
//! IPv4 address, or the /64 of an IPv6 one) and hashed with SipHash under a
//! random key that lives only in memory and is replaced every
//! `source_key_rotation`; the limiters only ever see that hash. When the key
//! rotates, the old limiter state is dropped with it, so yesterday's hash of
//! an address cannot be linked to today's.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;

/// How often idle entries are purged from the keyed limiter.
const RETAIN_EVERY: Duration = Duration::from_secs(60);

/// Caps the number of open WebSockets. The last `reserved` places are
/// for staff: help-seekers, however many, never take them.
#[derive(Debug)]
pub(crate) struct ConnectionCap {
    open: AtomicUsize,
    max: usize,
    reserved: usize,
}

/// Holds one slot of the cap until dropped.
#[derive(Debug)]
pub(crate) struct CapGuard(Arc<ConnectionCap>);

impl Drop for CapGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionCap {
    pub(crate) fn new(max: u32, reserved_for_staff: u32) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max: max as usize,
            reserved: reserved_for_staff as usize,
        })
    }

    /// Takes a slot, or `None` when all are taken (for help-seekers: all
    /// but the staff's).
    pub(crate) fn try_acquire(self: &Arc<Self>, staff: bool) -> Option<CapGuard> {
        let limit = if staff {
            self.max
        } else {
            self.max.saturating_sub(self.reserved)
        };
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| CapGuard(self.clone()))
    }
}

/// Why a source was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceRefusal {
    /// Too many upgrades per minute.
    TooFast,
    /// Too many sockets open at once.
    TooMany,
}

/// Limiter state under one hashing key.
struct Generation {
    hasher: std::hash::RandomState,
    started: Instant,
    upgrades: DefaultKeyedRateLimiter<u64>,
    open: DashMap<u64, u32>,
    /// Plain HTTP connections open per source.
    http: DashMap<u64, u32>,
    /// Help-seekers waiting in a queue per source.
    waiting: DashMap<u64, u32>,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("keys", &self.upgrades.len())
            .field("open", &self.open.len())
            .field("http", &self.http.len())
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

/// Counts one open socket for its source until dropped.
#[derive(Debug)]
pub(crate) struct SourceGuard {
    generation: Arc<Generation>,
    key: u64,
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        release(&self.generation.open, self.key);
    }
}

impl SourceGuard {
    /// The source this socket came from, as a keyed hash, for as long as
    /// its session needs it (in memory only).
    pub(crate) fn tag(&self) -> SourceTag {
        SourceTag {
            generation: self.generation.clone(),
            key: self.key,
        }
    }
}

/// A source, as the rotating keyed hash of its network: what a session
/// remembers of where its help-seeker came from, to count them among that
/// source's waiting help-seekers and to block it for a while. Never an
/// address; never written anywhere.
#[derive(Clone)]
pub(crate) struct SourceTag {
    generation: Arc<Generation>,
    key: u64,
}

impl std::fmt::Debug for SourceTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceTag(<hashed>)")
    }
}

impl SourceTag {
    /// Counts one more waiting help-seeker for this source, unless it
    /// already has `max` waiting.
    pub(crate) fn wait(&self, max: u32) -> Option<WaitingGuard> {
        take(&self.generation.waiting, self.key, max).then(|| WaitingGuard(self.clone()))
    }

    /// Whether `ip` is this source: hashed under the same key.
    pub(crate) fn matches(&self, ip: IpAddr) -> bool {
        self.generation.hasher.hash_one(network(ip)) == self.key
    }

    /// The same source under the same key.
    pub(crate) fn same(&self, other: &SourceTag) -> bool {
        Arc::ptr_eq(&self.generation, &other.generation) && self.key == other.key
    }
}

/// Counts one waiting help-seeker for its source until dropped.
#[derive(Debug)]
pub(crate) struct WaitingGuard(SourceTag);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        release(&self.0.generation.waiting, self.0.key);
    }
}

/// Counts one plain HTTP connection for its source until dropped.
#[derive(Debug)]
pub(crate) struct HttpGuard {
    generation: Arc<Generation>,
    key: u64,
}

impl Drop for HttpGuard {
    fn drop(&mut self) {
        release(&self.generation.http, self.key);
    }
}

/// Takes one from a source's count, dropping the entry at zero so the map
/// only holds sources with something open.
fn release(counts: &DashMap<u64, u32>, key: u64) {
    counts.remove_if_mut(&key, |_, n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
}

/// Adds one to a source's count unless it is at `max`.
fn take(counts: &DashMap<u64, u32>, key: u64, max: u32) -> bool {
    let mut open = counts.entry(key).or_insert(0);
    if *open >= max {
        return false;
    }
    *open += 1;
    true
}

/// Per-source limits with a rotating hashing key.
#[derive(Debug)]
pub(crate) struct SourceLimiter {
    current: Mutex<Arc<Generation>>,
    last_retain: Mutex<Instant>,
    quota: Quota,
    max_open: u32,
    max_http: u32,
    rotation: Duration,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The part of an address that identifies a source: the IPv4 address, or
/// the /64 network of an IPv6 address (one household or device usually).
pub(crate) fn network(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64) | (1 << 127),
        },
    }
}

/// The address a request comes from: the peer, or, when the peer is a
/// trusted proxy, the right-most address in `X-Forwarded-For` that is not
/// one. Entries may carry a port (`192.0.2.1:5555`, `[2001:db8::1]:443`).
/// Walking from the right stops at an entry that cannot be read: what
/// stands left of it was written by the client and proves nothing, so the
/// last hop read (a trusted proxy) stands for the client then.
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let mut ip = peer.ip();
    if !trusted.contains(&ip) {
        return ip;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(addr) = parse_hop(hop) else {
            break;
        };
        ip = addr;
        if !trusted.contains(&addr) {
            break;
        }
    }
    ip
}

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    // `[2001:db8::1]` without a port.
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

impl SourceLimiter {
    pub(crate) fn new(cfg: &LimitsConfig) -> Self {
        let quota = Quota::per_minute(nonzero(cfg.source_upgrades_per_minute))
            .allow_burst(nonzero(cfg.source_upgrade_burst));
        Self {
            current: Mutex::new(Arc::new(Self::generation(quota))),
            last_retain: Mutex::new(Instant::now()),
            quota,
            max_open: cfg.source_max_connections,
            max_http: cfg.source_max_http_connections,
            rotation: cfg.source_key_rotation,
        }
    }

    fn generation(quota: Quota) -> Generation {
        Generation {
            hasher: std::hash::RandomState::new(),
            started: Instant::now(),
            upgrades: RateLimiter::keyed(quota),
            open: DashMap::new(),
            http: DashMap::new(),
            waiting: DashMap::new(),
        }
    }

    /// The generation in use, rotating the key when it is due.
    fn current(&self) -> Arc<Generation> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.started.elapsed() >= self.rotation {
            *current = Arc::new(Self::generation(self.quota));
        }
        current.clone()
    }

    /// Admits one upgrade from `ip`, or says why not.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<SourceGuard, SourceRefusal> {
        let generation = self.current();
        self.maybe_retain(&generation);
        let key = generation.hasher.hash_one(network(ip));
        if generation.upgrades.check_key(&key).is_err() {
            return Err(SourceRefusal::TooFast);
        }
        if !take(&generation.open, key, self.max_open) {
            return Err(SourceRefusal::TooMany);
        }
        Ok(SourceGuard { generation, key })
    }

    /// Admits one plain HTTP connection from `ip`, or `None` when the
    /// source already has `source_max_http_connections` open.
    pub(crate) fn admit_http(&self, ip: IpAddr) -> Option<HttpGuard> {
        let generation = self.current();
        let key = generation.hasher.hash_one(network(ip));
        take(&generation.http, key, self.max_http).then(|| HttpGuard { generation, key })
    }

    fn maybe_retain(&self, generation: &Generation) {
        let mut last = self.last_retain.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= RETAIN_EVERY {
            *last = Instant::now();
            generation.upgrades.retain_recent();
            generation.upgrades.shrink_to_fit();
        }
    }

    /// How many sources the limiter holds state for (for tests).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize, usize) {
        let g = self.current();
        (g.upgrades.len(), g.open.len(), g.http.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_minute: u32, burst: u32, max_open: u32) -> LimitsConfig {
        LimitsConfig {
            source_upgrades_per_minute: per_minute,
            source_upgrade_burst: burst,
            source_max_connections: max_open,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn cap_counts_and_releases_and_keeps_staff_room() {
        let cap = ConnectionCap::new(3, 1);
        let a = cap.try_acquire(false).unwrap();
        let _b = cap.try_acquire(false).unwrap();
        // The last place is the staff's.
        assert!(cap.try_acquire(false).is_none());
        let staff = cap.try_acquire(true).unwrap();
        assert!(cap.try_acquire(true).is_none());
        // A staff socket counts too: with it open, help-seekers have
        // only what is left below the reserve.
        drop(a);
        assert!(cap.try_acquire(false).is_none());
        drop(staff);
        assert!(cap.try_acquire(false).is_some());
    }

    #[test]
    fn waiting_help_seekers_per_source_are_capped_and_released() {
        let limiter = SourceLimiter::new(&cfg(1000, 1000, 100));
        let ip: IpAddr = "192.0.2.20".parse().unwrap();
        let socket = limiter.admit(ip).unwrap();
        let tag = socket.tag();
        assert!(tag.matches(ip) && !tag.matches("192.0.2.21".parse().unwrap()));
        let waiting: Vec<_> = (0..2).map(|_| tag.wait(2).unwrap()).collect();
        assert!(tag.wait(2).is_none());
        assert!(tag.wait(2).is_none(), "a refusal makes no room");
        drop(waiting);
        assert!(tag.wait(2).is_some());
    }

    #[test]
    fn burst_then_refuse() {
        let limiter = SourceLimiter::new(&cfg(1, 3, 100));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let guards: Vec<_> = (0..3).map(|_| limiter.admit(ip).unwrap()).collect();
        assert_eq!(limiter.admit(ip).unwrap_err(), SourceRefusal::TooFast);
        // Another source is unaffected.
        assert!(limiter.admit("192.0.2.8".parse().unwrap()).is_ok());
        drop(guards);
    }

    #[test]
    fn open_sockets_per_source_are_capped_and_released() {
        let limiter = SourceLimiter::new(&cfg(1000, 1000, 2));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let a = limiter.admit(ip).unwrap();
        let _b = limiter.admit("2001:db8::2".parse().unwrap()).unwrap();
        // Same /64: the same source.
        assert_eq!(limiter.admit(ip).unwrap_err(), SourceRefusal::TooMany);
        drop(a);
        assert!(limiter.admit(ip).is_ok());
    }

    #[test]
    fn entries_disappear_when_sockets_close() {
        let limiter = SourceLimiter::new(&cfg(1000, 1000, 5));
        let guards: Vec<_> = (1..=50u8)
            .map(|i| limiter.admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        assert_eq!(limiter.tracked().1, 50);
        drop(guards);
        assert_eq!(limiter.tracked().1, 0);
    }

    #[test]
    fn plain_http_connections_per_source_are_capped_and_released() {
        let limiter = SourceLimiter::new(&LimitsConfig {
            source_max_http_connections: 3,
            ..LimitsConfig::default()
        });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| limiter.admit_http(ip).unwrap()).collect();
        // Refused, and a refusal does not make room for the next one.
        assert!(limiter.admit_http(ip).is_none());
        assert!(limiter.admit_http(ip).is_none());
        // Another source, and the same source's WebSockets, are not touched.
        assert!(limiter.admit_http("192.0.2.10".parse().unwrap()).is_some());
        assert!(limiter.admit(ip).is_ok());
        drop(held);
        assert_eq!(limiter.tracked().2, 0);
        assert!(limiter.admit_http(ip).is_some());
    }

    #[test]
    fn rotation_changes_the_hash_of_the_same_address() {
        let mut c = cfg(1000, 1000, 5);
        c.source_key_rotation = Duration::ZERO;
        let limiter = SourceLimiter::new(&c);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let a = limiter.admit(ip).unwrap();
        let b = limiter.admit(ip).unwrap();
        assert_ne!(
            a.key, b.key,
            "a rotated key must hash the same address differently"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        use axum::http::HeaderValue;
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 1234);
        let from = |value: &'static str, trusted: &[IpAddr]| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_static(value));
            client_ip(peer, &headers, trusted)
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            from("203.0.113.9, 198.51.100.2, 10.0.0.1", &[proxy]),
            ip("198.51.100.2")
        );
        assert_eq!(from("203.0.113.9, 198.51.100.2", &[]), proxy);
        let direct = SocketAddr::new(ip("192.0.2.5"), 1);
        assert_eq!(client_ip(direct, &HeaderMap::new(), &[proxy]), direct.ip());
        // Entries with ports are read, not skipped in favour of an earlier,
        // client-written one.
        assert_eq!(
            from("203.0.113.9, 198.51.100.2:5555", &[proxy]),
            ip("198.51.100.2")
        );
        assert_eq!(
            from("203.0.113.9, [2001:db8::7]:443", &[proxy]),
            ip("2001:db8::7")
        );
        assert_eq!(
            from("203.0.113.9, [2001:db8::7]", &[proxy]),
            ip("2001:db8::7")
        );
        // An entry that cannot be read ends the walk at the last hop read.
        assert_eq!(from("203.0.113.9, garbage", &[proxy]), proxy);
        assert_eq!(
            from("203.0.113.9, nonsense, 10.0.0.2", &[proxy, ip("10.0.0.2")]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn mapped_ipv4_is_the_same_source_as_ipv4() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(network(v4), network(mapped));
        assert_ne!(network(v4), network("2001:db8::".parse().unwrap()));
    }
}
