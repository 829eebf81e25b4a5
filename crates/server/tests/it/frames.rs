//! WebSocket framing that breaks RFC 6455, written byte by byte on raw TCP.
//!
//! Each known violation gets its standard close code; fragmented messages
//! with control frames between the fragments still work; and thousands of
//! randomly mutated frame streams against a real `haven serve` process
//! neither panic it, nor leave a socket behind, nor disturb a conversation
//! running beside them.
//!
//! The same streams also end conversations: a help-seeker who is with a
//! counsellor sends one, and only that session ends, the counsellor's
//! others and the control conversation going on.
//!
//! `HAVEN_FUZZ_STREAMS=10000` (and `HAVEN_FUZZ_SEED=N`) makes the mutation
//! test the long run quoted in `docs/architecture.md`;
//! `HAVEN_FUZZ_CHATS=N` sets how many conversations the second one ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use haven_protocol::{SUBPROTOCOL, SessionRef, counsellor as c};
use haven_testkit::{CounsellorClient, SeekerClient, TestServer, request};
use hyper::Method;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::bad_input::Control;
use super::crash::{FAST, add_account, add_account_with, counsellor, seeker};
use super::metrics::value;
use super::process::{Served, serve};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const HELLO: &str = r#"{"type":"hello","protocol":1,"language":"nl"}"#;

/// A client frame. `key: None` leaves it unmasked (which a client must
/// never do).
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
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
fn whole(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, payload, Some(KEY))
}

