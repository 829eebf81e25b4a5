//! The router's vocabulary: its settings, the statuses and reasons it
//! deals in, the effects it asks the shell to carry out, and why it refuses
//! an input.

use std::fmt;
use std::time::Duration;

use crate::ids::{CounsellorId, LangId, SessionId, Side, TopicId};

/// How a topic hands help-seekers to counsellors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// The chosen counsellor simply gets the session.
    Auto,
    /// The chosen counsellor is offered the session and has `timeout` to
    /// accept; a decline or a timeout moves the offer on, and the help-seeker
    /// keeps their place meanwhile.
    Offer {
        /// How long an offer stands.
        timeout: Duration,
    },
}

/// The rules of one topic (queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRules {
    /// Auto-assign or offer-and-accept.
    pub assignment: Assignment,
    /// Most help-seekers waiting at once; beyond it arrivals are refused as
    /// full.
    pub max_queue: usize,
    /// Time after a session before its counsellor gets a new one.
    pub wrap_up: Duration,
    /// How much earlier than their arrival an urgent help-seeker counts as
    /// having arrived. Priorities age: anyone who has waited longer than
    /// this is served before a newly arrived urgent help-seeker.
    pub triage_boost: Duration,
    /// How long a returning help-seeker waits for the counsellor their
    /// return code names before normal routing takes over.
    pub return_wait: Duration,
    /// The time one session takes, including wrap-up, assumed for wait
    /// estimates until real sessions have been measured.
    pub assumed_session: Duration,
}

impl Default for TopicRules {
    fn default() -> Self {
        Self {
            assignment: Assignment::Auto,
            max_queue: 10_000,
            wrap_up: Duration::ZERO,
            triage_boost: Duration::from_secs(10 * 60),
            return_wait: Duration::from_secs(5 * 60),
            assumed_session: Duration::from_secs(20 * 60),
        }
    }
}

/// Grace periods, topics and other router settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// How long a dropped help-seeker may take to resume.
    pub seeker_grace: Duration,
    /// How long a dropped counsellor may take to resume.
    pub counsellor_grace: Duration,
    /// Every topic, indexed by [`TopicId`].
    pub topics: Vec<TopicRules>,
    /// How often waiting help-seekers are told their position and wait, at
    /// most (changes are coalesced to one update per interval).
    pub position_interval: Duration,
    /// How long a return code stays valid.
    pub return_code_ttl: Duration,
    /// Whether a counsellor who lets an offer time out is set away, so
    /// offers stop going to someone who is not there.
    pub away_after_missed_offer: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            seeker_grace: Duration::from_secs(120),
            counsellor_grace: Duration::from_secs(60),
            topics: vec![TopicRules::default()],
            position_interval: Duration::from_secs(2),
            return_code_ttl: Duration::from_secs(7 * 24 * 3600),
            away_after_missed_offer: true,
        }
    }
}

/// Whether a counsellor takes new sessions, as they chose it.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// New sessions are routed to them while they have capacity.
    Available,
    /// On a break: they keep current sessions and get no new ones.
    Away,
}

/// A counsellor's state as others see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Available (busy or not: see the load).
    Available,
    /// Away.
    Away,
    /// Available, but in wrap-up after a session until the given time.
    WrapUp {
        /// How long the wrap-up still lasts.
        remaining: Duration,
    },
}

/// What the router needs to know about a counsellor's account.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Topics they serve.
    pub topics: Vec<TopicId>,
    /// Languages they chat in.
    pub languages: Vec<LangId>,
    /// Sessions they take at once (to start with).
    pub capacity: u32,
    /// The most they may raise their capacity to.
    pub max_capacity: u32,
}

/// A help-seeker asking for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The topic asked for.
    pub topic: TopicId,
    /// The language asked for, if any.
    pub language: Option<LangId>,
    /// Whether the triage answer says they need help urgently.
    pub urgent: bool,
    /// The counsellor a return code names, to be preferred for a while.
    pub prefer: Option<CounsellorId>,
}

