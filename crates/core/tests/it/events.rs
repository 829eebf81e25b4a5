//! The events a coordinator watches, in the order the router saw things
//! happen.

use haven_core::{
    Activity, Arrival, Assignment, CounsellorOverview, EndReason, Event, Router, SessionOverview,
    Stage, TopicRules, Transfer,
};

use super::support::*;

fn events(router: &mut Router) -> Vec<Event> {
    std::iter::from_fn(|| router.poll_event()).collect()
}

/// The events without the frequent ones (positions, counsellor loads).
fn milestones(router: &mut Router) -> Vec<Event> {
    events(router)
        .into_iter()
        .filter(|e| !matches!(e, Event::Position { .. } | Event::Counsellor { .. }))
        .collect()
}

#[test]
fn a_session_lifecycle_is_told_step_by_step() {
    let mut h = Harness::new(vec![TopicRules {
        assignment: Assignment::Offer { timeout: secs(30) },
        ..TopicRules::default()
    }]);
    h.arrive(s(1), ALGEMEEN, None);
    let first = events(&mut h.router);
    assert_eq!(
        first[0],
        Event::Queued {
            session: s(1),
            topic: ALGEMEEN,
            urgent: false,
            returning: false
        }
    );
    assert!(
        first.contains(&Event::Position {
            session: s(1),
            topic: ALGEMEEN,
            position: 1,
            wait: None
        }),
        "{first:?}"
    );

    // Offered to Anna, who declines; to Bob, who lets it run out; to Clem,
    // who accepts.
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.staff(BOB, &[ALGEMEEN], &[NL], 1);
    h.router.decline(h.now, ANNA, s(1)).unwrap();
    h.advance(secs(31));
    h.advance(secs(5));
    h.staff(CLEM, &[ALGEMEEN], &[NL], 2);
    let offered_to = |c| Event::Offered {
        session: s(1),
        topic: ALGEMEEN,
        counsellor: c,
        from: None,
    };
    assert_eq!(
        milestones(&mut h.router),
        [
            offered_to(ANNA),
            Event::Declined {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: ANNA
            },
            offered_to(BOB),
            Event::OfferTimedOut {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: BOB
            },
            offered_to(CLEM),
        ]
    );
    h.router.accept(h.now, CLEM, s(1)).unwrap();
    let waited = secs(36);
    assert_eq!(
        milestones(&mut h.router),
        [
            Event::Accepted {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: CLEM
            },
            Event::Started {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: CLEM,
                waited,
                first: true
            },
        ]
    );

    // A raised hand, a warm transfer to Anna, and the end ten minutes in.
    h.router.raise_hand(CLEM, s(1), true).unwrap();
    h.router
        .transfer(
            h.now,
            CLEM,
            s(1),
            Transfer::ToCounsellor {
                to: ANNA,
                warm: true,
            },
        )
        .unwrap();
    h.router.accept(h.now, ANNA, s(1)).unwrap();
    h.advance(secs(600));
    h.router.seeker_ended(h.now, s(1)).unwrap();
    assert_eq!(
        milestones(&mut h.router),
        [
            Event::Hand {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: CLEM,
                raised: true
            },
            Event::Offered {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: ANNA,
                from: Some(CLEM)
            },
            Event::Accepted {
                session: s(1),
                topic: ALGEMEEN,
                counsellor: ANNA
            },
            Event::Transferred {
                session: s(1),
                topic: ALGEMEEN,
                from: CLEM,
                to: Some(ANNA),
                warm: true
            },
            Event::Ended {
                session: s(1),
                topic: ALGEMEEN,
                counsellors: vec![CLEM, ANNA],
                reason: EndReason::SeekerEnded,
                waited,
                duration: secs(600)
            },
        ]
    );
}

#[test]
fn leaving_the_queue_is_an_abandon_with_the_time_waited() {
    let mut h = Harness::simple();
    h.arrive(s(1), JONGEREN, None);
    h.advance(secs(45));
    h.router.seeker_ended(h.now, s(1)).unwrap();
    let told = milestones(&mut h.router);
    assert_eq!(
        told.last(),
        Some(&Event::Abandoned {
            session: s(1),
            topic: JONGEREN,
            waited: secs(45),
            reason: EndReason::SeekerEnded,
            answered: false
        })
    );
}

#[test]
fn counsellor_state_and_pauses_are_told() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 2);
    let told = events(&mut h.router);
    assert!(
        told.iter().any(|e| matches!(
            e,
            Event::Counsellor {
                counsellor: ANNA,
                activity: haven_core::Activity::Available,
                capacity: 2,
                active: 0
            }
        )),
        "{told:?}"
    );
    h.router.set_paused(h.now, JONGEREN, true).unwrap();
    h.router.set_paused(h.now, JONGEREN, true).unwrap();
    assert_eq!(
        events(&mut h.router),
        [Event::TopicPaused {
            topic: JONGEREN,
            paused: true
        }],
        "pausing a paused topic again says nothing"
    );
}

#[test]
fn the_overviews_list_each_session_in_line_or_with_its_counsellors_and_each_counsellors_load() {
    let mut h = Harness::simple();
    h.staff(ANNA, &[ALGEMEEN], &[NL], 1);
    h.arrive(s(1), ALGEMEEN, None);
    h.advance(secs(30));
    // Nobody serves this topic: an urgent help-seeker waits.
    let urgent = Arrival {
        topic: JONGEREN,
        language: None,
        urgent: true,
        prefer: None,
    };
    h.arrive_with(s(2), urgent);
    h.router.raise_hand(ANNA, s(1), true).unwrap();
    h.advance(secs(20));
    let mut rows: Vec<SessionOverview<'_>> = h.router.sessions_overview(h.now).collect();
    rows.sort_by_key(|r| r.session);
    assert_eq!(
        rows,
        [
            SessionOverview {
                session: s(1),
                topic: ALGEMEEN,
                urgent: false,
                hand: true,
                stage: Stage::Assigned {
                    counsellors: &[ANNA],
                    with: secs(50),
                },
            },
            SessionOverview {
                session: s(2),
                topic: JONGEREN,
                urgent: true,
                hand: false,
                stage: Stage::Waiting { waited: secs(20) },
            },
        ]
    );
    let counsellors: Vec<CounsellorOverview<'_>> = h.router.counsellors_overview(h.now).collect();
    assert_eq!(
        counsellors,
        [CounsellorOverview {
            counsellor: ANNA,
            activity: Activity::Available,
            capacity: 1,
            load: 1,
            topics: &[ALGEMEEN],
        }]
    );
    h.router.seeker_ended(h.now, s(1)).unwrap();
    let left: Vec<_> = h
        .router
        .sessions_overview(h.now)
        .map(|r| r.session)
        .collect();
    assert_eq!(left, [s(2)]);
    let loads: Vec<_> = h
        .router
        .counsellors_overview(h.now)
        .map(|c| c.load)
        .collect();
    assert_eq!(loads, [0]);
}