/// A close frame's payload: the code and a reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
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
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(addr: SocketAddr, path: &str) -> Raw {
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
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// Writes `bytes` in two, as a network might cut them.
    async fn send_cut(&mut self, bytes: &[u8]) {
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
    async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        while let Some((opcode, payload)) = self.frame(wait).await {
            if opcode == CLOSE {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }

    /// Skips frames until a text frame of type `want`; false when none
    /// comes within `wait`.
    async fn until_type(&mut self, want: &str, wait: Duration) -> bool {
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

/// One random stream of 1 to 6 frames, most of them nearly right, then
/// mutated: bits flipped, cut short, or bytes thrown in.
fn mutated_stream(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..=6) {
        let payload: Vec<u8> = match rng.random_range(0..6) {
            0 => HELLO.into(),
            1 => br#"{"type":"send","id":"f1","text":"hallo"}"#.to_vec(),
            2 => br#"{"type":"hello","token":"x","protocol":1}"#.to_vec(),
            3 => (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect(),
            4 => vec![b'a'; rng.random_range(0..20_000)],
            _ => close_payload(rng.random_range(0..5000), b"\xe2\x82"),
        };
        let opcode = match rng.random_range(0..10) {
            0..5 => TEXT,
            5 => CONTINUATION,
            6 => BINARY,
            7 => PING,
            8 => CLOSE,
            _ => rng.random_range(0..16),
        };
        let fin = rng.random_bool(0.8);
        let rsv = if rng.random_bool(0.1) {
            rng.random_range(1..8)
        } else {
            0
        };
        let key = rng.random_bool(0.95).then(|| rng.random());
        out.extend(frame(fin, rsv, opcode, &payload, key));
    }
    if rng.random_bool(0.5) {
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..out.len());
            out[at] ^= 1 << rng.random_range(0..8);
        }
    }
    if rng.random_bool(0.3) {
        out.truncate(rng.random_range(0..out.len()));
    }
    if rng.random_bool(0.1) {
        let at = rng.random_range(0..=out.len());
        let junk: Vec<u8> = (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
        out.splice(at..at, junk);
    }
    out
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One number from `/metrics`.
async fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let body = request(addr, Method::GET, "/metrics", &[], None).await.body;
    value(&body, series)
}

/// A `haven serve` process, opened to many sockets from one address, with
/// a control conversation going (anna and a help-seeker) that fuzzing on
/// other sockets must not disturb.
struct Stage {
    served: Served,
    anna: CounsellorClient,
    control: SeekerClient,
    session: SessionRef,
    _dir: tempfile::TempDir,
}

impl Stage {
    /// Starts the server with anna and the `more` counsellors (name and
    /// capacity) as accounts and `env` on top, and opens the control
    /// conversation. The others are not logged in.
    async fn start(more: &[(&str, u32)], env: &[(&str, &str)]) -> Stage {
        let dir = tempfile::tempdir().unwrap();
        add_account(dir.path(), "anna", "counsellor", "1");
        for (name, capacity) in more {
            let capacity = capacity.to_string();
            add_account_with(
                dir.path(),
                name,
                "counsellor",
                &["--capacity", &capacity, "--max-capacity", &capacity],
            );
        }
        // Limits for the control pair's steady chat and for many sockets
        // from one address; a fuzzed socket sends a handful of frames.
        let mut all = vec![
            ("HAVEN_LIMITS__SOURCE_UPGRADES_PER_MINUTE", "1000000"),
            ("HAVEN_LIMITS__SOURCE_UPGRADE_BURST", "1000000"),
            ("HAVEN_LIMITS__SOURCE_MAX_CONNECTIONS", "100000"),
        ];
        all.extend(FAST);
        all.extend(env);
        let served = serve(dir.path(), &all);
        let mut anna = counsellor(&served, "anna").await;
        let control = seeker(&served, "control").await;
        let session = anna.assigned().await;
        Stage {
            served,
            anna,
            control,
            session,
            _dir: dir,
        }
    }

    /// Keeps the control conversation going, every message checked in
    /// order and `/healthz` probed between them, until `work` is done.
    async fn chat_until<T>(&mut self, work: tokio::task::JoinHandle<T>) -> T {
        let addr = self.served.addr;
        let mut said = 0;
        let mut probes = Vec::new();
        while !work.is_finished() || said < 20 {
            said += 1;
            let text = format!("bericht {said}");
            let seq = self.control.say(&format!("c{said}"), &text).await;
            assert_eq!(self.anna.heard(&self.session).await, (seq, text));
            self.anna
                .send(&c::ClientMessage::Received {
                    session: self.session.clone(),
                    up_to: seq,
                })
                .await;
            let probe = Instant::now();
            let health = request(addr, Method::GET, "/healthz", &[], None).await;
            assert_eq!(health.status, 200);
            probes.push(probe.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        probes.sort();
        eprintln!(
            "{said} control messages, all in order; health probe p99 {:?}, max {:?}",
            probes[probes.len() * 99 / 100],
            probes[probes.len() - 1],
        );
        work.await.unwrap()
    }

    /// Waits (up to 10 s) until `series` reads `want`.
    async fn settles(&self, series: &str, want: f64) {
        let mut seen = None;
        for _ in 0..100 {
            seen = metric(self.served.addr, series).await;
            if seen == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{series} is {seen:?}, not {want}");
    }

    /// The control pair still talks both ways, and the server never
    /// exited or panicked. Stops it.
    async fn finish(mut self) {
        let seq = self.anna.say(&self.session, "a1", "nog hier").await;
        assert_eq!(self.control.heard().await, (seq, "nog hier".into()));
        assert!(
            self.served.child.try_wait().unwrap().is_none(),
            "haven exited"
        );
        let log = self.served.log.lock().unwrap().clone();
        assert!(!log.contains("panicked"), "{log}");
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_frame_streams_neither_panic_nor_leak_nor_disturb_a_chat() {
    let streams = env_number("HAVEN_FUZZ_STREAMS", 1500);
    let seed = env_number("HAVEN_FUZZ_SEED", 0x4a7e_2026);
    let mut stage = Stage::start(&[], &[]).await;
    let addr = stage.served.addr;

    // The mutated streams, 48 sockets at a time, on both endpoints.
    let started = Instant::now();
    let fuzz = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cases: Vec<(Vec<u8>, bool)> = (0..streams)
            .map(|_| (mutated_stream(&mut rng), rng.random_bool(0.7)))
            .collect();
        let mut closes = BTreeMap::<Option<u16>, u32>::new();
        while !cases.is_empty() {
            let batch: Vec<_> = cases.drain(..cases.len().min(48)).collect();
            let runs = batch.into_iter().map(|(bytes, seeker)| async move {
                let path = if seeker {
                    "/ws/seeker"
                } else {
                    "/ws/counsellor"
                };
                let mut raw = Raw::open(addr, path).await;
                raw.send_cut(&bytes).await;
                raw.close_code(Duration::from_millis(300)).await
            });
            for code in futures_util::future::join_all(runs).await {
                *closes.entry(code).or_default() += 1;
            }
        }
        closes
    });
    let closes = stage.chat_until(fuzz).await;
    eprintln!(
        "{streams} mutated streams (seed {seed}) in {:.1} s, closes by code: {closes:?}",
        started.elapsed().as_secs_f64(),
    );
    // Malformed streams were turned away with the standard codes.
    for code in [1002, 1007, 1009] {
        assert!(
            closes.get(&Some(code)).copied().unwrap_or(0) > 0,
            "{closes:?}"
        );
    }
    // Every fuzzed socket is gone: only the control pair is left.
    stage
        .settles("haven_connections{role=\"seeker\"}", 1.0)
        .await;
    stage
        .settles("haven_connections{role=\"counsellor\"}", 1.0)
        .await;
    stage.finish().await;
}

/// How many help-seekers talk to bram at once in the mid-conversation
/// test: his capacity.
const BRAM: u32 = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_frames_mid_conversation_end_only_their_own_session() {
    let chats = env_number("HAVEN_FUZZ_CHATS", 240);
    let seed = env_number("HAVEN_FUZZ_SEED", 0x4a7e_2026) ^ 0xc4a7;
    // A dropped help-seeker's session waits this long for a resume.
    let mut stage = Stage::start(
        &[("bram", BRAM)],
        &[("HAVEN_SESSION__SEEKER_GRACE", "200ms")],
    )
    .await;
    let addr = stage.served.addr;
    let mut bram = counsellor(&stage.served, "bram").await;

    // bram reads everything, as a console does, counts what he is told,
    // and skips the wrap-up after each session.
    let done = Arc::new(AtomicBool::new(false));
    let reading = tokio::spawn({
        let done = done.clone();
        async move {
            let (mut assigned, mut heard, mut ended) = (0, 0, 0);
            while !done.load(Ordering::Acquire) {
                match bram.try_recv(Duration::from_millis(200)).await {
                    Some(c::ServerMessage::SessionAssigned { .. }) => assigned += 1,
                    Some(c::ServerMessage::Message { .. }) => heard += 1,
                    Some(c::ServerMessage::SessionEnded { .. }) => {
                        ended += 1;
                        // No wrap-up: ready for the next one at once.
                        bram.send(&c::ClientMessage::Ready).await;
                    }
                    _ => {}
                }
            }
            (bram, assigned, heard, ended)
        }
    });

    // Help-seekers, BRAM at a time: each says hello, is assigned to bram,
    // sends a message and then a mutated stream.
    let started = Instant::now();
    let fuzz = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let cases: Vec<Vec<u8>> = (0..chats).map(|_| mutated_stream(&mut rng)).collect();
        let mut closes = BTreeMap::<Option<u16>, u32>::new();
        for batch in cases.chunks(BRAM as usize) {
            let runs = batch.iter().map(|bytes| async move {
                let mut raw = Raw::open(addr, "/ws/seeker").await;
                raw.send(&whole(TEXT, HELLO.as_bytes())).await;
                assert!(
                    raw.until_type("assigned", Duration::from_secs(10)).await,
                    "a help-seeker waited 10 s for bram: the sessions that broken \
                     streams ended did not give him back"
                );
                raw.send(&whole(TEXT, br#"{"type":"send","id":"m1","text":"hallo"}"#))
                    .await;
                raw.send_cut(bytes).await;
                raw.close_code(Duration::from_millis(300)).await
            });
            for code in futures_util::future::join_all(runs).await {
                *closes.entry(code).or_default() += 1;
            }
        }
        closes
    });
    let closes = stage.chat_until(fuzz).await;
    eprintln!(
        "{chats} conversations ended by mutated streams (seed {seed}) in {:.1} s, \
         closes by code: {closes:?}",
        started.elapsed().as_secs_f64(),
    );
    assert!(
        closes.get(&Some(1002)).copied().unwrap_or(0) > 0,
        "{closes:?}"
    );

    // Each of those sessions ended once its grace period was up, and
    // bram was told of each; only the control session is left.
    stage.settles("haven_sessions_active", 1.0).await;
    stage
        .settles("haven_connections{role=\"seeker\"}", 1.0)
        .await;
    done.store(true, Ordering::Release);
    let (mut bram, assigned, heard, ended) = reading.await.unwrap();
    assert_eq!((assigned, ended), (chats, chats), "assigned and ended");
    assert!(heard >= chats, "bram heard {heard} messages from {chats}");

    // bram's capacity is all his again: a new help-seeker gets him.
    let mut next = seeker(&stage.served, "next").await;
    let session = bram.assigned().await;
    let seq = next.say("n1", "hallo bram").await;
    assert_eq!(bram.heard(&session).await, (seq, "hallo bram".into()));
    stage
        .settles("haven_connections{role=\"counsellor\"}", 2.0)
        .await;
    stage.finish().await;
}
