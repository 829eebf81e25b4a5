//! Matching help-seekers with counsellors.
//!
//! Two indexes make routing O(log n). Waiting help-seekers who can be
//! routed now sit in a line per topic and language (`routable`), or, when a
//! return code names a counsellor, in that counsellor's line (`reserved`).
//! Counsellors who can take a session now sit in a set per topic, ordered by
//! how long they have been idle (`ready`). Every change that could create a
//! match marks the help-seeker or counsellor involved as dirty, and
//! [`Router::settle`] matches until nothing dirty is left. That keeps the
//! router work-conserving without scanning anything.

use std::time::{Duration, Instant};

use super::{
    Counsellor, Effect, EndReason, Event, Link, Offer, Phase, REQUEUE_HEAD_START, Router, Slot,
    Timer,
};
use crate::ids::{CounsellorId, SessionId, TopicId};
use crate::queue::Line;
use crate::router::types::Assignment;

/// How many help-seekers at the head of a line who declined a counsellor
/// are skipped when looking for one for them; beyond it the line is left
/// for other counsellors.
const MAX_DECLINED_SKIPS: usize = 32;

impl Router {
    /// Puts a help-seeker in the routing line their state calls for.
    pub(super) fn place(&mut self, session: SessionId) {
        let Some(s) = self.seekers.get(&session) else {
            return;
        };
        let want = if s.phase == Phase::Waiting && s.link == Link::Connected && s.offer.is_none() {
            match s.prefer {
                Some((c, _)) => Slot::Reserved(c),
                None => Slot::Routable,
            }
        } else {
            Slot::None
        };
        let (have, key, topic, language) = (s.slot, s.key, s.topic, s.language);
        if want == have {
            return;
        }
        match have {
            Slot::None => {}
            Slot::Routable => {
                if let Some(line) = self.routable.get_mut(&(topic, language)) {
                    line.remove(key);
                }
            }
            Slot::Reserved(c) => {
                if let Some(line) = self.reserved.get_mut(&c) {
                    line.remove(key);
                }
            }
        }
        match want {
            Slot::None => {}
            Slot::Routable => {
                self.routable
                    .entry((topic, language))
                    .or_default()
                    .insert(key, session);
            }
            Slot::Reserved(c) => self.reserved.entry(c).or_default().insert(key, session),
        }
        if let Some(s) = self.seekers.get_mut(&session) {
            s.slot = want;
        }
        if want != Slot::None {
            self.dirty_seekers.push(session);
        }
    }

    /// Puts a counsellor in (or takes them out of) the ready sets.
    pub(super) fn refresh_ready(&mut self, c: CounsellorId) {
        let Some(entry) = self.counsellors.get_mut(&c) else {
            return;
        };
        let want = entry
            .can_take()
            .then(|| (entry.idle_since, entry.profile.topics.clone()));
        if want == entry.ready {
            return;
        }
        let had = std::mem::replace(&mut entry.ready, want.clone());
        if let Some((since, topics)) = had {
            for t in topics {
                if let Some(set) = self.ready.get_mut(usize::from(t.0)) {
                    set.remove(&(since, c));
                }
            }
        }
        if let Some((since, topics)) = want {
            for t in topics {
                if let Some(set) = self.ready.get_mut(usize::from(t.0)) {
                    set.insert((since, c));
                }
            }
            self.dirty_counsellors.push(c);
        }
    }

    /// Matches until no dirty help-seeker or counsellor can be matched.
    pub(super) fn settle(&mut self, now: Instant) {
        loop {
            if let Some(c) = self.dirty_counsellors.pop() {
                while self.counsellors.get(&c).is_some_and(Counsellor::can_take) {
                    match self.best_seeker_for(c) {
                        Some(session) => self.dispatch(now, session, c),
                        None => break,
                    }
                }
            } else if let Some(session) = self.dirty_seekers.pop() {
                let placed = self
                    .seekers
                    .get(&session)
                    .is_some_and(|s| s.slot != Slot::None);
                if placed && let Some(c) = self.best_counsellor_for(session) {
                    self.dispatch(now, session, c);
                }
            } else {
                break;
            }
        }
        for session in std::mem::take(&mut self.to_announce) {
            if self.is_waiting(session) {
                self.announce(session);
            }
        }
    }

    /// The help-seeker a ready counsellor should get: one waiting for them
    /// by return code first, otherwise the best key at the head of the lines
    /// their topics and languages cover.
    fn best_seeker_for(&self, c: CounsellorId) -> Option<SessionId> {
        if let Some((_, session)) = self.reserved.get(&c).and_then(Line::first) {
            return Some(session);
        }
        let counsellor = self.counsellors.get(&c)?;
        let languages = counsellor
            .profile
            .languages
            .iter()
            .copied()
            .map(Some)
            .chain(std::iter::once(None));
        let mut best = None;
        for topic in &counsellor.profile.topics {
            for language in languages.clone() {
                let Some(line) = self.routable.get(&(*topic, language)) else {
                    continue;
                };
                let candidate = line
                    .iter()
                    .take(MAX_DECLINED_SKIPS)
                    .find(|(_, s)| !self.declined(*s, c));
                if let Some((key, session)) = candidate
                    && best.is_none_or(|(k, _)| key < k)
                {
                    best = Some((key, session));
                }
            }
        }
        best.map(|(_, session)| session)
    }

