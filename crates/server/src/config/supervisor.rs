//! The supervisor view's settings: the service-level target, alert
//! thresholds, the day boundary for today's figures, and how events leave
//! the node.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The supervisor view's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// A help-seeker answered within this wait counts towards the service
    /// level (the share answered in time).
    #[serde(with = "humantime_serde")]
    pub service_level_target: Duration,
    /// Alert when an urgent help-seeker has waited this long.
    #[serde(with = "humantime_serde")]
    pub alert_urgent_wait: Duration,
    /// Alert when a topic's longest wait reaches this.
    #[serde(with = "humantime_serde")]
    pub alert_wait: Duration,
    /// Alert when this many wait in one topic (0: never).
    pub alert_queue_length: u32,
    /// Alert (suspected flood) when this many help-seekers arrive in one
    /// topic within a minute, counting those refused for their source's
    /// waiting limit (0: never).
    pub alert_arrivals_per_minute: u32,
    /// Where "today" begins and ends, for today's figures.
    pub time_zone: String,
    /// Events waiting to be published; beyond it new ones are dropped and
    /// counted, so publishing never holds up chat.
    pub event_buffer: u32,
    /// How often each node refreshes its snapshot (in Redis, with a TTL of
    /// three times this).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// How often the queue history for the dashboard's chart is sampled
    /// (720 samples are kept: 12 hours at one a minute).
    #[serde(with = "humantime_serde")]
    pub history_interval: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            service_level_target: Duration::from_secs(60),
            alert_urgent_wait: Duration::from_secs(120),
            alert_wait: Duration::from_secs(600),
            alert_queue_length: 10,
            alert_arrivals_per_minute: 30,
            time_zone: "Europe/Brussels".to_owned(),
            event_buffer: 1024,
            snapshot_interval: Duration::from_secs(2),
            history_interval: Duration::from_secs(60),
        }
    }
}

impl SupervisorConfig {
    /// Checks the settings, as `(key, problem)`.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        let fail =
            |key: &str, problem: &str| Err((format!("supervisor.{key}"), problem.to_owned()));
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return fail("time_zone", "not a known time zone");
        }
        if self.event_buffer < 16 {
            return fail("event_buffer", "must be at least 16");
        }
        if self.snapshot_interval < Duration::from_millis(100)
            || self.snapshot_interval > Duration::from_secs(60)
        {
            return fail("snapshot_interval", "must be between 100ms and 60s");
        }
        if self.history_interval < Duration::from_millis(100)
            || self.history_interval > Duration::from_secs(3600)
        {
            return fail("history_interval", "must be between 100ms and 1h");
        }
        for (key, d) in [
            ("service_level_target", self.service_level_target),
            ("alert_urgent_wait", self.alert_urgent_wait),
            ("alert_wait", self.alert_wait),
        ] {
            if d.is_zero() || d > Duration::from_secs(24 * 3600) {
                return fail(key, "must be between 1s and 24h");
            }
        }
        Ok(())
    }
}
