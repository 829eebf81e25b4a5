//! A supervisor watching, whispering in and joining a live session, over
//! real sockets, with everything in the audit log and nothing told to the
//! help-seeker that should not be.

use std::time::Duration;

use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::{AccountSpec, Role};
use haven_testkit::{CounsellorClient, SeekerClient, TestServer};
use hyper::Method;

struct Scene {
    server: TestServer,
    anna: CounsellorClient,
    sam: SeekerClient,
    session: haven_protocol::SessionRef,
    auth: String,
}

async fn scene() -> Scene {
    let server = TestServer::start().await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(Some("Sam")).await;
    let session = anna.assigned().await;
    sam.expect("assigned", |m| {
        matches!(m, s::ServerMessage::Assigned { .. })
    })
    .await;
    let password = server.add_account_with(
        "coco",
        Role::Supervisor,
        &AccountSpec {
            display_name: Some("Coco".into()),
            ..AccountSpec::default()
        },
    );
    let token = server.token("coco", &password).await;
    Scene {
        server,
        anna,
        sam,
        session,
        auth: format!("Bearer {token}"),
    }
}

async fn post(
    server: &TestServer,
    auth: &str,
    path: &str,
    body: &str,
) -> haven_testkit::HttpResponse {
    server
        .http(
            Method::POST,
            path,
            &[("authorization", auth)],
            Some(body.to_owned()),
        )
        .await
}

/// Frames the help-seeker got in the next moment.
async fn heard_by_seeker(sam: &mut SeekerClient) -> Vec<s::ServerMessage> {
    let mut got = Vec::new();
    while let Some(m) = sam.try_recv(Duration::from_millis(300)).await {
        got.push(m);
    }
    got
}

#[tokio::test]
async fn silent_observation_tells_the_counsellor_and_never_the_seeker() {
    let Scene {
        server,
        mut anna,
        mut sam,
        session,
        auth,
    } = scene().await;
    let path = format!("/api/v1/supervisor/sessions/{}/observe", session.0);
    let mut watch = server.sse(&path, &[("authorization", &auth)]).await;
    assert_eq!(watch.status, 200);
    let first = watch.expect("message", |_| true).await;
    assert_eq!(first["type"], "watching");
    assert_eq!(first["counsellors"][0], "Anna");
    let observed = anna
        .expect("observed", |m| {
            matches!(m, c::ServerMessage::Observed { .. })
        })
        .await;
    assert!(
        matches!(observed, c::ServerMessage::Observed { ref by, active: true, .. } if by == "Coco"),
        "{observed:?}"
    );

    // Both sides' messages reach the watcher.
    sam.say("m1", "Het gaat niet goed.").await;
    anna.heard(&session).await;
    anna.say(&session, "a1", "Ik ben er.").await;
    let m = watch.expect("message", |m| m["type"] == "message").await;
    assert_eq!(m["from"]["seeker"], true);
    assert_eq!(m["text"], "Het gaat niet goed.");
    let m = watch.expect("message", |m| m["type"] == "message").await;
    assert_eq!(m["from"]["counsellor"], "Anna");

    // The help-seeker heard only Anna.
    for m in heard_by_seeker(&mut sam).await {
        assert!(
            matches!(m, s::ServerMessage::Message { ref from, .. } if from == "Anna")
                || matches!(
                    m,
                    s::ServerMessage::Ack { .. } | s::ServerMessage::Delivered { .. }
                ),
            "the help-seeker got {m:?}"
        );
    }

    // Closing the stream ends the watch, and the counsellor is told.
    drop(watch);
    let stopped = anna
        .expect("observed", |m| {
            matches!(m, c::ServerMessage::Observed { active: false, .. })
        })
        .await;
    assert!(matches!(stopped, c::ServerMessage::Observed { .. }));

    // Both are in the audit log, without any text.
    let mut entries = serde_json::Value::Null;
    for _ in 0..50 {
        entries = server
            .http(
                Method::GET,
                "/api/v1/supervisor/audit",
                &[("authorization", &auth)],
                None,
            )
            .await
            .json();
        let watching = |e: &&serde_json::Value| e["session"] == session.0.as_str();
        if entries["entries"]
            .as_array()
            .is_some_and(|e| e.iter().filter(watching).count() == 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let watched: Vec<&serde_json::Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["session"] == session.0.as_str())
        .collect();
    let actions: Vec<&str> = watched
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["observe", "stop_observing"]);
    assert_eq!(watched[0]["actor"], "coco");
    // Coco's login is there too.
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "login" && e["actor"] == "coco")
    );
    let log = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap();
    assert!(!log.contains("gaat niet goed") && !log.contains("Ik ben er"));
}

