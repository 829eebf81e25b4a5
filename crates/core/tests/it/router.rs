//! Scenario tests of the router's rules, one rule per test.

use std::time::{Duration, Instant};

use haven_core::router::Refusal;
use haven_core::{
    CounsellorId, Effect, EndReason, Party, Router, RouterConfig, SessionId, Side, Status,
};

const S1: SessionId = SessionId(1);
const S2: SessionId = SessionId(2);
const S3: SessionId = SessionId(3);
const ANNA: CounsellorId = CounsellorId(1);
const BOB: CounsellorId = CounsellorId(2);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn drain(r: &mut Router) -> Vec<Effect> {
    std::iter::from_fn(|| r.poll_effect()).collect()
}

fn assigned(effects: &[Effect]) -> Vec<(SessionId, CounsellorId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Assigned {
                session,
                counsellor,
                ..
            } => Some((*session, *counsellor)),
            _ => None,
        })
        .collect()
}

fn available(r: &mut Router, t: Instant, c: CounsellorId, capacity: u32) {
    r.counsellor_connected(t, c, capacity);
    r.set_status(t, c, Status::Available).unwrap();
}

#[test]
fn arrivals_queue_with_positions_until_someone_is_available() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    r.seeker_arrived(t, S1).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    let fx = drain(&mut r);
    assert!(fx.contains(&Effect::Queued {
        session: S1,
        position: 1,
        requeued: false
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S2,
        position: 2,
        requeued: false
    }));
    assert_eq!(r.seeker_arrived(t, S1), Err(Refusal::Duplicate));

    // A counsellor who connects starts away and takes nobody.
    r.counsellor_connected(t, ANNA, 1);
    assert!(assigned(&drain(&mut r)).is_empty());

    r.set_status(t + secs(5), ANNA, Status::Available).unwrap();
    let fx = drain(&mut r);
    assert_eq!(assigned(&fx), [(S1, ANNA)]);
    assert!(fx.contains(&Effect::Queued {
        session: S2,
        position: 1,
        requeued: false
    }));
    assert!(fx.contains(&Effect::Assigned {
        session: S1,
        counsellor: ANNA,
        waited: secs(5)
    }));
}

#[test]
fn capacity_is_respected_and_frees_on_end() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    available(&mut r, t, ANNA, 2);
    for s in [S1, S2, S3] {
        r.seeker_arrived(t, s).unwrap();
    }
    assert_eq!(assigned(&drain(&mut r)), [(S1, ANNA), (S2, ANNA)]);
    assert_eq!(r.counsellor_ended(t, BOB, S1), Err(Refusal::NotYours));
    assert_eq!(r.counsellor_ended(t, ANNA, S3), Err(Refusal::NotYours));
    r.counsellor_ended(t, ANNA, S1).unwrap();
    let fx = drain(&mut r);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ended {
            session: S1,
            reason: EndReason::CounsellorEnded,
            counsellor: Some(ANNA),
            ..
        }
    )));
    assert_eq!(assigned(&fx), [(S3, ANNA)]);
    assert_eq!(
        r.counsellor_ended(t, ANNA, S1),
        Err(Refusal::UnknownSession)
    );
}

#[test]
fn away_keeps_sessions_but_takes_no_new_ones() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    available(&mut r, t, ANNA, 3);
    r.seeker_arrived(t, S1).unwrap();
    r.set_status(t, ANNA, Status::Away).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    let fx = drain(&mut r);
    assert_eq!(assigned(&fx), [(S1, ANNA)]);
    assert_eq!(r.counsellor_of(S1), Some(ANNA));
    assert_eq!(r.position(S2), Some(1));
}

#[test]
fn the_longest_idle_counsellor_gets_the_next_session() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    available(&mut r, t, ANNA, 2);
    available(&mut r, t + secs(1), BOB, 2);
    r.seeker_arrived(t + secs(2), S1).unwrap();
    r.seeker_arrived(t + secs(3), S2).unwrap();
    r.seeker_arrived(t + secs(4), S3).unwrap();
    assert_eq!(
        assigned(&drain(&mut r)),
        [(S1, ANNA), (S2, BOB), (S3, ANNA)]
    );
}

#[test]
fn seeker_leaving_the_queue_moves_the_others_up() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    for s in [S1, S2, S3] {
        r.seeker_arrived(t, s).unwrap();
    }
    drain(&mut r);
    r.seeker_ended(t + secs(30), S1).unwrap();
    let fx = drain(&mut r);
    assert!(fx.contains(&Effect::Ended {
        session: S1,
        counsellor: None,
        reason: EndReason::SeekerEnded,
        waited: secs(30)
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S2,
        position: 1,
        requeued: false
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S3,
        position: 2,
        requeued: false
    }));
}

