//! Thousands of randomly mutated frame streams against a real `haven
//! serve` process: they neither panic it, nor leave a socket behind, nor
//! disturb a conversation running beside them. The same streams also end
//! conversations: a help-seeker who is with a counsellor sends one, and
//! only that session ends, the counsellor's others and the control
//! conversation going on.
//!
//! `HAVEN_FUZZ_STREAMS=10000` (and `HAVEN_FUZZ_SEED=N`) makes the first
//! test the long run quoted in `docs/architecture.md`;
//! `HAVEN_FUZZ_CHATS=N` sets how many conversations the second one ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use haven_protocol::{SessionRef, counsellor as c};
use haven_testkit::{CounsellorClient, SeekerClient, request};
use hyper::Method;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

use super::support::frames::{
    BINARY, CLOSE, CONTINUATION, HELLO, PING, Raw, TEXT, close_payload, frame, whole,
};
use super::support::process::{FAST, add_account, add_account_with, counsellor, seeker};
use super::support::process::{Served, serve};
use super::support::value;

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
    let bearer = format!("Bearer {}", haven_testkit::METRICS_TOKEN);
    let body = request(
        addr,
        Method::GET,
        "/metrics",
        &[("authorization", &bearer)],
        None,
    )
    .await
    .body;
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
