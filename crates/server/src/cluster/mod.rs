//! Several nodes on one Redis as one helpline.
//!
//! One node leads: the one holding the routing lease in Redis
//! ([`haven_cluster::Lease`]). It runs every conversation and every queue,
//! exactly as a single node does. Every other node passes the requests
//! and sockets of the clients that reached it on to the leading node
//! ([`proxy`]), so a help-seeker, a counsellor and a supervisor may each
//! reach any node, behind a load balancer that need not be sticky: there
//! is one queue per topic, one capacity per counsellor, and chat,
//! transfers, whispers and joins work whatever node each party came in by.
//!
//! A node passing a client on never passes its address: the leading node
//! sees a pseudonym instead, a keyed hash of the client's network shaped
//! like an address in a private range, the same whichever node the client
//! came in by (the key derives from `control_key`), so per-source limits
//! and cool-downs still hold a source, not a node. Requests between nodes
//! carry a token derived from `control_key`; the leading node believes a
//! pseudonym only with it.
//!
//! When the leading node stops or dies, another takes the lease within
//! `cluster.lease` and leads.

pub(crate) mod proxy;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use haven_cluster::{Grant, Lease};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{info, warn};

use crate::app::AppState;

/// The header a node's requests to the leading node carry: the token all
/// nodes derive from `control_key`.
pub(crate) const NODE_HEADER: &str = "x-haven-node";
/// The header carrying a client's pseudonym, believed only with
/// [`NODE_HEADER`].
pub(crate) const SOURCE_HEADER: &str = "x-haven-source";

fn prf(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// This node's place among the nodes.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// Where the others reach this node.
    me: String,
    /// What this node holds the lease as: its address and a MAC of it
    /// under a key from `control_key`, so that a lease someone else wrote
    /// into Redis never sends clients (and their logins) elsewhere.
    holder: String,
    /// The key of that MAC.
    holders: [u8; 32],
    /// What a node's requests carry, as hex.
    node_token: String,
    /// The key client pseudonyms are made with.
    pseudonyms: [u8; 32],
    leading: AtomicBool,
    /// Where the leading node is reached, when known (and who to tell
    /// when that changes: the sockets passed on to the one before).
    leader: tokio::sync::watch::Sender<Option<Arc<str>>>,
    lease: Duration,
    redis_url: String,
    /// The epoch this node leads under, while it does.
    epoch: std::sync::atomic::AtomicU64,
    /// What this node hands over as it stops: a nonce and the state, until
    /// the next leading node fetched it.
    outgoing: std::sync::Mutex<Option<(String, Arc<Vec<u8>>)>>,
    fetched: tokio::sync::Notify,
    /// Set once this node is stopping: it no longer takes the lease.
    stopping: AtomicBool,
}

impl Cluster {
    /// The cluster settings of `config`, when it runs as one of several
    /// nodes (`cluster.enabled`, which config checks tie to `redis_url`,
    /// `control_key` and an address).
    /// `bound` is the address actually listened on (its port, when `listen`
    /// asked for any).
    pub(crate) fn new(config: &crate::config::Config, bound: SocketAddr) -> Option<Arc<Self>> {
        if !config.cluster.enabled {
            return None;
        }
        let key = config.control_key.as_deref()?.as_bytes();
        let me = config.cluster.advertised(bound)?;
        let holders = prf(key, b"haven lease holder v1");
        Some(Arc::new(Self {
            // The address, and this process's own random name: two nodes
            // given the same address never both hold the lease.
            holder: holder(&holders, &format!("{me} {}", crate::tokens::new_token())),
            holders,
            me,
            node_token: prf(key, b"haven node token v1")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            pseudonyms: prf(key, b"haven source pseudonym v1"),
            leading: AtomicBool::new(false),
            leader: tokio::sync::watch::Sender::new(None),
            lease: config.cluster.lease,
            redis_url: config.redis_url.clone()?,
            epoch: std::sync::atomic::AtomicU64::new(0),
            outgoing: std::sync::Mutex::new(None),
            fetched: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
        }))
    }

    /// Whether this node leads now.
    pub(crate) fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Where the leading node is reached, when another node leads.
    pub(crate) fn leader(&self) -> Option<Arc<str>> {
        self.leader.borrow().clone()
    }

