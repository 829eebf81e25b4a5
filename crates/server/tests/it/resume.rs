//! Dropped connections: resume within the grace period without losing or
//! duplicating a message, and what happens when nobody comes back.

use std::time::Duration;

use haven_protocol::common::{AuthToken, EndReason, ResumeToken};
use haven_protocol::counsellor::ResumePoint;
use haven_protocol::{ErrorCode, SessionRef, counsellor as c, seeker as s};
use haven_testkit::{CounsellorClient, SeekerClient, TestServer};

/// A seeker chatting with counsellor `anna`; returns both, the session and
/// the seeker's resume token.
async fn chatting(
    server: &TestServer,
) -> (SeekerClient, CounsellorClient, String, SessionRef, String) {
    let mut seeker = server.seeker().await;
    let s::ServerMessage::Welcome { token, .. } = seeker.hello(Some("Sam")).await else {
        unreachable!()
    };
    let (mut anna, auth) = server.counsellor("anna", 2).await;
    anna.available().await;
    let session = anna.assigned().await;
    seeker
        .expect("assigned", |m| {
            matches!(m, s::ServerMessage::Assigned { .. })
        })
        .await;
    (seeker, anna, auth, session, token.0)
}

async fn resume_seeker(server: &TestServer, token: &str, last_seq: u64) -> SeekerClient {
    let mut seeker = server.seeker().await;
    seeker
        .send(&s::ClientMessage::Resume {
            token: ResumeToken(token.to_owned()),
            last_seq,
        })
        .await;
    seeker
}