#[tokio::test]
async fn a_whisper_reaches_the_counsellor_only() {
    let Scene {
        server,
        mut anna,
        mut sam,
        session,
        auth,
    } = scene().await;
    let path = format!("/api/v1/supervisor/sessions/{}/whisper", session.0);
    let r = post(
        &server,
        &auth,
        &path,
        r#"{"text": "Vraag naar een veilige plek."}"#,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let w = anna
        .expect("whisper", |m| matches!(m, c::ServerMessage::Whisper { .. }))
        .await;
    assert!(
        matches!(w, c::ServerMessage::Whisper { ref from, ref text, .. }
            if from == "Coco" && text.0 == "Vraag naar een veilige plek."),
        "{w:?}"
    );
    assert!(heard_by_seeker(&mut sam).await.is_empty());

    // A counsellor may not whisper, and an empty whisper is refused.
    let (_bob, bob) = server.counsellor("bob", 1).await;
    let r = post(
        &server,
        &format!("Bearer {bob}"),
        &path,
        r#"{"text": "hoi"}"#,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post(&server, &auth, &path, r#"{"text": "  "}"#).await;
    assert_eq!(r.status, 400);
    let audit = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap();
    assert!(audit.contains("\"whisper\"") && !audit.contains("veilige"));
}

#[tokio::test]
async fn a_supervisor_joins_visibly_writes_and_leaves() {
    let Scene {
        server,
        mut anna,
        mut sam,
        session,
        auth,
    } = scene().await;
    let base = format!("/api/v1/supervisor/sessions/{}", session.0);
    let say = format!("{base}/say");
    // Writing before joining is refused.
    let r = post(&server, &auth, &say, r#"{"id": "s1", "text": "Hallo"}"#).await;
    assert_eq!(r.status, 403);

    assert_eq!(
        post(&server, &auth, &format!("{base}/join"), "{}")
            .await
            .status,
        204
    );
    sam.expect(
        "joined",
        |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Coco"),
    )
    .await;
    anna.expect("participant", |m| matches!(m, c::ServerMessage::Participant { counsellor, joined: true, .. } if counsellor == "Coco"))
        .await;

    let r = post(
        &server,
        &auth,
        &say,
        r#"{"id": "s1", "text": "Hallo Sam, ik ben Coco."}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seq = r.json()["seq"].as_u64().unwrap();
    let m = sam
        .expect("message", |m| matches!(m, s::ServerMessage::Message { .. }))
        .await;
    assert!(
        matches!(m, s::ServerMessage::Message { seq: got, ref from, .. } if got == seq && from == "Coco"),
        "{m:?}"
    );
    anna.expect(
        "said",
        |m| matches!(m, c::ServerMessage::Said { from, .. } if from == "Coco"),
    )
    .await;
    // A retry is not sent twice.
    let again = post(
        &server,
        &auth,
        &say,
        r#"{"id": "s1", "text": "Hallo Sam, ik ben Coco."}"#,
    )
    .await;
    assert_eq!(again.json()["seq"].as_u64(), Some(seq));

    assert_eq!(
        post(&server, &auth, &format!("{base}/leave"), "{}")
            .await
            .status,
        204
    );
    sam.expect(
        "left",
        |m| matches!(m, s::ServerMessage::CounsellorLeft { counsellor } if counsellor == "Coco"),
    )
    .await;
    for m in heard_by_seeker(&mut sam).await {
        assert!(
            !matches!(m, s::ServerMessage::Message { .. }),
            "the retry reached the help-seeker: {m:?}"
        );
    }
}

#[tokio::test]
async fn only_live_sessions_can_be_watched() {
    let server = TestServer::start().await;
    let mut waiting = server.seeker().await;
    let welcome = waiting.hello(None).await;
    let s::ServerMessage::Welcome { session, .. } = welcome else {
        unreachable!()
    };
    let password = server.add_account("coco", Role::Supervisor, None);
    let token = server.token("coco", &password).await;
    let auth = format!("Bearer {token}");
    let watch = server
        .sse(
            &format!("/api/v1/supervisor/sessions/{}/observe", session.0),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(watch.status, 404);
    let nobody = server
        .sse(
            "/api/v1/supervisor/sessions/nonsense/observe",
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(nobody.status, 404);
}
