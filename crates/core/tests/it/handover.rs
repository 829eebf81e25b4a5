//! Scenario tests of how sessions change hands: offers, transfers and
//! return codes.

use std::time::Duration;

use haven_core::router::{Refusal, TransferFailed, Withdrawn};
use haven_core::{Arrival, Assignment, Effect, EndReason, Status, TopicRules, Transfer};

use super::support::*;

// === Offers ===

fn offer_topic() -> Vec<TopicRules> {
    vec![TopicRules {
        assignment: Assignment::Offer { timeout: secs(30) },
        ..TopicRules::default()
    }]
}

#[test]
fn an_accepted_offer_assigns_the_session() {
    let mut h = Harness::new(offer_topic());
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    let fx = h.effects();
    assert_eq!(offered(&fx), [(s(1), ANNA)]);
    assert!(assigned(&fx).is_empty());
    // Still in line, at its place, while offered.
    assert_eq!(h.router.position(s(1)), Some(1));
    assert_eq!(h.router.accept(h.now, BOB, s(1)), Err(Refusal::NoOffer));
    h.router.accept(h.now, ANNA, s(1)).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(1), ANNA)]);
    assert_eq!(h.router.accept(h.now, ANNA, s(1)), Err(Refusal::NoOffer));
}

#[test]
fn a_declined_offer_moves_on_and_the_seeker_keeps_their_place() {
    let mut h = Harness::new(offer_topic());
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.arrive(s(2), ALGEMEEN, None);
    assert_eq!(offered(&h.effects()), [(s(1), ANNA)]);
    h.router.decline(h.now, ANNA, s(1)).unwrap();
    // Anna is offered the next one; s(1) stays first in line for someone else.
    assert_eq!(offered(&h.effects()), [(s(2), ANNA)]);
    assert_eq!(h.router.position(s(1)), Some(1));
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    assert_eq!(offered(&h.effects()), [(s(1), BOB)]);
}

#[test]
fn a_timed_out_offer_moves_on_and_sets_the_counsellor_away() {
    let mut h = Harness::new(offer_topic());
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    assert_eq!(offered(&h.effects()), [(s(1), ANNA)]);
    h.advance(secs(30));
    let fx = h.effects();
    assert!(fx.contains(&Effect::OfferWithdrawn {
        session: s(1),
        counsellor: ANNA,
        reason: Withdrawn::TimedOut
    }));
    assert_eq!(offered(&fx), [(s(1), BOB)]);
    assert_eq!(
        h.router.counsellor(h.now, ANNA).unwrap().status,
        Status::Away
    );
}

#[test]
fn an_offer_is_withdrawn_when_the_seeker_leaves() {
    let mut h = Harness::new(offer_topic());
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.effects();
    h.router.seeker_ended(h.now, s(1)).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::OfferWithdrawn {
        session: s(1),
        counsellor: ANNA,
        reason: Withdrawn::Ended
    }));
    assert!(h.router.counsellor(h.now, ANNA).unwrap().offers.is_empty());
}

// === Transfers ===

#[test]
fn a_cold_transfer_hands_the_session_over() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.staff(BOB, &[JONGEREN], &[NL], 1);
    h.effects();
    h.router
        .transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: BOB,
                warm: false,
            },
        )
        .unwrap();
    let fx = h.effects();
    assert!(fx.iter().any(|e| matches!(e, Effect::Offered { session, counsellor: BOB, from: Some(ANNA), warm: false, .. } if *session == s(1))));
    assert_eq!(
        h.router.transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: CLEM,
                warm: false
            }
        ),
        Err(Refusal::TransferPending)
    );
    h.router.accept(h.now, BOB, s(1)).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::Assigned {
        session: s(1),
        counsellor: BOB,
        waited: Duration::ZERO,
        from: Some(ANNA),
        warm: false
    }));
    assert!(fx.contains(&Effect::Left {
        session: s(1),
        counsellor: ANNA
    }));
    assert_eq!(h.router.counsellors_of(s(1)), [BOB]);
}

#[test]
fn a_raised_hand_stays_up_through_a_transfer_until_lowered() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.effects();
    assert_eq!(h.router.raise_hand(BOB, s(1), true), Err(Refusal::NotYours));
    assert_eq!(
        h.router.raise_hand(ANNA, s(9), true),
        Err(Refusal::UnknownSession)
    );
    h.router.raise_hand(ANNA, s(1), true).unwrap();
    h.router.raise_hand(ANNA, s(1), true).unwrap();
    assert_eq!(
        h.effects(),
        [Effect::Hand {
            session: s(1),
            counsellor: ANNA,
            raised: true
        }],
        "raising a raised hand again says nothing"
    );
    assert!(h.router.hand_raised(s(1)));
    h.router
        .transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: BOB,
                warm: false,
            },
        )
        .unwrap();
    h.router.accept(h.now, BOB, s(1)).unwrap();
    h.effects();
    assert!(h.router.hand_raised(s(1)), "the colleague sees it still up");
    h.router.raise_hand(BOB, s(1), false).unwrap();
    assert!(h.effects().contains(&Effect::Hand {
        session: s(1),
        counsellor: BOB,
        raised: false
    }));
    assert!(!h.router.hand_raised(s(1)));
}

