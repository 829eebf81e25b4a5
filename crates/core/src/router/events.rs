//! What a coordinator watches, as the router saw it happen: domain events
//! for the supervisor view, metrics and integrations.
//!
//! Events carry ids, topics, counts and durations only. The router never
//! sees chat text, nicknames or addresses, so no event can hold them. The
//! shell adds the node id and a wall-clock timestamp when it publishes
//! them. They are queued beside the effects and read with
//! [`super::Router::poll_event`].

use std::time::Duration;

use super::{Activity, EndReason};
use crate::ids::{CounsellorId, SessionId, TopicId};

/// One thing that happened, for the supervisor view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A help-seeker joined a topic's line.
    Queued {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Whether their triage answer said it is urgent.
        urgent: bool,
        /// Whether they came back with a return code.
        returning: bool,
    },
    /// A waiting help-seeker's position or estimate changed (coalesced:
    /// at most once per position interval each).
    Position {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// 1 is next.
        position: u32,
        /// The estimate, if anyone staffs the topic.
        wait: Option<Duration>,
    },
    /// A help-seeker left the line before reaching anyone.
    Abandoned {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// How long they waited.
        waited: Duration,
        /// Why (they left, their connection did not come back, closing).
        reason: EndReason,
        /// Whether a counsellor had answered them before (they were put
        /// back in line and left it): then they count as answered, not
        /// abandoned.
        answered: bool,
    },
    /// A session was offered to a counsellor.
    Offered {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who was offered it.
        counsellor: CounsellorId,
        /// The colleague transferring it, for a transfer.
        from: Option<CounsellorId>,
    },
    /// A counsellor accepted an offer.
    Accepted {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who.
        counsellor: CounsellorId,
    },
    /// A counsellor declined an offer.
    Declined {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who.
        counsellor: CounsellorId,
    },
    /// An offer was not answered in time.
    OfferTimedOut {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who did not answer.
        counsellor: CounsellorId,
    },
    /// A help-seeker from the line reached a counsellor.
    Started {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who took it.
        counsellor: CounsellorId,
        /// How long they waited in all.
        waited: Duration,
        /// Whether this is the first time a counsellor answers them (a
        /// session put back in line and taken again is answered once).
        first: bool,
    },
    /// A session was handed on.
    Transferred {
        /// The session.
        session: SessionId,
        /// Its topic now.
        topic: TopicId,
        /// Who handed it on.
        from: CounsellorId,
        /// The colleague who took it, or `None` for back to the queue.
        to: Option<CounsellorId>,
        /// Whether the sender stays (warm).
        warm: bool,
    },
    /// A session went back to the front of the line because its counsellor
    /// did not come back in time.
    Requeued {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
    },
    /// A session with a counsellor ended.
    Ended {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// The counsellors it had at the end.
        counsellors: Vec<CounsellorId>,
        /// Why, and so by whom.
        reason: EndReason,
        /// How long the help-seeker waited in the line in all.
        waited: Duration,
        /// How long the last stretch with a counsellor lasted.
        duration: Duration,
    },
    /// A counsellor's state or load changed.
    Counsellor {
        /// Who.
        counsellor: CounsellorId,
        /// Available, away or in wrap-up.
        activity: Activity,
        /// Sessions they take at once.
        capacity: u32,
        /// Sessions and offers they have.
        active: u32,
    },
    /// A counsellor's connection is gone for good (their grace period
    /// ended, or they logged out).
    CounsellorOffline {
        /// Who.
        counsellor: CounsellorId,
    },
    /// A coordinator paused or resumed a topic.
    TopicPaused {
        /// The topic.
        topic: TopicId,
        /// Paused (`true`) or resumed.
        paused: bool,
    },
    /// A counsellor raised or lowered a hand about a session.
    Hand {
        /// The session.
        session: SessionId,
        /// The topic.
        topic: TopicId,
        /// Who.
        counsellor: CounsellorId,
        /// Up or down.
        raised: bool,
    },
}
