//! The router's whole state as plain data, and a router rebuilt from it.
//!
//! A node that runs the router can die; the node that takes over rebuilds
//! the router from the last snapshot its predecessor stored (and the
//! inputs since). A snapshot holds ids, counts, skills and times, nothing
//! a person wrote. Times are kept relative to the router's origin (the
//! moment it was first created), a frame that stays put for its whole
//! life: a record that did not change reads the same in every snapshot,
//! so the shell can store only what changed, and the shell maps the
//! origin to the wall clock to restore it in another process, on another
//! machine, whose clock (`Instant`) means something else. A restored
//! router behaves exactly as the original would have (a property test
//! runs both side by side on random inputs and compares every effect and
//! event).
//!
//! Take a snapshot when the router is at rest: after the shell drained
//! its effects and events (those are not part of it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::waits::WaitModel;
use super::{
    Counsellor, Gate, Link, Offer, Phase, Profile, Router, RouterConfig, Seeker, Slot, Status,
    Timer, TopicState,
};
use crate::ids::{CounsellorId, LangId, SessionId, TopicId};
use crate::queue::Key;

/// A moment relative to the router's origin, in nanoseconds.
pub type Offset = i64;

fn offset(at: Instant, t: Instant) -> Offset {
    if t >= at {
        i64::try_from(t.duration_since(at).as_nanos()).unwrap_or(i64::MAX)
    } else {
        i64::try_from(at.duration_since(t).as_nanos()).map_or(i64::MIN, |n| -n)
    }
}

/// The instant `off` from `origin`.
fn moment(origin: Instant, off: Offset) -> Instant {
    let by = Duration::from_nanos(off.unsigned_abs());
    if off >= 0 {
        origin + by
    } else {
        origin.checked_sub(by).unwrap_or(origin)
    }
}

/// Where a session is, in a snapshot.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhaseSnapshot {
    /// In its topic's line.
    Waiting,
    /// With these counsellors (the longest-serving first), since then.
    Assigned {
        /// Its counsellors.
        counsellors: Vec<CounsellorId>,
        /// Since when.
        since: Offset,
    },
}

/// A pending offer, in a snapshot.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferSnapshot {
    /// Offered to.
    pub to: CounsellorId,
    /// Runs out then.
    pub until: Offset,
    /// The colleague transferring it, if a transfer.
    pub from: Option<CounsellorId>,
    /// Whether a warm transfer.
    pub warm: bool,
}

/// A help-seeker's session, in a snapshot.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeekerSnapshot {
    /// The session.
    pub session: SessionId,
    /// Its topic.
    pub topic: TopicId,
    /// The language asked for.
    pub language: Option<LangId>,
    /// Place in line: virtual arrival (ms from the router's origin, less
    /// any head start) and arrival number.
    pub key: (i64, u64),
    /// First arrival, virtual ms.
    pub arrived_ms: i64,
    /// Where it is.
    pub phase: PhaseSnapshot,
    /// A pending offer.
    pub offer: Option<OfferSnapshot>,
    /// `None` while connected; when dropped, the end of their grace.
    pub gone_until: Option<Offset>,
    /// When the current stretch of waiting began.
    pub waiting_since: Offset,
    /// Time waited in earlier stretches.
    pub waited_before: Duration,
    /// The counsellor to prefer, and until when.
    pub prefer: Option<(CounsellorId, Offset)>,
    /// Who declined it or let an offer run out.
    pub declined: Vec<CounsellorId>,
    /// Position and wait (minutes) last told.
    pub announced: Option<(u32, Option<u64>)>,
    /// Whether the next announcement says they were put back.
    pub requeued: bool,
    /// Whether a counsellor has answered them.
    pub answered: bool,
    /// Whether urgent.
    pub urgent: bool,
    /// Whether a counsellor's hand is raised about it.
    pub hand: bool,
}

