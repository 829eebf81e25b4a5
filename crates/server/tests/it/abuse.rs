//! Fake help-seekers and abusive ones: staff keep room when help-seekers
//! fill the server, one source may have only so many waiting, a flood
//! from many sources is seen and cleared by a coordinator without harming
//! anyone already talking, and a counsellor can put an abusive
//! help-seeker's source on a cool-down that a supervisor can lift. Each
//! source is a loopback alias (127.0.0.x), so the per-source rules see
//! them apart.

use std::net::IpAddr;
use std::time::Duration;

use haven_protocol::common::EndReason;
use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::Role;
use haven_testkit::{SeekerClient, TestServer, Ws, WsError};
use hyper::Method;

fn from(host: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, host])
}

/// A help-seeker's socket from `127.0.0.{host}`.
async fn seeker_from(server: &TestServer, host: u8) -> SeekerClient {
    SeekerClient::new(Ws::connect_from(&server.url("/ws/seeker"), server.addr, from(host)).await)
}

/// Says hello (urgent, as a flood would) and returns the first answer.
async fn hello(seeker: &mut SeekerClient, nickname: &str) -> s::ServerMessage {
    seeker
        .send(&s::ClientMessage::Hello {
            protocol: haven_protocol::PROTOCOL_VERSION,
            nickname: Some(nickname.to_owned()),
            topic: None,
            language: None,
            urgent: true,
            return_code: None,
            transcript_consent: false,
        })
        .await;
    seeker.recv().await
}

/// A supervisor's bearer login.
async fn coordinator(server: &TestServer) -> String {
    let password = server.add_account("coco", Role::Supervisor, None);
    format!("Bearer {}", server.token("coco", &password).await)
}

#[tokio::test]
async fn staff_keep_their_room_when_help_seekers_fill_the_server() {
    let server = TestServer::start_with(|c| {
        c.limits.max_connections = 12;
        c.limits.staff_reserved_connections = 2;
    })
    .await;
    // Ten help-seeker sockets take every place they may.
    let mut fakes = Vec::new();
    for host in 10..20 {
        fakes.push(seeker_from(&server, host).await);
    }
    let refused = Ws::connect(&server.url("/ws/seeker"), &[]).await;
    assert!(matches!(refused, Err(WsError::Http(status)) if status == 503));
    // Counsellors still get in.
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let (_bram, _) = server.counsellor("bram", 1).await;
    drop(fakes);
}

#[tokio::test]
async fn one_source_may_have_only_so_many_waiting() {
    let server = TestServer::start_with(|c| c.limits.source_max_waiting = 3).await;
    let mut waiting = Vec::new();
    for i in 0..3 {
        let mut seeker = seeker_from(&server, 2).await;
        let first = hello(&mut seeker, &format!("n{i}")).await;
        assert!(
            matches!(first, s::ServerMessage::Welcome { .. }),
            "{first:?}"
        );
        waiting.push(seeker);
    }
    let mut fourth = seeker_from(&server, 2).await;
    let refused = hello(&mut fourth, "n3").await;
    assert!(
        matches!(
            &refused,
            s::ServerMessage::Unavailable { reason: s::Unavailability::Full, alternatives, .. }
                if !alternatives.is_empty()
        ),
        "{refused:?}"
    );
    // Another address is not affected.
    let mut other = seeker_from(&server, 3).await;
    assert!(matches!(
        hello(&mut other, "x").await,
        s::ServerMessage::Welcome { .. }
    ));
    // Once one of them is answered, the source has room again: those
    // talking to a counsellor do not count.
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    anna.assigned().await;
    let mut again = seeker_from(&server, 2).await;
    assert!(matches!(
        hello(&mut again, "n4").await,
        s::ServerMessage::Welcome { .. }
    ));
}

#[tokio::test]
async fn a_flood_from_many_sources_is_seen_and_cleared_and_harms_nobody_talking() {
    let server = TestServer::start_with(|c| {
        c.limits.source_max_waiting = 2;
        c.supervisor.alert_arrivals_per_minute = 20;
        c.supervisor.snapshot_interval = Duration::from_millis(100);
    })
    .await;
    let coco = coordinator(&server).await;
    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &coco)])
        .await;
    // Someone is talking to Anna, and someone genuine waits and writes.
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut talking = server.seeker().await;
    let welcome = talking.hello(Some("Sam")).await;
    let s::ServerMessage::Welcome { token, .. } = welcome else {
        unreachable!()
    };
    let session = anna.assigned().await;
    let mut genuine = seeker_from(&server, 9).await;
    assert!(matches!(
        hello(&mut genuine, "Kim").await,
        s::ServerMessage::Welcome { .. }
    ));
    genuine.say("k1", "is er iemand?").await;

    // Forty fakes, two from each of twenty addresses, all urgent, silent.
    let mut fakes = Vec::new();
    for host in 20..40 {
        for i in 0..3 {
            let mut fake = seeker_from(&server, host).await;
            let answer = hello(&mut fake, &format!("f{host}-{i}")).await;
            // The third from one address is refused.
            assert_eq!(
                matches!(answer, s::ServerMessage::Welcome { .. }),
                i < 2,
                "{answer:?}"
            );
            fakes.push(fake);
        }
    }
    // The coordinator is alerted...
    feed.expect("event", |e| e["type"] == "alert" && e["alert"] == "flood")
        .await;
    // ... while the chat goes on, a counsellor still logs in, and the one
    // talking comes back after a dropped connection.
    talking.say("t1", "nog steeds hier").await;
    assert_eq!(anna.heard(&session).await.1, "nog steeds hier");
    let (_bram, _) = server.counsellor("bram", 0).await;
    talking.ws.drop_abruptly();
    let mut back = server.seeker().await;
    back.send(&s::ClientMessage::Resume {
        token: token.clone(),
        last_seq: 0,
    })
    .await;
    back.expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;

    // The coordinator clears the silent newcomers.
    let cleared = server
        .http(
            Method::POST,
            "/api/v1/supervisor/topics/algemeen/clear",
            &[("authorization", &coco)],
            Some(r#"{"within_secs": 600}"#.into()),
        )
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.json()["cleared"], 40);
    for fake in fakes.iter_mut().step_by(3) {
        let ended = fake
            .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
            .await;
        assert!(
            matches!(
                ended,
                s::ServerMessage::Ended {
                    reason: EndReason::Cleared,
                    ..
                }
            ),
            "{ended:?}"
        );
    }
    // The one who wrote keeps their place, first in line now.
    let queued = genuine
        .expect("queued", |m| {
            matches!(m, s::ServerMessage::Queued { position: 1, .. })
        })
        .await;
    assert!(matches!(queued, s::ServerMessage::Queued { .. }));
    back.say("t2", "fijn").await;
    assert_eq!(anna.heard(&session).await.1, "fijn");
    let audit = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap();
    assert!(
        audit.contains(
            r#""actor":"coco","action":"queue_cleared","target":"algemeen","detail":"40""#
        ),
        "{audit}"
    );
}

