//! The control plane: who waits in which topic and in what order, which
//! counsellor takes whom, who is connected, and what happens when time
//! runs out (grace periods, offers, wrap-up, opening hours).
//!
//! [`Router`] is a plain state machine. The shell feeds it inputs with the
//! current time, asks when it next needs waking ([`Router::poll_timeout`])
//! and carries out the [`Effect`]s it queues ([`Router::poll_effect`]). It
//! never sees chat text; chat lives in each session's
//! [`crate::Conversation`].
//!
//! # Rules
//!
//! - **Matching.** A counsellor serves the topics and languages of their
//!   profile. A help-seeker who names a language is served only by a
//!   counsellor who speaks it; one who names none, by anyone on the topic.
//! - **Order.** Each topic has one line, ordered by [`crate::queue::Key`]:
//!   first come first served, with head starts for urgent help-seekers
//!   (which age away) and for those put back after losing their counsellor.
//! - **Who gets the next one.** Among the counsellors who can take a session
//!   now (connected, available, not in wrap-up, below capacity), the one
//!   idle longest. The router is work-conserving: after every input, no such
//!   counsellor has a help-seeker they could serve.
//! - **Offers.** In a topic set to offer-and-accept, the chosen counsellor
//!   must accept within the timeout. Meanwhile the help-seeker keeps their
//!   place; a decline or timeout moves the offer on, never back in line.
//! - **Wrap-up.** After a session, its counsellor gets no new one for the
//!   topic's wrap-up time, unless they end it early.
//! - **Returning help-seekers** with a return code wait up to `return_wait`
//!   for the counsellor it names, then are routed normally.
//! - **Grace periods.** A dropped help-seeker keeps their place (skipped
//!   until back) or session for `seeker_grace`. A dropped counsellor keeps
//!   their sessions for `counsellor_grace`; then their help-seekers go back
//!   to the front.
//!
//! # Cost
//!
//! Arrivals, routing decisions and departures cost O(log n) in the number
//! waiting (plus the number of lines a counsellor's skills cover). Positions
//! and wait estimates are sent on a periodic tick, at most one update per
//! help-seeker per `position_interval`: one O(n) sweep per interval, never
//! per event.

mod counsellors;
mod dispatch;
mod events;
mod queries;
mod snapshot;
mod types;
mod waits;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use self::events::Event;
pub use self::snapshot::{
    CounsellorSnapshot, OfferSnapshot, Offset, PhaseSnapshot, RouterSnapshot, SeekerSnapshot,
};
pub use self::types::{
    Activity, Arrival, Assignment, CounsellorOverview, CounsellorView, Effect, EndReason, Gate,
    Notice, Profile, Refusal, RouterConfig, SessionOverview, Stage, Status, TopicRules,
    TopicSummary, Transfer, TransferFailed, Withdrawn,
};
use self::waits::WaitModel;
use crate::ids::{CounsellorId, LangId, Party, SessionId, Side, TopicId};
use crate::queue::{Key, Line};

/// Head start of a help-seeker put back after losing their counsellor:
/// longer than anyone could have waited, so they go first.
const REQUEUE_HEAD_START: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Something the router must do at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    /// A dropped help-seeker's grace period ends.
    SeekerGrace(SessionId),
    /// A dropped counsellor's grace period ends.
    CounsellorGrace(CounsellorId),
    /// The offer pending on a session runs out.
    Offer(SessionId),
    /// A counsellor's wrap-up ends.
    WrapUp(CounsellorId),
    /// A returning help-seeker stops waiting for their counsellor.
    Prefer(SessionId),
    /// Positions and waits are announced.
    Tick,
}

/// Whether someone's connection is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Connected,
    /// Dropped; their state is kept until `deadline`.
    Gone {
        deadline: Instant,
    },
}

/// Where a session is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// In its topic's line.
    Waiting,
    /// With counsellors, the first being the one who has had it longest.
    Assigned {
        counsellors: Vec<CounsellorId>,
        since: Instant,
    },
}

