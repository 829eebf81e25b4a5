//! Property tests of the router: random sequences of arrivals, ends,
//! status and capacity changes, offers answered or ignored, transfers,
//! disconnects, resumes and clock jumps, over two topics (one auto-assign
//! with wrap-up, one offer-and-accept), two languages and four counsellors
//! with different skills.
//!
//! A light model follows only what the effects announce, and after every
//! step these must hold:
//!
//! - **nobody is served twice**: a session from the queue is never assigned
//!   while it has a counsellor, and nobody is in a session twice;
//! - **nobody is lost**: every help-seeker is exactly one of waiting (with
//!   a position), with counsellors, or ended;
//! - **no counsellor is routed over capacity, while away or during
//!   wrap-up** (transfers are asked for by people and may exceed it);
//! - **positions are 1..n without gaps** in every topic, and **FIFO holds
//!   within a priority**;
//! - **work conservation**: no help-seeker who could be routed waits while
//!   a counsellor who could take them is free;
//! - grace periods end no earlier than promised, and nothing outlives them;
//! - **the overviews the supervisor snapshot is built from** (every
//!   session, every counsellor, every topic in one pass) say what the
//!   one-at-a-time queries say.
//!
//! A second property runs a router beside a copy that is snapshotted and
//! restored, again and again, on a clock that reads something else: both
//! must answer, decide and time everything alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use haven_core::{
    Activity, Arrival, Assignment, CounsellorId, Effect, Event, LangId, Party, Profile, Router,
    RouterConfig, SessionId, Stage, Status, TopicId, TopicRules, Transfer,
};
use proptest::prelude::*;

const TOPICS: u16 = 2;
const OFFER_TIMEOUT: Duration = Duration::from_secs(20);
const WRAP_UP: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Op {
    Arrive {
        topic: u16,
        language: Option<u16>,
        urgent: bool,
    },
    SeekerEnd(usize),
    DetachSeeker(usize),
    ReattachSeeker(usize),
    Connect(usize),
    DetachCounsellor(usize),
    SetStatus(usize, bool),
    SetCapacity(usize, u32),
    EndWrapUp(usize),
    Accept(usize, usize),
    Decline(usize, usize),
    CounsellorEnd(usize, usize),
    TransferTo(usize, usize, usize, bool),
    TransferToTopic(usize, usize, u16),
    RaiseHand(usize, usize, bool),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TOPICS, prop::option::of(0..2u16), prop::bool::weighted(0.2))
            .prop_map(|(topic, language, urgent)| Op::Arrive { topic, language, urgent }),
        1 => any::<usize>().prop_map(Op::SeekerEnd),
        1 => any::<usize>().prop_map(Op::DetachSeeker),
        1 => any::<usize>().prop_map(Op::ReattachSeeker),
        2 => (0..4usize).prop_map(Op::Connect),
        1 => (0..4usize).prop_map(Op::DetachCounsellor),
        2 => ((0..4usize), any::<bool>()).prop_map(|(c, a)| Op::SetStatus(c, a)),
        1 => ((0..4usize), 0..5u32).prop_map(|(c, n)| Op::SetCapacity(c, n)),
        1 => (0..4usize).prop_map(Op::EndWrapUp),
        3 => ((0..4usize), any::<usize>()).prop_map(|(c, i)| Op::Accept(c, i)),
        1 => ((0..4usize), any::<usize>()).prop_map(|(c, i)| Op::Decline(c, i)),
        3 => ((0..4usize), any::<usize>()).prop_map(|(c, i)| Op::CounsellorEnd(c, i)),
        1 => ((0..4usize), any::<usize>(), 0..4usize, any::<bool>()).prop_map(|(c, i, d, w)| Op::TransferTo(c, i, d, w)),
        1 => ((0..4usize), any::<usize>(), 0..TOPICS).prop_map(|(c, i, t)| Op::TransferToTopic(c, i, t)),
        1 => ((0..4usize), any::<usize>(), any::<bool>()).prop_map(|(c, i, r)| Op::RaiseHand(c, i, r)),
        3 => (0..40u64).prop_map(Op::Advance),
    ]
}

