//! A deterministic simulation of many help-seekers and counsellors.
//!
//! It drives the [`Router`] and one core [`Session`] per session the way
//! the server does (the same calls on the same types: who may send, what a
//! new counsellor is given, what a resume replays), over a simulated
//! transport that loses everything in flight when a connection drops. Clients behave as the protocol asks:
//! they confirm what they receive, resume with the last `seq` they saw and
//! retry unacknowledged messages with the same id.
//!
//! The checks are about delivery and service:
//! - every client sees each direction's messages exactly once, in order,
//!   with no gap (contiguous `seq`s);
//! - for every session that ended with nothing outstanding, every message
//!   the broker acked reached the other side;
//! - a client that resumes with its own state is always `recovered`;
//! - a client that holds the token it was last given, or, after a resume
//!   whose answer it never read, the one it resumed with, is always let
//!   back in while its session lives ([`ResumeSlot`]); such lost
//!   handshakes happen, and are retried with the old token;
//! - counsellors never exceed capacity, and when arrivals stop everyone is
//!   eventually served or gone;
//! - a counsellor can never write into a session that is not theirs.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use haven_core::{
    Accept, Activity, Arrival, Assignment, CounsellorId, Effect, EndReason, LangId, Party, Profile,
    ReplayLimits, ResumeSlot, Router, RouterConfig, Session, SessionId, Side, Status, TopicId,
    TopicRules,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// What the broker stores per message: the message's global id.
type Payload = (u64, u64); // (seq, uid)

/// A frame in flight to a client.
#[derive(Clone, Debug)]
enum Frame {
    Message {
        session: SessionId,
        seq: u64,
        uid: u64,
    },
    Ack {
        session: SessionId,
        id: u64,
    },
    Assigned,
    Ended,
}

#[derive(Default)]
struct Link {
    connected: bool,
    inbox: VecDeque<Frame>,
    reconnect_at: Option<Instant>,
}

struct SeekerClient {
    link: Link,
    /// The resume token it holds.
    token: u64,
    last_seq: u64,
    unacked: Vec<(u64, u64)>, // (client id, uid)
    next_id: u64,
    assigned: bool,
    done: bool,
    to_send: u32,
}

struct CounsellorClient {
    id: CounsellorId,
    capacity: u32,
    profile: Profile,
    /// Offers to answer, and when this bot gets round to it (some too late).
    offers: HashMap<SessionId, Instant>,
    /// Set away by a missed offer; goes available again at this time.
    back_at: Option<Instant>,
    link: Link,
    /// The resume token it holds, once it has said hello.
    token: Option<u64>,
    /// Per session: last seq seen, unacked (id, uid), first seq seen here.
    sessions: HashMap<SessionId, CounsellorView>,
    next_id: u64,
}

#[derive(Default)]
struct CounsellorView {
    last_seq: u64,
    unacked: Vec<(u64, u64)>,
    sent: u32,
}

struct Sim {
    rng: StdRng,
    now: Instant,
    router: Router,
    sessions: HashMap<SessionId, Session<Payload, ()>>,
    seekers: HashMap<SessionId, SeekerClient>,
    counsellors: Vec<CounsellorClient>,
    next_uid: u64,
    /// Ground truth: uids acked to senders per (session, receiver side), in seq order.
    acked: HashMap<(SessionId, Side), Vec<u64>>,
    /// What receivers saw per (session, receiver side), in order.
    seen: HashMap<(SessionId, Side), Vec<u64>>,
    clean_ends: Vec<SessionId>,
    ended: usize,
    /// The broker's side of resume tokens.
    seeker_keys: HashMap<SessionId, ResumeSlot<u64>>,
    counsellor_keys: HashMap<CounsellorId, ResumeSlot<u64>>,
    next_token: u64,
    /// Resumes whose answer the client never read.
    lost_handshakes: usize,
    /// Attempts to write into someone else's session.
    intrusions: usize,
}

const TICK: Duration = Duration::from_millis(250);