#[test]
fn a_warm_transfer_keeps_both_until_the_first_leaves() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.staff(BOB, &[ALGEMEEN], &[NL], 2);
    h.effects();
    h.router
        .transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: BOB,
                warm: true,
            },
        )
        .unwrap();
    h.router.accept(h.now, BOB, s(1)).unwrap();
    h.effects();
    assert_eq!(h.router.counsellors_of(s(1)), [ANNA, BOB]);
    // Whoever leaves first leaves; the session goes on with the other.
    h.router.counsellor_ended(h.now, BOB, s(1)).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::Left {
        session: s(1),
        counsellor: BOB
    }));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Ended { .. })));
    assert_eq!(h.router.counsellors_of(s(1)), [ANNA]);
    // The last one ends it.
    h.router.counsellor_ended(h.now, ANNA, s(1)).unwrap();
    assert!(h.effects().iter().any(|e| matches!(
        e,
        Effect::Ended {
            reason: EndReason::CounsellorEnded,
            ..
        }
    )));
}

#[test]
fn a_declined_transfer_leaves_the_session_with_the_sender() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.effects();
    assert_eq!(
        h.router.transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: ANNA,
                warm: false
            }
        ),
        Err(Refusal::Unavailable)
    );
    assert_eq!(
        h.router.transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: CLEM,
                warm: false
            }
        ),
        Err(Refusal::Unavailable)
    );
    assert_eq!(
        h.router
            .transfer(h.now, BOB, s(1), Transfer::ToTopic(JONGEREN)),
        Err(Refusal::NotYours)
    );
    h.router
        .transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: BOB,
                warm: false,
            },
        )
        .unwrap();
    h.router.decline(h.now, BOB, s(1)).unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::TransferFailed {
        session: s(1),
        from: ANNA,
        to: BOB,
        reason: TransferFailed::Declined
    }));
    assert_eq!(h.router.counsellors_of(s(1)), [ANNA]);
    // A transfer that times out fails the same way.
    h.router
        .transfer(
            h.now,
            ANNA,
            s(1),
            Transfer::ToCounsellor {
                to: BOB,
                warm: false,
            },
        )
        .unwrap();
    h.advance(secs(60));
    assert!(h.effects().contains(&Effect::TransferFailed {
        session: s(1),
        from: ANNA,
        to: BOB,
        reason: TransferFailed::TimedOut
    }));
    assert_eq!(h.router.counsellors_of(s(1)), [ANNA]);
}

#[test]
fn a_transfer_to_a_topic_puts_the_seeker_at_its_front() {
    let mut h = Harness::simple();
    h.arrive(s(1), JONGEREN, None);
    h.arrive(s(2), JONGEREN, None);
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(3), ALGEMEEN, None);
    h.effects();
    h.router
        .transfer(h.now, ANNA, s(3), Transfer::ToTopic(JONGEREN))
        .unwrap();
    let fx = h.effects();
    assert!(fx.contains(&Effect::Left {
        session: s(3),
        counsellor: ANNA
    }));
    assert_eq!(queued(&fx, s(3)), [(1, None, true)]);
    assert_eq!(h.router.topic_of(s(3)), Some(JONGEREN));
    h.staff(BOB, &[JONGEREN], &[NL], 1);
    assert_eq!(assigned(&h.effects()), [(s(3), BOB)]);
}

// === Returning help-seekers ===

#[test]
fn a_return_code_prefers_the_same_counsellor_then_falls_back() {
    let mut h = Harness::new(vec![TopicRules {
        return_wait: secs(300),
        ..TopicRules::default()
    }]);
    h.router.remember_return(h.now, 0xC0DE, ANNA);
    h.router.remember_return(h.now, 0xBEEF, ANNA);
    assert_eq!(h.router.redeem_return(h.now, 0xBAD), None);
    let prefer = h.router.redeem_return(h.now, 0xC0DE);
    assert_eq!(prefer, Some(ANNA));
    assert_eq!(
        h.router.redeem_return(h.now, 0xC0DE),
        None,
        "codes are single use"
    );

    // Bob is free, but the returning help-seeker waits for Anna...
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.router.set_status(h.now, ANNA, Status::Away).unwrap();
    h.arrive_with(
        s(1),
        Arrival {
            topic: ALGEMEEN,
            language: None,
            urgent: false,
            prefer,
        },
    );
    assert!(assigned(&h.effects()).is_empty());
    // ...and gets her when she becomes available.
    h.router.set_status(h.now, ANNA, Status::Available).unwrap();
    assert_eq!(assigned(&h.effects()), [(s(1), ANNA)]);

    // When she does not, normal routing takes over after the wait.
    let prefer = h.router.redeem_return(h.now, 0xBEEF);
    h.arrive_with(
        s(2),
        Arrival {
            topic: ALGEMEEN,
            language: None,
            urgent: false,
            prefer,
        },
    );
    assert!(assigned(&h.effects()).is_empty());
    h.advance(secs(300));
    assert_eq!(assigned(&h.effects()), [(s(2), BOB)]);
}

#[test]
fn return_codes_expire() {
    let mut h = Harness::simple();
    h.router.remember_return(h.now, 7, ANNA);
    h.advance(h.router.config().return_code_ttl);
    assert_eq!(h.router.redeem_return(h.now, 7), None);
}
