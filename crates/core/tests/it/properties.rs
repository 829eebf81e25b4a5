//! Property tests of the router against a simple model.
//!
//! Random sequences of arrivals, ends, status changes, disconnects, resumes
//! and clock jumps. After every step the effects are checked against a
//! model that knows only what the effects said:
//!
//! - a help-seeker is never assigned while already assigned;
//! - a counsellor never holds more sessions than their capacity;
//! - within a priority, the earliest arrival is served first, and requeued
//!   help-seekers before everyone else;
//! - work conservation: whenever a connected help-seeker waits, no connected,
//!   available counsellor has free capacity;
//! - every help-seeker is in exactly one of waiting, assigned or ended, and
//!   the positions told to waiting help-seekers match the model's order;
//! - a grace period ends no earlier than promised, and nothing outlives it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use haven_core::{CounsellorId, Effect, EndReason, Party, Router, RouterConfig, SessionId, Status};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Arrive,
    SeekerEnd(usize),
    Connect(usize),
    SetStatus(usize, bool),
    CounsellorEnd(usize, usize),
    DetachSeeker(usize),
    ReattachSeeker(usize),
    DetachCounsellor(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Arrive),
        1 => any::<usize>().prop_map(Op::SeekerEnd),
        2 => (0..4usize).prop_map(Op::Connect),
        2 => ((0..4usize), any::<bool>()).prop_map(|(c, a)| Op::SetStatus(c, a)),
        3 => ((0..4usize), any::<usize>()).prop_map(|(c, s)| Op::CounsellorEnd(c, s)),
        1 => any::<usize>().prop_map(Op::DetachSeeker),
        1 => any::<usize>().prop_map(Op::ReattachSeeker),
        1 => (0..4usize).prop_map(Op::DetachCounsellor),
        2 => (0..150u64).prop_map(Op::Advance),
    ]
}

/// Fixed per counsellor so the capacity bound is a plain check.
fn capacity(c: usize) -> u32 {
    [1, 2, 3, 5][c]
}

#[derive(Default)]
struct Model {
    /// Waiting sessions keyed by (requeued first, arrival order).
    waiting: BTreeMap<(bool, u64), SessionId>,
    arrival: HashMap<SessionId, u64>,
    assigned: HashMap<SessionId, CounsellorId>,
    ended: BTreeSet<SessionId>,
    announced: HashMap<SessionId, u32>,
    seeker_gone: HashMap<SessionId, Instant>,
    counsellors: HashMap<CounsellorId, (bool /*connected*/, bool /*available*/)>,
    counsellor_gone: HashMap<CounsellorId, Instant>,
}

impl Model {
    fn key_of(&self, s: SessionId) -> Option<(bool, u64)> {
        self.waiting.iter().find(|(_, v)| **v == s).map(|(k, _)| *k)
    }

    fn load(&self, c: CounsellorId) -> usize {
        self.assigned.values().filter(|x| **x == c).count()
    }

    fn can_take(&self, c: CounsellorId) -> bool {
        let (connected, available) = self.counsellors.get(&c).copied().unwrap_or_default();
        connected && available && self.load(c) < capacity(usize::try_from(c.0).unwrap()) as usize
    }

    fn first_connected_waiting(&self) -> Option<SessionId> {
        // Requeued (true) sorts after false in a BTreeMap, so walk in two passes.
        let requeued = self.waiting.iter().filter(|(k, _)| k.0);
        let normal = self.waiting.iter().filter(|(k, _)| !k.0);
        requeued
            .chain(normal)
            .map(|(_, s)| *s)
            .find(|s| !self.seeker_gone.contains_key(s))
    }

    fn order(&self) -> Vec<SessionId> {
        let requeued = self.waiting.iter().filter(|(k, _)| k.0);
        let normal = self.waiting.iter().filter(|(k, _)| !k.0);
        requeued.chain(normal).map(|(_, s)| *s).collect()
    }
}

