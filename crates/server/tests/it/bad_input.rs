//! Bad input never panics the server, never harms other sessions, and gets
//! a clear error code or close code.
//!
//! Every test runs a control conversation beside the misbehaving client and
//! checks at the end that it still works.

use std::time::Duration;

use super::support::Control;
use haven_protocol::{ErrorCode, SessionRef, counsellor as c, seeker as s};
use haven_testkit::{SeekerClient, TestServer, Ws};
use tokio_tungstenite::tungstenite::Message;

async fn greeted_seeker(server: &TestServer) -> SeekerClient {
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    seeker
        .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
        .await;
    seeker
}

async fn error_code(seeker: &mut SeekerClient) -> ErrorCode {
    match seeker
        .expect("error", |m| matches!(m, s::ServerMessage::Error { .. }))
        .await
    {
        s::ServerMessage::Error { code, .. } => code,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn malformed_unknown_and_wrong_role_frames_get_error_codes() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let mut seeker = greeted_seeker(&server).await;
    let cases = [
        ("not json at all", ErrorCode::Malformed),
        ("{\"type\": ", ErrorCode::Malformed),
        ("[1, 2, 3]", ErrorCode::Malformed),
        ("{\"no_type\": true}", ErrorCode::Malformed),
        ("{\"type\": \"launch_rockets\"}", ErrorCode::UnknownType),
        (
            "{\"type\": \"set_status\", \"status\": \"available\"}",
            ErrorCode::WrongRole,
        ),
        (
            "{\"type\": \"send\", \"id\": \"x\"}",
            ErrorCode::InvalidMessage,
        ),
        (
            "{\"type\": \"typing\", \"active\": \"yes\"}",
            ErrorCode::InvalidMessage,
        ),
        (
            "{\"type\": \"received\", \"up_to\": -1}",
            ErrorCode::InvalidMessage,
        ),
        (
            "{\"type\": \"hello\", \"protocol\": 1}",
            ErrorCode::WrongState,
        ),
        (
            "{\"type\": \"send\", \"id\": \"\", \"text\": \"x\"}",
            ErrorCode::InvalidId,
        ),
        (
            "{\"type\": \"send\", \"id\": \"e\", \"text\": \"   \"}",
            ErrorCode::EmptyText,
        ),
    ];
    for (frame, want) in cases {
        seeker.ws.send_text(frame).await;
        assert_eq!(error_code(&mut seeker).await, want, "frame {frame:?}");
    }
    let too_long = format!(
        "{{\"type\":\"send\",\"id\":\"long\",\"text\":\"{}\"}}",
        "a".repeat(4001)
    );
    seeker.ws.send_text(&too_long).await;
    assert_eq!(error_code(&mut seeker).await, ErrorCode::TextTooLong);
    seeker.ws.send_binary(vec![0, 159, 146, 150]).await;
    assert_eq!(error_code(&mut seeker).await, ErrorCode::BinaryNotSupported);
    // The socket is still usable after all that.
    seeker.send(&s::ClientMessage::Ping).await;
    seeker
        .expect("pong", |m| matches!(m, s::ServerMessage::Pong))
        .await;
    control.still_works().await;
}

#[tokio::test]
async fn counsellors_get_the_same_treatment_and_cannot_touch_others_sessions() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let (mut mallory, _) = server.counsellor("mallory", 2).await;
    mallory.ws.send_text("{\"type\": \"end\"}").await;
    let err = mallory
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                ..
            }
        ),
        "{err:?}"
    );
    mallory
        .ws
        .send_text("{\"type\": \"resume\", \"token\": \"x\", \"last_seq\": 0}")
        .await;
    let err = mallory
        .expect("error", |m| matches!(m, c::ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: ErrorCode::WrongState,
                ..
            }
        ),
        "{err:?}"
    );

    // Another counsellor's session: every action is refused, nothing leaks.
    let theirs = control.session.clone();
    for msg in [
        c::ClientMessage::Send {
            session: theirs.clone(),
            id: haven_protocol::ClientMsgId("m".into()),
            text: haven_protocol::ChatText("inbraak".into()),
            received: None,
        },
        c::ClientMessage::Typing {
            session: theirs.clone(),
            active: true,
        },
        c::ClientMessage::Received {
            session: theirs.clone(),
            up_to: 99,
        },
        c::ClientMessage::End {
            session: theirs.clone(),
            block: None,
        },
        c::ClientMessage::End {
            session: SessionRef("0".repeat(32)),
            block: None,
        },
        c::ClientMessage::End {
            session: SessionRef("not-hex".into()),
            block: None,
        },
    ] {
        mallory.send(&msg).await;
        let err = mallory
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
            "{msg:?}: {err:?}"
        );
    }
    while let Some(msg) = control.seeker.try_recv(Duration::from_millis(200)).await {
        assert!(
            !matches!(
                msg,
                s::ServerMessage::Message { .. }
                    | s::ServerMessage::Typing { .. }
                    | s::ServerMessage::Delivered { .. }
                    | s::ServerMessage::Ended { .. }
            ),
            "the victim saw {msg:?}"
        );
    }
    control.still_works().await;
}