/// An offer pending on a session: from the queue (while waiting) or a
/// transfer (while assigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Offer {
    to: CounsellorId,
    until: Instant,
    from: Option<CounsellorId>,
    warm: bool,
}

/// Which routing line a waiting help-seeker sits in, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Not routable now (offered, disconnected, or not waiting).
    None,
    /// In the line of their topic and language.
    Routable,
    /// Waiting for the counsellor their return code names.
    Reserved(CounsellorId),
}

#[derive(Debug)]
struct Seeker {
    topic: TopicId,
    language: Option<LangId>,
    /// Their place in line (arrival time minus any head start).
    key: Key,
    /// When they first arrived, in virtual milliseconds without head start.
    arrived_ms: i64,
    phase: Phase,
    offer: Option<Offer>,
    link: Link,
    /// When the current stretch of waiting began.
    waiting_since: Instant,
    /// Time waited in earlier stretches (after a requeue).
    waited_before: Duration,
    /// The counsellor to prefer, and until when.
    prefer: Option<(CounsellorId, Instant)>,
    /// Counsellors who declined or let an offer of this session run out.
    declined: Vec<CounsellorId>,
    /// The position and wait (in minutes) last told to them.
    announced: Option<(u32, Option<u64>)>,
    /// Whether the next announcement says they were put back.
    requeued: bool,
    /// Whether they have reached a counsellor at least once.
    answered: bool,
    /// Whether their triage answer said it is urgent.
    urgent: bool,
    /// Whether a counsellor raised their hand about this session (asked a
    /// supervisor to look at it). Stays up through transfers until a
    /// counsellor in the session lowers it.
    hand: bool,
    /// Invariant: matches the routing line that holds this session.
    slot: Slot,
}

#[derive(Debug)]
struct Counsellor {
    profile: Profile,
    status: Status,
    wrap_until: Option<Instant>,
    sessions: BTreeSet<SessionId>,
    offers: BTreeSet<SessionId>,
    link: Link,
    /// When they last got a session or became free: the longest idle is
    /// served first.
    idle_since: Instant,
    /// Invariant: `Some((idle_since, topics))` exactly when this counsellor
    /// sits in `ready[t]` for each of those topics under that instant.
    ready: Option<(Instant, Vec<TopicId>)>,
}

impl Counsellor {
    fn load(&self) -> usize {
        self.sessions.len() + self.offers.len()
    }

    fn can_take(&self) -> bool {
        self.link == Link::Connected
            && self.status == Status::Available
            && self.wrap_until.is_none()
            && (self.load() as u64) < u64::from(self.profile.capacity)
    }

    fn activity(&self, now: Instant) -> Activity {
        match (self.status, self.wrap_until) {
            (Status::Away, _) => Activity::Away,
            (Status::Available, Some(until)) => Activity::WrapUp {
                remaining: until.saturating_duration_since(now),
            },
            (Status::Available, None) => Activity::Available,
        }
    }
}

/// Opening state of a topic.
#[derive(Clone, Copy, Debug)]
struct TopicState {
    gate: Gate,
    paused: bool,
}

