//! Graceful shutdown of a node that carries its sessions alone: readiness
//! turns 503 while chats go on, then every session ends with the reason
//! `service_restarted` (told to each party), every socket closes with 4505
//! "start anew" instead of a 1001 that would send clients to resume what
//! is gone, and the server stops within its deadline.

use std::time::Duration;

use haven_protocol::common::EndReason;
use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{TestServer, Ws, WsError};

#[tokio::test]
async fn shutdown_drains_then_ends_every_session_and_says_why() {
    let mut server = TestServer::start_with(|c| {
        // Long enough for the checks below on a loaded machine.
        c.drain_delay = Duration::from_secs(2);
        c.shutdown_timeout = Duration::from_secs(5);
    })
    .await;
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;
    // Anna's one seat is taken: this one waits.
    let mut waiting = server.seeker().await;
    waiting.hello(None).await;
    let mut idle = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();

    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Draining: not ready, no new sockets, but live chats go on.
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "draining");
    assert_eq!(server.get("/healthz").await.status, 200);
    assert!(matches!(
        Ws::connect(&server.url("/ws/seeker"), &[]).await,
        Err(WsError::Http(status)) if status == 503
    ));
    anna.say(&session, "last", "tot zo").await;
    assert_eq!(seeker.heard().await, (1, "tot zo".into()));

    // Then each help-seeker, in a chat or waiting, is told the service
    // restarted, and their socket closes normally: nothing to resume.
    for s in [&mut seeker, &mut waiting] {
        let ended = s
            .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
            .await;
        assert!(
            matches!(
                ended,
                s::ServerMessage::Ended {
                    reason: EndReason::ServiceRestarted,
                    return_code: None
                }
            ),
            "{ended:?}"
        );
        assert_eq!(s.closed().await, Some(1000));
    }
    // The counsellor is told their chat ended and why, then to start anew
    // (their login lived in this process too).
    let ended = anna
        .expect("session_ended", |m| {
            matches!(m, c::ServerMessage::SessionEnded { .. })
        })
        .await;
    assert_eq!(
        ended,
        c::ServerMessage::SessionEnded {
            session,
            reason: EndReason::ServiceRestarted
        }
    );
    assert_eq!(anna.closed().await, Some(4505));
    assert_eq!(idle.closed().await, Some(4505));
    let took = server.stopped().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[tokio::test]
async fn a_new_hello_during_the_drain_is_told_to_try_again() {
    let mut server = TestServer::start_with(|c| c.drain_delay = Duration::from_secs(2)).await;
    let mut early = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    early
        .send_json(&s::ClientMessage::Hello {
            protocol: 1,
            nickname: None,
            topic: None,
            language: None,
            urgent: false,
            return_code: None,
            transcript_consent: false,
        })
        .await;
    let reply = early.recv_text().await;
    assert!(reply.contains("\"code\":\"unavailable\""), "{reply}");
    assert_eq!(early.closed().await, Some(1013));
    server.stopped().await;
}