impl Sim {
    fn new(seed: u64, counsellors: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let list = (0..counsellors)
            .map(|i| {
                let capacity = rng.random_range(1..=4);
                // Counsellor 0 serves everything, so nobody waits forever;
                // the others have random skills.
                let (topics, languages) = if i == 0 {
                    (vec![TopicId(0), TopicId(1)], vec![LangId(0), LangId(1)])
                } else {
                    let topics: Vec<TopicId> = [TopicId(0), TopicId(1)]
                        .into_iter()
                        .filter(|_| rng.random_bool(0.6))
                        .collect();
                    let languages: Vec<LangId> = [LangId(0), LangId(1)]
                        .into_iter()
                        .filter(|_| rng.random_bool(0.6))
                        .collect();
                    let topics = if topics.is_empty() {
                        vec![TopicId(0)]
                    } else {
                        topics
                    };
                    let languages = if languages.is_empty() {
                        vec![LangId(0)]
                    } else {
                        languages
                    };
                    (topics, languages)
                };
                CounsellorClient {
                    id: CounsellorId(i as u64),
                    capacity,
                    profile: Profile {
                        topics,
                        languages,
                        capacity,
                        max_capacity: capacity,
                    },
                    offers: HashMap::new(),
                    back_at: None,
                    link: Link::default(),
                    token: None,
                    sessions: HashMap::new(),
                    next_id: 0,
                }
            })
            .collect();
        let now = Instant::now();
        let config = RouterConfig {
            topics: vec![
                TopicRules {
                    wrap_up: Duration::from_secs(5),
                    ..TopicRules::default()
                },
                TopicRules {
                    assignment: Assignment::Offer {
                        timeout: Duration::from_secs(20),
                    },
                    ..TopicRules::default()
                },
            ],
            ..RouterConfig::default()
        };
        Self {
            rng,
            now,
            router: Router::new(config, now),
            sessions: HashMap::new(),
            seekers: HashMap::new(),
            counsellors: list,
            next_uid: 0,
            acked: HashMap::new(),
            seen: HashMap::new(),
            clean_ends: Vec::new(),
            ended: 0,
            seeker_keys: HashMap::new(),
            counsellor_keys: HashMap::new(),
            next_token: 0,
            lost_handshakes: 0,
            intrusions: 0,
        }
    }

    fn new_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn counsellor_index(&self, id: CounsellorId) -> usize {
        usize::try_from(id.0).unwrap()
    }

    /// Carries out the router's effects as the server shell does.
    fn run_effects(&mut self) {
        while let Some(effect) = self.router.poll_effect() {
            match effect {
                Effect::Assigned {
                    session,
                    counsellor,
                    ..
                } => {
                    if let Some(s) = self.seekers.get_mut(&session) {
                        s.assigned = true;
                    }
                    let ci = self.counsellor_index(counsellor);
                    let c = &mut self.counsellors[ci];
                    assert!(c.sessions.len() < c.capacity as usize, "capacity exceeded");
                    c.sessions.insert(session, CounsellorView::default());
                    // A new counsellor gets what the help-seeker said that
                    // nobody confirmed yet.
                    let joined = self
                        .sessions
                        .get_mut(&session)
                        .unwrap()
                        .join(counsellor, ())
                        .expect("assigned to an ended session");
                    if c.link.connected {
                        c.link.inbox.push_back(Frame::Assigned);
                        for &&(seq, uid) in &joined.backlog {
                            c.link.inbox.push_back(Frame::Message { session, seq, uid });
                        }
                    }
                }
                Effect::Ended {
                    session,
                    counsellors,
                    reason,
                    ..
                } => {
                    self.ended += 1;
                    if let Some(s) = self.seekers.get_mut(&session) {
                        s.done = true;
                        if s.link.connected {
                            s.link.inbox.push_back(Frame::Ended);
                        }
                    }
                    for c in counsellors {
                        let ci = self.counsellor_index(c);
                        self.counsellors[ci].sessions.remove(&session);
                    }
                    let mut ended = self.sessions.remove(&session).unwrap();
                    ended.end();
                    let conv = ended.conversation();
                    if reason != EndReason::SeekerTimedOut
                        && conv.backlog(Side::Seeker) == 0
                        && conv.backlog(Side::Counsellor) == 0
                    {
                        self.clean_ends.push(session);
                    }
                }
                Effect::CounsellorExpired { counsellor } => {
                    let ci = self.counsellor_index(counsellor);
                    self.counsellors[ci].sessions.clear();
                    self.counsellors[ci].offers.clear();
                }
                Effect::Offered {
                    session,
                    counsellor,
                    ..
                } => {
                    // Most answer within the 20 s; some are too slow.
                    let delay = Duration::from_secs(self.rng.random_range(0..25));
                    let ci = self.counsellor_index(counsellor);
                    self.counsellors[ci]
                        .offers
                        .insert(session, self.now + delay);
                }
                Effect::OfferWithdrawn {
                    session,
                    counsellor,
                    ..
                } => {
                    let ci = self.counsellor_index(counsellor);
                    self.counsellors[ci].offers.remove(&session);
                }
                Effect::Left {
                    session,
                    counsellor,
                } => {
                    let ci = self.counsellor_index(counsellor);
                    self.counsellors[ci].sessions.remove(&session);
                    if let Some(s) = self.sessions.get_mut(&session) {
                        s.leave(counsellor);
                    }
                }
                Effect::Queued {
                    session,
                    requeued: true,
                    ..
                } => {
                    if let Some(s) = self.sessions.get_mut(&session) {
                        s.requeue();
                    }
                }
                Effect::Load {
                    counsellor,
                    activity: Activity::Away,
                    ..
                } => {
                    // Set away by a missed offer: back after a short while.
                    let ci = self.counsellor_index(counsellor);
                    if self.counsellors[ci].back_at.is_none() {
                        self.counsellors[ci].back_at = Some(self.now + Duration::from_secs(30));
                    }
                }
                Effect::Queued { .. }
                | Effect::Presence { .. }
                | Effect::Load { .. }
                | Effect::TopicNotice { .. }
                | Effect::Hand { .. }
                | Effect::TransferFailed { .. } => {}
            }
        }
    }

