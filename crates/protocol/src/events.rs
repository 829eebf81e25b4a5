//! Queue and staffing events for the supervisor view, published on the
//! Redis channel `haven:events` (or an in-process bus on a single node) and
//! streamed to the dashboard.
//!
//! An event carries ids, topic names, counsellor account names, counts and
//! durations. **Never** message text, help-seekers' nicknames or addresses:
//! the types below have no field that could hold them. `docs/events.md`
//! quotes a fixture of each.

use serde::{Deserialize, Serialize};

use crate::common::{EndReason, SessionRef};
use crate::counsellor::CounsellorStatus;

/// One event as published: which node, its place in that node's sequence,
/// when, and what.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The broker node that published it.
    pub node: String,
    /// Numbers this node's events 1, 2, 3, … within one run; a gap tells
    /// a subscriber it missed some and should reload the snapshot.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Who ended a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The help-seeker.
    Seeker,
    /// A counsellor.
    Counsellor,
    /// Haven: a grace period ran out, the topic closed, a coordinator
    /// cleared the queue, or the service restarted.
    System,
}

impl EndedBy {
    /// Who ended a session that ended for `reason`.
    pub fn of(reason: EndReason) -> Self {
        match reason {
            EndReason::SeekerEnded => EndedBy::Seeker,
            EndReason::CounsellorEnded | EndReason::Transferred => EndedBy::Counsellor,
            EndReason::SeekerTimedOut
            | EndReason::TopicClosed
            | EndReason::Cleared
            | EndReason::ServiceRestarted => EndedBy::System,
        }
    }
}

/// What a supervisor did with a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionAction {
    /// Started watching it silently.
    Observe,
    /// Stopped watching it.
    StopObserving,
    /// Sent the counsellors a whisper.
    Whisper,
    /// Joined it visibly.
    Join,
    /// Left it after joining.
    Leave,
}

/// What an alert is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An urgent help-seeker has waited longer than the threshold.
    UrgentWaiting,
    /// A topic's line is longer than the threshold.
    QueueLength,
    /// A topic's longest wait is over the threshold.
    LongWait,
    /// More help-seekers arrived in a topic in the last minute (or were
    /// refused because one source had too many waiting) than the
    /// threshold: a suspected flood of fake help-seekers, which a
    /// coordinator can clear.
    Flood,
}

/// What happened.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A help-seeker joined a topic's line.
    Queued {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Whether their triage answer said it is urgent.
        urgent: bool,
        /// Whether they came back with a return code.
        returning: bool,
    },
    /// A waiting help-seeker's position or estimate changed (at most once
    /// per position interval each).
    Position {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// 1 is next.
        position: u32,
        /// The estimated wait, when anyone staffs the topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_secs: Option<u32>,
    },
    /// A help-seeker left the line before reaching anyone.
    Abandoned {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// How long they waited.
        waited_secs: u32,
        /// Why: they left, their connection did not come back, or the
        /// topic closed.
        reason: EndReason,
        /// Whether today's figures count it as abandoned (not when a
        /// counsellor had answered them before they were put back in
        /// line).
        #[serde(default)]
        counted: bool,
    },
    /// A session was offered to a counsellor.
    Offered {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who was offered it.
        counsellor: String,
        /// The colleague transferring it, for a transfer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// A counsellor accepted an offer.
    Accepted {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who.
        counsellor: String,
    },
    /// A counsellor declined an offer.
    Declined {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who.
        counsellor: String,
    },
    /// An offer was not answered in time.
    OfferTimedOut {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who did not answer.
        counsellor: String,
    },
    /// A help-seeker from the line reached a counsellor.
    SessionStarted {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who took it.
        counsellor: String,
        /// How long the help-seeker waited in all.
        waited_secs: u32,
        /// Whether their triage answer said it is urgent.
        urgent: bool,
        /// Whether today's figures count it as answered (a session put
        /// back in line and taken again counted the first time only).
        #[serde(default)]
        counted: bool,
        /// Whether it counts as answered within the service-level target.
        #[serde(default)]
        in_target: bool,
    },
    /// A session was handed on: to a colleague, or back to a topic's line.
    Transferred {
        /// The session.
        session: SessionRef,
        /// Its topic now.
        topic: String,
        /// Who handed it on.
        from: String,
        /// The colleague who took it; absent for back to the line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Whether the sender stays until one of them leaves.
        #[serde(default, skip_serializing_if = "crate::common::is_false")]
        warm: bool,
    },
    /// A session went back to the front of the line: its counsellor did
    /// not come back in time.
    Requeued {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
    },
    /// A session with a counsellor ended.
    SessionEnded {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// The counsellors in it at the end.
        counsellors: Vec<String>,
        /// Who ended it.
        by: EndedBy,
        /// Why.
        reason: EndReason,
        /// How long the help-seeker waited in the line in all.
        waited_secs: u32,
        /// How long the last stretch with a counsellor lasted.
        duration_secs: u32,
    },
    /// A counsellor's status or load changed.
    Counsellor {
        /// Who (account name).
        counsellor: String,
        /// The name help-seekers and colleagues see.
        display_name: String,
        /// `available`, `away` or `wrap_up`.
        status: CounsellorStatus,
        /// Sessions they take at once.
        capacity: u32,
        /// Sessions and offers they have.
        active: u32,
    },
    /// A counsellor is gone: logged out, or did not come back in time.
    CounsellorOffline {
        /// Who.
        counsellor: String,
    },
    /// A coordinator paused or resumed a topic.
    TopicPaused {
        /// The topic.
        topic: String,
        /// Paused (`true`) or resumed.
        paused: bool,
    },
    /// A counsellor raised or lowered a hand about a session.
    Hand {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// Who.
        counsellor: String,
        /// Up or down.
        raised: bool,
    },
    /// A supervisor observed, whispered in, joined or left a session
    /// (also written to the audit log; never the text).
    Supervision {
        /// The session.
        session: SessionRef,
        /// The topic.
        topic: String,
        /// The supervisor's account name.
        supervisor: String,
        /// What they did.
        action: SupervisionAction,
    },
    /// Something a coordinator should act on now.
    Alert {
        /// What.
        alert: AlertKind,
        /// The topic.
        topic: String,
        /// The help-seeker it is about, for `urgent_waiting`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<SessionRef>,
        /// The wait that crossed the threshold, for waits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waited_secs: Option<u32>,
        /// The line's length, for `queue_length`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        waiting: Option<u32>,
        /// Arrivals in the last minute, for `flood`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arrivals: Option<u32>,
    },
}

