//! Routing over real sockets: skills, priority, capacity, wrap-up, offers,
//! transfers and return codes. The waiting room (opening hours, full
//! queues, pauses, the queue overview) is in `waiting_room.rs`.

use std::time::Duration;

use haven_protocol::common::EndReason;
use haven_protocol::counsellor::{CounsellorStatus, OfferEnd, TransferFailure};
use haven_protocol::seeker::Unavailability;
use haven_protocol::{ChatText, ClientMsgId, ErrorCode, counsellor as c, seeker as s};
use haven_server::config::TopicConfig;
use haven_testkit::TestServer;

use super::support::topics::{hello, offered, skills, status, two_topics, waiting};

#[tokio::test]
async fn sessions_go_only_to_counsellors_with_the_topic_and_language() {
    let server = TestServer::start_with(two_topics).await;
    let (mut anna, _) = server
        .counsellor_with("anna", &skills(&["algemeen"], &["nl"], 2))
        .await;
    let (mut bob, _) = server
        .counsellor_with("bob", &skills(&["algemeen"], &["fr"], 2))
        .await;
    anna.available().await;
    bob.available().await;
    let (_fr, welcome) = hello(&server, "algemeen", Some("fr-BE"), false, None).await;
    assert!(matches!(welcome, s::ServerMessage::Welcome { ref topic, .. } if topic == "algemeen"));
    let taken = bob
        .expect("assignment", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    let c::ServerMessage::SessionAssigned { info, .. } = taken else {
        unreachable!()
    };
    assert_eq!(info.language.as_deref(), Some("fr-BE"));
    // Nobody speaks German: the helpline does not offer it.
    let (_de, refused) = hello(&server, "algemeen", Some("de"), false, None).await;
    assert!(
        matches!(
            refused,
            s::ServerMessage::Unavailable {
                reason: Unavailability::UnknownLanguage,
                ..
            }
        ),
        "{refused:?}"
    );
    let (_x, refused) = hello(&server, "nergens", None, false, None).await;
    assert!(
        matches!(
            refused,
            s::ServerMessage::Unavailable {
                reason: Unavailability::UnknownTopic,
                ..
            }
        ),
        "{refused:?}"
    );
    // A counsellor without the topic never sees its help-seekers.
    assert!(
        anna.try_recv(Duration::from_millis(300))
            .await
            .is_none_or(|m| !matches!(m, c::ServerMessage::SessionAssigned { .. }))
    );
}

#[tokio::test]
async fn urgent_help_seekers_go_first_and_see_an_estimate() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let _busy = waiting(&server, "algemeen").await;
    anna.assigned().await;
    let mut first = waiting(&server, "algemeen").await;
    let q = first
        .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
        .await;
    // One seat, taken: the first in line waits about one assumed session.
    assert_eq!(
        q,
        s::ServerMessage::Queued {
            position: 1,
            wait_secs: Some(20 * 60),
            requeued: false
        }
    );
    let (mut urgent, _) = hello(&server, "algemeen", None, true, None).await;
    let q = urgent
        .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
        .await;
    assert!(
        matches!(q, s::ServerMessage::Queued { position: 1, .. }),
        "{q:?}"
    );
    // The one who was first moves to second, within a tick.
    let q = first
        .expect("moved", |m| {
            matches!(m, s::ServerMessage::Queued { position: 2, .. })
        })
        .await;
    assert_eq!(
        q,
        s::ServerMessage::Queued {
            position: 2,
            wait_secs: Some(40 * 60),
            requeued: false
        }
    );
}

