//! Scenario tests of the router's rules with a fake clock, one rule per
//! test.

use std::time::{Duration, Instant};

use haven_core::router::{Refusal, TopicStats, TransferFailed, Withdrawn};
use haven_core::{
    Activity, Arrival, Assignment, CounsellorId, Effect, EndReason, Gate, LangId, Notice, Party,
    Profile, Router, RouterConfig, SessionId, Side, Status, TopicId, TopicRules, Transfer,
};

const ALGEMEEN: TopicId = TopicId(0);
const JONGEREN: TopicId = TopicId(1);
const NL: LangId = LangId(0);
const FR: LangId = LangId(1);
const ANNA: CounsellorId = CounsellorId(1);
const BOB: CounsellorId = CounsellorId(2);
const CLEM: CounsellorId = CounsellorId(3);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn s(n: u128) -> SessionId {
    SessionId(n)
}

/// A router with a fake clock and an effect log.
struct Harness {
    router: Router,
    now: Instant,
    log: Vec<Effect>,
}

impl Harness {
    fn new(topics: Vec<TopicRules>) -> Self {
        let now = Instant::now();
        let config = RouterConfig {
            topics,
            ..RouterConfig::default()
        };
        Self {
            router: Router::new(config, now),
            now,
            log: Vec::new(),
        }
    }

    fn simple() -> Self {
        Self::new(vec![TopicRules::default(), TopicRules::default()])
    }

    /// Advances the clock, running every timer on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.router.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.router.handle_timeout(self.now);
        }
        self.now = until;
        self.router.handle_timeout(self.now);
    }

    /// Effects since the last call.
    fn effects(&mut self) -> Vec<Effect> {
        let new: Vec<Effect> = std::iter::from_fn(|| self.router.poll_effect()).collect();
        self.log.extend(new.iter().cloned());
        new
    }

    fn arrive(&mut self, session: SessionId, topic: TopicId, language: Option<LangId>) {
        self.arrive_with(
            session,
            Arrival {
                topic,
                language,
                urgent: false,
                prefer: None,
            },
        );
    }

    fn arrive_with(&mut self, session: SessionId, arrival: Arrival) {
        self.router
            .seeker_arrived(self.now, session, arrival)
            .unwrap();
    }

    fn staff(&mut self, c: CounsellorId, topics: &[TopicId], languages: &[LangId], capacity: u32) {
        let profile = Profile {
            topics: topics.to_vec(),
            languages: languages.to_vec(),
            capacity,
            max_capacity: capacity + 2,
        };
        self.router.counsellor_connected(self.now, c, profile);
        self.router
            .set_status(self.now, c, Status::Available)
            .unwrap();
    }
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

fn offered(effects: &[Effect]) -> Vec<(SessionId, CounsellorId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Offered {
                session,
                counsellor,
                ..
            } => Some((*session, *counsellor)),
            _ => None,
        })
        .collect()
}

fn queued(effects: &[Effect], session: SessionId) -> Vec<(u32, Option<Duration>, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Queued {
                session: x,
                position,
                wait,
                requeued,
            } if *x == session => Some((*position, *wait, *requeued)),
            _ => None,
        })
        .collect()
}

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
    assert_eq!(
        h.router.stats(ALGEMEEN),
        Some(TopicStats {
            answered: 1,
            abandoned: 1,
            answered_wait: secs(90),
            abandoned_wait: secs(90)
        })
    );
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
