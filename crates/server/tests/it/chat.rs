//! The core flow: a help-seeker and a counsellor chat through the broker.

use haven_protocol::common::EndReason;
use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{CounsellorClient, SeekerClient, TestServer};

#[tokio::test]
async fn a_seeker_and_a_counsellor_chat_both_ways() {
    let server = TestServer::start().await;
    let mut seeker = server.seeker().await;
    let welcome = seeker.hello(Some("Sam")).await;
    let s::ServerMessage::Welcome {
        grace_secs, limits, ..
    } = welcome
    else {
        unreachable!()
    };
    assert_eq!(grace_secs, 120);
    assert_eq!(limits.max_chars, 4000);
    let queued = seeker
        .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
        .await;
    assert_eq!(
        queued,
        s::ServerMessage::Queued {
            position: 1,
            wait_secs: None,
            requeued: false
        }
    );

    let (mut anna, _) = server.counsellor("anna", 3).await;
    anna.available().await;
    let assigned = anna
        .expect("assignment", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    let c::ServerMessage::SessionAssigned { info, .. } = assigned else {
        unreachable!()
    };
    assert_eq!(info.nickname.as_deref(), Some("Sam"));
    assert_eq!(info.topic, "algemeen");
    assert_eq!(info.language.as_deref(), Some("nl-BE"));
    assert!(info.seeker_connected);
    let session = info.session;
    assert_eq!(
        seeker
            .expect("assigned", |m| matches!(
                m,
                s::ServerMessage::Assigned { .. }
            ))
            .await,
        s::ServerMessage::Assigned {
            counsellor: "Anna".into()
        }
    );

    // Seeker to counsellor.
    assert_eq!(seeker.say("m1", "Hoi, ik wil iets vertellen.").await, 1);
    assert_eq!(
        anna.heard(&session).await,
        (1, "Hoi, ik wil iets vertellen.".into())
    );
    anna.send(&c::ClientMessage::Received {
        session: session.clone(),
        up_to: 1,
    })
    .await;
    assert_eq!(seeker.delivered().await, 1);

    // Counsellor to seeker, with typing indicators.
    anna.send(&c::ClientMessage::Typing {
        session: session.clone(),
        active: true,
    })
    .await;
    assert_eq!(
        seeker
            .expect("typing", |m| matches!(m, s::ServerMessage::Typing { .. }))
            .await,
        s::ServerMessage::Typing { active: true }
    );
    assert_eq!(anna.say(&session, "c1", "Ik luister.").await, 1);
    assert_eq!(anna.say(&session, "c2", "Neem je tijd.").await, 2);
    assert_eq!(seeker.heard().await, (1, "Ik luister.".into()));
    assert_eq!(seeker.heard().await, (2, "Neem je tijd.".into()));
    seeker.send(&s::ClientMessage::Received { up_to: 2 }).await;
    let delivered = anna
        .expect("delivered", |m| {
            matches!(m, c::ServerMessage::Delivered { .. })
        })
        .await;
    assert_eq!(
        delivered,
        c::ServerMessage::Delivered {
            session: session.clone(),
            up_to: 2
        }
    );
    seeker
        .send(&s::ClientMessage::Typing { active: true })
        .await;
    anna.expect("typing", |m| {
        matches!(m, c::ServerMessage::Typing { active: true, .. })
    })
    .await;

    // The seeker ends: both sides are told, the seeker's socket closes.
    seeker.send(&s::ClientMessage::End).await;
    let ended = seeker
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;
    assert!(
        matches!(
            ended,
            s::ServerMessage::Ended {
                reason: EndReason::SeekerEnded,
                return_code: Some(_)
            }
        ),
        "{ended:?}"
    );
    assert_eq!(seeker.closed().await, Some(1000));
    let ended = anna
        .expect("ended", |m| {
            matches!(m, c::ServerMessage::SessionEnded { .. })
        })
        .await;
    assert_eq!(
        ended,
        c::ServerMessage::SessionEnded {
            session,
            reason: EndReason::SeekerEnded
        }
    );
}

#[tokio::test]
async fn a_counsellor_takes_several_up_to_capacity_and_ends_sessions() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 2).await;
    anna.available().await;

    let mut seekers = Vec::new();
    for name in ["A", "B", "C"] {
        let mut seeker = server.seeker().await;
        seeker.hello(Some(name)).await;
        seekers.push(seeker);
    }
    let first = anna.assigned().await;
    let second = anna.assigned().await;
    assert_ne!(first, second);
    // The third waits, first in line.
    let mut third = seekers.pop().unwrap();
    third
        .expect("queued at 1", |m| {
            matches!(m, s::ServerMessage::Queued { position: 1, .. })
        })
        .await;
    assert!(
        anna.try_recv(std::time::Duration::from_millis(300))
            .await
            .is_none_or(|m| !matches!(m, c::ServerMessage::SessionAssigned { .. }))
    );

    // Both chats are independent.
    anna.say(&first, "x1", "voor A").await;
    anna.say(&second, "y1", "voor B").await;
    assert_eq!(seekers[0].heard().await, (1, "voor A".into()));
    assert_eq!(seekers[1].heard().await, (1, "voor B".into()));

    // Ending one frees the capacity for the third.
    anna.send(&c::ClientMessage::End {
        session: first.clone(),
        block: None,
    })
    .await;
    let ended = anna
        .expect("ended", |m| {
            matches!(m, c::ServerMessage::SessionEnded { .. })
        })
        .await;
    assert_eq!(
        ended,
        c::ServerMessage::SessionEnded {
            session: first.clone(),
            reason: EndReason::CounsellorEnded
        }
    );
    let ended = seekers[0]
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;
    assert!(
        matches!(
            ended,
            s::ServerMessage::Ended {
                reason: EndReason::CounsellorEnded,
                return_code: Some(_)
            }
        ),
        "{ended:?}"
    );
    let third_session = anna.assigned().await;
    third
        .expect("assigned", |m| {
            matches!(m, s::ServerMessage::Assigned { .. })
        })
        .await;
    third.say("z1", "eindelijk").await;
    assert_eq!(anna.heard(&third_session).await, (1, "eindelijk".into()));

    // The ended session is gone for good.
    anna.send(&c::ClientMessage::Send {
        session: first.clone(),
        id: haven_protocol::ClientMsgId("late".into()),
        text: haven_protocol::ChatText("te laat".into()),
        received: None,
    })
    .await;
    let err = anna
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: haven_protocol::ErrorCode::UnknownSession,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn queue_positions_are_pushed_while_waiting() {
    let server = TestServer::start().await;
    let mut waiting = Vec::new();
    for i in 0..4 {
        let mut seeker = server.seeker().await;
        seeker.hello(None).await;
        let pos = seeker
            .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
            .await;
        assert_eq!(
            pos,
            s::ServerMessage::Queued {
                position: i + 1,
                wait_secs: None,
                requeued: false
            }
        );
        waiting.push(seeker);
    }
    // The first leaves; everyone behind moves up one.
    waiting[0].send(&s::ClientMessage::End).await;
    for (i, seeker) in waiting.iter_mut().enumerate().skip(1) {
        let want = u32::try_from(i).unwrap();
        let pos = seeker
            .expect("new position", |m| {
                matches!(m, s::ServerMessage::Queued { .. })
            })
            .await;
        assert_eq!(
            pos,
            s::ServerMessage::Queued {
                position: want,
                wait_secs: None,
                requeued: false
            }
        );
    }
}

