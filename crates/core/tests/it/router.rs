//! Scenario tests of the routing rules with a fake clock, one rule per
//! test: arrival, capacity, skills, priority, wrap-up and grace periods.

use haven_core::router::Refusal;
use haven_core::{
    Activity, Arrival, Effect, EndReason, Party, Profile, Side, Status, TopicId, TopicRules,
    Transfer,
};

use super::support::*;

// === Arrival, capacity, availability ===

#[test]
fn arrivals_wait_with_positions_until_someone_is_available() {
    let mut h = Harness::simple();
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    let fx = h.effects();
    assert_eq!(queued(&fx, s(1)).first().map(|q| q.0), Some(1));
    assert_eq!(queued(&fx, s(2)).first().map(|q| q.0), Some(2));
    // Nobody staffed: the wait is unknown, not invented.
    assert_eq!(queued(&fx, s(2))[0].1, None);
    assert_eq!(
        h.router.seeker_arrived(
            h.now,
            s(1),
            Arrival {
                topic: ALGEMEEN,
                language: None,
                urgent: false,
                prefer: None
            }
        ),
        Err(Refusal::Duplicate)
    );
    assert_eq!(
        h.router.seeker_arrived(
            h.now,
            s(9),
            Arrival {
                topic: TopicId(7),
                language: None,
                urgent: false,
                prefer: None
            }
        ),
        Err(Refusal::UnknownTopic)
    );
    // A counsellor who connects starts away and takes nobody.
    h.router.counsellor_connected(
        h.now,
        ANNA,
        Profile {
            topics: vec![ALGEMEEN],
            languages: vec![NL],
            capacity: 1,
            max_capacity: 3,
        },
    );
    assert!(assigned(&h.effects()).is_empty());
    h.advance(secs(5));
    h.router.set_status(h.now, ANNA, Status::Available).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::Assigned {
        session: s(1),
        counsellor: ANNA,
        waited: secs(5),
        from: None,
        warm: false
    }));
    assert_eq!(assigned(&fx), [(s(1), ANNA)]);
}

#[test]
fn capacity_is_respected_and_can_be_changed_up_to_the_maximum() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    for n in 1..=4 {
        h.arrive(s(n), ALGEMEEN, None);
    }
    assert_eq!(assigned(&h.effects()), [(s(1), ANNA)]);
    // Raising capacity takes the next ones at once, but never above the max.
    assert_eq!(h.router.set_capacity(h.now, ANNA, 99), Ok(3));
    assert_eq!(assigned(&h.effects()), [(s(2), ANNA), (s(3), ANNA)]);
    // Lowering it keeps current sessions and stops new ones.
    assert_eq!(h.router.set_capacity(h.now, ANNA, 1), Ok(1));
    h.router.counsellor_ended(h.now, ANNA, s(1)).unwrap();
    assert!(assigned(&h.effects()).is_empty());
    h.router.counsellor_ended(h.now, ANNA, s(2)).unwrap();
    h.router.counsellor_ended(h.now, ANNA, s(3)).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(4), ANNA)]);
    assert_eq!(
        h.router.set_capacity(h.now, BOB, 2),
        Err(Refusal::UnknownCounsellor)
    );
}

#[test]
fn away_keeps_sessions_but_takes_no_new_ones() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 3);
    h.arrive(s(1), ALGEMEEN, None);
    h.router.set_status(h.now, ANNA, Status::Away).unwrap();
    h.arrive(s(2), ALGEMEEN, None);
    assert_eq!(assigned(&h.effects()), [(s(1), ANNA)]);
    assert_eq!(h.router.counsellor_of(s(1)), Some(ANNA));
    assert_eq!(h.router.position(s(2)), Some(1));
}

// === Skills ===

#[test]
fn sessions_go_only_to_counsellors_with_the_topic_and_language() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 2);
    h.staff(BOB, &[JONGEREN], &[NL, FR], 2);
    h.arrive(s(1), JONGEREN, Some(FR));
    h.arrive(s(2), ALGEMEEN, Some(FR));
    h.arrive(s(3), ALGEMEEN, None);
    h.arrive(s(4), JONGEREN, None);
    let fx = h.effects();
    assert_eq!(assigned(&fx), [(s(1), BOB), (s(3), ANNA), (s(4), BOB)]);
    // Nobody on ALGEMEEN speaks French yet: s(2) waits, first in line.
    assert_eq!(h.router.position(s(2)), Some(1));
    h.staff(CLEM, &[ALGEMEEN], &[FR], 1);
    assert_eq!(assigned(&h.effects()), [(s(2), CLEM)]);
}

