//! Several nodes on one Redis as one helpline.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Running several nodes as one helpline.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Whether the nodes on one Redis act as one helpline: one node (the
    /// one holding the routing lease) runs every conversation and queue,
    /// and the others pass their clients' requests and sockets on to it,
    /// so a help-seeker, a counsellor and a supervisor may each reach any
    /// node. Needs `redis_url` and `control_key`.
    pub enabled: bool,
    /// Where the other nodes reach this one (`http://HOST:PORT`, on the
    /// internal network). Unset: `http://` and `listen`, which must then
    /// name an address rather than `0.0.0.0`.
    pub advertise: Option<String>,
    /// How long the leading node's lease lasts unless renewed (it renews
    /// three times as often). After a leading node dies, another leads
    /// once the lease ran out and then stayed free for two renewals (so
    /// that after Redis was away, the node that led gets it back): within
    /// about twice this.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            advertise: None,
            lease: Duration::from_secs(2),
        }
    }
}

impl ClusterConfig {
    /// This node's address for the others: `advertise`, or `listen`.
    pub fn advertised(&self, listen: SocketAddr) -> Option<String> {
        match &self.advertise {
            Some(url) => Some(url.trim_end_matches('/').to_owned()),
            None if listen.ip().is_unspecified() => None,
            None => Some(format!("http://{listen}")),
        }
    }

    /// What is wrong with these settings, if anything: (key, problem).
    pub(super) fn check(&self, listen: SocketAddr) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.advertise {
            let rest = url
                .strip_prefix("http://")
                .unwrap_or_default()
                .trim_end_matches('/');
            if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
                return Err((
                    "cluster.advertise",
                    format!("{url:?}: must be http://HOST:PORT"),
                ));
            }
        }
        if self.enabled && self.advertised(listen).is_none() {
            return Err((
                "cluster.advertise",
                "is required when listen is an unspecified address (0.0.0.0 or ::): \
                 give the address the other nodes reach this one at"
                    .into(),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.lease) {
            return Err(("cluster.lease", "must be between 1s and 60s".into()));
        }
        Ok(())
    }
}