/// Fixed skills per counsellor.
fn profile(c: usize) -> Profile {
    let (topics, languages, capacity) = match c {
        0 => (vec![0], vec![0], 1),
        1 => (vec![0, 1], vec![0, 1], 2),
        2 => (vec![1], vec![1], 2),
        _ => (vec![0, 1], vec![0], 3),
    };
    Profile {
        topics: topics.into_iter().map(TopicId).collect(),
        languages: languages.into_iter().map(LangId).collect(),
        capacity,
        max_capacity: 3,
    }
}

#[derive(Clone, Debug)]
struct Seen {
    topic: TopicId,
    language: Option<LangId>,
    urgent: bool,
    arrival: usize,
    requeued: bool,
}

#[derive(Default)]
struct Model {
    seekers: HashMap<SessionId, Seen>,
    owners: HashMap<SessionId, Vec<CounsellorId>>,
    ended: BTreeSet<SessionId>,
    /// Sessions whose end (or abandon) the events told.
    told_ended: BTreeSet<SessionId>,
    /// Pending offers: session → (counsellor, from the queue?).
    offers: HashMap<SessionId, (CounsellorId, bool)>,
    declined: HashMap<SessionId, BTreeSet<CounsellorId>>,
    seeker_gone: HashMap<SessionId, Instant>,
    /// What the last Load effect said: activity, capacity.
    load: HashMap<CounsellorId, (Activity, u32)>,
    connected: BTreeSet<CounsellorId>,
    counsellor_gone: HashMap<CounsellorId, Instant>,
}

impl Model {
    fn active(&self, c: CounsellorId) -> usize {
        self.owners.values().filter(|o| o.contains(&c)).count()
            + self.offers.values().filter(|(x, _)| *x == c).count()
    }

    /// Whether `c` could take a session from the queue now.
    fn can_take(&self, c: CounsellorId) -> bool {
        self.connected.contains(&c)
            && matches!(self.load.get(&c), Some((Activity::Available, cap)) if self.active(c) < *cap as usize)
    }

    fn matches(&self, c: CounsellorId, s: &Seen) -> bool {
        let p = profile(usize::try_from(c.0).unwrap());
        p.topics.contains(&s.topic) && s.language.is_none_or(|l| p.languages.contains(&l))
    }
}