#[tokio::test]
async fn the_first_frame_must_be_a_valid_hello_or_resume() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let cases: [(&str, u16); 4] = [
        (
            "{\"type\": \"send\", \"id\": \"a\", \"text\": \"hi\"}",
            4500,
        ),
        ("garbage", 4500),
        ("{\"type\": \"hello\", \"protocol\": 99}", 4500),
        (
            "{\"type\": \"hello\", \"protocol\": 1, \"nickname\": \"\\u0007bell\"}",
            4500,
        ),
    ];
    for (frame, code) in cases {
        let mut ws = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();
        ws.send_text(frame).await;
        let reply = ws.recv_text().await;
        assert!(reply.contains("\"type\":\"error\""), "{frame}: {reply}");
        assert_eq!(ws.closed().await, Some(code), "{frame}");
    }
    // A counsellor without a login is refused.
    let mut anon = server.counsellor_socket(&[]).await.unwrap();
    anon.ws
        .send_text("{\"type\": \"hello\", \"protocol\": 1}")
        .await;
    let err = anon.recv().await;
    assert!(
        matches!(
            err,
            c::ServerMessage::Error {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(anon.closed().await, Some(4501));
    let mut forged = server.counsellor_socket(&[]).await.unwrap();
    forged
        .ws
        .send_text("{\"type\": \"hello\", \"protocol\": 1, \"token\": \"forged\"}")
        .await;
    assert_eq!(forged.closed().await, Some(4501));
    control.still_works().await;
}

/// One row of docs/protocol.md's table of edge cases.
#[derive(Debug)]
struct EdgeCase {
    greeted: bool,
    /// The frame's text, or `None` for a binary frame.
    frame: Option<String>,
    /// The answer's `type` and its `code` or `reason`.
    answer: (String, String),
    /// The close code that follows, or `None` when the socket stays open.
    closes: Option<u16>,
}

/// The text between the first pair of backticks in `cell`, and after it.
fn backticked(cell: &str) -> Option<(&str, &str)> {
    let (_, rest) = cell.split_once('`')?;
    rest.split_once('`')
}

fn edge_cases() -> Vec<EdgeCase> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md"),
    )
    .unwrap();
    let table = doc
        .split("| when | the client sends | the server answers | and then |")
        .nth(1)
        .expect("docs/protocol.md has no table of edge cases");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            assert_eq!(cells.len(), 4, "{line}");
            let frame = backticked(cells[1]).map(|(f, _)| f.to_owned());
            assert!(frame.is_some() || cells[1].contains("binary"), "{line}");
            let (ty, rest) = backticked(cells[2]).unwrap();
            let (code, _) = backticked(rest).unwrap();
            let then = cells[3].trim_end_matches(" |");
            EdgeCase {
                greeted: cells[0].trim_start_matches("| ") == "greeted",
                frame,
                answer: (ty.to_owned(), code.to_owned()),
                closes: then.strip_prefix("closes ").map(|c| c.parse().unwrap()),
            }
        })
        .collect()
}

