//! What a run needs before it starts: its arguments checked, and how many
//! sockets and counsellor bots it will hold.

use anyhow::bail;

use super::Scenario;
use crate::cli::{RunArgs, Target};

/// How many sockets and bots a run needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    /// Counsellor bots (Haven only).
    pub(super) bots: u32,
    /// Sockets at the peak.
    pub(super) connections: u64,
}

impl Shape {
    pub(super) fn of(scenario: Scenario, args: &RunArgs) -> Self {
        let sessions = u64::from(args.sessions);
        // Churn sessions live a few milliseconds; this is ample room.
        let churning = if scenario == Scenario::Churn {
            u64::from(args.churn_rate) / 2 + 10
        } else {
            0
        };
        if args.target != Target::Haven {
            return Self {
                bots: 0,
                connections: 2 * (sessions + churning),
            };
        }
        let capacity = args.capacity.max(1);
        let bots = match scenario {
            Scenario::Queue => args.counsellors.unwrap_or(10),
            _ => args
                .counsellors
                .unwrap_or_else(|| args.sessions.div_ceil(capacity)),
        };
        // Spare bots for churn sessions, which find the main ones full.
        let spare = if scenario == Scenario::Churn {
            (args.churn_rate / 5).max(4)
        } else {
            0
        };
        Self {
            bots: bots + spare,
            connections: sessions + u64::from(bots + spare) + churning,
        }
    }
}

pub(super) fn validate(scenario: Scenario, args: &RunArgs) -> anyhow::Result<()> {
    if args.sessions == 0 {
        bail!("--sessions must be at least 1");
    }
    if scenario != Scenario::Idle && !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number of messages a second");
    }
    if scenario == Scenario::Queue && args.target != Target::Haven {
        bail!("the queue scenario needs Haven's routing; peers only relay pairs");
    }
    if scenario == Scenario::Churn && args.churn_rate == 0 {
        bail!("--churn-rate must be at least 1 for the churn scenario");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    Ok(())
}