#[test]
fn dropped_seeker_times_out_and_frees_the_counsellor() {
    let t = Instant::now();
    let cfg = RouterConfig::default();
    let mut r = Router::new(cfg);
    available(&mut r, t, ANNA, 1);
    r.seeker_arrived(t, S1).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    drain(&mut r);

    r.detached(t + secs(1), Party::Seeker(S1)).unwrap();
    let fx = drain(&mut r);
    assert_eq!(
        fx,
        [Effect::Presence {
            session: S1,
            to: Side::Counsellor,
            connected: false
        }]
    );
    assert_eq!(r.poll_timeout(), Some(t + secs(1) + cfg.seeker_grace));

    // Early wake-ups change nothing.
    r.handle_timeout(t + secs(60));
    assert!(drain(&mut r).is_empty());

    r.handle_timeout(t + secs(1) + cfg.seeker_grace);
    let fx = drain(&mut r);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Ended {
            session: S1,
            reason: EndReason::SeekerTimedOut,
            counsellor: Some(ANNA),
            ..
        }
    )));
    assert_eq!(assigned(&fx), [(S2, ANNA)]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn resumed_seeker_keeps_the_session() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    available(&mut r, t, ANNA, 1);
    r.seeker_arrived(t, S1).unwrap();
    r.detached(t, Party::Seeker(S1)).unwrap();
    drain(&mut r);
    r.seeker_reattached(t + secs(100), S1).unwrap();
    assert_eq!(
        drain(&mut r),
        [Effect::Presence {
            session: S1,
            to: Side::Counsellor,
            connected: true
        }]
    );
    assert_eq!(r.poll_timeout(), None);
    r.handle_timeout(t + secs(1000));
    assert_eq!(r.counsellor_of(S1), Some(ANNA));
}

#[test]
fn a_waiting_seeker_who_dropped_keeps_their_place_but_is_skipped() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    r.seeker_arrived(t, S1).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    r.detached(t, Party::Seeker(S1)).unwrap();
    available(&mut r, t, ANNA, 1);
    assert_eq!(assigned(&drain(&mut r)), [(S2, ANNA)]);
    assert_eq!(r.position(S1), Some(1));
    available(&mut r, t, BOB, 1);
    assert!(assigned(&drain(&mut r)).is_empty());
    r.seeker_reattached(t + secs(3), S1).unwrap();
    assert_eq!(assigned(&drain(&mut r)), [(S1, BOB)]);
}

#[test]
fn a_waiting_seeker_who_never_returns_leaves_the_queue() {
    let t = Instant::now();
    let cfg = RouterConfig::default();
    let mut r = Router::new(cfg);
    r.seeker_arrived(t, S1).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    r.detached(t, Party::Seeker(S1)).unwrap();
    drain(&mut r);
    r.handle_timeout(t + cfg.seeker_grace);
    let fx = drain(&mut r);
    assert!(fx.contains(&Effect::Ended {
        session: S1,
        counsellor: None,
        reason: EndReason::SeekerTimedOut,
        waited: cfg.seeker_grace
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S2,
        position: 1,
        requeued: false
    }));
    assert_eq!(r.seeker_reattached(t, S1), Err(Refusal::UnknownSession));
}

#[test]
fn lost_counsellor_sends_seekers_to_the_front_of_the_queue() {
    let t = Instant::now();
    let cfg = RouterConfig::default();
    let mut r = Router::new(cfg);
    available(&mut r, t, ANNA, 1);
    r.seeker_arrived(t, S1).unwrap();
    r.seeker_arrived(t + secs(10), S2).unwrap();
    drain(&mut r);
    assert_eq!(r.counsellor_of(S1), Some(ANNA));

    r.detached(t + secs(20), Party::Counsellor(ANNA)).unwrap();
    assert_eq!(
        drain(&mut r),
        [Effect::Presence {
            session: S1,
            to: Side::Seeker,
            connected: false
        }]
    );
    r.seeker_arrived(t + secs(30), S3).unwrap();
    drain(&mut r);

    r.handle_timeout(t + secs(20) + cfg.counsellor_grace);
    let fx = drain(&mut r);
    assert!(fx.contains(&Effect::CounsellorExpired { counsellor: ANNA }));
    assert!(fx.contains(&Effect::Queued {
        session: S1,
        position: 1,
        requeued: true
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S2,
        position: 2,
        requeued: false
    }));
    assert!(fx.contains(&Effect::Queued {
        session: S3,
        position: 3,
        requeued: false
    }));

    available(&mut r, t + secs(100), BOB, 1);
    let fx = drain(&mut r);
    // S1 was served at once, then waited again from the expiry (80 s) to 100 s.
    assert!(fx.contains(&Effect::Assigned {
        session: S1,
        counsellor: BOB,
        waited: secs(20)
    }));
}

#[test]
fn counsellor_back_within_grace_keeps_everything() {
    let t = Instant::now();
    let mut r = Router::new(RouterConfig::default());
    available(&mut r, t, ANNA, 2);
    r.seeker_arrived(t, S1).unwrap();
    r.detached(t, Party::Counsellor(ANNA)).unwrap();
    r.seeker_arrived(t, S2).unwrap();
    // Not routed to a counsellor whose connection is down.
    assert_eq!(assigned(&drain(&mut r)), [(S1, ANNA)]);
    let sessions = r.counsellor_connected(t + secs(30), ANNA, 2);
    assert_eq!(sessions, [S1]);
    let fx = drain(&mut r);
    assert!(fx.contains(&Effect::Presence {
        session: S1,
        to: Side::Seeker,
        connected: true
    }));
    assert_eq!(assigned(&fx), [(S2, ANNA)]);
    assert_eq!(r.poll_timeout(), None);
}
