//! The router's vocabulary: its settings, the statuses and reasons it
//! deals in, the effects it asks the shell to carry out, and why it refuses
//! an input.

use std::fmt;
use std::time::Duration;

use crate::ids::{CounsellorId, SessionId, Side};

/// Grace periods and other router settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// How long a dropped help-seeker may take to resume.
    pub seeker_grace: Duration,
    /// How long a dropped counsellor may take to resume.
    pub counsellor_grace: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            seeker_grace: Duration::from_secs(120),
            counsellor_grace: Duration::from_secs(60),
        }
    }
}

/// Whether a counsellor takes new sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// New sessions are routed to them while they have capacity.
    Available,
    /// On a break: they keep current sessions and get no new ones.
    Away,
}

/// What the router knows of one counsellor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounsellorView {
    /// Available or away.
    pub status: Status,
    /// Sessions they take at once.
    pub capacity: u32,
    /// The sessions they have, in id order.
    pub sessions: Vec<SessionId>,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The help-seeker ended it or left the queue.
    SeekerEnded,
    /// The counsellor ended it.
    CounsellorEnded,
    /// The help-seeker did not come back within the grace period.
    SeekerTimedOut,
}

/// A decision for the shell to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Tell a waiting help-seeker their position (sent on entry and on every
    /// change).
    Queued {
        /// The session.
        session: SessionId,
        /// 1 is next.
        position: u32,
        /// Whether they were just put back after losing their counsellor.
        requeued: bool,
    },
    /// A counsellor takes a session.
    Assigned {
        /// The session.
        session: SessionId,
        /// The counsellor.
        counsellor: CounsellorId,
        /// How long the help-seeker waited.
        waited: Duration,
    },
    /// A session is over; the shell tells both sides and forgets it.
    Ended {
        /// The session.
        session: SessionId,
        /// The counsellor it had, if it was assigned.
        counsellor: Option<CounsellorId>,
        /// Why.
        reason: EndReason,
        /// How long the help-seeker waited in the queue in all.
        waited: Duration,
    },
    /// Tell one side of a session whether the other side is connected.
    Presence {
        /// The session.
        session: SessionId,
        /// Who is told.
        to: Side,
        /// Whether the other side is connected now.
        connected: bool,
    },
    /// A counsellor's status or load changed.
    Load {
        /// The counsellor.
        counsellor: CounsellorId,
        /// Their status.
        status: Status,
        /// How many sessions they take at once.
        capacity: u32,
        /// How many they have.
        active: u32,
    },
    /// A counsellor did not come back in time: their sessions went back to
    /// the queue and the shell should forget their connection.
    CounsellorExpired {
        /// The counsellor.
        counsellor: CounsellorId,
    },
}

/// Why the router refused an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such session (never existed, or already ended).
    UnknownSession,
    /// No such counsellor (never connected, or their grace ran out).
    UnknownCounsellor,
    /// The session exists but is not this counsellor's.
    NotYours,
    /// A session with this id already exists.
    Duplicate,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UnknownSession => "unknown session",
            Refusal::UnknownCounsellor => "unknown counsellor",
            Refusal::NotYours => "session belongs to another counsellor",
            Refusal::Duplicate => "session already exists",
        })
    }
}

impl std::error::Error for Refusal {}
