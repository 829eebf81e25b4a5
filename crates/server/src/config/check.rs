//! Checking a loaded configuration, and saying precisely what is wrong:
//! which key, and which file or environment variable its value came from.

use std::time::Duration;

use figment::Figment;

use super::{Config, ConfigError};

/// The longest duration any setting may have.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Config {
    pub(super) fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            key: key.to_owned(),
            origin: origin(figment.find_metadata(key), key, false),
            problem,
        };
        for (key, origins) in [
            ("allowed_origins", &self.allowed_origins),
            ("staff_origins", &self.staff_origins),
        ] {
            for origin in origins {
                if let Err(problem) = check_origin(origin) {
                    return Err(invalid(key, format!("{origin:?}: {problem}")));
                }
            }
        }
        if self.quick_exit_urls.is_empty() {
            return Err(invalid(
                "quick_exit_urls",
                "must list at least one place".into(),
            ));
        }
        for url in &self.quick_exit_urls {
            let ok =
                (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
                    && !url.starts_with("//")
                    && !url.contains(['"', '<', '>', ' ', '\\']);
            if !ok {
                return Err(invalid(
                    "quick_exit_urls",
                    format!("{url:?}: must be an http(s) address or a path on Haven"),
                ));
            }
        }
        if let Some(url) = &self.redis_url
            && !["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(invalid(
                "redis_url",
                "must start with redis://, rediss:// or unix://".into(),
            ));
        }
        match (&self.redis_url, &self.control_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "control_key",
                    "is required with redis_url: a secret of at least 32 characters, the same \
                     on every node (HAVEN_CONTROL_KEY), that signs pause orders between nodes"
                        .into(),
                ));
            }
            (_, Some(key)) if key.chars().count() < 32 => {
                return Err(invalid(
                    "control_key",
                    "must be at least 32 characters".into(),
                ));
            }
            _ => {}
        }
        let s = &self.session;
        let l = &self.limits;
        let checks: [(&'static str, bool, &str); 20] = [
            ("session.max_chars", s.max_chars >= 1, "must be at least 1"),
            (
                "session.max_chars",
                u64::from(s.max_chars) * 4 + 256 <= u64::from(l.max_frame_bytes),
                "must fit in limits.max_frame_bytes (up to 4 bytes per character plus 256)",
            ),
            (
                "session.replay_max_messages",
                s.replay_max_messages >= 1,
                "must be at least 1",
            ),
            (
                "session.replay_max_messages",
                s.replay_max_messages < l.outbound_queue,
                "must be below limits.outbound_queue so a full replay fits",
            ),
            (
                "session.replay_max_bytes",
                s.replay_max_bytes >= 1024,
                "must be at least 1024",
            ),
            (
                "session.default_capacity",
                s.default_capacity >= 1,
                "must be at least 1",
            ),
            (
                "session.hello_timeout",
                !s.hello_timeout.is_zero(),
                "must not be zero",
            ),
            (
                "session.ping_interval",
                !s.ping_interval.is_zero(),
                "must not be zero",
            ),
            (
                "session.idle_timeout",
                s.idle_timeout > s.ping_interval,
                "must be longer than session.ping_interval",
            ),
            (
                "session.ack_delay",
                s.ack_delay <= Duration::from_secs(1),
                "must be at most 1s (acks tell the sender its message is safe)",
            ),
            (
                "limits.max_connections",
                l.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "limits.staff_reserved_connections",
                l.staff_reserved_connections < l.max_connections,
                "must be below limits.max_connections",
            ),
            (
                "limits.source_max_waiting",
                l.source_max_waiting >= 1,
                "must be at least 1",
            ),
            (
                "limits.source_max_http_connections",
                l.max_http_connections >= 16
                    && l.source_max_http_connections < l.max_http_connections,
                "max_http_connections must be at least 16, and one source's share below it",
            ),
            (
                "limits.max_frame_bytes",
                l.max_frame_bytes >= 1024,
                "must be at least 1024",
            ),
            (
                "limits.read_buffer_bytes",
                l.read_buffer_bytes >= 512,
                "must be at least 512",
            ),
            (
                "limits.outbound_queue",
                l.outbound_queue >= 16,
                "must be at least 16",
            ),
            (
                "limits.seeker_frames_per_minute",
                [
                    l.seeker_messages_per_minute,
                    l.seeker_message_burst,
                    l.seeker_frames_per_minute,
                    l.seeker_frame_burst,
                ]
                .iter()
                .all(|n| *n >= 1),
                "help-seeker rates and bursts must be at least 1",
            ),
            (
                "limits.counsellor_frames_per_minute",
                [
                    l.counsellor_messages_per_minute,
                    l.counsellor_message_burst,
                    l.counsellor_frames_per_minute,
                    l.counsellor_frame_burst,
                ]
                .iter()
                .all(|n| *n >= 1),
                "counsellor rates and bursts must be at least 1",
            ),
            (
                "limits.source_upgrades_per_minute",
                l.source_upgrades_per_minute >= 1
                    && l.source_upgrade_burst >= 1
                    && l.source_max_connections >= 1
                    && l.source_max_http_connections >= 1,
                "rates, bursts and maxima must be at least 1",
            ),
        ];
        for (key, ok, problem) in checks {
            if !ok {
                return Err(invalid(key, problem.to_owned()));
            }
        }
        // Deadlines are `Instant + Duration`, which must never overflow.
        let durations: [(&'static str, Duration); 14] = [
            ("drain_delay", self.drain_delay),
            ("shutdown_timeout", self.shutdown_timeout),
            ("session.seeker_grace", s.seeker_grace),
            ("session.counsellor_grace", s.counsellor_grace),
            ("session.hello_timeout", s.hello_timeout),
            ("session.ping_interval", s.ping_interval),
            ("session.idle_timeout", s.idle_timeout),
            ("session.ack_delay", s.ack_delay),
            ("limits.source_key_rotation", l.source_key_rotation),
            ("limits.header_timeout", l.header_timeout),
            ("limits.body_timeout", l.body_timeout),
            ("auth.token_ttl", self.auth.token_ttl),
            ("auth.idle_timeout", self.auth.idle_timeout),
            ("auth.lockout_window", self.auth.lockout_window),
        ];
        for (key, value) in durations {
            if value > MAX_DURATION {
                return Err(invalid(key, "must be at most 30 days".into()));
            }
        }
        if let Err((key, problem)) = self.plan() {
            return Err(invalid(&key, problem));
        }
        if self.console.ring_repeat > MAX_DURATION {
            return Err(invalid(
                "console.ring_repeat",
                "must be at most 30 days".into(),
            ));
        }
        let modes = std::iter::once(("transcripts".to_owned(), self.transcripts)).chain(
            self.topics.iter().filter_map(|(name, t)| {
                t.transcripts
                    .map(|m| (format!("topics.{name}.transcripts"), m))
            }),
        );
        if let Err((key, problem)) = super::transcripts::check(&self.transcript_recipients, modes) {
            return Err(invalid(&key, problem));
        }
        if let Some((name, _)) = self
            .topics
            .iter()
            .find(|(_, t)| t.retention_days == Some(0))
        {
            return Err(invalid(
                &format!("topics.{name}.retention_days"),
                "must be at least 1 (leave it unset to keep transcripts)".into(),
            ));
        }
        if let Err((key, problem)) = self.supervisor.check() {
            return Err(invalid(&key, problem));
        }
        if let Err((key, problem)) = self.cluster.check(self.listen) {
            return Err(invalid(key, problem));
        }
        if self.cluster.enabled && self.redis_url.is_none() {
            return Err(invalid(
                "cluster.enabled",
                "needs redis_url (and control_key): the nodes meet in Redis".into(),
            ));
        }
        if let Some(node) = &self.node_id
            && (node.is_empty()
                || node.len() > 64
                || !node
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(invalid(
                "node_id",
                "1 to 64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if let Err((key, problem)) = self.console.check(s.max_chars, &self.languages, |t| {
            self.topics.contains_key(t)
        }) {
            return Err(invalid(&key, problem));
        }
        let abuse = &self.abuse;
        if abuse.block_hours.is_empty() || abuse.block_hours.iter().any(|h| !(1..=720).contains(h))
        {
            return Err(invalid(
                "abuse.block_hours",
                "must list at least one length, each 1 to 720 hours".into(),
            ));
        }
        if abuse.block_reasons.is_empty()
            || abuse.block_reasons.iter().any(|r| {
                r.is_empty()
                    || r.len() > 32
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
        {
            return Err(invalid(
                "abuse.block_reasons",
                "must list at least one reason, each a code of letters, digits, '_' or '-'".into(),
            ));
        }
        let a = &self.auth;
        for (key, value) in [
            ("auth.max_concurrent_hashes", a.max_concurrent_hashes),
            ("auth.max_queued_logins", a.max_queued_logins),
            ("auth.source_queued_logins", a.source_queued_logins),
            ("auth.source_logins_per_minute", a.source_logins_per_minute),
            ("auth.source_login_burst", a.source_login_burst),
            ("auth.max_failures", a.max_failures),
            ("auth.account_failures", a.account_failures),
            ("auth.max_tracked", a.max_tracked),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if a.device_ttl > Duration::from_secs(400 * 24 * 3600) {
            return Err(invalid(
                "auth.device_ttl",
                "must be at most 400 days".into(),
            ));
        }
        Ok(())
    }
}

/// Says which key failed and where its value came from, naming the exact
/// environment variable or file, for each error figment collected.
pub(super) fn describe(error: &figment::Error) -> String {
    let lines: Vec<String> = error
        .clone()
        .into_iter()
        .map(|e| {
            let unknown = matches!(e.kind, figment::error::Kind::UnknownField(..));
            let problem = if unknown {
                "unknown key".to_owned()
            } else {
                e.kind.to_string()
            };
            let origin = origin(e.metadata.as_ref(), &e.path.join("."), unknown);
            format!(
                "invalid value for `{}` (from {origin}): {problem}",
                e.path.join(".")
            )
        })
        .collect();
    lines.join("\n")
}

/// Where the value of `key` came from: the environment variable that set
/// it, the file, or the defaults. For an unknown key from the environment
/// only the start of the variable's name is known.
fn origin(metadata: Option<&figment::Metadata>, key: &str, unknown: bool) -> String {
    let Some(metadata) = metadata else {
        return "defaults".to_owned();
    };
    if metadata.name.contains("environment") {
        let var = format!("HAVEN_{}", key.replace('.', "__").to_uppercase());
        return if unknown {
            format!("an environment variable starting with {var}")
        } else {
            format!("environment variable {var}")
        };
    }
    match &metadata.source {
        Some(source) => source.to_string(),
        None => metadata.name.to_string(),
    }
}

/// Checks an allowed origin: `scheme://host[:port]` and nothing else.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err("must be scheme://host[:port] with no path");
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must be lowercase, as browsers send it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use figment::providers::Serialized;

    use super::*;

    #[test]
    fn origins_must_be_exact() {
        assert!(check_origin("https://hulp.example.org").is_ok());
        assert!(check_origin("http://127.0.0.1:8080").is_ok());
        assert!(check_origin("hulp.example.org").is_err());
        assert!(check_origin("https://hulp.example.org/").is_err());
        assert!(check_origin("https://HULP.example.org").is_err());
        assert!(check_origin("https://").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let figment = Figment::from(Serialized::defaults(Config::default()));
        let mut config = Config::default();
        config.fill_default_topic();
        config.validate(&figment).unwrap();
    }
}