#[tokio::test]
async fn a_counsellor_puts_an_abusive_source_on_a_cool_down_that_a_supervisor_can_lift() {
    let server = TestServer::start().await;
    let coco = coordinator(&server).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    // Someone else behind the abuser's address is mid-chat with Bram.
    let (mut bram, _) = server.counsellor("bram", 1).await;
    bram.available().await;
    let mut neighbour = seeker_from(&server, 5).await;
    let s::ServerMessage::Welcome { token, .. } = hello(&mut neighbour, "Buur").await else {
        panic!("no welcome")
    };
    let neighbours = bram.assigned().await;

    anna.available().await;
    let mut abuser = seeker_from(&server, 5).await;
    assert!(matches!(
        hello(&mut abuser, "X").await,
        s::ServerMessage::Welcome { .. }
    ));
    let session = anna.assigned().await;
    abuser.say("a1", "iets kwetsends").await;

    // A block the helpline does not offer is refused, and nothing ends.
    let block = |hours: u32, reason: &str| c::ClientMessage::End {
        session: session.clone(),
        block: Some(c::Block {
            hours,
            reason: reason.to_owned(),
        }),
    };
    anna.send(&block(5, "abusive")).await;
    anna.expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    anna.send(&block(24, "abusive")).await;
    anna.expect("ended", |m| {
        matches!(m, c::ServerMessage::SessionEnded { .. })
    })
    .await;
    abuser
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;

    // A new chat from that address is refused kindly, with when it lapses
    // and the alternatives.
    let mut again = seeker_from(&server, 5).await;
    let refused = hello(&mut again, "X").await;
    let s::ServerMessage::Unavailable {
        reason: s::Unavailability::Blocked,
        opens_at: Some(until),
        alternatives,
        ..
    } = refused
    else {
        panic!("{refused:?}")
    };
    assert!(!alternatives.is_empty());
    let day = 24 * 3_600_000;
    let now = now_ms();
    assert!(
        until > now + day - 60_000 && until <= now + day,
        "{until} vs {now}"
    );
    // Another address is not; and the neighbour, mid-chat, resumes.
    let mut other = seeker_from(&server, 6).await;
    assert!(matches!(
        hello(&mut other, "Y").await,
        s::ServerMessage::Welcome { .. }
    ));
    neighbour.ws.drop_abruptly();
    let mut back = seeker_from(&server, 5).await;
    back.send(&s::ClientMessage::Resume { token, last_seq: 0 })
        .await;
    back.expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;
    back.say("b1", "nog hier").await;
    assert_eq!(bram.heard(&neighbours).await.1, "nog hier");

    // The supervisor sees the block (never where it came from) and lifts it.
    let list = server
        .http(
            Method::GET,
            "/api/v1/supervisor/blocks",
            &[("authorization", &coco)],
            None,
        )
        .await
        .json();
    let blocks = list["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{list}");
    assert_eq!(blocks[0]["by"], "anna");
    assert_eq!(blocks[0]["reason"], "abusive");
    assert!(!list.to_string().contains("127.0.0"), "{list}");
    // A counsellor may not see or lift blocks.
    let anna_token = server.token("anna", "pw-anna-0123456789").await;
    let denied = server
        .http(
            Method::GET,
            "/api/v1/supervisor/blocks",
            &[("authorization", &format!("Bearer {anna_token}"))],
            None,
        )
        .await;
    assert_eq!(denied.status, 403);
    let id = blocks[0]["id"].as_str().unwrap();
    let lifted = server
        .http(
            Method::POST,
            &format!("/api/v1/supervisor/blocks/{id}/lift"),
            &[("authorization", &coco)],
            None,
        )
        .await;
    assert_eq!(lifted.status, 204);
    let mut freed = seeker_from(&server, 5).await;
    assert!(matches!(
        hello(&mut freed, "X").await,
        s::ServerMessage::Welcome { .. }
    ));
    let audit = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap();
    assert!(
        audit.contains(r#""actor":"anna","action":"blocked""#),
        "{audit}"
    );
    assert!(audit.contains(r#""detail":"abusive 24h""#), "{audit}");
    assert!(
        audit.contains(r#""actor":"coco","action":"block_lifted""#),
        "{audit}"
    );
    assert!(!audit.contains("127.0.0"), "{audit}");
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
