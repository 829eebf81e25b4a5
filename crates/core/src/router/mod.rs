//! The control plane: who waits, who is served by whom, who is connected,
//! and what happens when someone does not come back.
//!
//! [`Router`] is a plain state machine. The shell feeds it inputs with the
//! current time (`seeker_arrived`, `detached`, `handle_timeout`, ...), asks
//! when it next needs waking ([`Router::poll_timeout`]) and carries out the
//! [`Effect`]s it queues ([`Router::poll_effect`]). It never sees chat text;
//! chat lives in each session's [`crate::Conversation`].
//!
//! Routing rule (the richer policy comes with topics and skills): the
//! longest-waiting connected help-seeker of the highest priority goes to the
//! connected, available counsellor with free capacity who has been without
//! a new session the longest. A help-seeker whose connection dropped keeps
//! their place but is skipped until they are back, so nobody is handed to a
//! counsellor while unreachable.
//!
//! Grace periods: a dropped help-seeker has `seeker_grace` to come back,
//! after which their session ends (the counsellor is told and the capacity
//! frees). A dropped counsellor has `counsellor_grace`, after which each of
//! their help-seekers goes back to the front of the queue with their
//! original wait start.

mod types;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use self::types::{CounsellorView, Effect, EndReason, Refusal, RouterConfig, Status};
use crate::ids::{CounsellorId, Party, SessionId, Side};
use crate::queue::{Priority, Queue};

/// Whether someone's connection is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Connected,
    /// Dropped; their state is kept until `deadline`.
    Gone {
        deadline: Instant,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// In the queue; `announced` is the last position told to them.
    Waiting {
        announced: Option<u32>,
        requeued: bool,
    },
    /// With a counsellor.
    Assigned { counsellor: CounsellorId },
}

#[derive(Debug)]
struct SessionEntry {
    phase: Phase,
    /// Numbers help-seekers in order of first arrival. Orders the queue, and
    /// is kept across a requeue.
    arrival: u64,
    /// When the current stretch of waiting began.
    waiting_since: Instant,
    /// Time waited in earlier stretches (non-zero after a requeue).
    waited_before: Duration,
    seeker: Link,
}

#[derive(Debug)]
struct CounsellorEntry {
    capacity: u32,
    status: Status,
    /// Invariant: every id here is a session in `Phase::Assigned` with this
    /// counsellor, and `sessions.len() <= capacity` after every routing.
    sessions: BTreeSet<SessionId>,
    link: Link,
    /// When they last got a session or became available: longest idle is
    /// served first.
    idle_since: Instant,
}

impl CounsellorEntry {
    fn can_take(&self) -> bool {
        self.link == Link::Connected
            && self.status == Status::Available
            && (self.sessions.len() as u64) < u64::from(self.capacity)
    }
}