fn check(
    model: &mut Model,
    router: &mut Router,
    now: Instant,
    cfg: &RouterConfig,
) -> Result<(), TestCaseError> {
    while let Some(effect) = router.poll_effect() {
        match effect {
            Effect::Offered {
                session,
                counsellor,
                from,
                ..
            } => {
                prop_assert!(
                    !model.offers.contains_key(&session),
                    "two offers at once for {session:?}"
                );
                if from.is_none() {
                    prop_assert!(
                        !model.owners.contains_key(&session),
                        "offered while with a counsellor"
                    );
                    prop_assert!(
                        model.can_take(counsellor),
                        "queue offer to {counsellor:?} who cannot take it"
                    );
                    prop_assert!(
                        model.matches(counsellor, &model.seekers[&session]),
                        "skills mismatch"
                    );
                    prop_assert!(
                        !model
                            .declined
                            .get(&session)
                            .is_some_and(|d| d.contains(&counsellor)),
                        "offered again after a decline"
                    );
                }
                model.offers.insert(session, (counsellor, from.is_none()));
            }
            Effect::OfferWithdrawn {
                session,
                counsellor,
                ..
            } => {
                if let Some((c, queue)) = model.offers.remove(&session) {
                    prop_assert_eq!(c, counsellor);
                    if queue {
                        model.declined.entry(session).or_default().insert(c);
                    }
                }
            }
            Effect::Assigned {
                session,
                counsellor,
                from,
                ..
            } => {
                let offer = model.offers.remove(&session);
                // Declines count for one stretch of waiting.
                model.declined.remove(&session);
                let owners = model.owners.entry(session).or_default();
                prop_assert!(
                    !owners.contains(&counsellor),
                    "{counsellor:?} already in {session:?}"
                );
                if from.is_none() {
                    prop_assert!(owners.is_empty(), "served twice: {session:?}");
                    if offer.is_none() {
                        // Direct assignment from the queue: the routing rules apply.
                        owners.push(counsellor);
                        let ok = model.connected.contains(&counsellor)
                            && matches!(model.load.get(&counsellor), Some((Activity::Available, cap)) if model.active(counsellor) <= *cap as usize);
                        prop_assert!(ok, "assigned to {counsellor:?} who could not take it");
                        prop_assert!(
                            model.matches(counsellor, &model.seekers[&session]),
                            "skills mismatch"
                        );
                        continue;
                    }
                }
                owners.push(counsellor);
            }
            Effect::TransferFailed { session, .. } => {
                model.offers.remove(&session);
            }
            Effect::Left {
                session,
                counsellor,
            } => {
                let owners = model.owners.entry(session).or_default();
                prop_assert!(
                    owners.contains(&counsellor),
                    "{counsellor:?} left {session:?} without being in it"
                );
                owners.retain(|c| *c != counsellor);
                if owners.is_empty() {
                    model.owners.remove(&session);
                }
            }
            Effect::Ended {
                session,
                counsellors,
                ..
            } => {
                let had = model.owners.remove(&session).unwrap_or_default();
                prop_assert_eq!(
                    had.iter().collect::<BTreeSet<_>>(),
                    counsellors.iter().collect::<BTreeSet<_>>()
                );
                model.offers.remove(&session);
                model.seeker_gone.remove(&session);
                prop_assert!(model.ended.insert(session), "ended twice");
            }
            Effect::CounsellorExpired { counsellor } => {
                let gone = model.counsellor_gone.remove(&counsellor);
                prop_assert!(
                    gone.is_some_and(|g| now >= g + cfg.counsellor_grace),
                    "early expiry"
                );
                for owners in model.owners.values_mut() {
                    owners.retain(|c| *c != counsellor);
                }
                model.owners.retain(|_, o| !o.is_empty());
                model.load.remove(&counsellor);
            }
            Effect::Queued {
                session, requeued, ..
            } => {
                prop_assert!(
                    !model.ended.contains(&session),
                    "position for {session:?}, which ended"
                );
                if requeued {
                    model.owners.remove(&session);
                    if let Some(s) = model.seekers.get_mut(&session) {
                        s.requeued = true;
                        s.topic = router.topic_of(session).unwrap();
                    }
                }
            }
            Effect::Load {
                counsellor,
                activity,
                capacity,
                ..
            } => {
                model.load.insert(counsellor, (activity, capacity));
            }
            Effect::Hand {
                session,
                counsellor,
                ..
            } => {
                prop_assert!(
                    model
                        .owners
                        .get(&session)
                        .is_some_and(|o| o.contains(&counsellor)),
                    "a hand raised about a session not theirs"
                );
            }
            Effect::Presence { .. } | Effect::TopicNotice { .. } => {}
        }
    }

    // Every session that ended was told to the supervisor view exactly
    // once, as an abandon or an end, and nothing about it after that.
    while let Some(event) = router.poll_event() {
        let (session, terminal) = match event {
            Event::Abandoned { session, .. } | Event::Ended { session, .. } => (session, true),
            Event::Queued { session, .. }
            | Event::Position { session, .. }
            | Event::Offered { session, .. }
            | Event::Accepted { session, .. }
            | Event::Declined { session, .. }
            | Event::OfferTimedOut { session, .. }
            | Event::Started { session, .. }
            | Event::Transferred { session, .. }
            | Event::Requeued { session, .. }
            | Event::Hand { session, .. } => (session, false),
            Event::Counsellor { .. }
            | Event::CounsellorOffline { .. }
            | Event::TopicPaused { .. } => continue,
        };
        prop_assert!(
            !model.told_ended.contains(&session),
            "an event about {session:?} after its end"
        );
        if terminal {
            model.told_ended.insert(session);
        }
    }
    prop_assert_eq!(
        &model.told_ended,
        &model.ended,
        "ends told and ends done differ"
    );

    // Nobody lost, nobody in two states.
    for (session, seen) in &model.seekers {
        let waiting = router.is_waiting(*session);
        let assigned = !router.counsellors_of(*session).is_empty();
        let ended = model.ended.contains(session);
        prop_assert_eq!(
            u8::from(waiting) + u8::from(assigned) + u8::from(ended),
            1,
            "{:?} in {} states",
            session,
            u8::from(waiting) + u8::from(assigned) + u8::from(ended)
        );
        prop_assert_eq!(
            router
                .counsellors_of(*session)
                .iter()
                .collect::<BTreeSet<_>>(),
            model
                .owners
                .get(session)
                .map(|o| o.iter().collect())
                .unwrap_or_default()
        );
        if waiting {
            prop_assert_eq!(router.topic_of(*session), Some(seen.topic));
        }
    }

    check_overviews(model, router, now)?;

    // Positions 1..n without gaps, FIFO within a priority.
    let mut by_topic: BTreeMap<TopicId, Vec<(u32, SessionId)>> = BTreeMap::new();
    for session in model.seekers.keys() {
        if let Some(p) = router.position(*session) {
            by_topic
                .entry(model.seekers[session].topic)
                .or_default()
                .push((p, *session));
        }
    }
    for list in by_topic.values_mut() {
        list.sort();
        for (i, (p, _)) in list.iter().enumerate() {
            prop_assert_eq!(*p as usize, i + 1, "positions have a gap or a repeat");
        }
        for pair in list.windows(2) {
            let (a, b) = (&model.seekers[&pair[0].1], &model.seekers[&pair[1].1]);
            if a.urgent == b.urgent && a.requeued == b.requeued {
                prop_assert!(a.arrival < b.arrival, "FIFO broken within a priority");
            }
        }
    }

    // Work conservation.
    for (session, seen) in &model.seekers {
        let routable = router.is_waiting(*session)
            && !model.offers.contains_key(session)
            && !model.seeker_gone.contains_key(session);
        if !routable {
            continue;
        }
        for c in 0..4u64 {
            let c = CounsellorId(c);
            let declined = model.declined.get(session).is_some_and(|d| d.contains(&c));
            prop_assert!(
                !(model.can_take(c) && model.matches(c, seen) && !declined),
                "{session:?} waits while {c:?} could take them"
            );
        }
    }

    if let Some(deadline) = router.poll_timeout() {
        prop_assert!(deadline > now, "a deadline passed without being handled");
    }
    Ok(())
}