impl Event {
    /// Every `type` value.
    pub const TYPES: &'static [&'static str] = &[
        "queued",
        "position",
        "abandoned",
        "offered",
        "accepted",
        "declined",
        "offer_timed_out",
        "session_started",
        "transferred",
        "requeued",
        "session_ended",
        "counsellor",
        "counsellor_offline",
        "topic_paused",
        "hand",
        "supervision",
        "alert",
    ];

    /// The `type` tag of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Queued { .. } => "queued",
            Event::Position { .. } => "position",
            Event::Abandoned { .. } => "abandoned",
            Event::Offered { .. } => "offered",
            Event::Accepted { .. } => "accepted",
            Event::Declined { .. } => "declined",
            Event::OfferTimedOut { .. } => "offer_timed_out",
            Event::SessionStarted { .. } => "session_started",
            Event::Transferred { .. } => "transferred",
            Event::Requeued { .. } => "requeued",
            Event::SessionEnded { .. } => "session_ended",
            Event::Counsellor { .. } => "counsellor",
            Event::CounsellorOffline { .. } => "counsellor_offline",
            Event::TopicPaused { .. } => "topic_paused",
            Event::Hand { .. } => "hand",
            Event::Supervision { .. } => "supervision",
            Event::Alert { .. } => "alert",
        }
    }
}

/// One node's whole state, refreshed every couple of seconds (in Redis
/// under `haven:node:<node>`, with a TTL), so a dashboard that connects or
/// missed events gets the whole picture at once. Events with a higher
/// `seq` than the snapshot's follow it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The node.
    pub node: String,
    /// With several nodes as one helpline (`cluster.enabled`): whether
    /// this node leads (runs every conversation and queue). Absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leading: Option<bool>,
    /// The `seq` of the last event this snapshot includes.
    pub seq: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The service-level target: answered within this many seconds.
    pub service_level_target_secs: u32,
    /// Each topic's line and today's figures.
    pub topics: Vec<TopicState>,
    /// Counsellors connected to this node.
    pub counsellors: Vec<CounsellorState>,
    /// Help-seekers waiting on this node.
    pub waiting: Vec<WaitingState>,
    /// Sessions with a counsellor on this node.
    pub sessions: Vec<SessionState>,
}

/// A topic on one node.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TopicState {
    /// The topic.
    pub topic: String,
    /// Help-seekers waiting.
    pub waiting: u32,
    /// Of them, urgent.
    pub urgent_waiting: u32,
    /// The longest current wait.
    pub longest_wait_secs: u32,
    /// The wait a help-seeker arriving now can expect; absent when nobody
    /// staffs the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_secs: Option<u32>,
    /// Seats of available counsellors serving it.
    pub staffed_seats: u32,
    /// Seats free right now.
    pub free_seats: u32,
    /// Whether a coordinator paused it.
    pub paused: bool,
    /// Today (since local midnight): help-seekers who reached a counsellor.
    pub answered: u32,
    /// Today: of those, reached within the service-level target.
    pub answered_in_target: u32,
    /// Today: help-seekers who left the line before reaching anyone.
    pub abandoned: u32,
}

/// A counsellor on one node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CounsellorState {
    /// Account name.
    pub counsellor: String,
    /// The name help-seekers see.
    pub display_name: String,
    /// `available`, `away` or `wrap_up`.
    pub status: CounsellorStatus,
    /// Sessions they take at once.
    pub capacity: u32,
    /// Sessions and offers they have.
    pub active: u32,
    /// Topics they serve.
    pub topics: Vec<String>,
}

/// A help-seeker waiting.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WaitingState {
    /// The session.
    pub session: SessionRef,
    /// The topic.
    pub topic: String,
    /// Whether their triage answer said it is urgent.
    pub urgent: bool,
    /// How long they have waited.
    pub waited_secs: u32,
}

/// A session with a counsellor.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SessionState {
    /// The session.
    pub session: SessionRef,
    /// The topic.
    pub topic: String,
    /// The counsellors in it.
    pub counsellors: Vec<String>,
    /// How long it has been with a counsellor.
    pub duration_secs: u32,
    /// Whether the triage answer said it is urgent.
    pub urgent: bool,
    /// Whether a counsellor's hand is up about it.
    pub hand_raised: bool,
}

/// One node's recent queue history, sampled every minute for the
/// dashboard's chart (in Redis under `haven:history:<node>`).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// The node.
    pub node: String,
    /// Per topic, oldest first: `[at_ms, waiting, longest_wait_secs]`.
    pub topics: std::collections::BTreeMap<String, Vec<[u64; 3]>>,
}
