//! WebSocket framing that breaks RFC 6455, written byte by byte on raw TCP.
//!
//! Each known violation gets its standard close code; fragmented messages
//! with control frames between the fragments still work. (The raw client
//! and the frame builders are in `support/frames.rs`.)

use std::time::Duration;

use haven_testkit::TestServer;

use super::support::Control;
use super::support::frames::{
    BINARY, CLOSE, CONTINUATION, HELLO, KEY, PING, PONG, Raw, TEXT, announcing, close_payload,
    frame, whole,
};

#[tokio::test]
async fn each_framing_violation_gets_its_standard_close_code() {
    let server = TestServer::start().await;
    let mut control = Control::start(&server).await;
    let hello = HELLO.as_bytes();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an unmasked frame", frame(true, 0, TEXT, hello, None), 1002),
        (
            "a reserved bit (no extension)",
            frame(true, 4, TEXT, hello, Some(KEY)),
            1002,
        ),
        ("reserved data opcode 3", whole(0x3, b"x"), 1002),
        ("reserved control opcode 11", whole(0xB, b""), 1002),
        (
            "a fragmented ping",
            frame(false, 0, PING, b"p", Some(KEY)),
            1002,
        ),
        ("a ping of 126 bytes", whole(PING, &[b'p'; 126]), 1002),
        (
            "a continuation with nothing to continue",
            whole(CONTINUATION, b"x"),
            1002,
        ),
        (
            "a new message before the last one finished",
            [
                frame(false, 0, TEXT, b"{\"ty", Some(KEY)),
                whole(TEXT, hello),
            ]
            .concat(),
            1002,
        ),
        ("a close frame of one byte", whole(CLOSE, b"\x03"), 1002),
        (
            "close code 1005, which is never sent",
            whole(CLOSE, &close_payload(1005, b"")),
            1002,
        ),
        (
            "close code 999",
            whole(CLOSE, &close_payload(999, b"")),
            1002,
        ),
        (
            "text that is not UTF-8",
            whole(TEXT, b"{\"type\":\"h\xc3\x28\"}"),
            1007,
        ),
        (
            "UTF-8 broken across fragments",
            [
                frame(false, 0, TEXT, b"\"caf\xc3", Some(KEY)),
                whole(CONTINUATION, b"\x28\""),
            ]
            .concat(),
            1007,
        ),
        (
            "a close reason that is not UTF-8",
            whole(CLOSE, &close_payload(1000, b"\xff")),
            1007,
        ),
        // Refused from the header, before any of it is read.
        ("a frame announcing 16 MiB", announcing(16 << 20), 1009),
        ("a frame announcing 2^63 bytes", announcing(1 << 63), 1009),
        (
            "a message over the limit in small fragments",
            [
                frame(false, 0, TEXT, &[b' '; 10_000], Some(KEY)),
                whole(CONTINUATION, &[b' '; 10_000]),
            ]
            .concat(),
            1009,
        ),
    ];
    for (what, bytes, want) in cases {
        let mut raw = Raw::open(server.addr, "/ws/seeker").await;
        raw.send(&bytes).await;
        assert_eq!(
            raw.close_code(Duration::from_secs(5)).await,
            Some(want),
            "{what}"
        );
    }
    control.still_works().await;
}

#[tokio::test]
async fn fragments_and_control_frames_between_them_work() {
    let server = TestServer::start().await;
    let mut raw = Raw::open(server.addr, "/ws/seeker").await;
    // A hello in three fragments, with a ping and an unsolicited pong
    // between them: the ping is answered at once, the hello is whole.
    let (a, rest) = HELLO.as_bytes().split_at(10);
    let (b, c) = rest.split_at(10);
    raw.send(&frame(false, 0, TEXT, a, Some(KEY))).await;
    raw.send(&whole(PING, b"are you there")).await;
    raw.send(&frame(false, 0, CONTINUATION, b, Some(KEY))).await;
    raw.send(&whole(PONG, b"unasked")).await;
    raw.send(&frame(true, 0, CONTINUATION, c, Some(KEY))).await;
    assert_eq!(
        raw.frame(Duration::from_secs(5)).await,
        Some((PONG, b"are you there".to_vec()))
    );
    assert_eq!(raw.next_type().await, "welcome");
    assert_eq!(raw.next_type().await, "queued");
    // The largest ping allowed comes back byte for byte; an empty text
    // frame is a malformed message, not a broken socket.
    let big: Vec<u8> = (0..125).collect();
    raw.send(&whole(PING, &big)).await;
    assert_eq!(raw.frame(Duration::from_secs(5)).await, Some((PONG, big)));
    raw.send(&whole(TEXT, b"")).await;
    assert_eq!(raw.next_type().await, "error");
    // Binary frames are refused with an error, and the socket stays.
    raw.send(&whole(BINARY, b"\x00\x01")).await;
    assert_eq!(raw.next_type().await, "error");
    // A clean close is answered with the same code.
    raw.send(&whole(CLOSE, &close_payload(1000, b"bye"))).await;
    assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(1000));
}

#[tokio::test]
async fn compression_offers_are_declined() {
    let server = TestServer::start().await;
    for offer in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover, x-webkit-deflate-frame",
    ] {
        let (mut raw, head) = Raw::open_with(
            server.addr,
            "/ws/seeker",
            &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
        )
        .await;
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "{offer}: {head}"
        );
        // Without an extension, a compressed frame (RSV1) is a violation.
        raw.send(&frame(
            true,
            4,
            TEXT,
            b"\xf2\x48\xcd\xc9\xc9\x07\x00",
            Some(KEY),
        ))
        .await;
        assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(1002));
    }
}
