//! Scenario tests of the waiting room: positions, estimates, full queues,
//! opening hours, pauses and abandonment.

use std::time::Duration;

use haven_core::router::{Event, Refusal, Transfer};
use haven_core::supervision::{Counted, Figures, Today};
use haven_core::{Arrival, Effect, EndReason, Gate, Notice, Party, Status, TopicRules};

use super::support::*;

// === Waiting room ===

#[test]
fn position_updates_are_coalesced_to_one_per_interval() {
    let mut h = Harness::simple();
    for n in 1..=50 {
        h.arrive(s(n), ALGEMEEN, None);
    }
    h.effects();
    // Ten departures from the front within one interval...
    for n in 1..=10 {
        h.router.seeker_ended(h.now, s(n)).unwrap();
    }
    assert!(
        queued(&h.effects(), s(50)).is_empty(),
        "updates were not coalesced"
    );
    h.advance(h.router.config().position_interval);
    // ...reach each remaining help-seeker as one update with the new place.
    let fx = h.effects();
    assert_eq!(queued(&fx, s(50)), [(40, None, false)]);
    assert_eq!(queued(&fx, s(11)), [(1, None, false)]);
    // Nothing changed: nothing sent.
    h.advance(h.router.config().position_interval);
    assert!(
        h.effects()
            .iter()
            .all(|e| !matches!(e, Effect::Queued { .. }))
    );
}

#[test]
fn the_wait_estimate_follows_seats_and_measured_sessions() {
    let rules = TopicRules {
        assumed_session: secs(20 * 60),
        wrap_up: Duration::ZERO,
        ..TopicRules::default()
    };
    let mut h = Harness::new(vec![rules]);
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    for n in 1..=6 {
        h.arrive(s(n), ALGEMEEN, None);
    }
    // Two seats, two taken; the 4th in line waits 4 × 20 / 2 = 40 minutes.
    assert_eq!(h.router.position(s(6)), Some(4));
    assert_eq!(h.router.estimated_wait(s(6)), Some(secs(40 * 60)));
    // Sessions turn out to take 5 minutes.
    h.advance(secs(300));
    h.router.counsellor_ended(h.now, ANNA, s(1)).unwrap();
    h.router.counsellor_ended(h.now, BOB, s(2)).unwrap();
    h.effects();
    assert_eq!(h.router.position(s(6)), Some(2));
    assert_eq!(h.router.estimated_wait(s(6)), Some(secs(5 * 60)));
    // Nobody staffed any more: unknown.
    h.router.set_status(h.now, ANNA, Status::Away).unwrap();
    h.router.set_status(h.now, BOB, Status::Away).unwrap();
    assert_eq!(h.router.estimated_wait(s(6)), None);
}

#[test]
fn a_full_queue_refuses_clearly() {
    let mut h = Harness::new(vec![TopicRules {
        max_queue: 2,
        ..TopicRules::default()
    }]);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    assert_eq!(
        h.router.seeker_arrived(
            h.now,
            s(3),
            Arrival {
                topic: ALGEMEEN,
                language: None,
                urgent: false,
                prefer: None
            }
        ),
        Err(Refusal::Full)
    );
    h.router.seeker_ended(h.now, s(1)).unwrap();
    h.arrive(s(3), ALGEMEEN, None);
}