    /// Told whenever the leading node changes.
    pub(crate) fn leader_changes(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>> {
        self.leader.subscribe()
    }

    fn set_leader(&self, url: Option<&str>) {
        self.leader.send_if_modified(|l| {
            let changed = l.as_deref() != url;
            if changed {
                *l = url.map(Arc::from);
            }
            changed
        });
    }

    /// The address in a lease holder's name, if this cluster's key made it.
    fn holder_address<'a>(&self, name: &'a str) -> Option<&'a str> {
        let (signed, _) = name.rsplit_once(' ')?;
        let (address, _) = signed.split_once(' ')?;
        let want = holder(&self.holders, signed);
        let ok = want.len() == name.len()
            && want
                .bytes()
                .zip(name.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        ok.then_some(address)
    }

    /// This node is stopping: it takes the lease no more (it keeps it
    /// while it hands over, if it leads).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// The token for requests to another node.
    pub(crate) fn node_token(&self) -> &str {
        &self.node_token
    }

    /// Whether `headers` carry this cluster's node token.
    pub(crate) fn sent_by_node(&self, headers: &axum::http::HeaderMap) -> bool {
        headers.get(NODE_HEADER).is_some_and(|v| {
            let (a, b) = (v.as_bytes(), self.node_token.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        })
    }

    /// The pseudonym the leading node sees for a client at `ip`: a keyed
    /// hash of its network (what per-source limits count), as an address
    /// in the private range `fd00::/8`, never the address itself.
    pub(crate) fn pseudonym(&self, ip: IpAddr) -> IpAddr {
        let network = crate::limits::network(ip).to_be_bytes();
        let hash = prf(&self.pseudonyms, &network);
        let mut bytes = [0u8; 16];
        bytes[0] = 0xfd;
        bytes[1..8].copy_from_slice(&hash[..7]);
        IpAddr::V6(Ipv6Addr::from(bytes))
    }
}

/// A lease holder's name: the address and the process's random name, and
/// their MAC.
fn holder(key: &[u8; 32], signed: &str) -> String {
    let mac: String = prf(key, signed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{signed} {mac}")
}

/// Holds or follows the lease until shutdown: renews it while leading,
/// tries to take it otherwise and learns who leads. A node that loses the
/// lease stops serving what it held (each party is told) and passes its
/// clients on from then on; a node that stops lets the lease go so
/// another leads at once.
pub(crate) async fn run(state: AppState, cluster: Arc<Cluster>) {
    let lease = Lease::new("haven:", &cluster.holder, cluster.lease);
    let client = match redis::Client::open(cluster.redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cluster: bad redis_url");
            return;
        }
    };
    let mut con = None;
    let mut epoch = 0;
    let mut renewed = Instant::now();
    let mut free_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(cluster.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if con.is_none() {
            con = redis::aio::ConnectionManager::new(client.clone())
                .await
                .ok();
        }
        // While Redis cannot be reached, nobody can take the lease: the
        // leading node goes on leading (its chats go on) and the others
        // keep passing clients to it. Only a lease another node took ends
        // this node's lead.
        let Some(c) = con.as_mut() else {
            continue;
        };
        if cluster.stopping.load(Ordering::Acquire) && !cluster.leading() {
            // A stopping node leads no more.
            continue;
        }
        if cluster.leading() {
            match lease.renew(c, epoch).await {
                Ok(true) => {
                    if renewed.elapsed() > cluster.lease {
                        info!("cluster: Redis is back; this node still leads");
                    }
                    renewed = Instant::now();
                }
                Ok(false) => step_down(&state, &cluster, "another node took the lease").await,
                Err(e) => warn!(error = %e, "cluster: renewing the lease failed"),
            }
            continue;
        }
        // Take the lease only once it has been seen free for two of the
        // leading node's renewals: after Redis was away, the node that led
        // before gets it back instead of whoever asks first.
        match lease.holder(c).await {
            Ok(Some(holder)) => {
                free_since = None;
                let address = cluster.holder_address(&holder);
                if address.is_none() {
                    warn!("cluster: the lease names a holder not signed with control_key");
                }
                cluster.set_leader(address);
                continue;
            }
            Ok(None) => {
                let since = *free_since.get_or_insert_with(Instant::now);
                if since.elapsed() < cluster.lease / 3 * 2 {
                    continue;
                }
            }
            Err(e) => {
                warn!(error = %e, "cluster: reading the lease failed");
                free_since = None;
                continue;
            }
        }
        match lease.acquire(c).await {
            Ok(Grant::Leader(e)) => {
                epoch = e;
                renewed = Instant::now();
                cluster.epoch.store(e, Ordering::Release);
                if let Some((address, nonce)) = handed_over_by(&cluster, c).await {
                    // Fetching and restoring may outlast the lease: keep it
                    // meanwhile.
                    let taking = take_over(&state, &cluster, address, nonce);
                    tokio::pin!(taking);
                    let mut keep = tokio::time::interval(cluster.lease / 3);
                    keep.tick().await;
                    loop {
                        tokio::select! {
                            () = &mut taking => break,
                            _ = keep.tick() => {
                                if lease.renew(c, e).await.unwrap_or(false) {
                                    renewed = Instant::now();
                                }
                            }
                        }
                    }
                }
                cluster.set_leader(Some(&cluster.me));
                cluster.leading.store(true, Ordering::Release);
                free_since = None;
                info!(epoch, "cluster: this node leads");
            }
            Ok(Grant::Follower(_)) => free_since = None,
            Err(e) => warn!(error = %e, "cluster: reading the lease failed"),
        }
    }
    if cluster.leading()
        && let Some(c) = con.as_mut()
    {
        let _ = lease.release(c, epoch).await;
        info!("cluster: lease released");
    }
}

/// The Redis key naming the node that handed its state over, and the
/// nonce to fetch it with.
const HANDOVER_KEY: &str = "haven:handover";

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    broker: crate::broker::Handover,
    logins: Vec<crate::auth::LoginHandover>,
}

