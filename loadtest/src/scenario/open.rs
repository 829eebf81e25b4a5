//! Opening one session and running it to its end: a help-seeker for
//! Haven, both sides of the pair for a peer.

use std::sync::{Arc, OnceLock};

use tokio::sync::{oneshot, watch};

use crate::cli::Target;
use crate::codec::haven::Seeker;
use crate::codec::{Codec, pair};
use crate::driver::{Phase, Plan, initiator, responder};
use crate::net::{ConnectError, Endpoint, Sources, connect};
use crate::stats::Stats;

/// Opens sessions: a help-seeker for Haven, both sides for a pair target.
#[derive(Clone)]
pub(super) struct Opener {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) sources: Arc<Sources>,
    pub(super) stats: Arc<Stats>,
    pub(super) phase: watch::Receiver<Phase>,
    pub(super) target: Target,
    pub(super) topic: Option<String>,
    /// Where to report a connection failure that ends the run.
    pub(super) fatal: Option<Arc<OnceLock<String>>>,
}

impl Opener {
    fn failed(&self, e: &ConnectError) {
        self.stats.error(e.to_string());
        if let Some(fatal) = &self.fatal {
            let _ = fatal.set(e.to_string());
        }
    }

    /// Connects session `idx` and runs it to its end.
    pub(super) fn open(&self, idx: u64, plan: Plan) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            let stats = this.stats.clone();
            let Some((first, second)) = pair(this.target, idx) else {
                let codec = Seeker::new(this.topic.clone());
                match connect(&this.endpoint, &this.sources, &codec.path()).await {
                    Ok(ws) => initiator(ws, codec, plan, stats, this.phase.clone()).await,
                    Err(e) => this.failed(&e),
                }
                return;
            };
            // The responder first, so nothing is sent to an empty seat.
            let b = match connect(&this.endpoint, &this.sources, &second.path()).await {
                Ok(ws) => ws,
                Err(e) => return this.failed(&e),
            };
            let (leave, left) = oneshot::channel();
            let back = tokio::spawn(responder(
                b,
                second,
                None,
                stats.clone(),
                this.phase.clone(),
                Some(left),
            ));
            match connect(&this.endpoint, &this.sources, &first.path()).await {
                Ok(ws) => initiator(ws, first, plan, stats, this.phase.clone()).await,
                Err(e) => this.failed(&e),
            }
            // The pair leaves together.
            let _ = leave.send(());
            let _ = back.await;
        }
    }
}
