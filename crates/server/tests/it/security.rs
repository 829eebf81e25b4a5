//! Admission and authentication: origins, logins, caps, per-source limits,
//! slow consumers.

use std::time::Duration;

use haven_protocol::{ErrorCode, counsellor as c, seeker as s};
use haven_server::accounts::Role;
use haven_testkit::{TestServer, Ws, WsError};
use hyper::Method;

fn status(result: Result<Ws, WsError>) -> u16 {
    match result {
        Ok(_) => 101,
        Err(WsError::Http(status)) => status.as_u16(),
        Err(WsError::Other(e)) => panic!("{e}"),
    }
}

#[tokio::test]
async fn only_allowed_origins_may_open_sockets_and_only_staff_pages_the_counsellors() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://hulp.example.org".into()];
        c.staff_origins = vec!["https://console.example.org".into()];
    })
    .await;
    let own = format!("http://{}", server.addr);
    let refused = [
        "null",
        "https://evil.example",
        "https://hulp.example.org.evil.example",
        "https://evilhulp.example.org",
        "http://hulp.example.org",
        "https://hulp.example.org:8443",
        "https://HULP.example.org",
        "https://hulp.example.org.",
        "https://hulp.example.org/",
        "https://xn--hlp-xla.example.org",
        "https://console.example.org.evil.example",
    ];
    for path in ["/ws/seeker", "/ws/counsellor"] {
        for origin in refused {
            let got = status(Ws::connect(&server.url(path), &[("origin", origin)]).await);
            assert_eq!(got, 403, "{path} accepted origin {origin:?}");
        }
        // Non-browser clients send no Origin; allowed by default.
        assert_eq!(status(Ws::connect(&server.url(path), &[]).await), 101);
    }
    let widget = [("origin", "https://hulp.example.org")];
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &widget).await),
        101
    );
    // The widget's host page never opens a counsellor socket; Haven's own
    // pages and the listed staff origin do.
    let counsellor = |origin: String| {
        let url = server.url("/ws/counsellor");
        async move { status(Ws::connect(&url, &[("origin", origin.as_str())]).await) }
    };
    assert_eq!(counsellor("https://hulp.example.org".into()).await, 403);
    assert_eq!(counsellor(own.clone()).await, 101);
    assert_eq!(counsellor("https://console.example.org".into()).await, 101);
    // A browser's same-site request without Origin is refused too.
    let same_site = Ws::connect(
        &server.url("/ws/counsellor"),
        &[("sec-fetch-site", "same-site")],
    )
    .await;
    assert_eq!(status(same_site), 403);

    let strict = TestServer::start_with(|c| c.allow_missing_origin = false).await;
    for path in ["/ws/seeker", "/ws/counsellor"] {
        assert_eq!(status(Ws::connect(&strict.url(path), &[]).await), 403);
    }
}

#[tokio::test]
async fn staff_apis_refuse_pages_that_embed_the_widget() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://hulp.example.org".into()];
    })
    .await;
    let token = server.token("admin", &server.admin_password.clone()).await;
    let bearer = format!("Bearer {token}");
    let own = format!("http://{}", server.addr);
    let cases: [(Method, &str); 4] = [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/supervisor/audit"),
        (Method::POST, "/api/v1/topics/algemeen/pause"),
        (Method::POST, "/api/v1/topics/algemeen/resume"),
    ];
    for (method, path) in cases {
        for page in [
            vec![("origin", "https://hulp.example.org")],
            vec![("sec-fetch-site", "same-site")],
            vec![("sec-fetch-site", "cross-site")],
        ] {
            let mut headers = page.clone();
            headers.push(("authorization", bearer.as_str()));
            let got = server.http(method.clone(), path, &headers, None).await;
            assert_eq!(got.status, 403, "{method} {path} from {page:?}");
        }
        let from_haven = [("origin", own.as_str()), ("authorization", bearer.as_str())];
        let got = server.http(method.clone(), path, &from_haven, None).await;
        assert!(
            got.status.is_success(),
            "{method} {path} from Haven's own page: {}",
            got.status
        );
    }
    // Logging in from the widget's host page is refused as well.
    let body = serde_json::json!({"name": "admin", "password": server.admin_password}).to_string();
    let got = server
        .http(
            Method::POST,
            "/api/v1/login",
            &[("origin", "https://hulp.example.org")],
            Some(body),
        )
        .await;
    assert_eq!(got.status, 403);
}

