//! The router's state through Redis: a leader commits after every step,
//! leaders die at random moments, and each successor restores exactly what
//! the last committed step left, on a clock of its own.

use std::time::{Duration, Instant};

use haven_cluster::{Grant, Lease, RouterStore, is_fenced};
use haven_core::{
    Arrival, Assignment, CounsellorId, Effect, LangId, Party, Profile, Router, RouterConfig,
    SessionId, Status, TopicId, TopicRules,
};
use haven_testkit::RedisServer;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn config() -> RouterConfig {
    RouterConfig {
        topics: vec![
            TopicRules {
                wrap_up: Duration::from_secs(10),
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
    }
}

fn profile(c: u64) -> Profile {
    Profile {
        topics: vec![TopicId(0), TopicId((c % 2) as u16)],
        languages: vec![LangId(0)],
        capacity: 1 + (c % 3) as u32,
        max_capacity: 3,
    }
}

/// One random step on the router.
fn step(router: &mut Router, rng: &mut StdRng, now: Instant, sessions: &mut Vec<SessionId>) {
    match rng.random_range(0..10) {
        0..=2 => {
            let session = SessionId(rng.random());
            let arrival = Arrival {
                topic: TopicId(rng.random_range(0..2)),
                language: None,
                urgent: rng.random_bool(0.2),
                prefer: None,
            };
            if router.seeker_arrived(now, session, arrival).is_ok() {
                sessions.push(session);
            }
        }
        3 => {
            let c = rng.random_range(0..5);
            router.counsellor_connected(now, CounsellorId(c), profile(c));
        }
        4 => {
            let c = CounsellorId(rng.random_range(0..5));
            let status = if rng.random_bool(0.7) {
                Status::Available
            } else {
                Status::Away
            };
            let _ = router.set_status(now, c, status);
        }
        5 if !sessions.is_empty() => {
            let s = sessions[rng.random_range(0..sessions.len())];
            let _ = router.seeker_ended(now, s);
        }
        6 if !sessions.is_empty() => {
            let s = sessions[rng.random_range(0..sessions.len())];
            let _ = router.detached(now, Party::Seeker(s));
        }
        7 if !sessions.is_empty() => {
            let s = sessions[rng.random_range(0..sessions.len())];
            if let Some((to, ..)) = router.pending_offer(now, s) {
                let _ = router.accept(now, to, s);
            }
        }
        _ => router.remember_return(now, rng.random(), CounsellorId(rng.random_range(0..5))),
    }
}

fn drain(router: &mut Router) -> Vec<Vec<u8>> {
    while router.poll_event().is_some() {}
    std::iter::from_fn(|| router.poll_effect())
        .map(|e: Effect| format!("{e:?}").into_bytes())
        .collect()
}

#[tokio::test]
async fn each_new_leader_restores_exactly_the_last_committed_router() {
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut rng = StdRng::seed_from_u64(23);
    // Wall clock ms of the first leader's origin, and its clock.
    let origin_wall_ms = 1_796_000_000_000;
    let mut now = Instant::now();
    let mut leader_n = 0;
    let mut lease = Lease::new("hv:", "node-0", Duration::from_secs(30));
    let Grant::Leader(mut epoch) = lease.acquire(&mut con).await.unwrap() else {
        panic!("no leader");
    };
    let store = RouterStore::new(&lease);
    assert!(store.load(&mut con).await.unwrap().is_none());
    let mut router = Router::new(config(), now);
    let mut committed: Option<haven_core::router::RouterSnapshot> = None;
    let mut sessions = Vec::new();
    let mut effects_seen = 0usize;
    for n in 0..600 {
        let input = store
            .push_input(&mut con, format!("input {n}").as_bytes())
            .await
            .unwrap();
        step(&mut router, &mut rng, now, &mut sessions);
        now += Duration::from_millis(rng.random_range(0..4000));
        router.handle_timeout(now);
        let effects = drain(&mut router);
        effects_seen += effects.len();
        let snapshot = router.snapshot();
        store
            .commit(
                &mut con,
                epoch,
                committed.as_ref(),
                &snapshot,
                origin_wall_ms,
                Some(&input),
                &effects,
            )
            .await
            .unwrap();
        committed = Some(snapshot);

        if rng.random_bool(0.05) {
            // The leader dies; the lease passes on; the next one restores
            // the router on a clock that reads something else entirely.
            let stale = epoch;
            lease.release(&mut con, epoch).await.unwrap();
            leader_n += 1;
            lease = Lease::new("hv:", &format!("node-{leader_n}"), Duration::from_secs(30));
            let Grant::Leader(next) = lease.acquire(&mut con).await.unwrap() else {
                panic!("no leader");
            };
            epoch = next;
            let stored = store.load(&mut con).await.unwrap().unwrap();
            assert_eq!(Some(&stored.snapshot), committed.as_ref(), "step {n}");
            assert_eq!(stored.origin_wall_ms, origin_wall_ms);
            assert_eq!(stored.applied.as_deref(), Some(input.as_str()));
            let jump = Duration::from_secs(rng.random_range(1..100_000));
            let origin = router.origin() + jump;
            now += jump;
            router = Router::restore(config(), &stored.snapshot, origin);
            assert_eq!(router.snapshot(), stored.snapshot);
            // The old leader wakes up: its commit is refused, nothing changes.
            let refused = store
                .commit(
                    &mut con,
                    stale,
                    committed.as_ref(),
                    &Router::new(config(), now).snapshot(),
                    0,
                    Some("0-1"),
                    &[b"ghost".to_vec()],
                )
                .await
                .unwrap_err();
            assert!(is_fenced(&refused), "{refused}");
            assert_eq!(store.load(&mut con).await.unwrap().unwrap(), stored);
            // This leader's first commit rewrites everything.
            committed = None;
        }
    }
    assert!(leader_n >= 10, "only {leader_n} handovers");
    assert!(effects_seen > 300 && sessions.len() > 100);
    // Every effect reached the stream once (the ghost never did), in order.
    let effects = store.effects(&mut con, None, 1_000_000, 0).await.unwrap();
    assert_eq!(effects.len(), effects_seen);
    assert!(effects.iter().all(|(_, e)| e != b"ghost"));
    // And the inputs are all there for a leader that must catch up.
    let inputs = store.inputs(&mut con, None, 1_000_000, 0).await.unwrap();
    assert_eq!(inputs.len(), 600);
    assert_eq!(inputs[10].1, b"input 10");
    let after = store
        .inputs(&mut con, Some(&inputs[597].0), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>(),
        [b"input 598".to_vec(), b"input 599".to_vec()]
    );
}
