//! Routing cost at scale: enqueue, routing decision and position-update
//! round, with up to 100,000 help-seekers waiting and 1,000 counsellors.
//!
//! Run it optimised:
//!
//! ```sh
//! cargo run --release -p haven-core --example routing_bench
//! ```
//!
//! Every counsellor serves one or both of two topics and one to three of
//! three languages, at capacity 3; help-seekers spread over the topics and
//! languages (a third name no language). With all seats taken, it measures:
//!
//! - **enqueue**: one more help-seeker arriving (and being told their place);
//! - **routing decision**: a counsellor ending a session, whose seat the
//!   router then fills with the right help-seeker from the queue;
//! - **position round**: one coalesced tick after the front of the line
//!   moved, telling every waiting help-seeker their new position.
//!
//! Each is timed per operation with `Instant`; percentiles come from the
//! sorted samples. Wall-clock times on a shared machine vary by ±20 %; the
//! growth from 1,000 to 100,000 is what matters.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::time::{Duration, Instant};

use haven_core::{
    Arrival, CounsellorId, LangId, Profile, Router, RouterConfig, SessionId, Status, TopicId,
    TopicRules,
};

const COUNSELLORS: u64 = 1000;
const CAPACITY: u32 = 3;
const SAMPLES: usize = 2000;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, waiting: usize, mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    let max = *samples.last().unwrap();
    println!(
        "{name:<18} {waiting:>8}  p50 {:>8.2} µs  p99 {:>8.2} µs  max {:>9.2} µs  ({} samples)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        max.as_secs_f64() * 1e6,
        samples.len()
    );
    p99
}

struct Setup {
    router: Router,
    now: Instant,
    rng: Lcg,
    next_session: u128,
    /// Each counsellor's sessions, to end one later.
    held: Vec<Vec<SessionId>>,
}

fn arrival(rng: &mut Lcg) -> Arrival {
    let language = match rng.next() % 3 {
        0 => None,
        1 => Some(LangId(0)),
        _ => Some(LangId((rng.next() % 3) as u16)),
    };
    Arrival {
        topic: TopicId((rng.next() % 2) as u16),
        language,
        urgent: rng.next().is_multiple_of(10),
        prefer: None,
    }
}

fn drain(router: &mut Router, held: &mut [Vec<SessionId>]) -> usize {
    let mut n = 0;
    while let Some(effect) = router.poll_effect() {
        n += 1;
        if let haven_core::Effect::Assigned {
            session,
            counsellor,
            ..
        } = effect
        {
            held[counsellor.0 as usize].push(session);
        }
    }
    n
}

/// Counsellors all busy and `waiting` help-seekers in line.
fn setup(waiting: usize) -> Setup {
    let now = Instant::now();
    let rules = TopicRules {
        max_queue: usize::MAX,
        ..TopicRules::default()
    };
    let config = RouterConfig {
        topics: vec![rules.clone(), rules],
        ..RouterConfig::default()
    };
    let mut s = Setup {
        router: Router::new(config, now),
        now,
        rng: Lcg(42),
        next_session: 0,
        held: vec![Vec::new(); COUNSELLORS as usize],
    };
    for c in 0..COUNSELLORS {
        let topics = match c % 3 {
            0 => vec![TopicId(0)],
            1 => vec![TopicId(1)],
            _ => vec![TopicId(0), TopicId(1)],
        };
        let languages: Vec<LangId> = (0..3)
            .filter(|l| (c >> l) & 1 == 1 || *l == 0)
            .map(LangId)
            .collect();
        let profile = Profile {
            topics,
            languages,
            capacity: CAPACITY,
            max_capacity: CAPACITY,
        };
        s.router.counsellor_connected(now, CounsellorId(c), profile);
        s.router
            .set_status(now, CounsellorId(c), Status::Available)
            .unwrap();
    }
    // Fill every seat, then the queue.
    while s.router.queue_len() < waiting {
        let a = arrival(&mut s.rng);
        s.next_session += 1;
        s.router
            .seeker_arrived(s.now, SessionId(s.next_session), a)
            .unwrap();
        if s.next_session.is_multiple_of(1024) {
            drain(&mut s.router, &mut s.held);
        }
    }
    drain(&mut s.router, &mut s.held);
    s
}

fn main() {
    println!(
        "Routing with {COUNSELLORS} counsellors (capacity {CAPACITY}, all seats taken), 2 topics, 3 languages\n"
    );
    println!("{:<18} {:>8}", "operation", "waiting");
    let mut worst_decision = Duration::ZERO;
    for waiting in [1_000, 10_000, 100_000] {
        let mut s = setup(waiting);

        // Enqueue: one arrival at a time, the queue staying at ~`waiting`.
        let mut samples = Vec::with_capacity(SAMPLES);
        let mut arrived = Vec::new();
        for _ in 0..SAMPLES {
            let a = arrival(&mut s.rng);
            s.next_session += 1;
            let id = SessionId(s.next_session);
            let t = Instant::now();
            s.router.seeker_arrived(s.now, id, a).unwrap();
            samples.push(t.elapsed());
            drain(&mut s.router, &mut s.held);
            arrived.push(id);
        }
        report("enqueue", waiting, samples);
        for id in arrived {
            s.router.seeker_ended(s.now, id).unwrap();
        }
        drain(&mut s.router, &mut s.held);

        // Routing decision: a counsellor ends a session; the router picks
        // who fills the seat (and tells everyone involved).
        let mut samples = Vec::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            let c = (s.rng.next() % COUNSELLORS) as usize;
            let Some(session) = s.held[c].pop() else {
                continue;
            };
            s.now += Duration::from_millis(1);
            let t = Instant::now();
            s.router
                .counsellor_ended(s.now, CounsellorId(c as u64), session)
                .unwrap();
            samples.push(t.elapsed());
            drain(&mut s.router, &mut s.held);
            // Keep the queue at its size.
            let _ = i;
            let a = arrival(&mut s.rng);
            s.next_session += 1;
            s.router
                .seeker_arrived(s.now, SessionId(s.next_session), a)
                .unwrap();
            drain(&mut s.router, &mut s.held);
        }
        worst_decision = worst_decision.max(report("routing decision", waiting, samples));

        // Position round: the front moved; one tick tells everyone.
        let mut samples = Vec::new();
        let mut sent = 0;
        for _ in 0..5 {
            let c = (s.rng.next() % COUNSELLORS) as usize;
            if let Some(session) = s.held[c].pop() {
                s.router
                    .counsellor_ended(s.now, CounsellorId(c as u64), session)
                    .unwrap();
            }
            drain(&mut s.router, &mut s.held);
            s.now += s.router.config().position_interval;
            let t = Instant::now();
            s.router.handle_timeout(s.now);
            samples.push(t.elapsed());
            sent = drain(&mut s.router, &mut s.held);
        }
        samples.sort_unstable();
        println!(
            "{:<18} {waiting:>8}  median {:>7.2} ms for the round ({sent} updates, {:.0} ns per help-seeker)",
            "position round",
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples[samples.len() / 2].as_secs_f64() * 1e9 / waiting as f64
        );
        println!();
    }
    println!(
        "p99 routing decision at the largest size: {:.1} µs (target < 1 ms)",
        worst_decision.as_secs_f64() * 1e6
    );
}