#[test]
fn the_longest_idle_counsellor_gets_the_next_session() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 2);
    h.advance(secs(1));
    h.staff(BOB, &[ALGEMEEN], &[NL], 2);
    h.advance(secs(1));
    for n in 1..=4 {
        h.arrive(s(n), ALGEMEEN, None);
        h.advance(secs(1));
    }
    assert_eq!(
        assigned(&h.effects()),
        [(s(1), ANNA), (s(2), BOB), (s(3), ANNA), (s(4), BOB)]
    );
}

// === Priority ===

#[test]
fn urgent_help_seekers_go_first_but_priorities_age() {
    let mut h = Harness::new(vec![TopicRules {
        triage_boost: secs(600),
        ..TopicRules::default()
    }]);
    h.arrive(s(1), ALGEMEEN, None);
    h.advance(secs(60));
    h.arrive(s(2), ALGEMEEN, None);
    h.advance(secs(60));
    // Urgent, 2 minutes after s(1): served before both.
    h.arrive_with(
        s(3),
        Arrival {
            topic: ALGEMEEN,
            language: None,
            urgent: true,
            prefer: None,
        },
    );
    assert_eq!(h.router.position(s(3)), Some(1));
    h.advance(secs(1200));
    // Twenty minutes on, a new urgent arrival is behind everyone who waited
    // longer than its ten-minute head start.
    h.arrive_with(
        s(4),
        Arrival {
            topic: ALGEMEEN,
            language: None,
            urgent: true,
            prefer: None,
        },
    );
    h.arrive(s(5), ALGEMEEN, None);
    assert_eq!(h.router.position(s(4)), Some(4));
    h.effects();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 5);
    assert_eq!(
        assigned(&h.effects()),
        [
            (s(3), ANNA),
            (s(1), ANNA),
            (s(2), ANNA),
            (s(4), ANNA),
            (s(5), ANNA)
        ]
    );
}

// === Wrap-up ===

#[test]
fn wrap_up_keeps_new_sessions_away_until_it_ends_or_is_ended() {
    let mut h = Harness::new(vec![TopicRules {
        wrap_up: secs(120),
        ..TopicRules::default()
    }]);
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.arrive(s(3), ALGEMEEN, None);
    h.effects();
    h.router.counsellor_ended(h.now, ANNA, s(1)).unwrap();
    let fx = h.effects();
    assert!(assigned(&fx).is_empty(), "routed during wrap-up");
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Load {
            counsellor: ANNA,
            activity: Activity::WrapUp { .. },
            ..
        }
    )));
    h.advance(secs(119));
    assert!(assigned(&h.effects()).is_empty());
    h.advance(secs(1));
    assert_eq!(assigned(&h.effects()), [(s(2), ANNA)]);
    // Ending wrap-up early ("ready now").
    h.router.counsellor_ended(h.now, ANNA, s(2)).unwrap();
    h.advance(secs(10));
    assert!(assigned(&h.effects()).is_empty());
    h.router.end_wrap_up(h.now, ANNA).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(3), ANNA)]);
}

// === Grace periods ===

#[test]
fn dropped_seeker_times_out_and_frees_the_counsellor() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.effects();
    h.router.detached(h.now, Party::Seeker(s(1))).unwrap();
    assert!(h.effects().contains(&Effect::Presence {
        session: s(1),
        to: Side::Counsellor,
        connected: false
    }));
    h.advance(h.router.config().seeker_grace);
    let fx = h.effects();
    assert!(fx.iter().any(|e| matches!(e, Effect::Ended { session, reason: EndReason::SeekerTimedOut, .. } if *session == s(1))));
    assert_eq!(assigned(&fx), [(s(2), ANNA)]);
}

