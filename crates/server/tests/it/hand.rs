//! Raising a hand: a counsellor asks a supervisor to look at a session.

use std::time::Duration;

use haven_protocol::{ErrorCode, counsellor as c, seeker as s};
use haven_testkit::TestServer;

use super::support::topics::{offered, waiting};

fn hand(m: &c::ServerMessage) -> Option<(bool, String)> {
    match m {
        c::ServerMessage::Hand { raised, by, .. } => Some((*raised, by.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn a_raised_hand_reaches_everyone_in_the_session_and_never_the_seeker() {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 2).await;

    // Only someone in the session may raise a hand about it.
    bob.send(&c::ClientMessage::RaiseHand {
        session: session.clone(),
        raised: true,
    })
    .await;
    let err = bob
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(err, c::ServerMessage::Error { code: ErrorCode::UnknownSession, session: Some(ref s), .. } if *s == session),
        "{err:?}"
    );

    anna.send(&c::ClientMessage::RaiseHand {
        session: session.clone(),
        raised: true,
    })
    .await;
    let up = anna.expect("hand", |m| hand(m).is_some()).await;
    assert_eq!(hand(&up), Some((true, "Anna".into())));

    // A colleague who joins sees it up, and lowering it tells both.
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: true,
        note: None,
    })
    .await;
    offered(&mut bob).await;
    bob.accept(&session).await;
    let joined = bob
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(joined, c::ServerMessage::SessionAssigned { ref info, .. } if info.hand_raised),
        "{joined:?}"
    );
    bob.send(&c::ClientMessage::RaiseHand {
        session: session.clone(),
        raised: false,
    })
    .await;
    for who in [&mut anna, &mut bob] {
        let down = who.expect("hand down", |m| hand(m).is_some()).await;
        assert_eq!(hand(&down), Some((false, "Bob".into())));
    }

    // The help-seeker heard nothing of it: only the colleague's arrival.
    while let Some(m) = seeker.try_recv(Duration::from_millis(300)).await {
        assert!(
            matches!(
                m,
                s::ServerMessage::Assigned { .. } | s::ServerMessage::Delivered { .. }
            ),
            "the help-seeker got {m:?}"
        );
    }
}

#[tokio::test]
async fn a_counsellor_who_reconnects_sees_their_raised_hand() {
    let server = TestServer::start().await;
    let (mut anna, token) = server.counsellor("anna", 1).await;
    anna.available().await;
    let _seeker = waiting(&server, "algemeen").await;
    let session = anna.assigned().await;
    anna.send(&c::ClientMessage::RaiseHand {
        session: session.clone(),
        raised: true,
    })
    .await;
    anna.expect("hand", |m| hand(m).is_some()).await;
    drop(anna);
    let mut again = server.counsellor_socket(&[]).await.unwrap();
    let welcome = again.hello(Some(&token)).await;
    assert!(
        matches!(welcome, c::ServerMessage::Welcome { ref sessions, .. }
            if sessions.len() == 1 && sessions[0].info.hand_raised),
        "{welcome:?}"
    );
}
