//! What counsellors do: connect, go available or away, change capacity,
//! end wrap-up, answer offers, leave or end sessions, transfer them; and
//! what happens when they do not come back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{
    Counsellor, Effect, EndReason, Event, Link, Offer, Phase, Profile, Refusal, Router, Status,
    Timer, Transfer, TransferFailed, Withdrawn,
};
use crate::ids::{CounsellorId, SessionId, Side};
use crate::router::types::Assignment;

/// How long a transfer offer stands in a topic that has no offer timeout
/// of its own.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);

impl Router {
    /// A counsellor connected (logged in on a socket). One still in their
    /// grace period gets their sessions back; a new one starts away.
    /// Returns their sessions. The profile (skills, capacities) is taken
    /// as given each time.
    pub fn counsellor_connected(
        &mut self,
        now: Instant,
        c: CounsellorId,
        mut profile: Profile,
    ) -> Vec<SessionId> {
        profile.max_capacity = profile.max_capacity.max(1);
        profile.capacity = profile.capacity.clamp(1, profile.max_capacity);
        profile
            .topics
            .retain(|t| usize::from(t.0) < self.config.topics.len());
        profile.topics.sort_unstable();
        profile.topics.dedup();
        let entry = self.counsellors.entry(c).or_insert_with(|| Counsellor {
            profile: profile.clone(),
            status: Status::Away,
            wrap_until: None,
            sessions: BTreeSet::new(),
            offers: BTreeSet::new(),
            link: Link::Connected,
            idle_since: now,
            ready: None,
        });
        // Keep a capacity the counsellor chose earlier, within the new
        // maximum.
        let capacity = if entry.profile.max_capacity == profile.max_capacity {
            entry.profile.capacity.min(profile.max_capacity)
        } else {
            profile.capacity
        };
        entry.profile = Profile {
            capacity,
            ..profile
        };
        let sessions: Vec<SessionId> = entry.sessions.iter().copied().collect();
        if let Link::Gone { deadline } = entry.link {
            entry.link = Link::Connected;
            self.timers.remove(&(deadline, Timer::CounsellorGrace(c)));
            for &session in &sessions {
                self.effects.push_back(Effect::Presence {
                    session,
                    to: Side::Seeker,
                    connected: true,
                });
            }
        }
        self.push_load(now, c);
        self.refresh_ready(c);
        self.settle(now);
        sessions
    }

    /// A counsellor goes available or away.
    pub fn set_status(
        &mut self,
        now: Instant,
        c: CounsellorId,
        status: Status,
    ) -> Result<(), Refusal> {
        let entry = self
            .counsellors
            .get_mut(&c)
            .ok_or(Refusal::UnknownCounsellor)?;
        if entry.status != status {
            entry.status = status;
            if status == Status::Available {
                entry.idle_since = now;
            }
        }
        self.push_load(now, c);
        self.refresh_ready(c);
        self.settle(now);
        Ok(())
    }

    /// A counsellor changes how many sessions they take at once, between 1
    /// and their maximum. Returns the capacity now in force. Lowering it
    /// never takes sessions away; it only stops new ones.
    pub fn set_capacity(
        &mut self,
        now: Instant,
        c: CounsellorId,
        capacity: u32,
    ) -> Result<u32, Refusal> {
        let entry = self
            .counsellors
            .get_mut(&c)
            .ok_or(Refusal::UnknownCounsellor)?;
        entry.profile.capacity = capacity.clamp(1, entry.profile.max_capacity);
        let capacity = entry.profile.capacity;
        self.push_load(now, c);
        self.refresh_ready(c);
        self.settle(now);
        Ok(capacity)
    }

    /// A counsellor ends their wrap-up early ("ready now").
    pub fn end_wrap_up(&mut self, now: Instant, c: CounsellorId) -> Result<(), Refusal> {
        if !self.counsellors.contains_key(&c) {
            return Err(Refusal::UnknownCounsellor);
        }
        self.finish_wrap_up(now, c);
        self.settle(now);
        Ok(())
    }