#[tokio::test]
async fn capacity_can_be_raised_up_to_the_maximum_and_wrap_up_holds_the_next_one() {
    let server = TestServer::start_with(|c| {
        c.topics.insert(
            "algemeen".into(),
            TopicConfig {
                wrap_up: Duration::from_secs(60),
                ..TopicConfig::default()
            },
        );
    })
    .await;
    let (mut anna, _) = server
        .counsellor_with("anna", &skills(&["algemeen"], &["nl"], 1))
        .await;
    anna.available().await;
    let mut seekers = Vec::new();
    for _ in 0..4 {
        seekers.push(waiting(&server, "algemeen").await);
    }
    let first = anna.assigned().await;
    anna.send(&c::ClientMessage::SetCapacity { capacity: 99 })
        .await;
    let st = anna
        .expect("status", |m| {
            matches!(m, c::ServerMessage::Status { capacity: 3, .. })
        })
        .await;
    assert!(
        matches!(
            st,
            c::ServerMessage::Status {
                max_capacity: 3,
                ..
            }
        ),
        "{st:?}"
    );
    anna.assigned().await;
    anna.assigned().await;
    // Ending one starts wrap-up: the fourth waits although a seat is free...
    anna.send(&c::ClientMessage::End {
        session: first,
        block: None,
    })
    .await;
    let st = status(&mut anna, CounsellorStatus::WrapUp).await;
    assert!(
        matches!(
            st,
            c::ServerMessage::Status {
                wrap_up_secs: Some(1..=60),
                ..
            }
        ),
        "{st:?}"
    );
    assert!(
        anna.try_recv(Duration::from_millis(400))
            .await
            .is_none_or(|m| !matches!(m, c::ServerMessage::SessionAssigned { .. }))
    );
    // ...until the counsellor says they are ready.
    anna.send(&c::ClientMessage::Ready).await;
    anna.assigned().await;
}

#[tokio::test]
async fn an_offer_can_be_declined_and_times_out_to_the_next_counsellor() {
    let server = TestServer::start_with(two_topics).await;
    let (mut anna, _) = server
        .counsellor_with("anna", &skills(&["jongeren"], &["nl"], 1))
        .await;
    anna.available().await;
    let mut seeker = waiting(&server, "jongeren").await;
    let session = offered(&mut anna).await;
    // Still waiting, at its place, while offered.
    seeker
        .expect("queued", |m| {
            matches!(m, s::ServerMessage::Queued { position: 1, .. })
        })
        .await;
    anna.send(&c::ClientMessage::Decline {
        session: session.clone(),
    })
    .await;

    // Bob arrives; the offer goes to him; he lets it time out.
    let (mut bob, _) = server
        .counsellor_with("bob", &skills(&["jongeren"], &["nl"], 1))
        .await;
    bob.available().await;
    assert_eq!(offered(&mut bob).await, session);
    let gone = bob
        .expect("withdrawn", |m| {
            matches!(m, c::ServerMessage::OfferWithdrawn { .. })
        })
        .await;
    assert_eq!(
        gone,
        c::ServerMessage::OfferWithdrawn {
            session: session.clone(),
            reason: OfferEnd::TimedOut
        }
    );
    status(&mut bob, CounsellorStatus::Away).await;
    let late = bob.try_recv(Duration::from_millis(100)).await;
    bob.accept(&session).await;
    let err = bob
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: ErrorCode::NoOffer,
                ..
            }
        ),
        "{err:?} after {late:?}"
    );

    // Clem accepts.
    let (mut clem, _) = server
        .counsellor_with("clem", &skills(&["jongeren"], &["nl"], 1))
        .await;
    clem.available().await;
    assert_eq!(offered(&mut clem).await, session);
    clem.accept(&session).await;
    assert_eq!(clem.assigned().await, session);
    let a = seeker
        .expect("assigned", |m| {
            matches!(m, s::ServerMessage::Assigned { .. })
        })
        .await;
    assert_eq!(
        a,
        s::ServerMessage::Assigned {
            counsellor: "Clem".into()
        }
    );
}