/// A counsellor, in a snapshot.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounsellorSnapshot {
    /// Who.
    pub id: CounsellorId,
    /// Skills and capacity.
    pub profile: Profile,
    /// As they chose it.
    pub status: Status,
    /// The end of their wrap-up.
    pub wrap_until: Option<Offset>,
    /// Their sessions.
    pub sessions: Vec<SessionId>,
    /// Sessions offered to them.
    pub offers: Vec<SessionId>,
    /// `None` while connected; when dropped, the end of their grace.
    pub gone_until: Option<Offset>,
    /// Since when they were idle (the longest idle is served first).
    pub idle_since: Offset,
}

/// Everything a router holds, as plain data.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSnapshot {
    /// Every session, by id.
    pub seekers: Vec<SeekerSnapshot>,
    /// Every counsellor, by id.
    pub counsellors: Vec<CounsellorSnapshot>,
    /// Per topic: its gate and whether paused.
    pub topics: Vec<(Gate, bool)>,
    /// Per topic: the measured mean seat time, if any yet.
    pub waits: Vec<Option<Duration>>,
    /// Return codes (as the shell keyed them): counsellor and expiry.
    pub returns: Vec<(u64, CounsellorId, Offset)>,
    /// The next arrival number.
    pub next_arrival: u64,
    /// When the next position announcement is due, if one is.
    pub tick: Option<Offset>,
}

impl Router {
    /// The moment the router's times count from; a restored router keeps
    /// the original's (as read on its own clock).
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The router's state, as plain data. Take it at rest: after the
    /// effects and events were drained.
    pub fn snapshot(&self) -> RouterSnapshot {
        let origin = self.origin;
        let at = |t: Instant| offset(origin, t);
        let gone = |link: Link| match link {
            Link::Connected => None,
            Link::Gone { deadline } => Some(at(deadline)),
        };
        let mut seekers: Vec<SeekerSnapshot> = self
            .seekers
            .iter()
            .map(|(&session, s)| SeekerSnapshot {
                session,
                topic: s.topic,
                language: s.language,
                key: (s.key.virtual_ms, s.key.arrival),
                arrived_ms: s.arrived_ms,
                phase: match &s.phase {
                    Phase::Waiting => PhaseSnapshot::Waiting,
                    Phase::Assigned { counsellors, since } => PhaseSnapshot::Assigned {
                        counsellors: counsellors.clone(),
                        since: at(*since),
                    },
                },
                offer: s.offer.map(|o| OfferSnapshot {
                    to: o.to,
                    until: at(o.until),
                    from: o.from,
                    warm: o.warm,
                }),
                gone_until: gone(s.link),
                waiting_since: at(s.waiting_since),
                waited_before: s.waited_before,
                prefer: s.prefer.map(|(c, until)| (c, at(until))),
                declined: s.declined.clone(),
                announced: s.announced,
                requeued: s.requeued,
                answered: s.answered,
                urgent: s.urgent,
                hand: s.hand,
            })
            .collect();
        seekers.sort_unstable_by_key(|s| s.session);
        let mut counsellors: Vec<CounsellorSnapshot> = self
            .counsellors
            .iter()
            .map(|(&id, c)| CounsellorSnapshot {
                id,
                profile: c.profile.clone(),
                status: c.status,
                wrap_until: c.wrap_until.map(at),
                sessions: c.sessions.iter().copied().collect(),
                offers: c.offers.iter().copied().collect(),
                gone_until: gone(c.link),
                idle_since: at(c.idle_since),
            })
            .collect();
        counsellors.sort_unstable_by_key(|c| c.id);
        let mut returns: Vec<(u64, CounsellorId, Offset)> = self
            .returns
            .iter()
            .map(|(&code, &(c, until))| (code, c, at(until)))
            .collect();
        returns.sort_unstable();
        RouterSnapshot {
            seekers,
            counsellors,
            topics: self.topics.iter().map(|t| (t.gate, t.paused)).collect(),
            waits: self.waits.iter().map(WaitModel::mean).collect(),
            returns,
            next_arrival: self.next_arrival,
            tick: self
                .timers
                .iter()
                .find(|(_, t)| *t == Timer::Tick)
                .map(|(when, _)| at(*when)),
        }
    }