    pub(super) fn finish_wrap_up(&mut self, now: Instant, c: CounsellorId) {
        let Some(entry) = self.counsellors.get_mut(&c) else {
            return;
        };
        if let Some(until) = entry.wrap_until.take() {
            self.timers.remove(&(until, Timer::WrapUp(c)));
            entry.idle_since = now;
            self.push_load(now, c);
            self.refresh_ready(c);
        }
    }

    /// A counsellor accepts an offer: a session from the queue, or a
    /// colleague's transfer.
    pub fn accept(
        &mut self,
        now: Instant,
        c: CounsellorId,
        session: SessionId,
    ) -> Result<(), Refusal> {
        let offer = self.offer_for(c, session)?;
        if let Some(topic) = self.topic_of(session) {
            self.emit(Event::Accepted {
                session,
                topic,
                counsellor: c,
            });
        }
        match offer.from {
            None => self.assign(now, session, c, None, false),
            Some(from) => {
                self.clear_offer(session);
                self.complete_transfer(now, session, from, c, offer.warm);
            }
        }
        self.settle(now);
        Ok(())
    }

    /// A counsellor declines an offer. A help-seeker from the queue keeps
    /// their place and is offered to someone else; a transfer falls back
    /// to the colleague who asked.
    pub fn decline(
        &mut self,
        now: Instant,
        c: CounsellorId,
        session: SessionId,
    ) -> Result<(), Refusal> {
        self.offer_for(c, session)?;
        if let Some(topic) = self.topic_of(session) {
            self.emit(Event::Declined {
                session,
                topic,
                counsellor: c,
            });
        }
        if let Some(offer) = self.clear_offer(session) {
            self.offer_failed(now, session, offer, TransferFailed::Declined);
        }
        self.settle(now);
        Ok(())
    }

    fn offer_for(&self, c: CounsellorId, session: SessionId) -> Result<Offer, Refusal> {
        let s = self.seekers.get(&session).ok_or(Refusal::UnknownSession)?;
        match s.offer {
            Some(offer) if offer.to == c => Ok(offer),
            _ => Err(Refusal::NoOffer),
        }
    }

    pub(super) fn offer_timed_out(&mut self, now: Instant, session: SessionId) {
        let Some(offer) = self.clear_offer(session) else {
            return;
        };
        let to = offer.to;
        if let Some(topic) = self.topic_of(session) {
            self.emit(Event::OfferTimedOut {
                session,
                topic,
                counsellor: to,
            });
        }
        self.offer_failed(now, session, offer, TransferFailed::TimedOut);
        if self.config.away_after_missed_offer
            && let Some(entry) = self.counsellors.get_mut(&to)
            && entry.status == Status::Available
        {
            entry.status = Status::Away;
            self.push_load(now, to);
            self.refresh_ready(to);
        }
    }

    /// An offer ended unaccepted (declined, timed out, or its counsellor is
    /// gone). The offer is already cleared.
    fn offer_failed(
        &mut self,
        now: Instant,
        session: SessionId,
        offer: Offer,
        why: TransferFailed,
    ) {
        match offer.from {
            None => {
                let reason = match why {
                    TransferFailed::TimedOut => Some(Withdrawn::TimedOut),
                    TransferFailed::Gone => Some(Withdrawn::TimedOut),
                    TransferFailed::Declined => None,
                };
                if let Some(s) = self.seekers.get_mut(&session) {
                    s.declined.push(offer.to);
                }
                if let Some(reason) = reason {
                    self.effects.push_back(Effect::OfferWithdrawn {
                        session,
                        counsellor: offer.to,
                        reason,
                    });
                }
                self.place(session);
            }
            Some(from) => {
                if why == TransferFailed::TimedOut {
                    self.effects.push_back(Effect::OfferWithdrawn {
                        session,
                        counsellor: offer.to,
                        reason: Withdrawn::TimedOut,
                    });
                }
                self.effects.push_back(Effect::TransferFailed {
                    session,
                    from,
                    to: offer.to,
                    reason: why,
                });
            }
        }
        self.push_load(now, offer.to);
        self.refresh_ready(offer.to);
    }