#[tokio::test]
async fn a_pending_transfers_note_is_kept_from_everyone_else() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let _seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 1).await;
    let (mut clem, _) = server.counsellor("clem", 1).await;
    let hand_on = |note: &str, to: &str| c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some(to.into()),
        to_topic: None,
        warm: false,
        note: Some(note.into()),
    };
    anna.send(&hand_on("Gaat over school.", "bob")).await;
    bob.expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    // Clem is not in the session: refused, and the note stays Anna's.
    clem.send(&hand_on("", "clem")).await;
    let refused = clem
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            refused,
            c::ServerMessage::Error {
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{refused:?}"
    );
    // Anna herself, while her transfer waits, is refused too, and her
    // first note is not lost by it.
    anna.send(&hand_on("iets anders", "clem")).await;
    anna.expect("error", |m| {
        matches!(
            m,
            c::ServerMessage::Error {
                code: ErrorCode::TransferPending,
                ..
            }
        )
    })
    .await;
    bob.accept(&session).await;
    let got = bob
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(got, c::ServerMessage::SessionAssigned { ref note, .. }
        if note.as_deref() == Some("Gaat over school.")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_cold_transfer_hands_the_chat_to_a_colleague_with_a_private_note() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 1).await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: false,
        note: Some("Gaat over school.".into()),
    })
    .await;
    let offer = bob
        .expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    assert!(
        matches!(offer, c::ServerMessage::Offer { ref from, ref note, warm: false, .. }
        if from.as_deref() == Some("Anna") && note.as_deref() == Some("Gaat over school.")),
        "{offer:?}"
    );
    bob.accept(&session).await;
    let got = bob
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(got, c::ServerMessage::SessionAssigned { ref from, ref note, .. }
        if from.as_deref() == Some("Anna") && note.as_deref() == Some("Gaat over school.")),
        "{got:?}"
    );
    let ended = anna
        .expect("ended", |m| {
            matches!(m, c::ServerMessage::SessionEnded { .. })
        })
        .await;
    assert_eq!(
        ended,
        c::ServerMessage::SessionEnded {
            session: session.clone(),
            reason: EndReason::Transferred
        }
    );
    seeker
        .expect(
            "bob",
            |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Bob"),
        )
        .await;
    seeker.expect("anna left", |m| matches!(m, s::ServerMessage::CounsellorLeft { counsellor } if counsellor == "Anna")).await;
    // The chat goes on with Bob, and Anna is out of it.
    let seq = seeker.say("m1", "hallo Bob").await;
    assert_eq!(bob.heard(&session).await, (seq, "hallo Bob".into()));
    let seq = bob.say(&session, "b1", "Hallo!").await;
    let m = seeker
        .expect("message", |m| matches!(m, s::ServerMessage::Message { .. }))
        .await;
    assert!(
        matches!(m, s::ServerMessage::Message { seq: x, ref from, .. } if x == seq && from == "Bob"),
        "{m:?}"
    );
    anna.send(&c::ClientMessage::Send {
        session: session.clone(),
        id: ClientMsgId("a9".into()),
        text: ChatText("nog iets".into()),
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
                code: ErrorCode::UnknownSession,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_warm_transfer_keeps_both_until_the_first_leaves_and_a_decline_keeps_the_sender() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 2).await;
    let transfer = |warm| c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm,
        note: None,
    };
    // A decline leaves the session with Anna.
    anna.send(&transfer(true)).await;
    offered(&mut bob).await;
    bob.send(&c::ClientMessage::Decline {
        session: session.clone(),
    })
    .await;
    let failed = anna
        .expect("failed", |m| {
            matches!(m, c::ServerMessage::TransferFailed { .. })
        })
        .await;
    assert_eq!(
        failed,
        c::ServerMessage::TransferFailed {
            session: session.clone(),
            to: "bob".into(),
            reason: TransferFailure::Declined
        }
    );
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("nobody".into()),
        to_topic: None,
        warm: false,
        note: None,
    })
    .await;
    let err = anna
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: ErrorCode::TransferTargetUnavailable,
                ..
            }
        ),
        "{err:?}"
    );

    // Warm: both in; each sees the help-seeker and the other's messages.
    anna.send(&transfer(true)).await;
    offered(&mut bob).await;
    bob.accept(&session).await;
    bob.assigned().await;
    anna.expect("bob joined", |m| {
        matches!(m, c::ServerMessage::Participant { joined: true, .. })
    })
    .await;
    let seq = seeker.say("m1", "voor jullie allebei").await;
    assert_eq!(
        anna.heard(&session).await,
        (seq, "voor jullie allebei".into())
    );
    assert_eq!(
        bob.heard(&session).await,
        (seq, "voor jullie allebei".into())
    );
    anna.say(&session, "a1", "Bob leest mee.").await;
    let said = bob
        .expect("said", |m| matches!(m, c::ServerMessage::Said { .. }))
        .await;
    assert!(
        matches!(said, c::ServerMessage::Said { ref from, ref text, .. } if from == "Anna" && text.0 == "Bob leest mee."),
        "{said:?}"
    );
    // Anna leaves first; the session goes on with Bob.
    anna.send(&c::ClientMessage::End {
        session: session.clone(),
        block: None,
    })
    .await;
    anna.expect("left", |m| {
        matches!(
            m,
            c::ServerMessage::SessionEnded {
                reason: EndReason::Transferred,
                ..
            }
        )
    })
    .await;
    bob.expect("anna left", |m| {
        matches!(m, c::ServerMessage::Participant { joined: false, .. })
    })
    .await;
    seeker.expect("left", |m| matches!(m, s::ServerMessage::CounsellorLeft { counsellor } if counsellor == "Anna")).await;
    let seq = bob.say(&session, "b1", "Ik ben er nog.").await;
    let m = seeker
        .expect(
            "bob's message",
            |m| matches!(m, s::ServerMessage::Message { seq: x, .. } if *x == seq),
        )
        .await;
    assert!(
        matches!(m, s::ServerMessage::Message { ref from, .. } if from == "Bob"),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_transfer_to_a_topic_puts_the_seeker_at_its_front_with_the_note() {
    let server = TestServer::start_with(two_topics).await;
    let _ahead = waiting(&server, "jongeren").await;
    let (mut anna, _) = server
        .counsellor_with("anna", &skills(&["algemeen"], &["nl"], 1))
        .await;
    anna.available().await;
    let mut seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: None,
        to_topic: Some("jongeren".into()),
        warm: false,
        note: Some("liever iemand van jongeren".into()),
    })
    .await;
    seeker
        .expect("left", |m| {
            matches!(m, s::ServerMessage::CounsellorLeft { .. })
        })
        .await;
    let q = seeker
        .expect("requeued", |m| {
            matches!(m, s::ServerMessage::Queued { requeued: true, .. })
        })
        .await;
    assert!(
        matches!(q, s::ServerMessage::Queued { position: 1, .. }),
        "{q:?}"
    );
    let (mut bob, _) = server
        .counsellor_with("bob", &skills(&["jongeren"], &["nl"], 1))
        .await;
    bob.available().await;
    let offer = bob
        .expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    assert!(
        matches!(offer, c::ServerMessage::Offer { ref info, .. } if info.session == session),
        "{offer:?}"
    );
    bob.accept(&session).await;
    let got = bob
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(got, c::ServerMessage::SessionAssigned { ref note, .. } if note.as_deref() == Some("liever iemand van jongeren")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_return_code_brings_the_seeker_back_to_the_same_counsellor() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut first = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    first.send(&s::ClientMessage::End).await;
    let ended = first
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;
    let s::ServerMessage::Ended {
        return_code: Some(code),
        ..
    } = ended
    else {
        panic!("{ended:?}")
    };
    assert_eq!(code.len(), 9);
    anna.expect(
        "ended",
        |m| matches!(m, c::ServerMessage::SessionEnded { session: x, .. } if *x == session),
    )
    .await;

    // Anna is busy with someone else; Bob is free; the returning help-seeker
    // waits for Anna anyway...
    let _other = waiting(&server, "algemeen").await;
    let busy = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 1).await;
    bob.available().await;
    let (mut back, welcome) =
        hello(&server, "algemeen", None, false, Some(&code.to_lowercase())).await;
    assert!(
        matches!(welcome, s::ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    assert!(
        bob.try_recv(Duration::from_millis(400))
            .await
            .is_none_or(|m| !matches!(m, c::ServerMessage::SessionAssigned { .. }))
    );
    // ...and gets her as soon as she is free.
    anna.send(&c::ClientMessage::End {
        session: busy,
        block: None,
    })
    .await;
    let got = anna
        .expect(
            "returning",
            |m| matches!(m, c::ServerMessage::SessionAssigned { info, .. } if info.returning),
        )
        .await;
    assert!(matches!(got, c::ServerMessage::SessionAssigned { .. }));
    back.expect(
        "anna",
        |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Anna"),
    )
    .await;
    // Codes are single use.
    let (_again, welcome) = hello(&server, "algemeen", None, false, Some(&code)).await;
    assert!(matches!(welcome, s::ServerMessage::Welcome { .. }));
    // A malformed code is refused outright.
    let (mut bad, err) = hello(&server, "algemeen", None, false, Some("nonsense")).await;
    assert!(
        matches!(
            err,
            s::ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(bad.closed().await, Some(4500));
}