    /// A router with `config` in the state `snapshot` describes, its
    /// times counting from `origin` (the original router's origin, read
    /// on this clock). Lines, ready lists and timers are rebuilt from it.
    pub fn restore(config: RouterConfig, snapshot: &RouterSnapshot, origin: Instant) -> Self {
        let mut router = Router::new(config, origin);
        let at = |off: Offset| moment(origin, off);
        let gone = |until: Option<Offset>| match until {
            None => Link::Connected,
            Some(off) => Link::Gone { deadline: at(off) },
        };
        for (i, &(gate, paused)) in snapshot.topics.iter().enumerate() {
            if let Some(t) = router.topics.get_mut(i) {
                *t = TopicState { gate, paused };
            }
        }
        for (i, mean) in snapshot.waits.iter().enumerate() {
            if let Some(w) = router.waits.get_mut(i) {
                w.set_mean(*mean);
            }
        }
        for c in &snapshot.counsellors {
            let link = gone(c.gone_until);
            let wrap_until = c.wrap_until.map(at);
            if let Link::Gone { deadline } = link {
                router
                    .timers
                    .insert((deadline, Timer::CounsellorGrace(c.id)));
            }
            if let Some(until) = wrap_until {
                router.timers.insert((until, Timer::WrapUp(c.id)));
            }
            router.counsellors.insert(
                c.id,
                Counsellor {
                    profile: c.profile.clone(),
                    status: c.status,
                    wrap_until,
                    sessions: c.sessions.iter().copied().collect::<BTreeSet<_>>(),
                    offers: c.offers.iter().copied().collect::<BTreeSet<_>>(),
                    link,
                    idle_since: at(c.idle_since),
                    ready: None,
                },
            );
        }
        for s in &snapshot.seekers {
            let key = Key {
                virtual_ms: s.key.0,
                arrival: s.key.1,
            };
            let link = gone(s.gone_until);
            let offer = s.offer.map(|o| Offer {
                to: o.to,
                until: at(o.until),
                from: o.from,
                warm: o.warm,
            });
            let prefer = s.prefer.map(|(c, off)| (c, at(off)));
            if let Link::Gone { deadline } = link {
                router
                    .timers
                    .insert((deadline, Timer::SeekerGrace(s.session)));
            }
            if let Some(o) = offer {
                router.timers.insert((o.until, Timer::Offer(s.session)));
            }
            if let Some((_, until)) = prefer {
                router.timers.insert((until, Timer::Prefer(s.session)));
            }
            let phase = match &s.phase {
                PhaseSnapshot::Waiting => {
                    if let Some(line) = router.lines.get_mut(usize::from(s.topic.0)) {
                        line.insert(key, s.session);
                    }
                    Phase::Waiting
                }
                PhaseSnapshot::Assigned { counsellors, since } => Phase::Assigned {
                    counsellors: counsellors.clone(),
                    since: at(*since),
                },
            };
            router.seekers.insert(
                s.session,
                Seeker {
                    topic: s.topic,
                    language: s.language,
                    key,
                    arrived_ms: s.arrived_ms,
                    phase,
                    offer,
                    link,
                    waiting_since: at(s.waiting_since),
                    waited_before: s.waited_before,
                    prefer,
                    declined: s.declined.clone(),
                    announced: s.announced,
                    requeued: s.requeued,
                    answered: s.answered,
                    urgent: s.urgent,
                    hand: s.hand,
                    slot: Slot::None,
                },
            );
            router.place(s.session);
        }
        let ids: Vec<CounsellorId> = snapshot.counsellors.iter().map(|c| c.id).collect();
        for c in ids {
            router.refresh_ready(c);
        }
        for &(code, c, until) in &snapshot.returns {
            router.returns.insert(code, (c, at(until)));
        }
        router.next_arrival = snapshot.next_arrival;
        if let Some(off) = snapshot.tick {
            router.ticking = true;
            router.timers.insert((at(off), Timer::Tick));
        }
        // The snapshot was taken at rest: nothing is left to match.
        router.dirty_counsellors.clear();
        router.dirty_seekers.clear();
        router
    }
}