#[test]
fn opening_hours_refuse_warn_and_finally_close_the_queue() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.effects();
    let closing = Gate::Closing {
        at_ms: 1_800_000_000_000,
    };
    h.router.set_gate(h.now, ALGEMEEN, closing).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::TopicNotice {
        session: s(2),
        notice: Notice::Gate(closing)
    }));
    // Still open for arrivals while closing.
    h.arrive(s(3), ALGEMEEN, None);
    let closed = Gate::Closed {
        opens_ms: Some(1_800_040_000_000),
    };
    h.router.set_gate(h.now, ALGEMEEN, closed).unwrap();
    assert_eq!(
        h.router.seeker_arrived(
            h.now,
            s(4),
            Arrival {
                topic: ALGEMEEN,
                language: None,
                urgent: false,
                prefer: None
            }
        ),
        Err(Refusal::Closed {
            opens_ms: Some(1_800_040_000_000)
        })
    );
    // Those waiting are still served while a counsellor is there...
    h.router.counsellor_ended(h.now, ANNA, s(1)).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(2), ANNA)]);
    // ...and when the last one leaves, nobody is left hanging.
    h.router.detached(h.now, Party::Counsellor(ANNA)).unwrap();
    h.advance(h.router.config().position_interval);
    let fx = h.effects();
    assert!(fx.iter().any(|e| matches!(e, Effect::Ended { session, reason: EndReason::TopicClosed, .. } if *session == s(3))));
}

#[test]
fn a_paused_topic_takes_nobody_new_and_tells_those_waiting() {
    let mut h = Harness::simple();
    h.arrive(s(1), ALGEMEEN, None);
    h.effects();
    h.router.set_paused(h.now, ALGEMEEN, true).unwrap();
    assert!(h.effects().contains(&Effect::TopicNotice {
        session: s(1),
        notice: Notice::Paused(true)
    }));
    assert_eq!(
        h.router.seeker_arrived(
            h.now,
            s(2),
            Arrival {
                topic: ALGEMEEN,
                language: None,
                urgent: false,
                prefer: None
            }
        ),
        Err(Refusal::Paused)
    );
    assert!(h.router.topic_summary(h.now, ALGEMEEN).unwrap().paused);
    // The other topic is unaffected.
    h.arrive(s(3), JONGEREN, None);
    h.router.set_paused(h.now, ALGEMEEN, false).unwrap();
    assert!(h.effects().contains(&Effect::TopicNotice {
        session: s(1),
        notice: Notice::Paused(false)
    }));
    h.arrive(s(2), ALGEMEEN, None);
}

#[test]
fn abandonment_is_recorded_with_the_time_waited() {
    let mut h = Harness::simple();
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    h.advance(secs(90));
    h.router.seeker_ended(h.now, s(1)).unwrap();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    let fx = h.effects();
    assert!(fx.iter().any(|e| matches!(e, Effect::Ended { session, counsellors, waited, .. } if *session == s(1) && counsellors.is_empty() && *waited == secs(90))));
    let mut today = Figures::new(2, secs(60));
    today.roll(());
    let counted: Vec<Counted> = std::iter::from_fn(|| h.router.poll_event())
        .map(|e| today.count(&e))
        .filter(|c| *c != Counted::Not)
        .collect();
    assert_eq!(
        counted,
        [Counted::Abandoned, Counted::Answered { in_target: false }]
    );
    assert_eq!(
        today.today(ALGEMEEN),
        Today {
            answered: 1,
            answered_in_target: 0,
            abandoned: 1
        }
    );
}

#[test]
fn a_help_seeker_put_back_in_line_is_answered_once_and_never_abandoned() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    // Back to the line, taken again, back again, and gone from it.
    for _ in 0..2 {
        h.router
            .transfer(h.now, ANNA, s(1), Transfer::ToTopic(ALGEMEEN))
            .unwrap();
        h.effects();
    }
    h.router
        .set_status(h.now, ANNA, haven_core::Status::Away)
        .unwrap();
    h.router
        .transfer(h.now, ANNA, s(1), Transfer::ToTopic(ALGEMEEN))
        .unwrap();
    h.router.seeker_ended(h.now, s(1)).unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| h.router.poll_event()).collect();
    let firsts: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            Event::Started { first, .. } => Some(*first),
            _ => None,
        })
        .collect();
    assert_eq!(firsts, [true, false, false], "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Abandoned { answered: true, .. }))
    );
    let mut today = Figures::new(2, secs(60));
    today.roll(());
    for e in &events {
        today.count(e);
    }
    assert_eq!(
        today.today(ALGEMEEN),
        Today {
            answered: 1,
            answered_in_target: 1,
            abandoned: 0
        }
    );
}
