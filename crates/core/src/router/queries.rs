//! What the shell may ask the router: where a session is, who is in it,
//! what a counsellor's state is, how a topic's queue looks.

use std::time::{Duration, Instant};

use super::{
    CounsellorOverview, CounsellorView, Link, Phase, Refusal, Router, SessionOverview, Stage,
    Status, TopicSummary, count,
};
use crate::ids::{CounsellorId, SessionId, TopicId};
use crate::queue::Line;

impl Router {
    /// The counsellors a session is with, the first being the one who has
    /// had it longest; empty while waiting.
    pub fn counsellors_of(&self, session: SessionId) -> &[CounsellorId] {
        match self.seekers.get(&session).map(|s| &s.phase) {
            Some(Phase::Assigned { counsellors, .. }) => counsellors,
            _ => &[],
        }
    }

    /// The counsellor who has had a session longest, if it is with one.
    pub fn counsellor_of(&self, session: SessionId) -> Option<CounsellorId> {
        self.counsellors_of(session).first().copied()
    }

    /// Whether `counsellor` is in `session`.
    pub fn check_owner(&self, counsellor: CounsellorId, session: SessionId) -> Result<(), Refusal> {
        let s = self.seekers.get(&session).ok_or(Refusal::UnknownSession)?;
        match &s.phase {
            Phase::Assigned { counsellors, .. } if counsellors.contains(&counsellor) => Ok(()),
            _ => Err(Refusal::NotYours),
        }
    }

    /// The offer pending on a session, if any: who it is for, how long it
    /// still stands, the colleague transferring it and whether warmly.
    pub fn pending_offer(
        &self,
        now: Instant,
        session: SessionId,
    ) -> Option<(CounsellorId, Duration, Option<CounsellorId>, bool)> {
        let offer = self.seekers.get(&session)?.offer?;
        Some((
            offer.to,
            offer.until.saturating_duration_since(now),
            offer.from,
            offer.warm,
        ))
    }

    /// How long a session has been with its counsellor(s), if it is.
    pub fn time_with_counsellor(&self, now: Instant, session: SessionId) -> Option<Duration> {
        match self.seekers.get(&session).map(|s| &s.phase) {
            Some(Phase::Assigned { since, .. }) => Some(now.saturating_duration_since(*since)),
            _ => None,
        }
    }

    /// Whether a counsellor's hand is up about a session.
    pub fn hand_raised(&self, session: SessionId) -> bool {
        self.seekers.get(&session).is_some_and(|s| s.hand)
    }