/// The overviews agree with the queries about one session, counsellor or
/// topic at a time.
fn check_overviews(model: &Model, router: &Router, now: Instant) -> Result<(), TestCaseError> {
    let mut listed = 0;
    for o in router.sessions_overview(now) {
        listed += 1;
        let s = o.session;
        prop_assert_eq!(Some(o.topic), router.topic_of(s));
        prop_assert_eq!(o.urgent, model.seekers[&s].urgent);
        prop_assert_eq!(o.hand, router.hand_raised(s));
        match o.stage {
            Stage::Waiting { waited } => {
                prop_assert!(router.is_waiting(s));
                prop_assert_eq!(Some(waited), router.waited(now, s));
            }
            Stage::Assigned { counsellors, with } => {
                prop_assert_eq!(counsellors, router.counsellors_of(s));
                prop_assert_eq!(Some(with), router.time_with_counsellor(now, s));
            }
        }
    }
    prop_assert_eq!(listed, router.session_count());
    for c in router.counsellors_overview(now) {
        let view = router.counsellor(now, c.counsellor);
        prop_assert!(view.is_some(), "{:?} listed but unknown", c.counsellor);
        let view = view.unwrap_or_else(|| unreachable!());
        prop_assert_eq!(c.activity, view.activity);
        prop_assert_eq!(c.capacity, view.capacity);
        prop_assert_eq!(c.load, view.sessions.len() + view.offers.len());
    }
    let summaries = router.topic_summaries(now);
    prop_assert_eq!(summaries.len(), 2);
    for (t, summary) in summaries.into_iter().enumerate() {
        let topic = TopicId(u16::try_from(t).unwrap_or(u16::MAX));
        prop_assert_eq!(Some(summary), router.topic_summary(now, topic));
    }
    Ok(())
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn router_keeps_its_invariants(ops in prop::collection::vec(op(), 1..200)) {
        let topics = vec![
            TopicRules { wrap_up: WRAP_UP, ..TopicRules::default() },
            TopicRules { assignment: Assignment::Offer { timeout: OFFER_TIMEOUT }, ..TopicRules::default() },
        ];
        let cfg = RouterConfig { topics, ..RouterConfig::default() };
        let mut now = Instant::now();
        let mut router = Router::new(cfg.clone(), now);
        let mut model = Model::default();
        let mut all: Vec<SessionId> = Vec::new();

        for op in ops {
            match op {
                Op::Arrive { topic, language, urgent } => {
                    let session = SessionId(all.len() as u128 + 1);
                    let arrival = Arrival { topic: TopicId(topic), language: language.map(LangId), urgent, prefer: None };
                    router.seeker_arrived(now, session, arrival).unwrap();
                    model.seekers.insert(session, Seen { topic: TopicId(topic), language: language.map(LangId), urgent, arrival: all.len(), requeued: false });
                    all.push(session);
                }
                Op::SeekerEnd(i) => {
                    if let Some(s) = pick(&all, i) {
                        prop_assert_eq!(router.seeker_ended(now, s).is_ok(), !model.ended.contains(&s));
                    }
                }
                Op::DetachSeeker(i) => {
                    if let Some(s) = pick(&all, i) && router.detached(now, Party::Seeker(s)).is_ok() {
                        model.seeker_gone.entry(s).or_insert(now);
                    }
                }
                Op::ReattachSeeker(i) => {
                    if let Some(s) = pick(&all, i) && router.seeker_reattached(now, s).is_ok() {
                        model.seeker_gone.remove(&s);
                    }
                }
                Op::Connect(c) => {
                    let id = CounsellorId(c as u64);
                    router.counsellor_connected(now, id, profile(c));
                    model.connected.insert(id);
                    model.counsellor_gone.remove(&id);
                }
                Op::DetachCounsellor(c) => {
                    let id = CounsellorId(c as u64);
                    if router.detached(now, Party::Counsellor(id)).is_ok() && model.connected.remove(&id) {
                        model.counsellor_gone.insert(id, now);
                    }
                }
                Op::SetStatus(c, available) => {
                    let status = if available { Status::Available } else { Status::Away };
                    let _ = router.set_status(now, CounsellorId(c as u64), status);
                }
                Op::SetCapacity(c, n) => {
                    if let Ok(got) = router.set_capacity(now, CounsellorId(c as u64), n) {
                        prop_assert!((1..=3).contains(&got));
                    }
                }
                Op::EndWrapUp(c) => {
                    let _ = router.end_wrap_up(now, CounsellorId(c as u64));
                }
                Op::Accept(c, i) | Op::Decline(c, i) => {
                    let id = CounsellorId(c as u64);
                    let mine: Vec<SessionId> = model.offers.iter().filter(|(_, (x, _))| *x == id).map(|(s, _)| *s).collect::<BTreeSet<_>>().into_iter().collect();
                    if let Some(s) = pick(&mine, i) {
                        let result = if matches!(op, Op::Accept(..)) { router.accept(now, id, s) } else { router.decline(now, id, s) };
                        prop_assert!(result.is_ok(), "{:?}", result);
                        if matches!(op, Op::Decline(..)) {
                            // A decline is the caller's own act: no effect announces it.
                            if model.offers.remove(&s).is_some_and(|(_, queue)| queue) {
                                model.declined.entry(s).or_default().insert(id);
                            }
                        }
                    }
                }
                Op::CounsellorEnd(c, i) => {
                    let id = CounsellorId(c as u64);
                    let mine: Vec<SessionId> = model.owners.iter().filter(|(_, o)| o.contains(&id)).map(|(s, _)| *s).collect::<BTreeSet<_>>().into_iter().collect();
                    if let Some(s) = pick(&mine, i) {
                        router.counsellor_ended(now, id, s).unwrap();
                    } else if let Some(s) = pick(&all, i) {
                        prop_assert!(router.counsellor_ended(now, id, s).is_err());
                    }
                }
                Op::TransferTo(c, i, d, warm) => {
                    let id = CounsellorId(c as u64);
                    let mine: Vec<SessionId> = model.owners.iter().filter(|(_, o)| o.contains(&id)).map(|(s, _)| *s).collect::<BTreeSet<_>>().into_iter().collect();
                    if let Some(s) = pick(&mine, i) {
                        let _ = router.transfer(now, id, s, Transfer::ToCounsellor { to: CounsellorId(d as u64), warm });
                    }
                }
                Op::TransferToTopic(c, i, t) => {
                    let id = CounsellorId(c as u64);
                    let mine: Vec<SessionId> = model.owners.iter().filter(|(_, o)| o.contains(&id)).map(|(s, _)| *s).collect::<BTreeSet<_>>().into_iter().collect();
                    if let Some(s) = pick(&mine, i)
                        && router.transfer(now, id, s, Transfer::ToTopic(TopicId(t))).is_ok()
                        && let Some(seen) = model.seekers.get_mut(&s)
                    {
                        seen.topic = TopicId(t);
                        seen.requeued = true;
                    }
                }
                Op::RaiseHand(c, i, raised) => {
                    // Any session, so refusals are exercised too; the
                    // effect check above proves only owners get through.
                    let all: Vec<SessionId> = model.seekers.keys().copied().collect::<BTreeSet<_>>().into_iter().collect();
                    if let Some(s) = pick(&all, i) {
                        let _ = router.raise_hand(CounsellorId(c as u64), s, raised);
                    }
                }
                Op::Advance(secs) => {
                    let until = now + Duration::from_secs(secs);
                    while let Some(at) = router.poll_timeout() {
                        if at > until {
                            break;
                        }
                        now = now.max(at);
                        router.handle_timeout(now);
                        check(&mut model, &mut router, now, &cfg)?;
                        // Seeker grace periods that ran out ended those sessions.
                        model.seeker_gone.retain(|s, _| !model.ended.contains(s));
                    }
                    now = until;
                    router.handle_timeout(now);
                }
            }
            check(&mut model, &mut router, now, &cfg)?;
            model.seeker_gone.retain(|s, _| !model.ended.contains(s));
        }
    }
}