/// Whether a topic takes new help-seekers, as set by its opening hours.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Open, with no closing in sight.
    Open,
    /// Open, closing at the given wall-clock time (milliseconds since the
    /// Unix epoch); waiting help-seekers have been warned.
    Closing {
        /// When it closes.
        at_ms: u64,
    },
    /// Closed until the given time (milliseconds since the Unix epoch), or
    /// until further notice.
    Closed {
        /// When it opens next.
        opens_ms: Option<u64>,
    },
}

/// What a waiting help-seeker is told about their topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The topic's opening hours changed its state.
    Gate(Gate),
    /// A coordinator paused (`true`) or resumed (`false`) the topic.
    Paused(bool),
}

/// Where a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// To a colleague, who is offered the session. `warm` keeps both in
    /// the session until the first leaves.
    ToCounsellor {
        /// Who.
        to: CounsellorId,
        /// Whether the sender stays until one of them leaves.
        warm: bool,
    },
    /// Back to a topic's queue, at its front.
    ToTopic(TopicId),
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
    /// The topic closed and nobody is left to serve the queue.
    TopicClosed,
    /// A coordinator cleared the line of a suspected flood.
    Cleared,
    /// The service stopped (shut down or restarted) with the session on
    /// it, and nothing could carry the session over.
    ServiceStopped,
}

/// Why an offer was withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withdrawn {
    /// The counsellor did not answer in time.
    TimedOut,
    /// The session ended (the help-seeker left) before an answer.
    Ended,
}

/// Why a transfer did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferFailed {
    /// The colleague declined.
    Declined,
    /// The colleague did not answer in time.
    TimedOut,
    /// The colleague went offline.
    Gone,
}

/// A decision for the shell to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Tell a waiting help-seeker their position and estimated wait. Sent on
    /// entry and then at most once per position interval when either
    /// changed.
    Queued {
        /// The session.
        session: SessionId,
        /// 1 is next, within the topic.
        position: u32,
        /// The estimated wait, rounded up to a whole minute; `None` when
        /// nobody is staffed to serve the topic.
        wait: Option<Duration>,
        /// Whether they were just put back at the front.
        requeued: bool,
    },
    /// Offer a session to a counsellor, who must accept or decline.
    Offered {
        /// The session.
        session: SessionId,
        /// Who is offered it.
        counsellor: CounsellorId,
        /// How long the offer stands.
        timeout: Duration,
        /// The colleague transferring it, for a transfer.
        from: Option<CounsellorId>,
        /// Whether that colleague stays (a warm transfer).
        warm: bool,
    },
    /// An offer ended without being accepted.
    OfferWithdrawn {
        /// The session.
        session: SessionId,
        /// Who had the offer.
        counsellor: CounsellorId,
        /// Why.
        reason: Withdrawn,
    },
    /// A counsellor takes a session (directly, by accepting an offer, or
    /// by transfer).
    Assigned {
        /// The session.
        session: SessionId,
        /// The counsellor.
        counsellor: CounsellorId,
        /// How long the help-seeker waited in the queue in all.
        waited: Duration,
        /// The colleague it came from, for a transfer.
        from: Option<CounsellorId>,
        /// Whether that colleague stays in the session (warm transfer).
        warm: bool,
    },
    /// A counsellor left a session that goes on without them (a warm
    /// transfer's first to leave, or the sender of a cold transfer).
    Left {
        /// The session.
        session: SessionId,
        /// Who left.
        counsellor: CounsellorId,
    },
    /// A transfer a counsellor asked for did not happen; they keep the
    /// session.
    TransferFailed {
        /// The session.
        session: SessionId,
        /// Who asked.
        from: CounsellorId,
        /// Who was asked to take it.
        to: CounsellorId,
        /// Why.
        reason: TransferFailed,
    },
    /// A session is over; the shell tells everyone and forgets it.
    Ended {
        /// The session.
        session: SessionId,
        /// Its topic.
        topic: TopicId,
        /// The counsellors it had at the end (none if it never left the
        /// queue).
        counsellors: Vec<CounsellorId>,
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
    /// Tell a waiting help-seeker about their topic's state.
    TopicNotice {
        /// The session.
        session: SessionId,
        /// What changed.
        notice: Notice,
    },
    /// A counsellor's state or load changed.
    Load {
        /// The counsellor.
        counsellor: CounsellorId,
        /// Available, away or in wrap-up.
        activity: Activity,
        /// How many sessions they take at once.
        capacity: u32,
        /// How many they have (offers included).
        active: u32,
    },
    /// A counsellor raised or lowered their hand about a session: they ask
    /// a supervisor to look at it, or no longer do.
    Hand {
        /// The session.
        session: SessionId,
        /// Who raised or lowered it.
        counsellor: CounsellorId,
        /// Whether the hand is up now.
        raised: bool,
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
    /// No such topic.
    UnknownTopic,
    /// The topic is closed (opening hours).
    Closed {
        /// When it opens next (milliseconds since the Unix epoch).
        opens_ms: Option<u64>,
    },
    /// A coordinator paused the topic.
    Paused,
    /// The topic's queue is full.
    Full,
    /// No offer to answer (it timed out or was withdrawn).
    NoOffer,
    /// The session is already being transferred.
    TransferPending,
    /// The colleague cannot take it (offline, or the same counsellor).
    Unavailable,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UnknownSession => "unknown session",
            Refusal::UnknownCounsellor => "unknown counsellor",
            Refusal::NotYours => "session belongs to another counsellor",
            Refusal::Duplicate => "session already exists",
            Refusal::UnknownTopic => "unknown topic",
            Refusal::Closed { .. } => "topic closed",
            Refusal::Paused => "topic paused",
            Refusal::Full => "queue full",
            Refusal::NoOffer => "no such offer",
            Refusal::TransferPending => "a transfer is already pending",
            Refusal::Unavailable => "that counsellor cannot take it",
        })
    }
}