    /// Withdraws an offer because its session ended. The offer is already
    /// cleared.
    pub(super) fn withdraw(
        &mut self,
        now: Instant,
        session: SessionId,
        offer: Offer,
        reason: Withdrawn,
    ) {
        self.effects.push_back(Effect::OfferWithdrawn {
            session,
            counsellor: offer.to,
            reason,
        });
        self.push_load(now, offer.to);
        self.refresh_ready(offer.to);
    }

    /// A counsellor is done with a session. If colleagues remain in it they
    /// carry on and this counsellor leaves; otherwise the session ends.
    pub fn counsellor_ended(
        &mut self,
        now: Instant,
        c: CounsellorId,
        session: SessionId,
    ) -> Result<(), Refusal> {
        self.check_owner(c, session)?;
        let alone = self.counsellors_of(session).len() <= 1;
        if alone {
            self.end(now, session, EndReason::CounsellorEnded);
        } else {
            self.leave(now, c, session);
        }
        self.settle(now);
        Ok(())
    }

    /// Takes one counsellor out of a session that others carry on.
    fn leave(&mut self, now: Instant, c: CounsellorId, session: SessionId) {
        let Some(s) = self.seekers.get_mut(&session) else {
            return;
        };
        if let Phase::Assigned { counsellors, .. } = &mut s.phase {
            counsellors.retain(|x| *x != c);
        }
        // A transfer this counsellor asked for can no longer complete.
        if s.offer.is_some_and(|o| o.from == Some(c))
            && let Some(offer) = self.clear_offer(session)
        {
            self.withdraw(now, session, offer, Withdrawn::Ended);
        }
        let topic = self.seekers.get(&session).map(|s| s.topic);
        self.effects.push_back(Effect::Left {
            session,
            counsellor: c,
        });
        if let Some(topic) = topic {
            self.release(now, c, session, topic);
        }
    }

    /// A counsellor in a session raises (`true`) or lowers their hand: asks
    /// a supervisor to look at it. Raising a hand already up changes
    /// nothing and queues no effect.
    pub fn raise_hand(
        &mut self,
        c: CounsellorId,
        session: SessionId,
        raised: bool,
    ) -> Result<(), Refusal> {
        self.check_owner(c, session)?;
        let s = self
            .seekers
            .get_mut(&session)
            .ok_or(Refusal::UnknownSession)?;
        if s.hand != raised {
            s.hand = raised;
            let topic = s.topic;
            self.effects.push_back(Effect::Hand {
                session,
                counsellor: c,
                raised,
            });
            self.emit(Event::Hand {
                session,
                topic,
                counsellor: c,
                raised,
            });
        }
        Ok(())
    }

    /// A counsellor hands a session on: to a colleague (who is offered it)
    /// or back to a topic's queue (at its front).
    pub fn transfer(
        &mut self,
        now: Instant,
        c: CounsellorId,
        session: SessionId,
        to: Transfer,
    ) -> Result<(), Refusal> {
        self.check_owner(c, session)?;
        let s = self.seekers.get(&session).ok_or(Refusal::UnknownSession)?;
        if s.offer.is_some() {
            return Err(Refusal::TransferPending);
        }
        let current_topic = s.topic;
        match to {
            Transfer::ToCounsellor { to, warm } => {
                let reachable = self
                    .counsellors
                    .get(&to)
                    .is_some_and(|e| e.link == Link::Connected);
                if to == c || !reachable || self.check_owner(to, session).is_ok() {
                    return Err(Refusal::Unavailable);
                }
                let timeout = match self.config.topics[usize::from(current_topic.0)].assignment {
                    Assignment::Offer { timeout } => timeout,
                    Assignment::Auto => TRANSFER_TIMEOUT,
                };
                self.offer(now, session, to, timeout, Some(c), warm);
            }
            Transfer::ToTopic(topic) => {
                if usize::from(topic.0) >= self.config.topics.len() {
                    return Err(Refusal::UnknownTopic);
                }
                let counsellors = self.counsellors_of(session).to_vec();
                if let Some(Phase::Assigned { since, .. }) =
                    self.seekers.get(&session).map(|s| &s.phase)
                {
                    let held = now.saturating_duration_since(*since);
                    self.waits[usize::from(current_topic.0)].observe(held);
                }
                for other in counsellors {
                    self.effects.push_back(Effect::Left {
                        session,
                        counsellor: other,
                    });
                    self.release(now, other, session, current_topic);
                }
                self.emit(Event::Transferred {
                    session,
                    topic,
                    from: c,
                    to: None,
                    warm: false,
                });
                self.requeue(now, session, topic);
            }
        }
        self.settle(now);
        Ok(())
    }