fn drained(router: &mut Router) -> (Vec<Effect>, Vec<Event>) {
    (
        std::iter::from_fn(|| router.poll_effect()).collect(),
        std::iter::from_fn(|| router.poll_event()).collect(),
    )
}

/// The session an operation acts on, chosen from what `guide` (the
/// original router) holds, as the other property test does.
fn target(guide: &Router, op: &Op, now: Instant, all: &[SessionId]) -> Option<SessionId> {
    let owned = |c: usize| -> Vec<SessionId> {
        all.iter()
            .copied()
            .filter(|&s| guide.counsellors_of(s).contains(&CounsellorId(c as u64)))
            .collect()
    };
    let offered = |c: usize| -> Vec<SessionId> {
        all.iter()
            .copied()
            .filter(|&s| {
                guide
                    .pending_offer(now, s)
                    .is_some_and(|(to, ..)| to == CounsellorId(c as u64))
            })
            .collect()
    };
    match *op {
        Op::SeekerEnd(i) | Op::DetachSeeker(i) | Op::ReattachSeeker(i) | Op::RaiseHand(_, i, _) => {
            pick(all, i)
        }
        Op::Accept(c, i) | Op::Decline(c, i) => pick(&offered(c), i),
        Op::CounsellorEnd(c, i) | Op::TransferTo(c, i, ..) | Op::TransferToTopic(c, i, _) => {
            pick(&owned(c), i)
        }
        _ => None,
    }
}