/// The leading node stops: closes its sockets (1001: come back, through
/// any node), waits for them to finish, hands what it holds to whichever
/// node leads next, lets the lease go, and waits (within `limit`) until
/// that node fetched it. Returns whether it was fetched.
pub(crate) async fn hand_over(state: &AppState, cluster: &Cluster, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    cluster.stopping.store(true, Ordering::Release);
    state
        .connections
        .close_open(haven_protocol::CloseCode::GoingAway);
    while state.connections.len() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(broker) = state.broker.hand_over().await else {
        return false;
    };
    let sessions = broker.len();
    let payload = State {
        broker,
        logins: state.logins.hand_over(),
    };
    let Ok(bytes) = serde_json::to_vec(&payload) else {
        return false;
    };
    let nonce = crate::tokens::new_token();
    if let Ok(mut out) = cluster.outgoing.lock() {
        *out = Some((nonce.clone(), Arc::new(bytes)));
    }
    let Ok(client) = redis::Client::open(cluster.redis_url.as_str()) else {
        return false;
    };
    let Ok(mut con) = client.get_multiplexed_async_connection().await else {
        warn!("cluster: Redis unreachable; nothing could be handed over");
        return false;
    };
    let named: redis::RedisResult<()> = redis::cmd("SET")
        .arg(HANDOVER_KEY)
        .arg(format!("{} {nonce}", cluster.holder))
        .arg("PX")
        .arg(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))
        .query_async(&mut con)
        .await;
    if named.is_err() {
        return false;
    }
    let lease = Lease::new("haven:", &cluster.holder, cluster.lease);
    let _ = lease
        .release(&mut con, cluster.epoch.load(Ordering::Acquire))
        .await;
    cluster.leading.store(false, Ordering::Release);
    info!(sessions, "cluster: handing over; lease released");
    let fetched = tokio::time::timeout_at(deadline, cluster.fetched.notified())
        .await
        .is_ok();
    if fetched {
        info!(sessions, "cluster: handed over");
    } else {
        warn!(sessions, "cluster: nobody took over in time");
    }
    fetched
}

