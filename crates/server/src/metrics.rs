//! Prometheus metrics on `GET /metrics`.
//!
//! Counts on the chat path (messages relayed, protocol errors, slow
//! consumers, open sockets) are plain process-wide atomics, so the hot path
//! never looks up a metric by name; they and the queue and staffing gauges
//! are copied into the exporter when `/metrics` is scraped. Waits are real
//! histograms (fixed buckets, so they can be summed across nodes).
//!
//! No label ever holds a session, a nickname or an address: labels are
//! topics, roles, states, error codes and outcomes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use haven_protocol::ErrorCode;
use haven_protocol::counsellor::CounsellorStatus;
use haven_protocol::events::Snapshot;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::events::EventStats;

/// Seconds: 5 s to 1 h, the range a helpline's waits live in.
const WAIT_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

static RELAYED: AtomicU64 = AtomicU64::new(0);
static SLOW_CONSUMERS: AtomicU64 = AtomicU64::new(0);

static SEEKER_SOCKETS: AtomicI64 = AtomicI64::new(0);
static COUNSELLOR_SOCKETS: AtomicI64 = AtomicI64::new(0);
static ERRORS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
static REFUSALS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// A chat message was accepted for relay.
pub(crate) fn relayed() {
    RELAYED.fetch_add(1, Ordering::Relaxed);
}

/// A socket was closed for not reading its frames.
pub(crate) fn slow_consumer() {
    SLOW_CONSUMERS.fetch_add(1, Ordering::Relaxed);
}

/// An error frame was sent.
pub(crate) fn protocol_error(code: ErrorCode) {
    count(&ERRORS, code_name(code));
}

/// Something was refused or cut off to protect the service: a connection
/// dropped at accept, a body too slow, a login refused before its
/// password was checked. `reason` is a fixed name, never anything a
/// client sent.
pub(crate) fn refused(reason: &'static str) {
    count(&REFUSALS, reason);
}

fn count(map: &Mutex<BTreeMap<&'static str, u64>>, name: &'static str) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(name)
        .or_insert(0) += 1;
}

fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Malformed => "malformed",
        ErrorCode::UnknownType => "unknown_type",
        ErrorCode::WrongRole => "wrong_role",
        ErrorCode::InvalidMessage => "invalid_message",
        ErrorCode::BinaryNotSupported => "binary_not_supported",
        ErrorCode::WrongState => "wrong_state",
        ErrorCode::UnsupportedProtocol => "unsupported_protocol",
        ErrorCode::TextTooLong => "text_too_long",
        ErrorCode::EmptyText => "empty_text",
        ErrorCode::InvalidId => "invalid_id",
        ErrorCode::UnknownSession => "unknown_session",
        ErrorCode::NoOffer => "no_offer",
        ErrorCode::TransferPending => "transfer_pending",
        ErrorCode::TransferTargetUnavailable => "transfer_target_unavailable",
        ErrorCode::UnknownTopic => "unknown_topic",
        ErrorCode::PeerBacklogFull => "peer_backlog_full",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Unauthorized => "unauthorized",
        ErrorCode::ResumeFailed => "resume_failed",
        ErrorCode::Unavailable => "unavailable",
        ErrorCode::Internal => "internal",
    }
}

/// Counts an open socket of a role until dropped.
#[derive(Debug)]
pub(crate) struct SocketGauge(&'static AtomicI64);

impl SocketGauge {
    /// A help-seeker's (`true`) or counsellor's socket.
    pub(crate) fn open(seeker: bool) -> Self {
        let counter = if seeker {
            &SEEKER_SOCKETS
        } else {
            &COUNSELLOR_SOCKETS
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for SocketGauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server's exporter.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("haven_wait_seconds".into()),
                WAIT_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle }
    }

    /// A help-seeker's wait ended: `answered` or `abandoned`.
    pub(crate) fn observe_wait(&self, topic: &str, outcome: &'static str, secs: f64) {
        metrics::with_local_recorder(&self.recorder, || {
            histogram!("haven_wait_seconds", "topic" => topic.to_owned(), "outcome" => outcome)
                .record(secs);
        });
    }

    /// The exposition text, with the live figures copied in.
    pub(crate) fn render(
        &self,
        snapshot: Option<&Snapshot>,
        events: &EventStats,
        redis: bool,
        transcripts: Option<&crate::transcripts::Stats>,
        password_checks: u64,
    ) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            gauge!("haven_connections", "role" => "seeker")
                .set(SEEKER_SOCKETS.load(Ordering::Relaxed) as f64);
            gauge!("haven_connections", "role" => "counsellor")
                .set(COUNSELLOR_SOCKETS.load(Ordering::Relaxed) as f64);
            counter!("haven_messages_relayed_total").absolute(RELAYED.load(Ordering::Relaxed));
            counter!("haven_password_checks_total").absolute(password_checks);
            counter!("haven_slow_consumer_disconnects_total")
                .absolute(SLOW_CONSUMERS.load(Ordering::Relaxed));
            for (code, n) in ERRORS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                counter!("haven_protocol_errors_total", "code" => *code).absolute(*n);
            }
            for (reason, n) in REFUSALS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                counter!("haven_refused_total", "reason" => *reason).absolute(*n);
            }
            if let Some(t) = transcripts {
                counter!("haven_transcript_records_total")
                    .absolute(t.records.load(Ordering::Relaxed));
                counter!("haven_transcript_bytes_total").absolute(t.bytes.load(Ordering::Relaxed));
                counter!("haven_transcript_syncs_total").absolute(t.syncs.load(Ordering::Relaxed));
                counter!("haven_transcript_errors_total")
                    .absolute(t.errors.load(Ordering::Relaxed));
            }
            counter!("haven_events_total").absolute(events.events.load(Ordering::Relaxed));
            counter!("haven_events_published_total")
                .absolute(events.published.load(Ordering::Relaxed));
            counter!("haven_events_dropped_total").absolute(events.dropped.load(Ordering::Relaxed));
            if redis {
                let up = events.redis_connected.load(Ordering::Relaxed);
                gauge!("haven_redis_connected").set(if up { 1.0 } else { 0.0 });
            }
            if let Some(s) = snapshot {
                for t in &s.topics {
                    let topic = t.topic.clone();
                    gauge!("haven_queue_waiting", "topic" => topic.clone())
                        .set(f64::from(t.waiting));
                    gauge!("haven_queue_longest_wait_seconds", "topic" => topic.clone())
                        .set(f64::from(t.longest_wait_secs));
                    gauge!("haven_topic_paused", "topic" => topic).set(if t.paused {
                        1.0
                    } else {
                        0.0
                    });
                }
                gauge!("haven_sessions_active").set(s.sessions.len() as f64);
                let mut states: BTreeMap<&'static str, u32> =
                    [("available", 0), ("busy", 0), ("wrap_up", 0), ("away", 0)].into();
                for c in &s.counsellors {
                    let state = match c.status {
                        CounsellorStatus::Away => "away",
                        CounsellorStatus::WrapUp => "wrap_up",
                        CounsellorStatus::Available if c.active > 0 => "busy",
                        CounsellorStatus::Available => "available",
                    };
                    *states.entry(state).or_insert(0) += 1;
                }
                for (state, n) in states {
                    gauge!("haven_counsellors", "state" => state).set(f64::from(n));
                }
            }
        });
        self.handle.render()
    }
}