    /// The ready counsellor a help-seeker should go to: the one their return
    /// code names (only them, while the preference lasts), otherwise the
    /// longest idle who serves their topic and language.
    fn best_counsellor_for(&self, session: SessionId) -> Option<CounsellorId> {
        let s = self.seekers.get(&session)?;
        if let Slot::Reserved(c) = s.slot {
            return self
                .counsellors
                .get(&c)
                .is_some_and(Counsellor::can_take)
                .then_some(c);
        }
        self.ready
            .get(usize::from(s.topic.0))?
            .iter()
            .map(|(_, c)| *c)
            .find(|c| {
                let speaks = match s.language {
                    None => true,
                    Some(l) => self
                        .counsellors
                        .get(c)
                        .is_some_and(|e| e.profile.languages.contains(&l)),
                };
                speaks && !s.declined.contains(c)
            })
    }

    fn declined(&self, session: SessionId, c: CounsellorId) -> bool {
        self.seekers
            .get(&session)
            .is_some_and(|s| s.declined.contains(&c))
    }

    /// Hands a waiting help-seeker to a counsellor, by the topic's rule.
    fn dispatch(&mut self, now: Instant, session: SessionId, c: CounsellorId) {
        let Some(topic) = self.seekers.get(&session).map(|s| s.topic) else {
            return;
        };
        match self.config.topics[usize::from(topic.0)].assignment {
            Assignment::Auto => self.assign(now, session, c, None, false),
            Assignment::Offer { timeout } => self.offer(now, session, c, timeout, None, false),
        }
    }

    /// Offers a session (from the queue, or in a transfer) to a counsellor.
    pub(super) fn offer(
        &mut self,
        now: Instant,
        session: SessionId,
        c: CounsellorId,
        timeout: Duration,
        from: Option<CounsellorId>,
        warm: bool,
    ) {
        let until = now + timeout;
        let Some(s) = self.seekers.get_mut(&session) else {
            return;
        };
        s.offer = Some(Offer {
            to: c,
            until,
            from,
            warm,
        });
        let topic = s.topic;
        self.timers.insert((until, Timer::Offer(session)));
        if let Some(entry) = self.counsellors.get_mut(&c) {
            entry.offers.insert(session);
        }
        self.emit(Event::Offered {
            session,
            topic,
            counsellor: c,
            from,
        });
        self.effects.push_back(Effect::Offered {
            session,
            counsellor: c,
            timeout,
            from,
            warm,
        });
        self.place(session);
        self.push_load(now, c);
        self.refresh_ready(c);
    }

    /// Takes the pending offer off a session and its counsellor.
    pub(super) fn clear_offer(&mut self, session: SessionId) -> Option<Offer> {
        let offer = self.seekers.get_mut(&session)?.offer.take()?;
        self.timers.remove(&(offer.until, Timer::Offer(session)));
        if let Some(entry) = self.counsellors.get_mut(&offer.to) {
            entry.offers.remove(&session);
        }
        Some(offer)
    }

    /// A counsellor takes a waiting session.
    pub(super) fn assign(
        &mut self,
        now: Instant,
        session: SessionId,
        c: CounsellorId,
        from: Option<CounsellorId>,
        warm: bool,
    ) {
        if self
            .seekers
            .get(&session)
            .is_some_and(|s| s.offer.is_some())
        {
            self.clear_offer(session);
        }
        let Some(s) = self.seekers.get_mut(&session) else {
            return;
        };
        self.lines[usize::from(s.topic.0)].remove(s.key);
        s.waited_before += now.saturating_duration_since(s.waiting_since);
        s.phase = Phase::Assigned {
            counsellors: vec![c],
            since: now,
        };
        s.prefer = None;
        s.declined.clear();
        s.announced = None;
        let waited = s.waited_before;
        let first = !s.answered;
        s.answered = true;
        let topic_id = s.topic;
        self.place(session);
        if from.is_none() {
            self.emit(Event::Started {
                session,
                topic: topic_id,
                counsellor: c,
                waited,
                first,
            });
        }
        self.take_on(now, session, c, waited, from, warm);
    }