#[tokio::test]
async fn the_documented_edge_cases_are_what_the_server_does() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let cases = edge_cases();
    assert!(cases.len() >= 10, "{cases:?}");
    for case in cases {
        let mut seeker = if case.greeted {
            greeted_seeker(&server).await
        } else {
            server.seeker().await
        };
        match &case.frame {
            Some(text) => seeker.ws.send_text(text).await,
            None => seeker.ws.send_binary(vec![1, 2, 3]).await,
        }
        let (ty, code) = &case.answer;
        let answer = seeker
            .expect(ty, |m| {
                let v = serde_json::to_value(m).unwrap();
                v["type"] != "queued" && v["type"] != "topic_status"
            })
            .await;
        let v = serde_json::to_value(&answer).unwrap();
        assert_eq!(&v["type"], ty.as_str(), "{case:?}: {v}");
        let got = v.get("code").or_else(|| v.get("reason")).unwrap();
        assert_eq!(got, code.as_str(), "{case:?}: {v}");
        match case.closes {
            Some(want) => assert_eq!(seeker.closed().await, Some(want), "{case:?}"),
            // Still open: a greeted socket answers a ping; one not yet
            // greeted can still say hello.
            None if case.greeted => {
                seeker.send(&s::ClientMessage::Ping).await;
                let pong = seeker
                    .expect("pong", |m| matches!(m, s::ServerMessage::Pong))
                    .await;
                assert_eq!(pong, s::ServerMessage::Pong, "{case:?}");
            }
            None => {
                seeker.hello(None).await;
            }
        }
    }
    control.still_works().await;
}

#[tokio::test]
async fn a_flood_of_websocket_pings_counts_like_any_frame() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let mut flooder = greeted_seeker(&server).await;
    // Pings as fast as the socket takes them: past the burst they are
    // strikes like any frame, and a flood kept up is closed with 4002.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut closed = None;
    let mut sent = 0u32;
    while closed.is_none() && tokio::time::Instant::now() < deadline {
        for _ in 0..50 {
            if flooder
                .ws
                .try_send(Message::Ping(vec![1u8; 8].into()))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        while let Some(event) = flooder.ws.next_event(Duration::from_millis(2)).await {
            if let haven_testkit::Event::Closed(code) = event {
                closed = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        closed,
        Some(Some(4002)),
        "{sent} pings in 10 s and the socket stayed open"
    );
    control.still_works().await;
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let mut seeker = greeted_seeker(&server).await;
    let big = format!(
        "{{\"type\":\"send\",\"id\":\"x\",\"text\":\"{}\"}}",
        "a".repeat(16 * 1024)
    );
    let _ = seeker.ws.try_send(Message::text(big)).await;
    assert_eq!(seeker.closed().await, Some(1009));
    control.still_works().await;
}

#[tokio::test]
async fn silent_sockets_are_closed() {
    let server = TestServer::start_with(|c| {
        c.session.hello_timeout = Duration::from_millis(300);
        c.session.ping_interval = Duration::from_millis(200);
        c.session.idle_timeout = Duration::from_millis(600);
    })
    .await;
    let mut control = Control::start(&server).await;
    // Never says hello.
    let mut mute = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();
    assert_eq!(mute.closed().await, Some(4003));
    control.still_works().await;
}

#[tokio::test]
async fn a_flood_is_cut_to_the_burst_warned_then_closed() {
    let server = TestServer::start_with(|c| {
        c.limits.seeker_frames_per_minute = 60;
        c.limits.seeker_frame_burst = 5;
        c.limits.flood_strikes = 2;
    })
    .await;
    let mut control = Control::start(&server).await;
    let mut flooder = greeted_seeker(&server).await;
    // A sustained flood: a batch of sends every 50 ms until the server
    // closes the socket (or 15 s pass).
    let mut acks = 0;
    let mut warned = false;
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let code = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood was never stopped"
        );
        for _ in 0..20 {
            let frame = format!("{{\"type\":\"send\",\"id\":\"f{sent}\",\"text\":\"flood\"}}");
            sent += 1;
            let _ = flooder.ws.try_send(Message::text(frame)).await;
        }
        match flooder.ws.next_event(Duration::from_millis(50)).await {
            Some(haven_testkit::Event::Text(t)) => {
                acks += usize::from(t.contains("\"type\":\"ack\""));
                warned |= t.contains("rate_limited");
            }
            Some(haven_testkit::Event::Closed(code)) => break code,
            None => {}
        }
    };
    assert!(warned, "no rate-limit warning");
    // The burst, plus one a second at the sustained rate while it lasted.
    assert!(
        acks <= 10,
        "{acks} of {sent} messages got through a burst of 5"
    );
    assert_eq!(code, Some(4002));
    control.still_works().await;
}