/// `GET /internal/v1/handover?nonce=…`: the next leading node fetches what
/// this one handed over (once, with the node token and the nonce).
pub(crate) async fn handover_endpoint(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(cluster) = state.cluster.clone() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    if !cluster.sent_by_node(&headers) {
        return axum::http::StatusCode::FORBIDDEN.into_response();
    }
    let taken = cluster.outgoing.lock().ok().and_then(|mut out| {
        let matches = out
            .as_ref()
            .is_some_and(|(nonce, _)| query.get("nonce") == Some(nonce));
        if matches { out.take() } else { None }
    });
    match taken {
        Some((_, bytes)) => {
            cluster.fetched.notify_one();
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                bytes.to_vec(),
            )
                .into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The node that handed its state over for the next leading node, and
/// the nonce to fetch it with, if one did (signed, and not this node).
async fn handed_over_by(
    cluster: &Cluster,
    con: &mut redis::aio::ConnectionManager,
) -> Option<(String, String)> {
    let named: Option<String> = redis::cmd("GETDEL")
        .arg(HANDOVER_KEY)
        .query_async(con)
        .await
        .ok()
        .flatten();
    let (holder, nonce) = named.as_deref()?.rsplit_once(' ')?;
    if holder == cluster.holder {
        return None;
    }
    let Some(address) = cluster.holder_address(holder) else {
        warn!("cluster: a handover named a node not signed with control_key");
        return None;
    };
    Some((address.to_owned(), nonce.to_owned()))
}

/// Just became the leading node: takes over what the node at `address`
/// handed over, before serving anything.
async fn take_over(state: &AppState, cluster: &Cluster, address: String, nonce: String) {
    let address = address.as_str();
    let path = format!("/internal/v1/handover?nonce={nonce}");
    let Some(bytes) = proxy::fetch(cluster, address, &path).await else {
        warn!("cluster: the handed-over state could not be fetched");
        return;
    };
    let Ok(taken) = serde_json::from_slice::<State>(&bytes) else {
        warn!("cluster: the handed-over state could not be read");
        return;
    };
    let sessions = taken.broker.len();
    state.logins.take_over(taken.logins);
    state.broker.take_over(taken.broker).await;
    info!(sessions, "cluster: took over");
}

/// This node no longer leads: what it held ends (each party told, as on
/// a restart) and its sockets close, so clients come back through the
/// node that leads now.
async fn step_down(state: &AppState, cluster: &Cluster, why: &str) {
    warn!(reason = why, "cluster: this node no longer leads");
    cluster.leading.store(false, Ordering::Release);
    cluster.set_leader(None);
    state.broker.end_all().await;
    state
        .connections
        .close_open(haven_protocol::CloseCode::Restarted);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(key: &str) -> Arc<Cluster> {
        let mut config = crate::config::Config::default();
        config.cluster.enabled = true;
        config.redis_url = Some("redis://127.0.0.1/".into());
        config.control_key = Some(key.into());
        Cluster::new(&config, "127.0.0.1:8080".parse().unwrap()).unwrap()
    }

    #[test]
    fn a_pseudonym_is_private_stable_across_nodes_and_never_the_address() {
        let key = "k".repeat(40);
        let (one, two) = (cluster(&key), cluster(&key));
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let p = one.pseudonym(ip);
        // The same on every node with the same key, another with another.
        assert_eq!(p, two.pseudonym(ip));
        assert_ne!(p, cluster(&"x".repeat(40)).pseudonym(ip));
        let IpAddr::V6(v6) = p else { panic!("{p}") };
        assert_eq!(v6.octets()[0], 0xfd);
        assert!(!v6.octets().windows(4).any(|w| w == [203, 0, 113, 7]));
        // One network, one pseudonym: a /64 counts as one source.
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(one.pseudonym(a), one.pseudonym(b));
        assert_ne!(
            one.pseudonym(a),
            one.pseudonym("2001:db8:1:3::10".parse().unwrap())
        );
        // Per-source limits see one source per pseudonym.
        assert_eq!(
            crate::limits::network(one.pseudonym(a)),
            crate::limits::network(one.pseudonym(b))
        );
    }

    #[test]
    fn only_the_clusters_token_marks_a_request_from_a_node() {
        let key = "k".repeat(40);
        let c = cluster(&key);
        let mut headers = axum::http::HeaderMap::new();
        assert!(!c.sent_by_node(&headers));
        headers.insert(NODE_HEADER, "forged".parse().unwrap());
        assert!(!c.sent_by_node(&headers));
        let other = cluster(&"x".repeat(40));
        headers.insert(NODE_HEADER, other.node_token().parse().unwrap());
        assert!(!c.sent_by_node(&headers));
        headers.insert(NODE_HEADER, c.node_token().parse().unwrap());
        assert!(c.sent_by_node(&headers));
        assert!(!c.node_token().contains(&key));
    }

    #[test]
    fn only_a_lease_holder_signed_with_the_key_is_followed() {
        let key = "k".repeat(40);
        let (c, peer) = (cluster(&key), cluster(&key));
        assert_eq!(
            c.holder_address(&peer.holder),
            Some("http://127.0.0.1:8080")
        );
        // Someone who can write to Redis names another address.
        let forged = peer.holder.replace("127.0.0.1:8080", "203.0.113.9:80");
        assert_eq!(c.holder_address(&forged), None);
        assert_eq!(c.holder_address("http://203.0.113.9:80"), None);
        assert_eq!(c.holder_address(&cluster(&"x".repeat(40)).holder), None);
        // Two nodes given the same address hold the lease under names of
        // their own.
        assert_ne!(c.holder, peer.holder);
        assert_eq!(c.holder_address(&c.holder), Some("http://127.0.0.1:8080"));
    }
}
