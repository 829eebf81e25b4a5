//! Graceful shutdown: readiness turns 503, every socket gets 1001 "going
//! away, reconnect", and the server stops within its deadline.

use std::time::Duration;

use haven_protocol::seeker as s;
use haven_testkit::{TestServer, Ws, WsError};

#[tokio::test]
async fn shutdown_drains_then_closes_every_socket_with_1001() {
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

    // Then every socket is told to go away and come back.
    assert_eq!(seeker.closed().await, Some(1001));
    assert_eq!(anna.closed().await, Some(1001));
    assert_eq!(idle.closed().await, Some(1001));
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