impl std::error::Error for Refusal {}

/// What the router knows of one counsellor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounsellorView {
    /// Available or away, as they chose.
    pub status: Status,
    /// Available, away or in wrap-up.
    pub activity: Activity,
    /// Sessions they take at once.
    pub capacity: u32,
    /// The most they may raise it to.
    pub max_capacity: u32,
    /// The sessions they have, in id order.
    pub sessions: Vec<SessionId>,
    /// The sessions offered to them, in id order.
    pub offers: Vec<SessionId>,
    /// Whether they are connected (not in a grace period).
    pub connected: bool,
}

/// A session as the supervisor view lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOverview<'a> {
    /// The session.
    pub session: SessionId,
    /// Its topic.
    pub topic: TopicId,
    /// Whether the triage answer said it is urgent.
    pub urgent: bool,
    /// Whether a counsellor's hand is up about it.
    pub hand: bool,
    /// In line, or with counsellors.
    pub stage: Stage<'a>,
}

/// A counsellor as the supervisor view lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounsellorOverview<'a> {
    /// Who.
    pub counsellor: CounsellorId,
    /// Available, away or in wrap-up.
    pub activity: Activity,
    /// Sessions they take at once.
    pub capacity: u32,
    /// Sessions and offers they have.
    pub load: usize,
    /// Topics they serve.
    pub topics: &'a [TopicId],
}

/// Where a session is, for the supervisor view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage<'a> {
    /// In line (perhaps with an offer out), having waited this long in
    /// all.
    Waiting {
        /// Every stretch of waiting so far, this one included.
        waited: Duration,
    },
    /// With counsellors.
    Assigned {
        /// The first is the one who has had it longest.
        counsellors: &'a [CounsellorId],
        /// How long it has been with a counsellor.
        with: Duration,
    },
}

/// A topic's queue at a glance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicSummary {
    /// Help-seekers waiting.
    pub waiting: usize,
    /// The longest current wait.
    pub longest_wait: Duration,
    /// Seats (capacity) of connected counsellors serving it, not away.
    pub staffed: u32,
    /// Seats free right now.
    pub free: u32,
    /// Whether a coordinator paused it.
    pub paused: bool,
    /// The wait a help-seeker arriving now can expect; `None` when nobody
    /// staffs the topic.
    pub estimated_wait: Option<Duration>,
}