#[tokio::test]
async fn a_seeker_may_write_while_waiting_and_the_counsellor_reads_it_on_pickup() {
    let server = TestServer::start().await;
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    assert_eq!(
        seeker
            .say("w1", "Ik wacht, maar dit wil ik al kwijt.")
            .await,
        1
    );
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;
    assert_eq!(
        anna.heard(&session).await,
        (1, "Ik wacht, maar dit wil ik al kwijt.".into())
    );
}

/// A help-seeker who said hello, and Anna (capacity 1) who took them.
async fn seeker_with_anna(
    server: &TestServer,
) -> (SeekerClient, CounsellorClient, haven_protocol::SessionRef) {
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;
    (seeker, anna, session)
}

#[tokio::test]
async fn retries_with_the_same_id_are_delivered_once() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, session) = seeker_with_anna(&server).await;
    for _ in 0..5 {
        assert_eq!(seeker.say("same", "één keer").await, 1);
    }
    assert_eq!(seeker.say("next", "twee").await, 2);
    assert_eq!(anna.heard(&session).await, (1, "één keer".into()));
    assert_eq!(anna.heard(&session).await, (2, "twee".into()));
}

#[tokio::test]
async fn a_send_confirms_what_it_carries_along_even_when_it_is_refused() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, session) = seeker_with_anna(&server).await;

    // The counsellor answers and confirms the help-seeker's message in the
    // same frame.
    assert_eq!(seeker.say("m1", "Hallo?").await, 1);
    assert_eq!(anna.heard(&session).await, (1, "Hallo?".into()));
    anna.send(&c::ClientMessage::Send {
        session: session.clone(),
        id: haven_protocol::ClientMsgId("c1".into()),
        text: haven_protocol::ChatText("Ik ben er.".into()),
        received: Some(1),
    })
    .await;
    assert_eq!(seeker.heard().await, (1, "Ik ben er.".into()));
    assert_eq!(seeker.delivered().await, 1);

    // A send refused for its text still confirms.
    seeker
        .send(&s::ClientMessage::Send {
            id: haven_protocol::ClientMsgId("m2".into()),
            text: haven_protocol::ChatText(String::new()),
            received: Some(1),
        })
        .await;
    seeker
        .expect("refusal", |m| matches!(m, s::ServerMessage::Error { .. }))
        .await;
    assert_eq!(
        anna.expect("delivered", |m| matches!(
            m,
            c::ServerMessage::Delivered { .. }
        ))
        .await,
        c::ServerMessage::Delivered {
            session: session.clone(),
            up_to: 1
        }
    );

    // A confirmation for a session that is not the counsellor's is refused
    // with the message.
    anna.send(&c::ClientMessage::Send {
        session: haven_protocol::SessionRef("0123456789abcdef0123456789abcdef".into()),
        id: haven_protocol::ClientMsgId("c2".into()),
        text: haven_protocol::ChatText("verkeerd".into()),
        received: Some(1),
    })
    .await;
    anna.expect("refusal", |m| {
        matches!(
            m,
            c::ServerMessage::Error {
                code: haven_protocol::ErrorCode::UnknownSession,
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let health = server.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.headers["x-content-type-options"], "nosniff");
    assert_eq!(server.get("/nope").await.status, 404);
}

#[tokio::test]
async fn an_ack_waits_for_the_next_frame_but_never_longer_than_the_delay() {
    use std::time::{Duration, Instant};
    let server = TestServer::start_with(|c| c.session.ack_delay = Duration::from_secs(1)).await;
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;

    // A reply takes the waiting ack along: both arrive long before the
    // delay is up.
    let sent = Instant::now();
    seeker
        .send(&s::ClientMessage::Send {
            id: haven_protocol::ClientMsgId("m1".into()),
            text: haven_protocol::ChatText("Hallo?".into()),
            received: None,
        })
        .await;
    assert_eq!(anna.heard(&session).await, (1, "Hallo?".into()));
    anna.send(&c::ClientMessage::Send {
        session: session.clone(),
        id: haven_protocol::ClientMsgId("r1".into()),
        text: haven_protocol::ChatText("Ik ben er.".into()),
        received: None,
    })
    .await;
    let ack = seeker
        .expect("ack", |m| matches!(m, s::ServerMessage::Ack { .. }))
        .await;
    assert!(
        matches!(ack, s::ServerMessage::Ack { seq: 1, .. }),
        "{ack:?}"
    );
    assert_eq!(seeker.heard().await, (1, "Ik ben er.".into()));
    assert!(
        sent.elapsed() < Duration::from_millis(900),
        "{:?}",
        sent.elapsed()
    );

    // With nothing to ride along, the ack goes out on its own once the
    // delay is up (anna's ack of r1 above, too).
    let sent = Instant::now();
    assert_eq!(seeker.say("m2", "Nog iets.").await, 2);
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        sent.elapsed()
    );
    assert!(matches!(
        anna.expect("ack", |m| matches!(m, c::ServerMessage::Ack { .. }))
            .await,
        c::ServerMessage::Ack { seq: 1, .. }
    ));
}

#[tokio::test]
async fn counsellors_in_one_session_may_use_the_same_message_id() {
    // Two consoles number their messages independently; the second one's
    // "c-1" is a new message, not a retry of the first one's.
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = server.seeker().await;
    seeker.hello(Some("Sam")).await;
    let session = anna.assigned().await;
    assert_eq!(anna.say(&session, "c-1", "Ik ben Anna.").await, 1);
    let (mut bob, _) = server.counsellor("bob", 2).await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: true,
        note: None,
    })
    .await;
    bob.expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    bob.accept(&session).await;
    bob.assigned().await;
    assert_eq!(bob.say(&session, "c-1", "Ik ben Bob.").await, 2);
    let mut heard = Vec::new();
    while heard.len() < 2 {
        if let s::ServerMessage::Message {
            seq, text, from, ..
        } = seeker
            .expect("message", |m| matches!(m, s::ServerMessage::Message { .. }))
            .await
        {
            heard.push((seq, text.0, from));
        }
    }
    assert_eq!(
        heard,
        [
            (1, "Ik ben Anna.".to_owned(), "Anna".to_owned()),
            (2, "Ik ben Bob.".to_owned(), "Bob".to_owned())
        ]
    );
    // A retry is still a retry: Bob's "c-1" again gets its first seq.
    assert_eq!(bob.say(&session, "c-1", "Ik ben Bob.").await, 2);
}