fn resumed_token(msg: &s::ServerMessage) -> String {
    match msg {
        s::ServerMessage::Resumed { token, .. } => token.0.clone(),
        other => panic!("expected resumed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_seeker_resumes_and_misses_nothing() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, _, session, token) = chatting(&server).await;
    anna.say(&session, "c1", "een").await;
    assert_eq!(seeker.heard().await, (1, "een".into()));
    seeker.send(&s::ClientMessage::Received { up_to: 1 }).await;
    anna.expect("delivered 1", |m| {
        matches!(m, c::ServerMessage::Delivered { up_to: 1, .. })
    })
    .await;

    // The phone loses signal.
    seeker.ws.drop_abruptly();
    let peer = anna
        .expect("peer gone", |m| matches!(m, c::ServerMessage::Peer { .. }))
        .await;
    assert_eq!(
        peer,
        c::ServerMessage::Peer {
            session: session.clone(),
            connected: false
        }
    );
    anna.say(&session, "c2", "twee").await;
    anna.say(&session, "c3", "drie").await;

    let mut back = resume_seeker(&server, &token, 1).await;
    let resumed = back.recv().await;
    assert!(
        matches!(
            resumed,
            s::ServerMessage::Resumed {
                recovered: true,
                last_seq: 3,
                delivered: 0,
                ..
            }
        ),
        "{resumed:?}"
    );
    assert_eq!(
        back.recv().await,
        s::ServerMessage::Assigned {
            counsellor: "Anna".into()
        }
    );
    assert_eq!(
        back.recv().await,
        s::ServerMessage::Peer { connected: true }
    );
    assert_eq!(back.heard().await, (2, "twee".into()));
    assert_eq!(back.heard().await, (3, "drie".into()));
    let peer = anna
        .expect("peer back", |m| matches!(m, c::ServerMessage::Peer { .. }))
        .await;
    assert_eq!(
        peer,
        c::ServerMessage::Peer {
            session: session.clone(),
            connected: true
        }
    );

    // Chat carries on, and nothing arrives twice.
    anna.say(&session, "c4", "vier").await;
    assert_eq!(back.heard().await, (4, "vier".into()));
    assert!(back.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_message_whose_ack_was_lost_is_retried_and_delivered_once() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, _, session, token) = chatting(&server).await;
    // Send and vanish before reading the ack.
    seeker
        .send(&s::ClientMessage::Send {
            id: haven_protocol::ClientMsgId("m1".into()),
            text: haven_protocol::ChatText("ben je daar?".into()),
            received: None,
        })
        .await;
    seeker.ws.drop_abruptly();
    let mut back = resume_seeker(&server, &token, 0).await;
    back.expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;
    // The client retries everything it has no ack for, with the same id.
    assert_eq!(back.say("m1", "ben je daar?").await, 1);
    assert_eq!(back.say("m2", "hallo?").await, 2);
    assert_eq!(anna.heard(&session).await, (1, "ben je daar?".into()));
    assert_eq!(anna.heard(&session).await, (2, "hallo?".into()));
    let extra = anna.try_recv(Duration::from_millis(300)).await;
    assert!(
        !matches!(extra, Some(c::ServerMessage::Message { .. })),
        "duplicate: {extra:?}"
    );
}

#[tokio::test]
async fn resume_tokens_rotate_and_the_old_one_lasts_until_its_successor_is_used() {
    let server = TestServer::start().await;
    let (seeker, _anna, _, _, token) = chatting(&server).await;
    seeker.ws.drop_abruptly();
    let mut first = resume_seeker(&server, &token, 0).await;
    let fresh = resumed_token(
        &first
            .expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
            .await,
    );
    assert_ne!(fresh, token);

    // A resume with the fresh token takes over; the older socket is told it
    // was replaced and must not reconnect.
    let mut second = resume_seeker(&server, &fresh, 0).await;
    let newest = resumed_token(
        &second
            .expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
            .await,
    );
    assert_eq!(first.closed().await, Some(4504));

    // Once its successor has been used, the first token no longer works.
    let mut replay = resume_seeker(&server, &token, 0).await;
    let err = replay.recv().await;
    assert!(
        matches!(
            err,
            s::ServerMessage::Error {
                code: ErrorCode::ResumeFailed,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(replay.closed().await, Some(4503));
    // The latest does.
    let mut third = resume_seeker(&server, &newest, 0).await;
    third
        .expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;

    // Garbage tokens fail the same way.
    let mut bogus = resume_seeker(&server, "not-a-token", 0).await;
    assert!(matches!(
        bogus.recv().await,
        s::ServerMessage::Error {
            code: ErrorCode::ResumeFailed,
            ..
        }
    ));
    assert_eq!(bogus.closed().await, Some(4503));
}

#[tokio::test]
async fn a_resume_whose_answer_was_lost_is_retried_with_the_old_token() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, auth, session, token) = chatting(&server).await;
    anna.say(&session, "c1", "een").await;
    seeker.heard().await;

    // Twice the network drops between `resume` and `resumed`: the
    // help-seeker never learns the new token, and retries with its own.
    seeker.ws.drop_abruptly();
    for _ in 0..2 {
        let lost = resume_seeker(&server, &token, 1).await;
        anna.expect("peer back", |m| {
            matches!(
                m,
                c::ServerMessage::Peer {
                    connected: true,
                    ..
                }
            )
        })
        .await;
        lost.ws.drop_abruptly();
    }
    anna.say(&session, "c2", "twee").await;
    let mut back = resume_seeker(&server, &token, 1).await;
    let resumed = back.recv().await;
    assert!(
        matches!(
            resumed,
            s::ServerMessage::Resumed {
                recovered: true,
                ..
            }
        ),
        "{resumed:?}"
    );
    assert_eq!(back.heard().await, (2, "twee".into()));

    // The same for the counsellor: her welcome's token, a resume whose
    // answer is lost, and the retry with the same token.
    let mut anna2 = server.counsellor_socket(&[]).await.unwrap();
    let c::ServerMessage::Welcome {
        token: anna_token, ..
    } = anna2.hello(Some(&auth)).await
    else {
        panic!("no welcome")
    };
    assert_eq!(anna.closed().await, Some(4504));
    let resume = c::ClientMessage::Resume {
        token: anna_token,
        auth: Some(AuthToken(auth.clone())),
        sessions: vec![ResumePoint {
            session: session.clone(),
            last_seq: 0,
        }],
    };
    anna2.ws.drop_abruptly();
    let mut lost = server.counsellor_socket(&[]).await.unwrap();
    lost.send(&resume).await;
    back.expect("peer back", |m| {
        matches!(m, s::ServerMessage::Peer { connected: true })
    })
    .await;
    lost.ws.drop_abruptly();
    let mut anna3 = server.counsellor_socket(&[]).await.unwrap();
    anna3.send(&resume).await;
    let resumed = anna3.recv().await;
    assert!(
        matches!(&resumed, c::ServerMessage::Resumed { sessions, .. } if sessions.len() == 1),
        "{resumed:?}"
    );
    back.say("s1", "fijn").await;
    assert_eq!(anna3.heard(&session).await.1, "fijn");
}

#[tokio::test]
async fn a_refused_resume_leaves_the_token_good_for_its_owner() {
    let server = TestServer::start().await;
    let (seeker, mut anna, anna_auth, session, token) = chatting(&server).await;
    let (_bram, bram_auth) = server.counsellor("bram", 1).await;
    // Anna's resume token, from a fresh welcome.
    let mut anna2 = server.counsellor_socket(&[]).await.unwrap();
    let c::ServerMessage::Welcome {
        token: anna_token, ..
    } = anna2.hello(Some(&anna_auth)).await
    else {
        panic!("no welcome")
    };
    assert_eq!(anna.closed().await, Some(4504));
    seeker.ws.drop_abruptly();
    anna2.ws.drop_abruptly();

    let refused = |code: Option<u16>| assert_eq!(code, Some(4503));
    // The help-seeker's token on the counsellor endpoint, with a login.
    let mut wrong = server.counsellor_socket(&[]).await.unwrap();
    wrong
        .send(&c::ClientMessage::Resume {
            token: ResumeToken(token.clone()),
            auth: Some(AuthToken(anna_auth.clone())),
            sessions: Vec::new(),
        })
        .await;
    refused(wrong.closed().await);
    // Anna's token with Bram's login, and on the help-seeker endpoint.
    let mut wrong = server.counsellor_socket(&[]).await.unwrap();
    wrong
        .send(&c::ClientMessage::Resume {
            token: anna_token.clone(),
            auth: Some(AuthToken(bram_auth.clone())),
            sessions: Vec::new(),
        })
        .await;
    refused(wrong.closed().await);
    refused(
        resume_seeker(&server, &anna_token.0, 0)
            .await
            .closed()
            .await,
    );

    // Both owners come back with their tokens.
    let mut back = resume_seeker(&server, &token, 0).await;
    back.expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;
    let mut anna3 = server.counsellor_socket(&[]).await.unwrap();
    anna3
        .send(&c::ClientMessage::Resume {
            token: anna_token,
            auth: Some(AuthToken(anna_auth)),
            sessions: vec![ResumePoint {
                session: session.clone(),
                last_seq: 0,
            }],
        })
        .await;
    let resumed = anna3.recv().await;
    assert!(
        matches!(resumed, c::ServerMessage::Resumed { .. }),
        "{resumed:?}"
    );
}

#[tokio::test]
async fn a_client_that_lost_its_state_is_told_about_the_gap() {
    let server = TestServer::start().await;
    let (mut seeker, mut anna, _, session, token) = chatting(&server).await;
    anna.say(&session, "c1", "een").await;
    anna.say(&session, "c2", "twee").await;
    seeker.heard().await;
    seeker.heard().await;
    seeker.send(&s::ClientMessage::Received { up_to: 2 }).await;
    anna.expect("delivered", |m| {
        matches!(m, c::ServerMessage::Delivered { up_to: 2, .. })
    })
    .await;
    anna.say(&session, "c3", "drie").await;
    seeker.ws.drop_abruptly();
    // Comes back claiming to have seen nothing (say, a reloaded page).
    let mut back = resume_seeker(&server, &token, 0).await;
    let resumed = back.recv().await;
    assert!(
        matches!(
            resumed,
            s::ServerMessage::Resumed {
                recovered: false,
                last_seq: 3,
                ..
            }
        ),
        "{resumed:?}"
    );
    assert_eq!(back.heard().await, (3, "drie".into()));
}

#[tokio::test]
async fn a_dropped_counsellor_resumes_every_session() {
    let server = TestServer::start().await;
    let (mut seeker, anna, auth, session, _) = chatting(&server).await;
    let mut welcome_token = None;
    // Re-greet to learn the counsellor's resume token from a fresh welcome.
    let mut anna2 = server.counsellor_socket(&[]).await.unwrap();
    if let c::ServerMessage::Welcome {
        token, sessions, ..
    } = anna2.hello(Some(&auth)).await
    {
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].info.session, session);
        welcome_token = Some(token);
    }
    // The first socket was replaced by the second.
    let mut anna = anna;
    assert_eq!(anna.closed().await, Some(4504));
    anna2.say(&session, "c1", "hallo").await;
    seeker.heard().await;

    anna2.ws.drop_abruptly();
    seeker
        .expect("peer gone", |m| {
            matches!(m, s::ServerMessage::Peer { connected: false })
        })
        .await;
    assert_eq!(seeker.say("s1", "ben je er nog?").await, 1);
    assert_eq!(seeker.say("s2", "hallo?").await, 2);

    let mut back = server.counsellor_socket(&[]).await.unwrap();
    back.send(&c::ClientMessage::Resume {
        token: welcome_token.unwrap(),
        auth: Some(AuthToken(auth.clone())),
        sessions: vec![ResumePoint {
            session: session.clone(),
            last_seq: 0,
        }],
    })
    .await;
    let resumed = back.recv().await;
    let c::ServerMessage::Resumed { sessions, .. } = resumed else {
        panic!("{resumed:?}")
    };
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].recovered);
    assert_eq!(sessions[0].last_seq, 2);
    assert_eq!(sessions[0].delivered, 0);
    assert_eq!(back.heard(&session).await, (1, "ben je er nog?".into()));
    assert_eq!(back.heard(&session).await, (2, "hallo?".into()));
    seeker
        .expect("peer back", |m| {
            matches!(m, s::ServerMessage::Peer { connected: true })
        })
        .await;
}