#[tokio::test]
async fn chat_messages_have_their_own_tighter_limit_and_refusals_name_the_message() {
    let server = TestServer::start_with(|c| {
        c.limits.seeker_messages_per_minute = 6;
        c.limits.seeker_message_burst = 3;
    })
    .await;
    let mut control = Control::start(&server).await;
    let mut spammer = greeted_seeker(&server).await;
    for i in 0..8 {
        spammer
            .send(&s::ClientMessage::Send {
                id: haven_protocol::ClientMsgId(format!("s{i}")),
                text: haven_protocol::ChatText("spam".into()),
                received: None,
            })
            .await;
    }
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    while acked.len() + refused.len() < 8 {
        match spammer
            .expect("reply", |m| {
                matches!(
                    m,
                    s::ServerMessage::Ack { .. } | s::ServerMessage::Error { .. }
                )
            })
            .await
        {
            s::ServerMessage::Ack { id, .. } => acked.push(id.0),
            s::ServerMessage::Error {
                code: ErrorCode::RateLimited,
                id: Some(id),
                ..
            } => refused.push(id.0),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(acked, ["s0", "s1", "s2"]);
    assert_eq!(refused.len(), 5);
    // Other frames are not held back by the message limit.
    for _ in 0..20 {
        spammer
            .send(&s::ClientMessage::Typing { active: true })
            .await;
    }
    spammer.send(&s::ClientMessage::Ping).await;
    spammer
        .expect("pong", |m| matches!(m, s::ServerMessage::Pong))
        .await;
    control.still_works().await;
}

#[tokio::test]
async fn a_greeted_client_that_stops_answering_pings_is_closed_with_4001() {
    let server = TestServer::start_with(|c| {
        c.session.ping_interval = Duration::from_millis(200);
        c.session.idle_timeout = Duration::from_millis(700);
    })
    .await;
    // A client that keeps reading answers the server's pings by itself and
    // stays connected well past the idle timeout.
    let mut alive = greeted_seeker(&server).await;
    assert!(alive.try_recv(Duration::from_millis(1500)).await.is_none());
    alive.send(&s::ClientMessage::Ping).await;
    alive
        .expect("pong", |m| matches!(m, s::ServerMessage::Pong))
        .await;
    // A client that stops reading (so never pongs) is closed.
    let mut frozen = greeted_seeker(&server).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(frozen.closed().await, Some(4001));
}

#[tokio::test]
async fn abrupt_disconnects_at_every_stage_leave_the_server_healthy() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    // Before hello, after hello, mid-chat, and during a handshake.
    Ws::connect(&server.url("/ws/seeker"), &[])
        .await
        .unwrap()
        .drop_abruptly();
    greeted_seeker(&server).await.ws.drop_abruptly();
    let mut s = greeted_seeker(&server).await;
    s.ws.send_text("{\"type\":\"send\",\"id\":\"a\",\"text\":\"hallo\"}")
        .await;
    s.ws.drop_abruptly();
    let raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    drop(raw);
    let mut half = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, b"GET /ws/seeker HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    drop(half);
    control.still_works().await;
    assert_eq!(server.get("/healthz").await.status, 200);
}