#[tokio::test]
async fn login_cookie_and_token_open_the_counsellor_socket_and_logout_closes_it() {
    let server = TestServer::start().await;
    let password = server.add_account("anna", Role::Counsellor, Some(2));

    let wrong = server.login("anna", "wrong password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.headers["content-type"], "application/problem+json");
    assert_eq!(wrong.json()["code"], "unauthorized");
    assert_eq!(server.login("nobody", "whatever-long").await.status, 401);
    let garbage = server
        .http(Method::POST, "/api/v1/login", &[], Some("{".into()))
        .await;
    assert_eq!(garbage.status, 400);
    let cross_site = server
        .http(
            Method::POST,
            "/api/v1/login",
            &[("origin", "https://evil.example")],
            Some(serde_json::json!({"name": "anna", "password": password}).to_string()),
        )
        .await;
    assert_eq!(cross_site.status, 403);

    let ok = server.login("anna", &password).await;
    assert_eq!(ok.status, 200);
    let token = ok.json()["token"].as_str().unwrap().to_owned();
    let cookie = ok.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("haven_auth="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let me = server
        .http(
            Method::GET,
            "/api/v1/me",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(me.json()["name"], "anna");
    assert_eq!(me.json()["capacity"], 2);

    // The cookie alone authenticates the socket.
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let mut by_cookie = server
        .counsellor_socket(&[("cookie", &cookie_pair)])
        .await
        .unwrap();
    let welcome = by_cookie.hello(None).await;
    assert!(
        matches!(welcome, c::ServerMessage::Welcome { ref name, capacity: 2, .. } if name == "anna"),
        "{welcome:?}"
    );

    // Logging out closes it with 4501 and the token stops working.
    let out = server
        .http(
            Method::POST,
            "/api/v1/logout",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(by_cookie.closed().await, Some(4501));
    let mut again = server.counsellor_socket(&[]).await.unwrap();
    again
        .send(&c::ClientMessage::Hello {
            protocol: 1,
            token: Some(haven_protocol::common::AuthToken(token)),
        })
        .await;
    assert!(matches!(
        again.recv().await,
        c::ServerMessage::Error {
            code: ErrorCode::Unauthorized,
            ..
        }
    ));
}

#[tokio::test]
async fn repeated_wrong_passwords_make_that_source_wait_for_that_account() {
    let server = TestServer::start_with(|c| c.auth.max_failures = 3).await;
    let password = server.add_account("anna", Role::Counsellor, None);
    for _ in 0..3 {
        assert_eq!(server.login("anna", "not it at all").await.status, 401);
    }
    let held = server.login("anna", &password).await;
    assert_eq!(held.status, 429);
    assert_eq!(held.json()["code"], "too_many_failures");
    assert_eq!(held.headers["retry-after"], "30");
    // Other accounts from the same source are not held.
    let bram = server.add_account("bram", Role::Counsellor, None);
    assert_eq!(server.login("bram", &bram).await.status, 200);
}

#[tokio::test]
async fn the_global_cap_answers_503() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap());
    }
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &[]).await),
        503
    );
    // A slot frees when a socket closes.
    open.pop().unwrap().close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &[]).await),
        101
    );
}

#[tokio::test]
async fn per_source_limits_answer_429() {
    let server = TestServer::start_with(|c| {
        c.limits.source_upgrades_per_minute = 1;
        c.limits.source_upgrade_burst = 4;
        c.limits.source_max_connections = 2;
    })
    .await;
    let a = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();
    let _b = Ws::connect(&server.url("/ws/seeker"), &[]).await.unwrap();
    // Two open from this address: the third is refused while they are.
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &[]).await),
        429
    );
    a.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &[]).await),
        101
    );
    // The burst of four upgrades is spent now.
    assert_eq!(
        status(Ws::connect(&server.url("/ws/seeker"), &[]).await),
        429
    );
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_and_resumes_without_loss() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue = 16;
        c.session.replay_max_messages = 15;
        c.limits.counsellor_frame_burst = 100_000;
        c.limits.counsellor_frames_per_minute = 1_000_000;
    })
    .await;
    // The seeker connects with a tiny TCP buffer and then stops reading.
    let ws = Ws::connect_small_buffer(&server.url("/ws/seeker"), server.addr).await;
    let mut seeker = haven_testkit::SeekerClient::new(ws);
    let s::ServerMessage::Welcome { token, .. } = seeker.hello(None).await else {
        unreachable!()
    };
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;

    // Chat up to the backlog bound: acked and kept for the seeker.
    let mut acked = 0;
    for i in 0..10 {
        acked = anna
            .say(&session, &format!("c{i}"), &"x".repeat(3900))
            .await;
    }
    // Then a stream of typing indicators (never stored) until the seeker's
    // outbound queue overflows and the broker cuts it off.
    let mut cut = false;
    for round in 0..2000 {
        for _ in 0..50 {
            anna.send(&c::ClientMessage::Typing {
                session: session.clone(),
                active: round % 2 == 0,
            })
            .await;
        }
        if let Some(msg) = anna.try_recv(Duration::from_millis(5)).await
            && matches!(
                msg,
                c::ServerMessage::Peer {
                    connected: false,
                    ..
                }
            )
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "the slow reader was never cut off");
    // It gets 4000 if the close frame can still reach it, or just loses the
    // connection; either way a client reconnects and resumes.
    let code = seeker.closed().await;
    assert!(matches!(code, Some(4000) | None), "{code:?}");

    let mut back = server.seeker().await;
    back.send(&s::ClientMessage::Resume { token, last_seq: 0 })
        .await;
    back.expect("resumed", |m| {
        matches!(
            m,
            s::ServerMessage::Resumed {
                recovered: true,
                ..
            }
        )
    })
    .await;
    for want in 1..=acked {
        let (seq, text) = back.heard().await;
        assert_eq!(seq, want);
        assert_eq!(text.len(), 3900);
    }
}

