//! The broker recording sessions: a chat over real sockets comes back out
//! of the `haven transcript` command exactly; `ask` topics honour a no;
//! transfers are recorded; a transcript that cannot be written stops
//! visibly. (`recovery.rs`: what happens to the files at start.)

use std::time::Duration;

use haven_protocol::counsellor::TranscriptState;
use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::{AccountSpec, Role};
use haven_server::config::{Config, TopicConfig, TranscriptMode};
use haven_testkit::{SeekerClient, TestServer};
use haven_transcript::{Kind, Verdict};
use hyper::Method;

use super::support::process::{haven, output};
use super::support::recording::{Keys, all_files, finished};

fn recording(keys: &Keys, mode: TranscriptMode) -> impl FnOnce(&mut Config) {
    let recipient = keys.recipient.clone();
    move |config: &mut Config| {
        config.transcripts = mode;
        config.transcript_recipients = vec![recipient];
    }
}

async fn post(server: &TestServer, auth: &str, path: &str, body: &str) -> hyper::StatusCode {
    server
        .http(
            Method::POST,
            path,
            &[("authorization", auth)],
            Some(body.to_owned()),
        )
        .await
        .status
}

#[tokio::test]
async fn a_recorded_chat_decrypts_to_the_conversation() {
    let keys = Keys::new();
    let server = TestServer::start_with(recording(&keys, TranscriptMode::On)).await;
    let (mut anna, _) = server
        .counsellor_with(
            "anna",
            &AccountSpec {
                display_name: Some("Anna".into()),
                ..AccountSpec::default()
            },
        )
        .await;
    anna.available().await;
    let mut sam = server.seeker().await;
    let welcome = sam.hello(Some("Sam")).await;
    assert!(
        matches!(
            welcome,
            s::ServerMessage::Welcome {
                transcript: true,
                ..
            }
        ),
        "the help-seeker is told the chat is recorded: {welcome:?}"
    );
    let info = anna.assigned_info().await;
    assert_eq!(info.transcript, TranscriptState::On);
    let session = info.session;

    // A conversation, with a canary phrase that must never be stored in
    // the clear.
    let canary = "kanarie-5520 mijn geheim";
    let mut said: Vec<(&str, String)> = Vec::new();
    sam.say("m1", &format!("Hallo, {canary}")).await;
    said.push(("seeker", format!("Hallo, {canary}")));
    anna.heard(&session).await;
    anna.say(&session, "a1", "Fijn dat je er bent. Vertel.")
        .await;
    said.push(("Anna", "Fijn dat je er bent. Vertel.".into()));
    sam.heard().await;
    // A retry of an acked message gets its seq and is recorded once.
    let seq = sam.say("m2", "Het is moeilijk.").await;
    assert_eq!(sam.say("m2", "Het is moeilijk.").await, seq);
    said.push(("seeker", "Het is moeilijk.".into()));

    // A supervisor joins, writes and leaves.
    let password = server.add_account_with(
        "coco",
        Role::Supervisor,
        &AccountSpec {
            display_name: Some("Coco".into()),
            ..AccountSpec::default()
        },
    );
    let auth = format!("Bearer {}", server.token("coco", &password).await);
    let base = format!("/api/v1/supervisor/sessions/{}", session.0);
    assert_eq!(
        post(&server, &auth, &format!("{base}/join"), "{}").await,
        204
    );
    let r = server
        .http(
            Method::POST,
            &format!("{base}/say"),
            &[("authorization", &auth)],
            Some(r#"{"id": "s1", "text": "Ik lees even mee."}"#.to_owned()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    said.push(("Coco", "Ik lees even mee.".into()));
    assert_eq!(
        post(&server, &auth, &format!("{base}/leave"), "{}").await,
        204
    );
    anna.say(&session, "a2", "Tot een volgende keer.").await;
    said.push(("Anna", "Tot een volgende keer.".into()));
    sam.send(&s::ClientMessage::End).await;
    anna.expect("session_ended", |m| {
        matches!(m, c::ServerMessage::SessionEnded { .. })
    })
    .await;

    let path = finished(server.data_dir(), "algemeen", &session.0).await;
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "a transcript is for the server's user only"
    );
    let (ok, out, err) = output(
        haven(keys.dir.path())
            .args(["transcript", "decrypt", "--json", "--identity"])
            .arg(keys.file())
            .arg(&path),
    );
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "start", "join", "message", "message", "message", "join", "message", "leave",
            "message", "end"
        ],
        "{out}"
    );
    assert_eq!(records[0]["nickname"], "Sam");
    assert_eq!(records[0]["topic"], "algemeen");
    assert_eq!(records[1]["from"], "Anna");
    assert_eq!(records[5]["from"], "Coco");
    assert_eq!(records[5]["role"], "supervisor");
    let messages: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["kind"] == "message")
        .map(|r| {
            let who = r["from"].as_str().unwrap_or("seeker").to_owned();
            (who, r["text"].as_str().unwrap().to_owned())
        })
        .collect();
    let said: Vec<(String, String)> = said.into_iter().map(|(w, t)| (w.to_owned(), t)).collect();
    assert_eq!(messages, said);
    assert_eq!(records[9]["text"], "the help-seeker ended the chat");
    // Numbered from 1 without gaps, all sealed to the one key.
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["record"].as_u64(), Some(i as u64 + 1));
        assert_eq!(r["kid"], keys.identity.recipient().kid());
    }

    let (ok, out, _) = output(
        haven(keys.dir.path())
            .args(["transcript", "verify"])
            .arg(&path),
    );
    assert!(ok && out.contains("complete"), "{out}");
    // Readable text:
    let (ok, out, _) = output(
        haven(keys.dir.path())
            .args(["transcript", "decrypt", "--identity"])
            .arg(keys.file())
            .arg(&path),
    );
    assert!(ok);
    assert!(
        out.contains(&format!("Sam (help-seeker): Hallo, {canary}")),
        "{out}"
    );
    assert!(
        out.contains("Coco (supervisor): Ik lees even mee."),
        "{out}"
    );

    // Nothing in the data dir holds the canary in the clear.
    for file in all_files(server.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == b"kanarie-5520"),
            "{} holds the canary in the clear",
            file.display()
        );
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("haven_transcript_records_total 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("haven_transcript_errors_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_ask_topic_records_only_with_consent_and_a_no_shows_in_the_console() {
    let keys = Keys::new();
    let server = TestServer::start_with(recording(&keys, TranscriptMode::Ask)).await;
    let helpline = server.get("/api/v1/helpline").await.json();
    assert_eq!(helpline["transcripts"]["algemeen"], "ask");
    let (mut anna, _) = server.counsellor("anna", 2).await;
    anna.available().await;

    let mut chats = Vec::new();
    for consent in [false, true] {
        let mut seeker = server.seeker().await;
        seeker
            .send(&s::ClientMessage::Hello {
                protocol: 1,
                nickname: None,
                topic: None,
                language: None,
                urgent: false,
                return_code: None,
                transcript_consent: consent,
            })
            .await;
        let welcome = seeker
            .expect("welcome", |m| matches!(m, s::ServerMessage::Welcome { .. }))
            .await;
        assert!(
            matches!(welcome, s::ServerMessage::Welcome { transcript, .. } if transcript == consent),
            "{welcome:?}"
        );
        let info = anna.assigned_info().await;
        let want = if consent {
            TranscriptState::On
        } else {
            TranscriptState::Declined
        };
        assert_eq!(info.transcript, want);
        seeker.say("m1", "Mag ik iets vragen?").await;
        chats.push((seeker, info.session));
    }
    for (seeker, _) in &mut chats {
        seeker.send(&s::ClientMessage::End).await;
    }
    let recorded = finished(server.data_dir(), "algemeen", &chats[1].1.0).await;
    assert!(recorded.exists());
    let declined = &chats[0].1.0;
    assert!(
        all_files(server.data_dir())
            .iter()
            .all(|p| !p.to_string_lossy().contains(declined.as_str())),
        "a declined chat left a file"
    );
    assert_eq!(
        all_files(&server.data_dir().join("transcripts")).len(),
        1,
        "only the consenting chat is recorded"
    );
}

#[tokio::test]
async fn a_topic_that_does_not_record_writes_nothing_and_says_nothing() {
    let keys = Keys::new();
    let server = TestServer::start_with(|config| {
        recording(&keys, TranscriptMode::On)(config);
        config.topics.insert(
            "anoniem".into(),
            TopicConfig {
                transcripts: Some(TranscriptMode::Off),
                ..TopicConfig::default()
            },
        );
    })
    .await;
    let helpline = server.get("/api/v1/helpline").await.json();
    assert_eq!(helpline["transcripts"]["algemeen"], "on");
    assert!(
        helpline["transcripts"].get("anoniem").is_none(),
        "{helpline}"
    );
    let mut seeker = server.seeker().await;
    seeker
        .send(&s::ClientMessage::Hello {
            protocol: 1,
            nickname: None,
            topic: Some("anoniem".into()),
            language: None,
            urgent: false,
            return_code: None,
            transcript_consent: true,
        })
        .await;
    let welcome = seeker
        .expect("welcome", |m| matches!(m, s::ServerMessage::Welcome { .. }))
        .await;
    assert!(matches!(
        welcome,
        s::ServerMessage::Welcome {
            transcript: false,
            ..
        }
    ));
    seeker.say("m1", "Niet bewaren graag.").await;
    seeker.send(&s::ClientMessage::End).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(all_files(&server.data_dir().join("transcripts")).is_empty());
}

/// A transcript whose directory cannot be created: the chat goes on, the
/// counsellor sees it is not recorded, the error is counted.
#[tokio::test]
async fn a_transcript_that_cannot_be_written_stops_visibly_and_the_chat_goes_on() {
    let keys = Keys::new();
    let server = TestServer::start_with(recording(&keys, TranscriptMode::On)).await;
    // The topic's directory is a file: creating the transcript fails.
    std::fs::write(
        server.data_dir().join("transcripts/algemeen"),
        b"in the way",
    )
    .unwrap();
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(None).await;
    let info = anna.assigned_info().await;
    // Told at once, or (when the session was routed before the writer
    // found out) a moment later.
    if info.transcript != TranscriptState::Stopped {
        assert_eq!(info.transcript, TranscriptState::On);
        anna.expect("transcript", |m| {
            matches!(
                m,
                c::ServerMessage::Transcript {
                    state: TranscriptState::Stopped,
                    ..
                }
            )
        })
        .await;
    }
    sam.say("m1", "Hoor je me?").await;
    assert_eq!(anna.heard(&info.session).await.1, "Hoor je me?");
    anna.say(&info.session, "a1", "Ja.").await;
    assert_eq!(sam.heard().await.1, "Ja.");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("haven_transcript_errors_total 1"),
        "{metrics}"
    );
}