    /// A colleague accepted a transfer.
    fn complete_transfer(
        &mut self,
        now: Instant,
        session: SessionId,
        from: CounsellorId,
        to: CounsellorId,
        warm: bool,
    ) {
        let Some(s) = self.seekers.get_mut(&session) else {
            return;
        };
        let Phase::Assigned { counsellors, .. } = &mut s.phase else {
            return;
        };
        if !counsellors.contains(&to) {
            counsellors.push(to);
        }
        let waited = s.waited_before;
        let topic = s.topic;
        self.emit(Event::Transferred {
            session,
            topic,
            from,
            to: Some(to),
            warm,
        });
        self.take_on(now, session, to, waited, Some(from), warm);
        if !warm && self.check_owner(from, session).is_ok() {
            if let Some(Phase::Assigned { counsellors, .. }) =
                self.seekers.get_mut(&session).map(|s| &mut s.phase)
            {
                counsellors.retain(|x| *x != from);
            }
            self.effects.push_back(Effect::Left {
                session,
                counsellor: from,
            });
            self.release(now, from, session, topic);
        }
    }

    /// A counsellor did not come back in time. Sessions they shared carry
    /// on with their colleagues; the others go back to the front of their
    /// topic's queue. Offers to them fall back.
    pub(super) fn expire_counsellor(&mut self, now: Instant, c: CounsellorId) {
        let Some(entry) = self.counsellors.remove(&c) else {
            return;
        };
        if let Some((since, topics)) = &entry.ready {
            for t in topics {
                if let Some(set) = self.ready.get_mut(usize::from(t.0)) {
                    set.remove(&(*since, c));
                }
            }
        }
        if let Some(until) = entry.wrap_until {
            self.timers.remove(&(until, Timer::WrapUp(c)));
        }
        for session in entry.offers {
            if let Some(s) = self.seekers.get_mut(&session)
                && let Some(offer) = s.offer.take()
            {
                self.timers.remove(&(offer.until, Timer::Offer(session)));
                self.offer_failed(now, session, offer, TransferFailed::Gone);
            }
        }
        for session in entry.sessions {
            let Some(s) = self.seekers.get_mut(&session) else {
                continue;
            };
            let topic = s.topic;
            let Phase::Assigned { counsellors, since } = &mut s.phase else {
                continue;
            };
            counsellors.retain(|x| *x != c);
            if counsellors.is_empty() {
                let held = now.saturating_duration_since(*since);
                self.waits[usize::from(topic.0)].observe(held);
                // A transfer it had pending cannot complete without them.
                if let Some(offer) = self.clear_offer(session) {
                    self.withdraw(now, session, offer, Withdrawn::Ended);
                }
                self.emit(Event::Requeued { session, topic });
                self.requeue(now, session, topic);
            } else {
                self.effects.push_back(Effect::Left {
                    session,
                    counsellor: c,
                });
            }
        }
        // Help-seekers who were waiting for them by return code go back to
        // normal routing.
        if let Some(line) = self.reserved.remove(&c) {
            for (_, session) in line.iter() {
                if let Some(s) = self.seekers.get_mut(&session) {
                    s.slot = super::Slot::None;
                    if let Some((_, until)) = s.prefer.take() {
                        self.timers.remove(&(until, Timer::Prefer(session)));
                    }
                }
                self.place(session);
            }
        }
        self.effects
            .push_back(Effect::CounsellorExpired { counsellor: c });
        self.emit(Event::CounsellorOffline { counsellor: c });
    }
}
