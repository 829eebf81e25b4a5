//! Transcripts against a real `haven serve` process: killed with SIGKILL
//! in the middle of chats, again and again; a file-size limit hit
//! mid-session. (`write_only.rs` has the key tests.)
//!
//! `HAVEN_CRASH_RUNS=200` makes the crash test the long run quoted in
//! `docs/benchmarks.md` (`scripts/crash-transcripts.sh`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use haven_protocol::counsellor::TranscriptState;
use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{Event, Ws};
use haven_transcript::{Kind, Role, Verdict};
use tokio_tungstenite::tungstenite::Message;

use super::support::process::{FAST, add_account, counsellor, seeker};
use super::support::process::{Served, serve};
use super::support::recording::{Keys, all_files};

fn recording_server(dir: &Path, keys: &Keys, extra: &[(&str, &str)]) -> Served {
    let mut env: Vec<(&str, &str)> = vec![
        ("HAVEN_TRANSCRIPTS", "on"),
        ("HAVEN_TRANSCRIPT_RECIPIENTS", &keys.recipient),
    ];
    env.extend(FAST);
    env.extend(extra);
    serve(dir, &env)
}

/// What one side of one session sent, and what the broker acked.
#[derive(Debug, Default)]
struct Sent {
    sent: Vec<String>,
    acked: Vec<String>,
}

type Log = Arc<Mutex<Sent>>;