    fn arrive(&mut self) {
        let session = SessionId(self.rng.random());
        let arrival = Arrival {
            topic: TopicId(self.rng.random_range(0..2)),
            language: [None, Some(LangId(0)), Some(LangId(1))][self.rng.random_range(0..3)],
            urgent: self.rng.random_bool(0.1),
            prefer: None,
        };
        self.router
            .seeker_arrived(self.now, session, arrival)
            .unwrap();
        self.sessions
            .insert(session, Session::new(ReplayLimits::default()));
        let to_send = self.rng.random_range(1..12);
        let token = self.new_token();
        self.seeker_keys.insert(session, ResumeSlot::new(token));
        self.seekers.insert(
            session,
            SeekerClient {
                token,
                link: Link {
                    connected: true,
                    ..Link::default()
                },
                last_seq: 0,
                unacked: Vec::new(),
                next_id: 0,
                assigned: false,
                done: false,
                to_send,
            },
        );
    }

    /// A client sends (or retries) a message; the shell relays it. `by`
    /// is the counsellor sending, if one is.
    fn send(&mut self, session: SessionId, by: Option<CounsellorId>, id: u64, uid: u64) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let weight = 16;
        let (from, accepted) = match by {
            None => (
                Side::Seeker,
                s.seeker_says(&id.to_string(), weight, |seq| (seq, uid)),
            ),
            Some(c) => (
                Side::Counsellor,
                s.counsellor_says(c, &id.to_string(), weight, |seq| (seq, uid)),
            ),
        };
        match accepted {
            Ok(Accept::New { seq, .. }) => {
                self.acked
                    .entry((session, from.peer()))
                    .or_default()
                    .push(uid);
                assert_eq!(self.acked[&(session, from.peer())].len() as u64, seq);
                self.deliver(session, from.peer(), Frame::Message { session, seq, uid });
                self.deliver(session, from, Frame::Ack { session, id });
            }
            Ok(Accept::Duplicate { .. }) => {
                self.deliver(session, from, Frame::Ack { session, id });
            }
            Ok(Accept::BacklogFull) | Err(_) => {}
        }
    }

    /// Puts a frame in the inbox of a session's side, if that side is
    /// connected and attached.
    fn deliver(&mut self, session: SessionId, to: Side, frame: Frame) {
        match to {
            Side::Seeker => {
                if let Some(s) = self.seekers.get_mut(&session)
                    && s.link.connected
                {
                    s.link.inbox.push_back(frame);
                }
            }
            Side::Counsellor => {
                if let Some(c) = self.router.counsellor_of(session) {
                    let ci = self.counsellor_index(c);
                    let c = &mut self.counsellors[ci];
                    if c.link.connected {
                        c.link.inbox.push_back(frame);
                    }
                }
            }
        }
    }

    fn step_seekers(&mut self) {
        // Sorted: HashMap order differs between runs, and the simulation
        // must replay exactly from its seed.
        let mut ids: Vec<SessionId> = self.seekers.keys().copied().collect();
        ids.sort_unstable();
        for session in ids {
            let roll: f64 = self.rng.random();
            let handshake_lost = self.rng.random_bool(0.2);
            let next_token = self.new_token();
            let s = self.seekers.get_mut(&session).unwrap();
            if s.done {
                continue;
            }
            if !s.link.connected {
                if s.link.reconnect_at.is_some_and(|t| t <= self.now) {
                    s.link.reconnect_at = None;
                    if self.router.seeker_reattached(self.now, session).is_ok() {
                        // The session lives: the token the seeker holds
                        // must let it back in.
                        let keys = self.seeker_keys.get_mut(&session).unwrap();
                        assert!(
                            keys.rotate(s.token, next_token).is_ok(),
                            "a seeker holding its own token was refused"
                        );
                        if handshake_lost {
                            // `resumed` (and the new token) never arrives:
                            // the seeker tries again with the token it has.
                            self.lost_handshakes += 1;
                            s.link.reconnect_at = Some(self.now + Duration::from_secs(1));
                            self.router
                                .detached(self.now, Party::Seeker(session))
                                .unwrap();
                            continue;
                        }
                        s.token = next_token;
                        s.link.connected = true;
                        let r = self
                            .sessions
                            .get_mut(&session)
                            .unwrap()
                            .resume(Side::Seeker, s.last_seq)
                            .expect("a living session");
                        assert!(r.recovered, "a seeker with its own state must recover");
                        for &&(seq, uid) in &r.replay {
                            s.link.inbox.push_back(Frame::Message { session, seq, uid });
                        }
                        let retry = s.unacked.clone();
                        for (id, uid) in retry {
                            self.send(session, None, id, uid);
                        }
                    } else {
                        s.done = true;
                    }
                }
                continue;
            }
            // Read some of the inbox.
            let n = self.rng.random_range(0..=s.link.inbox.len());
            for _ in 0..n {
                let Some(frame) = s.link.inbox.pop_front() else {
                    break;
                };
                match frame {
                    Frame::Message { seq, uid, .. } => {
                        assert_eq!(seq, s.last_seq + 1, "seeker saw a gap or duplicate");
                        s.last_seq = seq;
                        self.seen
                            .entry((session, Side::Seeker))
                            .or_default()
                            .push(uid);
                    }
                    Frame::Ack { id, .. } => s.unacked.retain(|(i, _)| *i != id),
                    Frame::Ended => s.done = true,
                    Frame::Assigned => {}
                }
            }
            let up_to = s.last_seq;
            if let Some(s) = self.sessions.get_mut(&session) {
                let _ = s.confirm(Side::Seeker, None, up_to);
            }
            if roll < 0.01 {
                // The connection drops: everything in flight is lost.
                s.link.connected = false;
                s.link.inbox.clear();
                let away = if self.rng.random_bool(0.9) { 5 } else { 200 };
                s.link.reconnect_at =
                    Some(self.now + Duration::from_secs(self.rng.random_range(1..away)));
                self.router
                    .detached(self.now, Party::Seeker(session))
                    .unwrap();
            } else if roll < 0.2 && s.assigned && s.to_send > 0 {
                s.to_send -= 1;
                let id = s.next_id;
                s.next_id += 1;
                self.next_uid += 1;
                let uid = self.next_uid;
                s.unacked.push((id, uid));
                self.send(session, None, id, uid);
            } else if roll < 0.201 && !s.assigned {
                // Gives up waiting.
                s.done = true;
                self.router.seeker_ended(self.now, session).unwrap();
            }
        }
    }

    fn step_counsellors(&mut self) {
        for ci in 0..self.counsellors.len() {
            let roll: f64 = self.rng.random();
            let handshake_lost = self.rng.random_bool(0.2);
            let next_token = self.new_token();
            let c = &mut self.counsellors[ci];
            let cid = c.id;
            if !c.link.connected {
                if c.link.reconnect_at.is_none_or(|t| t <= self.now) {
                    c.link.reconnect_at = None;
                    // `hello` the first time, `resume` with its token after.
                    let known = self.router.counsellor(self.now, cid).is_some();
                    match (c.token, known) {
                        (Some(token), true) => {
                            let keys = self.counsellor_keys.get_mut(&cid).unwrap();
                            assert!(
                                keys.rotate(token, next_token).is_ok(),
                                "a counsellor holding its own token was refused"
                            );
                        }
                        _ => {
                            self.counsellor_keys
                                .insert(cid, ResumeSlot::new(next_token));
                        }
                    }
                    if handshake_lost && c.token.is_some() && known {
                        // The answer never arrives; it retries soon with
                        // the token it has.
                        self.lost_handshakes += 1;
                        c.link.reconnect_at = Some(self.now + Duration::from_secs(1));
                        continue;
                    }
                    c.token = Some(next_token);
                    c.link.connected = true;
                    let held = self
                        .router
                        .counsellor_connected(self.now, cid, c.profile.clone());
                    let _ = self.router.set_status(self.now, cid, Status::Available);
                    // Forget sessions the broker no longer gives us.
                    c.sessions.retain(|s, _| held.contains(s));
                    for session in held {
                        let view = c.sessions.entry(session).or_default();
                        let known = view.last_seq > 0;
                        let held = self.sessions.get_mut(&session).unwrap();
                        held.reattach(cid, ()).expect("a living session");
                        let r = held
                            .resume(Side::Counsellor, view.last_seq)
                            .expect("a living session");
                        assert!(
                            !known || r.recovered,
                            "a counsellor with its own state must recover"
                        );
                        for &&(seq, uid) in &r.replay {
                            c.link.inbox.push_back(Frame::Message { session, seq, uid });
                        }
                    }
                    let retries: Vec<(SessionId, u64, u64)> = c
                        .sessions
                        .iter()
                        .flat_map(|(s, v)| v.unacked.iter().map(move |(id, uid)| (*s, *id, *uid)))
                        .collect();
                    for (session, id, uid) in retries {
                        self.send(session, Some(cid), id, uid);
                    }
                    self.run_effects();
                }
                continue;
            }
            // Answer the offers whose time has come (late ones are refused:
            // the router moved them on already), and come back from away.
            let mut due: Vec<SessionId> = self.counsellors[ci]
                .offers
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(s, _)| *s)
                .collect();
            due.sort_unstable();
            for session in due {
                self.counsellors[ci].offers.remove(&session);
                let _ = self.router.accept(self.now, cid, session);
                self.run_effects();
            }
            if self.counsellors[ci].back_at.is_some_and(|t| t <= self.now) {
                self.counsellors[ci].back_at = None;
                let _ = self.router.set_status(self.now, cid, Status::Available);
                self.run_effects();
            }
            let c = &mut self.counsellors[ci];
            while let Some(frame) = c.link.inbox.pop_front() {
                match frame {
                    Frame::Message { session, seq, uid } => {
                        // Membership comes from the router's effects; a frame
                        // still in flight for a session that has since left
                        // this counsellor was delivered, but has no view.
                        let Some(view) = c.sessions.get_mut(&session) else {
                            self.seen
                                .entry((session, Side::Counsellor))
                                .or_default()
                                .push(uid);
                            continue;
                        };
                        let first = view.last_seq == 0;
                        assert!(
                            first || seq == view.last_seq + 1,
                            "counsellor saw a gap or duplicate"
                        );
                        if first {
                            // A new counsellor starts where the last confirmation left off.
                            let seen = self
                                .seen
                                .get(&(session, Side::Counsellor))
                                .map_or(0, Vec::len);
                            assert_eq!(seq, seen as u64 + 1, "handover lost or repeated a message");
                        }
                        view.last_seq = seq;
                        self.seen
                            .entry((session, Side::Counsellor))
                            .or_default()
                            .push(uid);
                    }
                    Frame::Ack { session, id } => {
                        if let Some(v) = c.sessions.get_mut(&session) {
                            v.unacked.retain(|(i, _)| *i != id);
                        }
                    }
                    Frame::Assigned => {}
                    Frame::Ended => {}
                }
            }
            let confirms: Vec<(SessionId, u64)> =
                c.sessions.iter().map(|(s, v)| (*s, v.last_seq)).collect();
            for (session, up_to) in confirms {
                if let Some(s) = self.sessions.get_mut(&session) {
                    let _ = s.confirm(Side::Counsellor, Some(cid), up_to);
                }
            }
            if roll < 0.005 {
                let c = &mut self.counsellors[ci];
                c.link.connected = false;
                c.link.inbox.clear();
                let away = if self.rng.random_bool(0.8) { 10 } else { 120 };
                c.link.reconnect_at =
                    Some(self.now + Duration::from_secs(self.rng.random_range(1..away)));
                self.router
                    .detached(self.now, Party::Counsellor(cid))
                    .unwrap();
                continue;
            }
            // Now and then, write into a session that is not (or no
            // longer) this counsellor's: it must be refused.
            if roll > 0.99 {
                let mut others: Vec<SessionId> = self
                    .sessions
                    .keys()
                    .filter(|s| !self.counsellors[ci].sessions.contains_key(s))
                    .filter(|s| self.router.counsellor_of(**s) != Some(cid))
                    .copied()
                    .collect();
                others.sort_unstable();
                if !others.is_empty() {
                    let other = others[self.rng.random_range(0..others.len())];
                    let s = self.sessions.get_mut(&other).unwrap();
                    assert!(
                        s.counsellor_says(cid, "intruder", 1, |seq| (seq, 0))
                            .is_err()
                            && !s.may_act(Side::Counsellor, Some(cid)),
                        "a counsellor wrote into a session not theirs"
                    );
                    self.intrusions += 1;
                }
            }
            // Reply in, or end, one session.
            let mut sessions: Vec<SessionId> =
                self.counsellors[ci].sessions.keys().copied().collect();
            sessions.sort_unstable();
            if sessions.is_empty() || roll > 0.5 {
                continue;
            }
            let session = sessions[self.rng.random_range(0..sessions.len())];
            let sent = self.counsellors[ci].sessions[&session].sent;
            let quiet = self.sessions.get(&session).is_some_and(|s| {
                let c = s.conversation();
                c.backlog(Side::Seeker) == 0 && c.backlog(Side::Counsellor) == 0
            });
            if sent >= 6 && quiet && self.counsellors[ci].sessions[&session].unacked.is_empty() {
                self.router
                    .counsellor_ended(self.now, cid, session)
                    .unwrap();
            } else if sent < 20 {
                let c = &mut self.counsellors[ci];
                let id = c.next_id;
                c.next_id += 1;
                self.next_uid += 1;
                let uid = self.next_uid;
                let view = c.sessions.get_mut(&session).unwrap();
                view.sent += 1;
                view.unacked.push((id, uid));
                self.send(session, Some(cid), id, uid);
            }
        }
    }

    fn tick(&mut self, arrivals: bool) {
        self.now += TICK;
        if arrivals && self.rng.random_bool(0.3) {
            self.arrive();
        }
        self.router.handle_timeout(self.now);
        self.run_effects();
        self.step_seekers();
        self.run_effects();
        self.step_counsellors();
        self.run_effects();
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed, 12);
    for _ in 0..4000 {
        sim.tick(true);
    }
    // Arrivals stop; everyone still there must be served or leave.
    for _ in 0..8000 {
        sim.tick(false);
        if sim.router.session_count() == 0 {
            break;
        }
    }
    assert_eq!(
        sim.router.session_count(),
        0,
        "seed {seed}: sessions left over"
    );
    assert!(
        sim.ended > 500,
        "seed {seed}: only {} sessions ended",
        sim.ended
    );
    assert!(
        sim.clean_ends.len() > 100,
        "seed {seed}: too few clean ends"
    );
    assert!(
        sim.lost_handshakes > 20,
        "seed {seed}: only {} lost resume handshakes",
        sim.lost_handshakes
    );
    assert!(
        sim.intrusions > 20,
        "seed {seed}: only {} intrusions tried",
        sim.intrusions
    );
    for session in &sim.clean_ends {
        for side in [Side::Seeker, Side::Counsellor] {
            let acked = sim
                .acked
                .get(&(*session, side))
                .cloned()
                .unwrap_or_default();
            let seen = sim.seen.get(&(*session, side)).cloned().unwrap_or_default();
            assert_eq!(
                acked, seen,
                "seed {seed}: {session:?} toward {side:?} lost or repeated messages"
            );
        }
    }
}

#[test]
fn many_seekers_and_counsellors_lose_nothing() {
    for seed in 1..=6 {
        run(seed);
    }
}