/// Many messages in a recorded session: each is acked (once its record is
/// durable), numbered in order and delivered once.
#[tokio::test]
async fn a_recorded_session_acks_and_delivers_every_message_in_order() {
    let keys = Keys::new();
    let server = TestServer::start_with(recording(&keys, TranscriptMode::On)).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam: SeekerClient = server.seeker().await;
    sam.hello(None).await;
    let session = anna.assigned().await;
    for i in 0..20 {
        let seq = sam.say(&format!("m{i}"), &format!("bericht {i}")).await;
        assert_eq!(seq, i + 1);
        assert_eq!(anna.heard(&session).await, (seq, format!("bericht {i}")));
    }
}

#[tokio::test]
async fn transfers_to_a_colleague_and_back_to_the_queue_are_recorded() {
    let keys = Keys::new();
    let server = TestServer::start_with(recording(&keys, TranscriptMode::On)).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(Some("Sam")).await;
    let session = anna.assigned().await;
    let (mut bob, _) = server.counsellor("bob", 1).await;
    sam.say("m1", "Eerst met Anna.").await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: false,
        note: Some("privé: nooit in het verslag".into()),
    })
    .await;
    bob.expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    bob.accept(&session).await;
    bob.assigned().await;
    bob.say(&session, "b1", "Hier is Bob.").await;
    bob.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: None,
        to_topic: Some("algemeen".into()),
        warm: false,
        note: None,
    })
    .await;
    // Back in the queue, where Anna (free again) takes it.
    assert_eq!(anna.assigned().await, session);
    sam.send(&s::ClientMessage::End).await;

    let path = finished(server.data_dir(), "algemeen", &session.0).await;
    let data = std::fs::read(&path).unwrap();
    let opened = keys.read(&data);
    assert_eq!(opened.verdict, Verdict::Complete);
    let transfers: Vec<(Option<&str>, Option<&str>, Option<&str>)> = opened
        .records
        .iter()
        .filter(|r| r.kind == Kind::Transfer)
        .map(|r| {
            (
                r.body.from.as_deref(),
                r.body.to.as_deref(),
                r.body.topic.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        transfers,
        [
            (Some("Anna"), Some("Bob"), None),
            (Some("Bob"), None, Some("algemeen"))
        ]
    );
    assert!(
        !String::from_utf8_lossy(&data).contains("privé"),
        "the note is sealed at most, never in the clear"
    );
    assert!(
        opened
            .records
            .iter()
            .all(|r| r.body.text.as_deref() != Some("privé: nooit in het verslag")),
        "a private handover note is not part of the transcript"
    );
    let said: Vec<&str> = opened
        .records
        .iter()
        .filter(|r| r.kind == Kind::Message)
        .filter_map(|r| r.body.text.as_deref())
        .collect();
    assert_eq!(said, ["Eerst met Anna.", "Hier is Bob."]);
}