/// Sends numbered messages, each after the previous one's ack, until the
/// socket dies. `frame(i, text)` makes the `send` frame with id `i`;
/// `is_ack(frame, i)` recognises its ack; `confirm(frame)` answers a
/// message from the other side with `received`, as a real client does.
async fn chatter(
    mut ws: Ws,
    tag: String,
    log: Log,
    frame: impl Fn(u64, &str) -> String,
    is_ack: impl Fn(&str, u64) -> bool,
    confirm: impl Fn(&str) -> Option<String>,
) {
    for i in 1.. {
        let text = format!("{tag} {i}");
        log.lock().unwrap().sent.push(text.clone());
        if ws.try_send(Message::text(frame(i, &text))).await.is_err() {
            return;
        }
        loop {
            match ws.next_event(Duration::from_secs(10)).await {
                Some(Event::Text(t)) if is_ack(&t, i) => {
                    log.lock().unwrap().acked.push(text);
                    break;
                }
                Some(Event::Text(t)) => {
                    assert!(!t.contains("\"error\""), "refused: {t}");
                    if let Some(reply) = confirm(&t)
                        && ws.try_send(Message::text(reply)).await.is_err()
                    {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}

/// The messages of `role` in a transcript, in order.
fn recorded(records: &[haven_transcript::Record], role: Role) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.kind == Kind::Message && r.body.role == Some(role))
        .map(|r| r.body.text.clone().unwrap_or_default())
        .collect()
}

/// `acked` ≤ `recorded` ≤ `sent`, each a prefix of the next.
fn check_prefix(what: &str, sent: &Sent, recorded: &[String]) {
    assert!(
        recorded.len() >= sent.acked.len() && recorded[..sent.acked.len()] == sent.acked[..],
        "{what}: an acknowledged message is missing: acked {:?}, recorded {recorded:?}",
        sent.acked
    );
    assert!(
        recorded.len() <= sent.sent.len() && sent.sent[..recorded.len()] == recorded[..],
        "{what}: the transcript holds what was never sent in that order: sent {:?}, recorded {recorded:?}",
        sent.sent
    );
}

struct Chat {
    session: String,
    seeker: Log,
    counsellor: Log,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_at_random_moments_each_transcript_is_a_prefix_of_what_was_sent_holding_all_that_was_acked()
 {
    let runs: usize = std::env::var("HAVEN_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "anna", "counsellor", "3");
    let transcripts = dir.path().join("data/transcripts/algemeen");
    let mut chats: Vec<Chat> = Vec::new();
    let (mut torn, mut in_flight, mut total_acked, mut missing) = (0, 0, 0, 0);
    for run in 0..runs {
        // Each start recovers what the last kill left.
        let mut served = recording_server(dir.path(), &keys, &[]);
        let mut anna = counsellor(&served, "anna").await;
        let mut sessions = Vec::new();
        let mut tasks = Vec::new();
        for n in 0..3 {
            let sam = seeker(&served, &format!("Sam{run}x{n}")).await;
            let session = anna.assigned().await;
            let chat = Chat {
                session: session.0.clone(),
                seeker: Log::default(),
                counsellor: Log::default(),
            };
            tasks.push(tokio::spawn(chatter(
                sam.ws,
                format!("seeker {run}/{n}"),
                chat.seeker.clone(),
                |i, text| {
                    serde_json::to_string(&s::ClientMessage::Send {
                        id: haven_protocol::ClientMsgId(format!("m{i}")),
                        text: haven_protocol::ChatText(text.to_owned()),
                        received: None,
                    })
                    .unwrap()
                },
                |t, i| t.contains("\"ack\"") && t.contains(&format!("\"id\":\"m{i}\"")),
                |t| match serde_json::from_str(t) {
                    Ok(s::ServerMessage::Message { seq, .. }) => Some(
                        serde_json::to_string(&s::ClientMessage::Received { up_to: seq }).unwrap(),
                    ),
                    _ => None,
                },
            )));
            sessions.push((session, chat.counsellor.clone()));
            chats.push(chat);
        }
        // One counsellor socket per session would be two logins; the
        // counsellor writes in the first session, the help-seekers in all.
        let (first, log) = sessions.swap_remove(0);
        let wire = first.0.clone();
        tasks.push(tokio::spawn(chatter(
            anna.ws,
            format!("counsellor {run}"),
            log,
            move |i, text| {
                serde_json::to_string(&c::ClientMessage::Send {
                    session: first.clone(),
                    id: haven_protocol::ClientMsgId(format!("a{i}")),
                    text: haven_protocol::ChatText(text.to_owned()),
                    received: None,
                })
                .unwrap()
            },
            move |t, i| {
                t.contains("\"ack\"")
                    && t.contains(&wire)
                    && t.contains(&format!("\"id\":\"a{i}\""))
            },
            |t| match serde_json::from_str(t) {
                Ok(c::ServerMessage::Message { session, seq, .. }) => Some(
                    serde_json::to_string(&c::ClientMessage::Received {
                        session,
                        up_to: seq,
                    })
                    .unwrap(),
                ),
                _ => None,
            },
        )));
        let wait = rand::random_range(30..400);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        served.child.kill().unwrap();
        served.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        // What the kill left: count torn tails (recovery cuts them).
        for path in all_files(&transcripts) {
            if path.extension().is_some_and(|e| e == "open") {
                let data = std::fs::read(&path).unwrap();
                if haven_transcript::verify(&data).intact < data.len() {
                    torn += 1;
                }
            }
        }
    }
    // One more start recovers the last run's files.
    let mut served = recording_server(dir.path(), &keys, &[]);
    served.child.kill().unwrap();
    served.child.wait().unwrap();

    for chat in &chats {
        let path = transcripts.join(format!("{}.haven", chat.session));
        let Ok(data) = std::fs::read(&path) else {
            // Killed before the file was made: then nothing was acked.
            let (seeker, counsellor) =
                (chat.seeker.lock().unwrap(), chat.counsellor.lock().unwrap());
            assert!(
                seeker.acked.is_empty() && counsellor.acked.is_empty(),
                "{}: acknowledged messages but no transcript",
                chat.session
            );
            missing += 1;
            continue;
        };
        let opened = keys.read(&data);
        assert!(
            !matches!(opened.verdict, Verdict::Tampered(_)),
            "{}: {:?}",
            chat.session,
            opened.verdict
        );
        assert_eq!(opened.intact, data.len(), "recovery left a torn tail");
        let seeker = chat.seeker.lock().unwrap();
        let mine = recorded(&opened.records, Role::Seeker);
        check_prefix(&chat.session, &seeker, &mine);
        let counsellor = chat.counsellor.lock().unwrap();
        let theirs = recorded(&opened.records, Role::Counsellor);
        check_prefix(&chat.session, &counsellor, &theirs);
        in_flight += mine.len() - seeker.acked.len() + theirs.len() - counsellor.acked.len();
        total_acked += seeker.acked.len() + counsellor.acked.len();
    }
    eprintln!(
        "crash runs: {runs}; sessions: {}; acknowledged messages: {total_acked}, all in their transcripts; \
         recorded but not yet acknowledged when killed: {in_flight}; torn tails cut on recovery: {torn}; \
         killed before the file existed: {missing}",
        chats.len()
    );
    assert!(
        total_acked > 0,
        "nothing was acknowledged: the test tested nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_mid_session_stops_the_transcript_visibly_and_the_chat_goes_on() {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "anna", "counsellor", "1");
    // Files may grow to 8 blocks (4 KiB in sh's 512-byte blocks): a
    // transcript reaches that after a few messages.
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("HAVEN_DATA_DIR", dir.path().join("data"))
        .args([
            "-c",
            "ulimit -f 8 && exec \"$0\" serve",
            env!("CARGO_BIN_EXE_haven"),
        ]);
    for (key, _) in std::env::vars() {
        if key.starts_with("HAVEN_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HAVEN_DATA_DIR", dir.path().join("data"))
        .env("HAVEN_TRANSCRIPTS", "on")
        .env("HAVEN_TRANSCRIPT_RECIPIENTS", &keys.recipient);
    let mut served = super::support::process::serve_command(cmd, &FAST);
    let mut anna = counsellor(&served, "anna").await;
    let mut sam = seeker(&served, "Sam").await;
    let session = anna.assigned().await;
    let long = "x".repeat(400);
    let mut stopped_at = None;
    for i in 0..100 {
        sam.say(&format!("m{i}"), &format!("{i} {long}")).await;
        anna.heard(&session).await;
        if anna.pending().iter().any(|m| {
            matches!(
                m,
                c::ServerMessage::Transcript {
                    state: TranscriptState::Stopped,
                    ..
                }
            )
        }) {
            stopped_at = Some(i);
            break;
        }
    }
    let stopped_at = stopped_at.expect("the counsellor was never told the transcript stopped");
    // The chat goes on, both ways.
    for i in 0..5 {
        sam.say(&format!("n{i}"), "nog steeds hier").await;
        assert_eq!(anna.heard(&session).await.1, "nog steeds hier");
        anna.say(&session, &format!("a{i}"), "ik ook").await;
        assert_eq!(sam.heard().await.1, "ik ook");
    }
    let bearer = format!("Bearer {}", haven_testkit::METRICS_TOKEN);
    let metrics = haven_testkit::request(
        served.addr,
        hyper::Method::GET,
        "/metrics",
        &[("authorization", &bearer)],
        None,
    )
    .await
    .body;
    assert!(
        metrics.contains("haven_transcript_errors_total 1"),
        "{metrics}"
    );
    sam.send(&s::ClientMessage::End).await;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    // What was written is intact and ends where it stopped: truncated,
    // never tampered, and a prefix of what was said.
    let path = dir
        .path()
        .join("data/transcripts/algemeen")
        .join(format!("{}.haven", session.0));
    let data = std::fs::read(&path).unwrap();
    let opened = keys.read(&data);
    assert_eq!(opened.verdict, Verdict::Truncated);
    let texts = recorded(&opened.records, Role::Seeker);
    assert!(texts.len() <= stopped_at + 1);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(*t, format!("{i} {long}"));
    }
}