/// Applies one operation at `now` to `target`; whether it was accepted,
/// or `None` when it had nothing to act on.
fn apply(
    router: &mut Router,
    op: &Op,
    now: Instant,
    next: SessionId,
    target: Option<SessionId>,
) -> Option<bool> {
    let id = |c: usize| CounsellorId(c as u64);
    Some(match *op {
        Op::Arrive {
            topic,
            language,
            urgent,
        } => {
            let arrival = Arrival {
                topic: TopicId(topic),
                language: language.map(LangId),
                urgent,
                prefer: None,
            };
            router.seeker_arrived(now, next, arrival).is_ok()
        }
        Op::SeekerEnd(_) => router.seeker_ended(now, target?).is_ok(),
        Op::DetachSeeker(_) => router.detached(now, Party::Seeker(target?)).is_ok(),
        Op::ReattachSeeker(_) => router.seeker_reattached(now, target?).is_ok(),
        Op::Connect(c) => {
            router.counsellor_connected(now, id(c), profile(c));
            true
        }
        Op::DetachCounsellor(c) => router.detached(now, Party::Counsellor(id(c))).is_ok(),
        Op::SetStatus(c, available) => router
            .set_status(
                now,
                id(c),
                if available {
                    Status::Available
                } else {
                    Status::Away
                },
            )
            .is_ok(),
        Op::SetCapacity(c, n) => router.set_capacity(now, id(c), n).is_ok(),
        Op::EndWrapUp(c) => router.end_wrap_up(now, id(c)).is_ok(),
        Op::Accept(c, _) => router.accept(now, id(c), target?).is_ok(),
        Op::Decline(c, _) => router.decline(now, id(c), target?).is_ok(),
        Op::CounsellorEnd(c, _) => router.counsellor_ended(now, id(c), target?).is_ok(),
        Op::TransferTo(c, _, d, warm) => router
            .transfer(
                now,
                id(c),
                target?,
                Transfer::ToCounsellor { to: id(d), warm },
            )
            .is_ok(),
        Op::TransferToTopic(c, _, t) => router
            .transfer(now, id(c), target?, Transfer::ToTopic(TopicId(t)))
            .is_ok(),
        Op::RaiseHand(c, _, raised) => router.raise_hand(id(c), target?, raised).is_ok(),
        Op::Advance(_) => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// A router restored from a snapshot, on a clock that reads something
    /// else, carries on exactly as the original: the same answers, effects,
    /// events and next timer, after any sequence of operations, restored
    /// again and again.
    #[test]
    fn a_restored_router_carries_on_exactly_as_the_original(
        ops in prop::collection::vec(op(), 1..150),
        restores in prop::collection::vec(prop::bool::weighted(0.15), 150),
    ) {
        let topics = vec![
            TopicRules { wrap_up: WRAP_UP, ..TopicRules::default() },
            TopicRules { assignment: Assignment::Offer { timeout: OFFER_TIMEOUT }, ..TopicRules::default() },
        ];
        let cfg = RouterConfig { topics, ..RouterConfig::default() };
        let mut now = Instant::now();
        // The copy's clock runs ahead, and jumps at each restore, as on
        // another machine.
        let mut shift = Duration::ZERO;
        let mut original = Router::new(cfg.clone(), now);
        let mut copy = Router::new(cfg.clone(), now);
        let mut all: Vec<SessionId> = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            if restores[n] {
                let snapshot = copy.snapshot();
                // The same origin, read on a clock that jumped ahead.
                let jump = Duration::from_secs(1000 + n as u64);
                let origin = copy.origin() + jump;
                shift += jump;
                copy = Router::restore(cfg.clone(), &snapshot, origin);
                prop_assert_eq!(&copy.snapshot(), &snapshot);
            }
            if let Op::Advance(secs) = *op {
                let until = now + Duration::from_secs(secs);
                while let Some(at) = original.poll_timeout() {
                    if at > until {
                        break;
                    }
                    now = now.max(at);
                    original.handle_timeout(now);
                    copy.handle_timeout(now + shift);
                    prop_assert_eq!(drained(&mut original), drained(&mut copy), "op {}", n);
                }
                now = until;
                original.handle_timeout(now);
                copy.handle_timeout(now + shift);
            } else {
                let next = SessionId(all.len() as u128 + 1);
                let on = target(&original, op, now, &all);
                let want = apply(&mut original, op, now, next, on);
                let got = apply(&mut copy, op, now + shift, next, on);
                prop_assert_eq!(got, want, "op {} {:?}", n, op);
                if matches!(op, Op::Arrive { .. }) && want == Some(true) {
                    all.push(next);
                }
            }
            prop_assert_eq!(drained(&mut original), drained(&mut copy), "op {} {:?}", n, op);
            prop_assert_eq!(
                original.poll_timeout().map(|t| t - now),
                copy.poll_timeout().map(|t| t - (now + shift)),
                "op {}", n
            );
            prop_assert_eq!(original.snapshot(), copy.snapshot(), "op {}", n);
        }
    }
}