    /// Puts a session on a counsellor who joins it (from the queue or by
    /// transfer) and says so.
    pub(super) fn take_on(
        &mut self,
        now: Instant,
        session: SessionId,
        c: CounsellorId,
        waited: Duration,
        from: Option<CounsellorId>,
        warm: bool,
    ) {
        if let Some(entry) = self.counsellors.get_mut(&c) {
            entry.sessions.insert(session);
            entry.idle_since = now;
        }
        self.effects.push_back(Effect::Assigned {
            session,
            counsellor: c,
            waited,
            from,
            warm,
        });
        self.push_load(now, c);
        self.refresh_ready(c);
    }

    /// Puts a session back in line at the front of `topic` (its counsellors
    /// are already gone from it).
    pub(super) fn requeue(&mut self, now: Instant, session: SessionId, topic: TopicId) {
        let head = i64::try_from(REQUEUE_HEAD_START.as_millis()).unwrap_or(i64::MAX);
        let Some(s) = self.seekers.get_mut(&session) else {
            return;
        };
        // Measured from their first arrival, so those put back keep their
        // original order among themselves, however often it happens.
        let key = crate::queue::Key {
            virtual_ms: s.arrived_ms.saturating_sub(head),
            arrival: s.key.arrival,
        };
        s.key = key;
        s.topic = topic;
        s.phase = Phase::Waiting;
        s.waiting_since = now;
        s.requeued = true;
        s.announced = None;
        self.lines[usize::from(topic.0)].insert(key, session);
        self.to_announce.push(session);
        self.place(session);
        self.arm_tick(now);
    }

    /// Ends a session, whatever its state.
    pub(super) fn end(&mut self, now: Instant, session: SessionId, reason: EndReason) {
        if self
            .seekers
            .get(&session)
            .is_some_and(|s| s.offer.is_some())
            && let Some(offer) = self.clear_offer(session)
        {
            self.withdraw(now, session, offer, super::Withdrawn::Ended);
        }
        let Some(mut s) = self.seekers.remove(&session) else {
            return;
        };
        let had = std::mem::replace(&mut s.slot, Slot::None);
        match had {
            Slot::Routable => {
                if let Some(line) = self.routable.get_mut(&(s.topic, s.language)) {
                    line.remove(s.key);
                }
            }
            Slot::Reserved(c) => {
                if let Some(line) = self.reserved.get_mut(&c) {
                    line.remove(s.key);
                }
            }
            Slot::None => {}
        }
        if let Link::Gone { deadline } = s.link {
            self.timers.remove(&(deadline, Timer::SeekerGrace(session)));
        }
        if let Some((_, until)) = s.prefer {
            self.timers.remove(&(until, Timer::Prefer(session)));
        }
        let topic = usize::from(s.topic.0);
        let mut waited = s.waited_before;
        let counsellors = match s.phase {
            Phase::Waiting => {
                self.lines[topic].remove(s.key);
                waited += now.saturating_duration_since(s.waiting_since);
                self.emit(Event::Abandoned {
                    session,
                    topic: s.topic,
                    waited,
                    reason,
                    answered: s.answered,
                });
                Vec::new()
            }
            Phase::Assigned { counsellors, since } => {
                let duration = now.saturating_duration_since(since);
                self.waits[topic].observe(duration);
                for &c in &counsellors {
                    self.release(now, c, session, s.topic);
                }
                self.emit(Event::Ended {
                    session,
                    topic: s.topic,
                    counsellors: counsellors.clone(),
                    reason,
                    waited,
                    duration,
                });
                counsellors
            }
        };
        self.effects.push_back(Effect::Ended {
            session,
            topic: s.topic,
            counsellors,
            reason,
            waited,
        });
    }

    /// A counsellor is done with a session: it leaves their load and their
    /// wrap-up starts.
    pub(super) fn release(
        &mut self,
        now: Instant,
        c: CounsellorId,
        session: SessionId,
        topic: TopicId,
    ) {
        let wrap_up = self.config.topics[usize::from(topic.0)].wrap_up;
        let Some(entry) = self.counsellors.get_mut(&c) else {
            return;
        };
        entry.sessions.remove(&session);
        entry.idle_since = now;
        if !wrap_up.is_zero() {
            let until = now + wrap_up;
            if let Some(old) = entry.wrap_until.replace(until) {
                self.timers.remove(&(old, Timer::WrapUp(c)));
            }
            self.timers.insert((until, Timer::WrapUp(c)));
        }
        self.push_load(now, c);
        self.refresh_ready(c);
    }

    /// Tells the shell a counsellor's state and load.
    pub(super) fn push_load(&mut self, now: Instant, c: CounsellorId) {
        if let Some(entry) = self.counsellors.get(&c) {
            let activity = entry.activity(now);
            let capacity = entry.profile.capacity;
            let active = u32::try_from(entry.load()).unwrap_or(u32::MAX);
            self.effects.push_back(Effect::Load {
                counsellor: c,
                activity,
                capacity,
                active,
            });
            self.events.push_back(Event::Counsellor {
                counsellor: c,
                activity,
                capacity,
                active,
            });
        }
    }
}