    /// Every session the router holds, in no particular order, as of
    /// `now`. O(sessions), and allocates nothing: the supervisor snapshot
    /// walks it every couple of seconds on the thread that serves the
    /// sockets.
    pub fn sessions_overview(&self, now: Instant) -> impl Iterator<Item = SessionOverview<'_>> {
        self.seekers
            .iter()
            .map(move |(&session, s)| SessionOverview {
                session,
                topic: s.topic,
                urgent: s.urgent,
                hand: s.hand,
                stage: match &s.phase {
                    Phase::Waiting => Stage::Waiting {
                        waited: s.waited_before + now.saturating_duration_since(s.waiting_since),
                    },
                    Phase::Assigned { counsellors, since } => Stage::Assigned {
                        counsellors,
                        with: now.saturating_duration_since(*since),
                    },
                },
            })
    }

    /// Every counsellor the router knows (connected or within their grace
    /// period), in no particular order, as of `now`. Like
    /// [`Router::sessions_overview`], O(counsellors) and allocation-free.
    pub fn counsellors_overview(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = CounsellorOverview<'_>> {
        self.counsellors
            .iter()
            .map(move |(&counsellor, c)| CounsellorOverview {
                counsellor,
                activity: c.activity(now),
                capacity: c.profile.capacity,
                load: c.load(),
                topics: &c.profile.topics,
            })
    }

    /// A session's topic.
    pub fn topic_of(&self, session: SessionId) -> Option<TopicId> {
        self.seekers.get(&session).map(|s| s.topic)
    }

    /// Whether a session is waiting in line.
    pub fn is_waiting(&self, session: SessionId) -> bool {
        matches!(
            self.seekers.get(&session).map(|s| &s.phase),
            Some(Phase::Waiting)
        )
    }

    /// A waiting session's position in its topic (1 is next).
    pub fn position(&self, session: SessionId) -> Option<u32> {
        let s = self.seekers.get(&session)?;
        (s.phase == Phase::Waiting).then(|| self.lines[usize::from(s.topic.0)].position(s.key))
    }

    /// A waiting session's estimated wait, as it would be announced now.
    pub fn estimated_wait(&self, session: SessionId) -> Option<Duration> {
        let s = self.seekers.get(&session)?;
        let position = self.position(session)?;
        let (staffed, free) = self.staffing(s.topic);
        self.waits[usize::from(s.topic.0)].estimate(position, staffed, free)
    }

    /// How long a session's help-seeker waited, as of `now`.
    pub fn waited(&self, now: Instant, session: SessionId) -> Option<Duration> {
        let s = self.seekers.get(&session)?;
        Some(match s.phase {
            Phase::Waiting => s.waited_before + now.saturating_duration_since(s.waiting_since),
            Phase::Assigned { .. } => s.waited_before,
        })
    }

    /// Whether a session's help-seeker is connected.
    pub fn seeker_connected(&self, session: SessionId) -> bool {
        self.seekers
            .get(&session)
            .is_some_and(|s| s.link == Link::Connected)
    }

    /// What the router knows of a counsellor, while they are connected or
    /// within their grace period.
    pub fn counsellor(&self, now: Instant, counsellor: CounsellorId) -> Option<CounsellorView> {
        let c = self.counsellors.get(&counsellor)?;
        Some(CounsellorView {
            status: c.status,
            activity: c.activity(now),
            capacity: c.profile.capacity,
            max_capacity: c.profile.max_capacity,
            sessions: c.sessions.iter().copied().collect(),
            offers: c.offers.iter().copied().collect(),
            connected: c.link == Link::Connected,
        })
    }

    /// A topic's queue and staffing at a glance. O(counsellors).
    pub fn topic_summary(&self, now: Instant, topic: TopicId) -> Option<TopicSummary> {
        let t = usize::from(topic.0);
        self.lines.get(t)?;
        Some(self.summarize(now, t, self.staffing(topic)))
    }

    /// Every topic's [`Router::topic_summary`], in topic order, from one
    /// pass over the counsellors: O(counsellors × their topics + topics),
    /// where asking topic by topic is O(counsellors × topics).
    pub fn topic_summaries(&self, now: Instant) -> Vec<TopicSummary> {
        let mut staffing = vec![(0u32, 0u32); self.lines.len()];
        for c in self.counsellors.values() {
            if c.link != Link::Connected || c.status != Status::Available {
                continue;
            }
            let free = if c.can_take() {
                c.profile.capacity.saturating_sub(count(c.load()))
            } else {
                0
            };
            for (i, topic) in c.profile.topics.iter().enumerate() {
                // A topic listed twice counts once, as in `staffing`.
                if c.profile.topics[..i].contains(topic) {
                    continue;
                }
                if let Some((staffed, open)) = staffing.get_mut(usize::from(topic.0)) {
                    *staffed = staffed.saturating_add(c.profile.capacity);
                    *open = open.saturating_add(free);
                }
            }
        }
        staffing
            .into_iter()
            .enumerate()
            .map(|(t, seats)| self.summarize(now, t, seats))
            .collect()
    }

    /// Topic `t`'s summary given its `(staffed, free)` seats; `t` must be
    /// a topic.
    fn summarize(&self, now: Instant, t: usize, (staffed, free): (u32, u32)) -> TopicSummary {
        let line = &self.lines[t];
        let longest_wait = line
            .first()
            .and_then(|(_, s)| self.seekers.get(&s))
            .map(|s| s.waited_before + now.saturating_duration_since(s.waiting_since))
            .unwrap_or_default();
        let next = u32::try_from(line.len() + 1).unwrap_or(u32::MAX);
        TopicSummary {
            waiting: line.len(),
            longest_wait,
            staffed,
            free,
            paused: self.topics[t].paused,
            estimated_wait: self
                .waits
                .get(t)
                .and_then(|w| w.estimate(next, staffed, free)),
        }
    }

    /// Seats of connected, available counsellors serving `topic`, and how
    /// many of those are free now. O(counsellors).
    pub(super) fn staffing(&self, topic: TopicId) -> (u32, u32) {
        let (mut staffed, mut free) = (0u32, 0u32);
        for c in self.counsellors.values() {
            if c.link == Link::Connected
                && c.status == Status::Available
                && c.profile.topics.contains(&topic)
            {
                staffed = staffed.saturating_add(c.profile.capacity);
                if c.can_take() {
                    free = free.saturating_add(c.profile.capacity.saturating_sub(count(c.load())));
                }
            }
        }
        (staffed, free)
    }

    /// How many help-seekers wait, in all topics.
    pub fn queue_len(&self) -> usize {
        self.lines.iter().map(Line::len).sum()
    }

    /// How many sessions exist (waiting or assigned).
    pub fn session_count(&self) -> usize {
        self.seekers.len()
    }
}