/// The control-plane state machine.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    /// Virtual times are measured from here.
    origin: Instant,
    seekers: HashMap<SessionId, Seeker>,
    counsellors: HashMap<CounsellorId, Counsellor>,
    /// Per topic: everyone waiting, for positions.
    lines: Vec<Line>,
    /// Per topic and language: the waiting help-seekers who can be routed
    /// now.
    routable: HashMap<(TopicId, Option<LangId>), Line>,
    /// Per counsellor: returning help-seekers waiting for them.
    reserved: HashMap<CounsellorId, Line>,
    /// Per topic: counsellors who can take a session now, longest idle
    /// first.
    ready: Vec<BTreeSet<(Instant, CounsellorId)>>,
    topics: Vec<TopicState>,
    timers: BTreeSet<(Instant, Timer)>,
    effects: VecDeque<Effect>,
    /// What happened, for the supervisor view; drained by the shell.
    events: VecDeque<Event>,
    next_arrival: u64,
    dirty_seekers: Vec<SessionId>,
    dirty_counsellors: Vec<CounsellorId>,
    /// Help-seekers to tell their position once routing has settled (new
    /// arrivals and those put back), if they are still waiting then.
    to_announce: Vec<SessionId>,
    waits: Vec<WaitModel>,
    returns: HashMap<u64, (CounsellorId, Instant)>,
    /// Whether a position tick is scheduled.
    ticking: bool,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Router {
    /// An empty router; `now` anchors its virtual clock.
    pub fn new(config: RouterConfig, now: Instant) -> Self {
        let topics = config.topics.len().max(1);
        let waits = config
            .topics
            .iter()
            .map(|t| WaitModel::new(t.assumed_session, t.wrap_up))
            .collect();
        Self {
            origin: now,
            seekers: HashMap::new(),
            counsellors: HashMap::new(),
            lines: (0..topics).map(|_| Line::new()).collect(),
            routable: HashMap::new(),
            reserved: HashMap::new(),
            ready: (0..topics).map(|_| BTreeSet::new()).collect(),
            topics: vec![
                TopicState {
                    gate: Gate::Open,
                    paused: false,
                };
                topics
            ],
            timers: BTreeSet::new(),
            effects: VecDeque::new(),
            events: VecDeque::new(),
            next_arrival: 0,
            dirty_seekers: Vec::new(),
            dirty_counsellors: Vec::new(),
            to_announce: Vec::new(),
            waits,
            returns: HashMap::new(),
            ticking: false,
            config,
        }
    }

    /// The next event for the supervisor view, in the order they happened.
    /// The shell should drain these as it does effects.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// The settings in use.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The next effect to carry out, in the order decided.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Router::handle_timeout`] must next be called, if ever. May
    /// change after any input; calling `handle_timeout` early is harmless.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Runs everything due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::SeekerGrace(session) => self.end(now, session, EndReason::SeekerTimedOut),
                Timer::CounsellorGrace(c) => self.expire_counsellor(now, c),
                Timer::Offer(session) => self.offer_timed_out(now, session),
                Timer::WrapUp(c) => self.finish_wrap_up(now, c),
                Timer::Prefer(session) => {
                    if let Some(s) = self.seekers.get_mut(&session) {
                        s.prefer = None;
                    }
                    self.place(session);
                }
                Timer::Tick => {
                    self.ticking = false;
                    self.tick(now);
                }
            }
            self.settle(now);
        }
    }

    // === Help-seekers ===

    /// A help-seeker asks for a session. On success they are in line (or
    /// already with a counsellor: see the effects) and have been told their
    /// position.
    pub fn seeker_arrived(
        &mut self,
        now: Instant,
        session: SessionId,
        arrival: Arrival,
    ) -> Result<(), Refusal> {
        if self.seekers.contains_key(&session) {
            return Err(Refusal::Duplicate);
        }
        let t = usize::from(arrival.topic.0);
        let (Some(rules), Some(state)) = (self.config.topics.get(t), self.topics.get(t)) else {
            return Err(Refusal::UnknownTopic);
        };
        if state.paused {
            return Err(Refusal::Paused);
        }
        if let Gate::Closed { opens_ms } = state.gate {
            return Err(Refusal::Closed { opens_ms });
        }
        if self.lines[t].len() >= rules.max_queue {
            return Err(Refusal::Full);
        }
        let head_start = if arrival.urgent {
            rules.triage_boost
        } else {
            Duration::ZERO
        };
        let return_wait = rules.return_wait;
        let arrived_ms = self.since_origin_ms(now);
        let key = self.key(arrived_ms, head_start);
        let prefer = arrival
            .prefer
            .map(|c| (c, now + return_wait))
            .filter(|(_, until)| *until > now);
        if let Some((_, until)) = prefer {
            self.timers.insert((until, Timer::Prefer(session)));
        }
        self.seekers.insert(
            session,
            Seeker {
                topic: arrival.topic,
                language: arrival.language,
                key,
                arrived_ms,
                phase: Phase::Waiting,
                offer: None,
                link: Link::Connected,
                waiting_since: now,
                waited_before: Duration::ZERO,
                prefer,
                declined: Vec::new(),
                announced: None,
                requeued: false,
                answered: false,
                urgent: arrival.urgent,
                hand: false,
                slot: Slot::None,
            },
        );
        self.lines[t].insert(key, session);
        self.emit(Event::Queued {
            session,
            topic: arrival.topic,
            urgent: arrival.urgent,
            returning: prefer.is_some(),
        });
        // Tell them where they are now, not at the next tick (if routing
        // does not take them at once).
        self.to_announce.push(session);
        self.place(session);
        self.settle(now);
        self.arm_tick(now);
        Ok(())
    }

    /// The help-seeker ended the session or left the queue.
    pub fn seeker_ended(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        if !self.seekers.contains_key(&session) {
            return Err(Refusal::UnknownSession);
        }
        self.end(now, session, EndReason::SeekerEnded);
        self.settle(now);
        Ok(())
    }

    /// A coordinator ends a waiting help-seeker's wait (a suspected flood
    /// of fake help-seekers). Only a session still in line can be cleared:
    /// one with a counsellor is refused with [`Refusal::NotYours`].
    pub fn clear_waiting(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        let s = self.seekers.get(&session).ok_or(Refusal::UnknownSession)?;
        if s.phase != Phase::Waiting {
            return Err(Refusal::NotYours);
        }
        self.end(now, session, EndReason::Cleared);
        self.settle(now);
        Ok(())
    }

    /// The service stops and no other node can carry its sessions on:
    /// every session, waiting or with a counsellor, ends with
    /// [`EndReason::ServiceStopped`], so each party is told the truth
    /// instead of being sent to resume a session that will be gone.
    pub fn stop(&mut self, now: Instant) {
        let mut sessions: Vec<SessionId> = self.seekers.keys().copied().collect();
        sessions.sort_unstable();
        for session in sessions {
            self.end(now, session, EndReason::ServiceStopped);
        }
    }

    /// Someone's connection dropped: their grace period starts.
    pub fn detached(&mut self, now: Instant, party: Party) -> Result<(), Refusal> {
        match party {
            Party::Seeker(session) => {
                let grace = self.config.seeker_grace;
                let s = self
                    .seekers
                    .get_mut(&session)
                    .ok_or(Refusal::UnknownSession)?;
                if s.link != Link::Connected {
                    return Ok(());
                }
                let deadline = now + grace;
                s.link = Link::Gone { deadline };
                let assigned = matches!(s.phase, Phase::Assigned { .. });
                self.timers.insert((deadline, Timer::SeekerGrace(session)));
                if assigned {
                    self.effects.push_back(Effect::Presence {
                        session,
                        to: Side::Counsellor,
                        connected: false,
                    });
                }
                self.place(session);
            }
            Party::Counsellor(c) => {
                let grace = self.config.counsellor_grace;
                let entry = self
                    .counsellors
                    .get_mut(&c)
                    .ok_or(Refusal::UnknownCounsellor)?;
                if entry.link != Link::Connected {
                    return Ok(());
                }
                let deadline = now + grace;
                entry.link = Link::Gone { deadline };
                let sessions: Vec<SessionId> = entry.sessions.iter().copied().collect();
                self.timers.insert((deadline, Timer::CounsellorGrace(c)));
                for session in sessions {
                    self.effects.push_back(Effect::Presence {
                        session,
                        to: Side::Seeker,
                        connected: false,
                    });
                }
                self.refresh_ready(c);
            }
        }
        self.settle(now);
        Ok(())
    }

    /// A counsellor will not come back (their login was revoked, their
    /// account removed): what they held is handed on at once, as when a
    /// grace period runs out, instead of waiting for one.
    pub fn counsellor_left(&mut self, now: Instant, c: CounsellorId) -> Result<(), Refusal> {
        let entry = self.counsellors.get(&c).ok_or(Refusal::UnknownCounsellor)?;
        if let Link::Gone { deadline } = entry.link {
            self.timers.remove(&(deadline, Timer::CounsellorGrace(c)));
        }
        self.expire_counsellor(now, c);
        self.settle(now);
        Ok(())
    }

    /// A help-seeker resumed their session within the grace period.
    pub fn seeker_reattached(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        let s = self
            .seekers
            .get_mut(&session)
            .ok_or(Refusal::UnknownSession)?;
        if let Link::Gone { deadline } = s.link {
            s.link = Link::Connected;
            let assigned = matches!(s.phase, Phase::Assigned { .. });
            self.timers.remove(&(deadline, Timer::SeekerGrace(session)));
            if assigned {
                self.effects.push_back(Effect::Presence {
                    session,
                    to: Side::Counsellor,
                    connected: true,
                });
            }
            self.place(session);
        }
        self.settle(now);
        Ok(())
    }

    // === Topics ===

    /// Sets a topic's opening-hours state. Waiting help-seekers are told
    /// when it changes.
    pub fn set_gate(&mut self, now: Instant, topic: TopicId, gate: Gate) -> Result<(), Refusal> {
        let state = self
            .topics
            .get_mut(usize::from(topic.0))
            .ok_or(Refusal::UnknownTopic)?;
        if state.gate == gate {
            return Ok(());
        }
        state.gate = gate;
        self.notify_waiting(topic, Notice::Gate(gate));
        self.close_unserved(now, topic);
        self.settle(now);
        Ok(())
    }

    /// A coordinator pauses (`true`) or resumes (`false`) a topic: paused,
    /// it takes no new help-seekers; those waiting keep their place and are
    /// told.
    pub fn set_paused(
        &mut self,
        now: Instant,
        topic: TopicId,
        paused: bool,
    ) -> Result<(), Refusal> {
        let state = self
            .topics
            .get_mut(usize::from(topic.0))
            .ok_or(Refusal::UnknownTopic)?;
        if state.paused != paused {
            state.paused = paused;
            self.emit(Event::TopicPaused { topic, paused });
            self.notify_waiting(topic, Notice::Paused(paused));
        }
        self.settle(now);
        Ok(())
    }

    // === Return codes ===

    /// Remembers that `code` leads back to `counsellor`, for
    /// `return_code_ttl`. The code is the only link: nothing about the
    /// session it came from is kept.
    pub fn remember_return(&mut self, now: Instant, code: u64, counsellor: CounsellorId) {
        if self.returns.len() >= 1024 && self.returns.len().is_power_of_two() {
            self.returns.retain(|_, (_, until)| *until > now);
        }
        self.returns
            .insert(code, (counsellor, now + self.config.return_code_ttl));
    }

    /// Spends a return code: the counsellor it names, if it is valid.
    pub fn redeem_return(&mut self, now: Instant, code: u64) -> Option<CounsellorId> {
        let (counsellor, until) = self.returns.remove(&code)?;
        (until > now).then_some(counsellor)
    }

    // === Helpers shared by the submodules ===

    /// Milliseconds from the router's origin to `now`.
    fn since_origin_ms(&self, now: Instant) -> i64 {
        i64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(i64::MAX)
    }

    /// A queue key for an arrival at `arrived_ms` with a head start.
    fn key(&mut self, arrived_ms: i64, head_start: Duration) -> Key {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let head = i64::try_from(head_start.as_millis()).unwrap_or(i64::MAX);
        Key {
            virtual_ms: arrived_ms.saturating_sub(head),
            arrival,
        }
    }

    fn arm_tick(&mut self, now: Instant) {
        if !self.ticking && self.queue_len() > 0 {
            self.ticking = true;
            self.timers
                .insert((now + self.config.position_interval, Timer::Tick));
        }
    }

    fn notify_waiting(&mut self, topic: TopicId, notice: Notice) {
        let t = usize::from(topic.0);
        for (_, session) in self.lines[t].iter() {
            self.effects
                .push_back(Effect::TopicNotice { session, notice });
        }
    }
}