fn apply(
    model: &mut Model,
    router: &mut Router,
    now: Instant,
    cfg: &RouterConfig,
) -> Result<(), TestCaseError> {
    while let Some(effect) = router.poll_effect() {
        match effect {
            Effect::Assigned {
                session,
                counsellor,
                ..
            } => {
                prop_assert!(
                    !model.assigned.contains_key(&session),
                    "assigned twice: {session:?}"
                );
                prop_assert!(
                    model.can_take(counsellor),
                    "{counsellor:?} could not take a session"
                );
                let expected = model.first_connected_waiting();
                prop_assert_eq!(expected, Some(session), "not the first in line");
                let key = model.key_of(session).unwrap();
                model.waiting.remove(&key);
                model.announced.remove(&session);
                model.assigned.insert(session, counsellor);
            }
            Effect::Ended {
                session, reason, ..
            } => {
                if reason == EndReason::SeekerTimedOut {
                    let gone = model.seeker_gone.get(&session).copied();
                    prop_assert!(
                        gone.is_some_and(|g| now >= g + cfg.seeker_grace),
                        "early timeout"
                    );
                }
                if let Some(key) = model.key_of(session) {
                    model.waiting.remove(&key);
                }
                model.assigned.remove(&session);
                model.announced.remove(&session);
                model.seeker_gone.remove(&session);
                prop_assert!(model.ended.insert(session), "ended twice");
            }
            Effect::CounsellorExpired { counsellor } => {
                let gone = model.counsellor_gone.remove(&counsellor);
                prop_assert!(
                    gone.is_some_and(|g| now >= g + cfg.counsellor_grace),
                    "early expiry"
                );
                model.counsellors.remove(&counsellor);
                let mine: Vec<_> = model
                    .assigned
                    .iter()
                    .filter(|(_, c)| **c == counsellor)
                    .map(|(s, _)| *s)
                    .collect();
                for s in mine {
                    model.assigned.remove(&s);
                    model.waiting.insert((true, model.arrival[&s]), s);
                }
            }
            Effect::Queued {
                session, position, ..
            } => {
                prop_assert!(
                    model.key_of(session).is_some(),
                    "position for a non-waiting session"
                );
                model.announced.insert(session, position);
            }
            Effect::Presence { .. } | Effect::Load { .. } => {}
        }
    }

    // Work conservation.
    if model.first_connected_waiting().is_some() {
        for &c in model.counsellors.keys() {
            prop_assert!(!model.can_take(c), "{c:?} idle while someone waits");
        }
    }
    // Capacity.
    for &c in model.counsellors.keys() {
        prop_assert!(model.load(c) <= capacity(usize::try_from(c.0).unwrap()) as usize);
    }
    // Positions told match the order, and agree with the router.
    for (i, s) in model.order().into_iter().enumerate() {
        let pos = u32::try_from(i + 1).unwrap();
        prop_assert_eq!(model.announced.get(&s).copied(), Some(pos));
        prop_assert_eq!(router.position(s), Some(pos));
    }
    // Nothing outlives its grace period.
    if let Some(deadline) = router.poll_timeout() {
        prop_assert!(deadline > now, "a deadline passed without being handled");
    }
    // Exactly one state each.
    prop_assert_eq!(
        router.session_count(),
        model.waiting.len() + model.assigned.len()
    );
    prop_assert_eq!(router.queue_len(), model.waiting.len());
    Ok(())
}

fn pick(sessions: &[SessionId], i: usize) -> Option<SessionId> {
    (!sessions.is_empty()).then(|| sessions[i % sessions.len()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn router_keeps_its_invariants(ops in prop::collection::vec(op(), 1..200)) {
        let cfg = RouterConfig { seeker_grace: Duration::from_secs(120), counsellor_grace: Duration::from_secs(60) };
        let mut router = Router::new(cfg);
        let mut model = Model::default();
        let mut now = Instant::now();
        let mut all: Vec<SessionId> = Vec::new();

        for op in ops {
            match op {
                Op::Arrive => {
                    let s = SessionId(all.len() as u128 + 1);
                    all.push(s);
                    router.seeker_arrived(now, s).unwrap();
                    model.arrival.insert(s, all.len() as u64);
                    model.waiting.insert((false, all.len() as u64), s);
                }
                Op::SeekerEnd(i) => {
                    if let Some(s) = pick(&all, i) {
                        let live = !model.ended.contains(&s);
                        prop_assert_eq!(router.seeker_ended(now, s).is_ok(), live);
                    }
                }
                Op::Connect(c) => {
                    let id = CounsellorId(c as u64);
                    router.counsellor_connected(now, id, capacity(c));
                    let available = model.counsellors.get(&id).is_some_and(|x| x.1);
                    model.counsellors.insert(id, (true, available));
                    model.counsellor_gone.remove(&id);
                }
                Op::SetStatus(c, avail) => {
                    let id = CounsellorId(c as u64);
                    let status = if avail { Status::Available } else { Status::Away };
                    let known = model.counsellors.contains_key(&id);
                    prop_assert_eq!(router.set_status(now, id, status).is_ok(), known);
                    if let Some(x) = model.counsellors.get_mut(&id) {
                        x.1 = avail;
                    }
                }
                Op::CounsellorEnd(c, i) => {
                    let id = CounsellorId(c as u64);
                    let mine: Vec<_> = model.assigned.iter().filter(|(_, x)| **x == id).map(|(s, _)| *s).collect();
                    if let Some(s) = pick(&mine, i) {
                        router.counsellor_ended(now, id, s).unwrap();
                    } else if let Some(s) = pick(&all, i) {
                        prop_assert!(router.counsellor_ended(now, id, s).is_err());
                    }
                }
                Op::DetachSeeker(i) => {
                    if let Some(s) = pick(&all, i) {
                        if router.detached(now, Party::Seeker(s)).is_ok() {
                            model.seeker_gone.entry(s).or_insert(now);
                        } else {
                            prop_assert!(model.ended.contains(&s));
                        }
                    }
                }
                Op::ReattachSeeker(i) => {
                    if let Some(s) = pick(&all, i) {
                        if router.seeker_reattached(now, s).is_ok() {
                            model.seeker_gone.remove(&s);
                        } else {
                            prop_assert!(model.ended.contains(&s));
                        }
                    }
                }
                Op::DetachCounsellor(c) => {
                    let id = CounsellorId(c as u64);
                    if router.detached(now, Party::Counsellor(id)).is_ok() {
                        if let Some(x) = model.counsellors.get_mut(&id) {
                            x.0 = false;
                        }
                        model.counsellor_gone.entry(id).or_insert(now);
                    }
                }
                Op::Advance(secs) => {
                    now += Duration::from_secs(secs);
                    router.handle_timeout(now);
                }
            }
            apply(&mut model, &mut router, now, &cfg)?;
        }
    }
}