#[tokio::test]
async fn a_reader_that_pauses_gets_everything_once_it_reads_again() {
    // 6 MB: more than the kernel buffers hold (the send buffer grows to
    // 4 MiB at most), so the broker's writer has to wait for the socket to
    // take more, and not so much that the help-seeker counts as a slow
    // consumer.
    const MESSAGES: u64 = 120;
    let server = TestServer::start_with(|c| {
        c.session.max_chars = 60_000;
        c.limits.max_frame_bytes = 256 * 1024;
        c.session.replay_max_bytes = 16 << 20;
        c.limits.counsellor_message_burst = 1000;
        c.limits.counsellor_frame_burst = 1000;
    })
    .await;
    let ws = Ws::connect_small_buffer(&server.url("/ws/seeker"), server.addr).await;
    let mut seeker = haven_testkit::SeekerClient::new(ws);
    seeker.hello(None).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let session = anna.assigned().await;
    let text = "x".repeat(50_000);
    for i in 0..MESSAGES {
        assert_eq!(anna.say(&session, &format!("c{i}"), &text).await, i + 1);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for want in 1..=MESSAGES {
        let (seq, heard) = seeker.heard().await;
        assert_eq!((seq, heard.len()), (want, text.len()));
    }
}

// A frame announcing 16 MiB, and the other framing violations, are in
// `frames.rs`.

#[tokio::test]
async fn connections_that_send_nothing_or_half_a_request_are_dropped() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server =
        TestServer::start_with(|c| c.limits.header_timeout = Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET /ws/seeker HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    for tcp in [&mut silent, &mut partial] {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => panic!("a slow-loris connection was kept open"),
            }
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/healthz").await.status, 200);
}

#[cfg(unix)]
#[tokio::test]
async fn everything_in_the_data_dir_is_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt as _;
    // A data dir an admin made with the usual umask (0755).
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let keys = super::support::recording::Keys::new();
    let recipient = keys.recipient.clone();
    let dir = data.clone();
    let server = TestServer::start_with(move |c| {
        c.data_dir = dir;
        c.transcripts = haven_server::config::TranscriptMode::On;
        c.transcript_recipients = vec![recipient];
    })
    .await;
    // A recorded chat, ended, and a login and logout in the audit log.
    haven_server::accounts::AccountStore::new(&data)
        .add(
            "anna",
            Role::Counsellor,
            "pw-anna-0123456789",
            &haven_server::accounts::AccountSpec::default(),
        )
        .unwrap();
    let token = server.token("anna", "pw-anna-0123456789").await;
    let mut anna = server.counsellor_socket(&[]).await.unwrap();
    anna.hello(Some(&token)).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(Some("Sam")).await;
    let session = anna.assigned().await;
    sam.say("m1", "hallo").await;
    sam.send(&s::ClientMessage::End).await;
    super::support::recording::finished(&data, "algemeen", &session.0).await;

    let mut checked = 0;
    for path in std::iter::once(data.clone()).chain(walk(&data)) {
        let meta = std::fs::metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
        checked += 1;
    }
    // The data dir, accounts, device key, audit log, transcripts folder,
    // the topic's folder and the transcript.
    assert!(checked >= 7, "only {checked} paths");
    assert!(data.join("audit.log").exists());
}

/// Every path under `dir`, folders too.
#[cfg(unix)]
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
