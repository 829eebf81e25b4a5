//! WebSocket framing that breaks RFC 6455, written byte by byte on raw TCP.
//!
//! Each known violation gets its standard close code; fragmented messages
//! with control frames between the fragments still work. The raw client
//! and frame builders here serve the mutation tests too (`mutation.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use haven_protocol::SUBPROTOCOL;
use haven_testkit::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::bad_input::Control;

pub(super) const TEXT: u8 = 0x1;
pub(super) const BINARY: u8 = 0x2;
pub(super) const CONTINUATION: u8 = 0x0;
pub(super) const CLOSE: u8 = 0x8;
pub(super) const PING: u8 = 0x9;
const PONG: u8 = 0xA;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub(super) const HELLO: &str = r#"{"type":"hello","protocol":1,"language":"nl"}"#;

/// A client frame. `key: None` leaves it unmasked (which a client must
/// never do).
pub(super) fn frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    key: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 0x7) << 4) | (opcode & 0xf)];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | u8::try_from(n).unwrap()),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&u64::try_from(n).unwrap().to_be_bytes());
        }
    }
    match key {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A whole, masked frame of `opcode`.
pub(super) fn whole(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, payload, Some(KEY))
}

/// A close frame's payload: the code and a reason.
pub(super) fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// A frame header that announces `len` payload bytes (a 64-bit length)
/// and sends none of them.
fn announcing(len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | TEXT, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&KEY);
    out
}

/// One client socket past the opening handshake, read and written raw.
pub(super) struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub(super) async fn open(addr: SocketAddr, path: &str) -> Raw {
        Self::open_with(addr, path, "").await.0
    }

    /// Opens with `extra` request header lines; also returns the response
    /// head.
    async fn open_with(addr: SocketAddr, path: &str, extra: &str) -> (Raw, String) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0; 1024];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server hung up during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.drain(..end);
        (Raw { tcp, buf }, head)
    }

    /// Writes `bytes`. The server may have closed already; that is fine.
    pub(super) async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// Writes `bytes` in two, as a network might cut them.
    pub(super) async fn send_cut(&mut self, bytes: &[u8]) {
        let cut = bytes.len() / 2;
        self.send(&bytes[..cut]).await;
        tokio::task::yield_now().await;
        self.send(&bytes[cut..]).await;
    }

    /// The server's next frame as (opcode, payload); `None` when the
    /// connection ends or nothing comes within `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some((opcode, payload, used)) = server_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some((opcode, payload));
                }
                let mut chunk = [0; 4096];
                match self.tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Reads until the server's close frame and returns its code; `None`
    /// when the connection ends (or stays quiet for `wait`) without one.
    pub(super) async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        while let Some((opcode, payload)) = self.frame(wait).await {
            if opcode == CLOSE {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }

    /// Skips frames until a text frame of type `want`; false when none
    /// comes within `wait`.
    pub(super) async fn until_type(&mut self, want: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some((opcode, payload)) = self
            .frame(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            if opcode == TEXT
                && serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["type"] == want
            {
                return true;
            }
        }
        false
    }

    /// The next text frame's `type`, skipping control frames.
    async fn next_type(&mut self) -> String {
        loop {
            let (opcode, payload) = self
                .frame(Duration::from_secs(5))
                .await
                .expect("a frame from the server");
            if opcode == TEXT {
                let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                return value["type"].as_str().unwrap().to_owned();
            }
        }
    }
}

/// Parses one server frame at the start of `buf`: (opcode, payload, bytes
/// used), or `None` when it is not all there yet.
fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "a server's frames are never masked");
    let (len, at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => {
            let len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            (usize::try_from(len).unwrap(), 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((b0 & 0xf, payload, at + len))
}

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