/// The control-plane state machine.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    queue: Queue,
    sessions: HashMap<SessionId, SessionEntry>,
    counsellors: HashMap<CounsellorId, CounsellorEntry>,
    /// Every `Link::Gone` deadline, soonest first.
    timers: BTreeSet<(Instant, Party)>,
    effects: VecDeque<Effect>,
    /// The next help-seeker's arrival number.
    next_arrival: u64,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Router {
    /// An empty router.
    pub fn new(config: RouterConfig) -> Self {
        Self {
            config,
            queue: Queue::new(),
            sessions: HashMap::new(),
            counsellors: HashMap::new(),
            timers: BTreeSet::new(),
            effects: VecDeque::new(),
            next_arrival: 0,
        }
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

    /// A help-seeker said hello: their session joins the queue.
    pub fn seeker_arrived(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        if self.sessions.contains_key(&session) {
            return Err(Refusal::Duplicate);
        }
        self.sessions.insert(
            session,
            SessionEntry {
                phase: Phase::Waiting {
                    announced: None,
                    requeued: false,
                },
                arrival: self.next_arrival,
                waiting_since: now,
                waited_before: Duration::ZERO,
                seeker: Link::Connected,
            },
        );
        self.queue
            .push(session, Priority::Normal, self.next_arrival);
        self.next_arrival += 1;
        self.settle(now);
        Ok(())
    }

    /// The help-seeker ended the session or left the queue.
    pub fn seeker_ended(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        if !self.sessions.contains_key(&session) {
            return Err(Refusal::UnknownSession);
        }
        self.end(now, session, EndReason::SeekerEnded);
        self.settle(now);
        Ok(())
    }

    /// A counsellor ended one of their sessions.
    pub fn counsellor_ended(
        &mut self,
        now: Instant,
        counsellor: CounsellorId,
        session: SessionId,
    ) -> Result<(), Refusal> {
        self.check_owner(counsellor, session)?;
        self.end(now, session, EndReason::CounsellorEnded);
        self.settle(now);
        Ok(())
    }

    /// Whether `session` is currently `counsellor`'s.
    pub fn check_owner(&self, counsellor: CounsellorId, session: SessionId) -> Result<(), Refusal> {
        match self.sessions.get(&session).map(|s| s.phase) {
            None => Err(Refusal::UnknownSession),
            Some(Phase::Assigned { counsellor: c }) if c == counsellor => Ok(()),
            Some(_) => Err(Refusal::NotYours),
        }
    }

    /// A counsellor connected (logged in on a socket). A counsellor still in
    /// their grace period gets their sessions back; a new one starts away.
    /// Returns their sessions.
    pub fn counsellor_connected(
        &mut self,
        now: Instant,
        counsellor: CounsellorId,
        capacity: u32,
    ) -> Vec<SessionId> {
        let entry = self
            .counsellors
            .entry(counsellor)
            .or_insert_with(|| CounsellorEntry {
                capacity,
                status: Status::Away,
                sessions: BTreeSet::new(),
                link: Link::Connected,
                idle_since: now,
            });
        entry.capacity = capacity;
        let sessions: Vec<SessionId> = entry.sessions.iter().copied().collect();
        if let Link::Gone { deadline } = entry.link {
            entry.link = Link::Connected;
            self.timers
                .remove(&(deadline, Party::Counsellor(counsellor)));
            for &session in &sessions {
                self.effects.push_back(Effect::Presence {
                    session,
                    to: Side::Seeker,
                    connected: true,
                });
            }
        }
        self.push_load(counsellor);
        self.settle(now);
        sessions
    }

    /// A counsellor goes available or away.
    pub fn set_status(
        &mut self,
        now: Instant,
        counsellor: CounsellorId,
        status: Status,
    ) -> Result<(), Refusal> {
        let entry = self
            .counsellors
            .get_mut(&counsellor)
            .ok_or(Refusal::UnknownCounsellor)?;
        if entry.status != status {
            entry.status = status;
            if status == Status::Available {
                entry.idle_since = now;
            }
        }
        self.push_load(counsellor);
        self.settle(now);
        Ok(())
    }

    /// Someone's connection dropped: their grace period starts.
    pub fn detached(&mut self, now: Instant, party: Party) -> Result<(), Refusal> {
        match party {
            Party::Seeker(session) => {
                let grace = self.config.seeker_grace;
                let entry = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(Refusal::UnknownSession)?;
                if entry.seeker != Link::Connected {
                    return Ok(());
                }
                let deadline = now + grace;
                entry.seeker = Link::Gone { deadline };
                self.timers.insert((deadline, party));
                if let Phase::Assigned { .. } = entry.phase {
                    self.effects.push_back(Effect::Presence {
                        session,
                        to: Side::Counsellor,
                        connected: false,
                    });
                }
            }
            Party::Counsellor(counsellor) => {
                let grace = self.config.counsellor_grace;
                let entry = self
                    .counsellors
                    .get_mut(&counsellor)
                    .ok_or(Refusal::UnknownCounsellor)?;
                if entry.link != Link::Connected {
                    return Ok(());
                }
                let deadline = now + grace;
                entry.link = Link::Gone { deadline };
                self.timers.insert((deadline, party));
                for &session in &entry.sessions {
                    self.effects.push_back(Effect::Presence {
                        session,
                        to: Side::Seeker,
                        connected: false,
                    });
                }
            }
        }
        Ok(())
    }

    /// A help-seeker resumed their session within the grace period.
    pub fn seeker_reattached(&mut self, now: Instant, session: SessionId) -> Result<(), Refusal> {
        let entry = self
            .sessions
            .get_mut(&session)
            .ok_or(Refusal::UnknownSession)?;
        if let Link::Gone { deadline } = entry.seeker {
            entry.seeker = Link::Connected;
            self.timers.remove(&(deadline, Party::Seeker(session)));
            if let Phase::Assigned { .. } = entry.phase {
                self.effects.push_back(Effect::Presence {
                    session,
                    to: Side::Counsellor,
                    connected: true,
                });
            }
        }
        self.settle(now);
        Ok(())
    }

    /// Runs every deadline that has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, party)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match party {
                Party::Seeker(session) => self.end(now, session, EndReason::SeekerTimedOut),
                Party::Counsellor(counsellor) => self.expire_counsellor(now, counsellor),
            }
        }
        self.settle(now);
    }

    /// The counsellor a session is with, if any.
    pub fn counsellor_of(&self, session: SessionId) -> Option<CounsellorId> {
        match self.sessions.get(&session)?.phase {
            Phase::Assigned { counsellor } => Some(counsellor),
            Phase::Waiting { .. } => None,
        }
    }

    /// A waiting session's position (1 is next).
    pub fn position(&self, session: SessionId) -> Option<u32> {
        self.queue
            .iter()
            .position(|s| s == session)
            .map(|p| count(p + 1))
    }

    /// How long a session's help-seeker waited, as of `now`.
    pub fn waited(&self, now: Instant, session: SessionId) -> Option<Duration> {
        let entry = self.sessions.get(&session)?;
        Some(match entry.phase {
            Phase::Waiting { .. } => {
                entry.waited_before + now.saturating_duration_since(entry.waiting_since)
            }
            Phase::Assigned { .. } => entry.waited_before,
        })
    }

    /// Whether a session's help-seeker is connected.
    pub fn seeker_connected(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.seeker == Link::Connected)
    }

    /// A counsellor's status, capacity and sessions, while they are
    /// connected or within their grace period.
    pub fn counsellor(&self, counsellor: CounsellorId) -> Option<CounsellorView> {
        let c = self.counsellors.get(&counsellor)?;
        Some(CounsellorView {
            status: c.status,
            capacity: c.capacity,
            sessions: c.sessions.iter().copied().collect(),
        })
    }

    /// How many help-seekers wait.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// How many sessions exist (waiting or assigned).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn end(&mut self, now: Instant, session: SessionId, reason: EndReason) {
        let Some(entry) = self.sessions.remove(&session) else {
            return;
        };
        if let Link::Gone { deadline } = entry.seeker {
            self.timers.remove(&(deadline, Party::Seeker(session)));
        }
        let mut waited = entry.waited_before;
        let counsellor = match entry.phase {
            Phase::Waiting { .. } => {
                self.queue.remove(session);
                waited += now.saturating_duration_since(entry.waiting_since);
                None
            }
            Phase::Assigned { counsellor } => {
                if let Some(c) = self.counsellors.get_mut(&counsellor) {
                    c.sessions.remove(&session);
                }
                self.push_load(counsellor);
                Some(counsellor)
            }
        };
        self.effects.push_back(Effect::Ended {
            session,
            counsellor,
            reason,
            waited,
        });
    }

    fn expire_counsellor(&mut self, now: Instant, counsellor: CounsellorId) {
        let Some(entry) = self.counsellors.remove(&counsellor) else {
            return;
        };
        for session in entry.sessions {
            let Some(s) = self.sessions.get_mut(&session) else {
                continue;
            };
            // Back to the front, ordered by original arrival.
            s.phase = Phase::Waiting {
                announced: None,
                requeued: true,
            };
            s.waiting_since = now;
            self.queue.push(session, Priority::Requeued, s.arrival);
        }
        self.effects
            .push_back(Effect::CounsellorExpired { counsellor });
    }

    fn push_load(&mut self, counsellor: CounsellorId) {
        if let Some(c) = self.counsellors.get(&counsellor) {
            self.effects.push_back(Effect::Load {
                counsellor,
                status: c.status,
                capacity: c.capacity,
                active: count(c.sessions.len()),
            });
        }
    }

    /// Routes while possible, then announces changed queue positions.
    fn settle(&mut self, now: Instant) {
        self.route(now);
        self.announce_positions();
    }

    fn route(&mut self, now: Instant) {
        loop {
            let Some(counsellor) = self.longest_idle_free_counsellor() else {
                return;
            };
            let sessions = &self.sessions;
            let Some(session) = self
                .queue
                .iter()
                .find(|s| sessions.get(s).is_some_and(|e| e.seeker == Link::Connected))
            else {
                return;
            };
            self.assign(now, session, counsellor);
        }
    }

    fn longest_idle_free_counsellor(&self) -> Option<CounsellorId> {
        self.counsellors
            .iter()
            .filter(|(_, c)| c.can_take())
            .min_by_key(|(id, c)| (c.idle_since, **id))
            .map(|(id, _)| *id)
    }

    fn assign(&mut self, now: Instant, session: SessionId, counsellor: CounsellorId) {
        self.queue.remove(session);
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        entry.waited_before += now.saturating_duration_since(entry.waiting_since);
        entry.phase = Phase::Assigned { counsellor };
        let waited = entry.waited_before;
        if let Some(c) = self.counsellors.get_mut(&counsellor) {
            c.sessions.insert(session);
            c.idle_since = now;
        }
        self.effects.push_back(Effect::Assigned {
            session,
            counsellor,
            waited,
        });
        self.push_load(counsellor);
    }

    fn announce_positions(&mut self) {
        for (index, session) in self.queue.iter().enumerate() {
            let Some(entry) = self.sessions.get_mut(&session) else {
                continue;
            };
            let position = count(index + 1);
            if let Phase::Waiting {
                announced,
                requeued,
            } = &mut entry.phase
                && *announced != Some(position)
            {
                *announced = Some(position);
                self.effects.push_back(Effect::Queued {
                    session,
                    position,
                    requeued: std::mem::take(requeued),
                });
            }
        }
    }
}