#[test]
fn a_waiting_seeker_who_dropped_keeps_their_place_but_is_skipped() {
    let mut h = Harness::simple();
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.router.detached(h.now, Party::Seeker(s(1))).unwrap();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    assert_eq!(assigned(&h.effects()), [(s(2), ANNA)]);
    assert_eq!(h.router.position(s(1)), Some(1));
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    assert!(assigned(&h.effects()).is_empty());
    h.router.seeker_reattached(h.now, s(1)).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(1), BOB)]);
}

#[test]
fn a_lost_counsellor_sends_seekers_to_the_front_and_keeps_shared_sessions() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 2);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.router
        .transfer(
            h.now,
            ANNA,
            s(2),
            Transfer::ToCounsellor {
                to: BOB,
                warm: true,
            },
        )
        .unwrap();
    h.router.accept(h.now, BOB, s(2)).unwrap();
    h.router.set_status(h.now, BOB, Status::Away).unwrap();
    h.arrive(s(3), ALGEMEEN, None);
    h.effects();
    h.router.detached(h.now, Party::Counsellor(ANNA)).unwrap();
    h.advance(h.router.config().counsellor_grace);
    let fx = h.effects();
    assert!(fx.contains(&Effect::CounsellorExpired { counsellor: ANNA }));
    assert_eq!(queued(&fx, s(1)), [(1, None, true)]);
    assert!(fx.contains(&Effect::Left {
        session: s(2),
        counsellor: ANNA
    }));
    assert_eq!(h.router.counsellors_of(s(2)), [BOB]);
    assert_eq!(h.router.position(s(3)), Some(2));
    h.staff(CLEM, &[ALGEMEEN], &[NL], 1);
    assert_eq!(assigned(&h.effects()), [(s(1), CLEM)]);
}

#[test]
fn a_counsellor_who_left_for_good_hands_on_at_once_not_after_grace() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.effects();
    // Connected or already dropped: either way nothing waits for a grace.
    h.router.detached(h.now, Party::Counsellor(ANNA)).unwrap();
    h.router.counsellor_left(h.now, ANNA).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::CounsellorExpired { counsellor: ANNA }));
    assert_eq!(queued(&fx, s(1)), [(1, None, true)]);
    // The expired grace timer is gone with them: nothing fires later.
    h.advance(h.router.config().counsellor_grace);
    assert!(h.effects().is_empty());
    assert_eq!(
        h.router.counsellor_left(h.now, ANNA),
        Err(haven_core::Refusal::UnknownCounsellor)
    );
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.staff(CLEM, &[ALGEMEEN], &[NL], 1);
    h.router.counsellor_left(h.now, CLEM).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(1), BOB)]);
}

#[test]
fn counsellor_back_within_grace_keeps_everything() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 2);
    h.arrive(s(1), ALGEMEEN, None);
    h.router.detached(h.now, Party::Counsellor(ANNA)).unwrap();
    h.arrive(s(2), ALGEMEEN, None);
    assert_eq!(
        assigned(&h.effects()),
        [(s(1), ANNA)],
        "routed to a disconnected counsellor"
    );
    h.advance(secs(30));
    let sessions = h.router.counsellor_connected(
        h.now,
        ANNA,
        Profile {
            topics: vec![ALGEMEEN],
            languages: vec![NL],
            capacity: 2,
            max_capacity: 4,
        },
    );
    assert_eq!(sessions, [s(1)]);
    let fx = h.effects();
    assert!(fx.contains(&Effect::Presence {
        session: s(1),
        to: Side::Seeker,
        connected: true
    }));
    assert_eq!(assigned(&fx), [(s(2), ANNA)]);
}

#[test]
fn stopping_ends_every_session_with_a_counsellor_or_in_line_and_tells_why() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.router.detached(h.now, Party::Seeker(s(2))).unwrap();
    h.arrive(s(3), ALGEMEEN, None);
    h.effects();
    h.router.stop(h.now);
    let fx = h.effects();
    let ended: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Ended {
                session,
                counsellors,
                reason,
                ..
            } => Some((*session, counsellors.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        [
            (s(1), vec![ANNA], EndReason::ServiceStopped),
            (s(2), vec![], EndReason::ServiceStopped),
            (s(3), vec![], EndReason::ServiceStopped),
        ]
    );
    // Nobody is handed the line on the way out, and nothing is left.
    assert!(assigned(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.router.session_count(), 0);
    assert_eq!(h.router.queue_len(), 0);
}