#[tokio::test]
async fn a_seeker_who_does_not_come_back_ends_the_session_and_frees_the_counsellor() {
    let server =
        TestServer::start_with(|c| c.session.seeker_grace = Duration::from_millis(500)).await;
    let (seeker, mut anna, _, session, token) = chatting(&server).await;
    seeker.ws.drop_abruptly();
    let ended = anna
        .expect("ended", |m| {
            matches!(m, c::ServerMessage::SessionEnded { .. })
        })
        .await;
    assert_eq!(
        ended,
        c::ServerMessage::SessionEnded {
            session,
            reason: EndReason::SeekerTimedOut
        }
    );
    // The capacity is free: the next help-seeker is routed to anna.
    let mut next = server.seeker().await;
    next.hello(None).await;
    anna.assigned().await;
    // And the old token is dead.
    let mut late = resume_seeker(&server, &token, 0).await;
    assert!(matches!(
        late.recv().await,
        s::ServerMessage::Error {
            code: ErrorCode::ResumeFailed,
            ..
        }
    ));
}

#[tokio::test]
async fn a_counsellor_who_does_not_come_back_sends_the_seeker_to_the_front() {
    let server =
        TestServer::start_with(|c| c.session.counsellor_grace = Duration::from_millis(500)).await;
    let mut first = server.seeker().await;
    first.hello(Some("first")).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    anna.assigned().await;
    first
        .expect("assigned", |m| {
            matches!(m, s::ServerMessage::Assigned { .. })
        })
        .await;
    let mut second = server.seeker().await;
    second.hello(Some("second")).await;
    second
        .expect("queued 1", |m| {
            matches!(m, s::ServerMessage::Queued { position: 1, .. })
        })
        .await;

    anna.ws.drop_abruptly();
    first
        .expect("peer gone", |m| {
            matches!(m, s::ServerMessage::Peer { connected: false })
        })
        .await;
    // Said while the counsellor was away: must reach whoever takes over.
    assert_eq!(first.say("f1", "hallo?").await, 1);
    let requeued = first
        .expect("requeued", |m| {
            matches!(m, s::ServerMessage::Queued { requeued: true, .. })
        })
        .await;
    assert_eq!(
        requeued,
        s::ServerMessage::Queued {
            position: 1,
            wait_secs: None,
            requeued: true
        }
    );
    second
        .expect("queued 2", |m| {
            matches!(m, s::ServerMessage::Queued { position: 2, .. })
        })
        .await;
    assert!(
        first
            .pending()
            .iter()
            .all(|m| !matches!(m, s::ServerMessage::Queued { position: 2, .. }))
    );

    let (mut bob, _) = server.counsellor("bob", 1).await;
    bob.available().await;
    let taken = bob
        .expect("assignment", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    let c::ServerMessage::SessionAssigned { info, .. } = taken else {
        unreachable!()
    };
    assert_eq!(info.nickname.as_deref(), Some("first"));
    assert_eq!(bob.heard(&info.session).await, (1, "hallo?".into()));
    assert_eq!(
        first
            .expect("assigned", |m| matches!(
                m,
                s::ServerMessage::Assigned { .. }
            ))
            .await,
        s::ServerMessage::Assigned {
            counsellor: "Bob".into()
        }
    );
}

#[tokio::test]
async fn a_full_backlog_refuses_new_messages_instead_of_dropping_old_ones() {
    let server = TestServer::start_with(|c| c.session.replay_max_messages = 5).await;
    let (seeker, mut anna, _, session, token) = chatting(&server).await;
    seeker.ws.drop_abruptly();
    anna.expect("peer gone", |m| {
        matches!(
            m,
            c::ServerMessage::Peer {
                connected: false,
                ..
            }
        )
    })
    .await;
    for i in 1..=5 {
        assert_eq!(
            anna.say(&session, &format!("c{i}"), &format!("bericht {i}"))
                .await,
            i
        );
    }
    anna.send(&c::ClientMessage::Send {
        session: session.clone(),
        id: haven_protocol::ClientMsgId("c6".into()),
        text: haven_protocol::ChatText("bericht 6".into()),
        received: None,
    })
    .await;
    let refused = anna
        .expect("refusal", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            refused,
            c::ServerMessage::Error {
                code: ErrorCode::PeerBacklogFull,
                ..
            }
        ),
        "{refused:?}"
    );

    let mut back = resume_seeker(&server, &token, 0).await;
    back.expect("resumed", |m| {
        matches!(
            m,
            s::ServerMessage::Resumed {
                recovered: true,
                ..
            }
        )
    })
    .await;
    for i in 1..=5 {
        assert_eq!(back.heard().await, (i, format!("bericht {i}")));
    }
    back.send(&s::ClientMessage::Received { up_to: 5 }).await;
    anna.expect("delivered", |m| {
        matches!(m, c::ServerMessage::Delivered { up_to: 5, .. })
    })
    .await;
    assert_eq!(anna.say(&session, "c6", "bericht 6").await, 6);
    assert_eq!(back.heard().await, (6, "bericht 6".into()));
}
