//! One source against everyone else: a single address that opens
//! thousands of connections, trickles request bodies or floods the login
//! must not take the service from the help-seekers and staff beside it.
//!
//! The attacker connects from a loopback alias (127.0.0.2), everyone else
//! from 127.0.0.1, so the per-source limits see two sources.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use haven_testkit::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection to the server from `local`.
async fn connect_from(server: SocketAddr, local: [u8; 4]) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(local), 0))?;
    socket.connect(server).await
}

/// Reads until the server closes the connection or `wait` passes; returns
/// what arrived, or `None` when the connection was still open at the end.
async fn read_until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// A help-seeker and a counsellor in a chat, and a message each way.
async fn chat_works(server: &TestServer, round: u32) {
    let (mut counsellor, _) = server.counsellor(&format!("control{round}"), 1).await;
    counsellor.available().await;
    let mut seeker = server.seeker().await;
    seeker.hello(Some("Kim")).await;
    let session = counsellor.assigned().await;
    seeker.say("a", "hallo").await;
    assert_eq!(counsellor.heard(&session).await.1, "hallo");
    counsellor.say(&session, "b", "ik ben er").await;
    assert_eq!(seeker.heard().await.1, "ik ben er");
}

#[tokio::test]
async fn one_source_cannot_hold_every_connection_slot() {
    let server = TestServer::start_with(|c| {
        c.limits.max_http_connections = 400;
        c.limits.source_max_http_connections = 40;
        c.limits.body_timeout = Duration::from_millis(1500);
        c.limits.header_timeout = Duration::from_secs(4);
    })
    .await;

    // 1,200 connections from one address, more than every slot there is:
    // two in three announce an 8,000-byte body and send one byte, the rest
    // send nothing at all.
    let mut held = Vec::new();
    for i in 0..1200 {
        let Ok(mut tcp) = connect_from(server.addr, ATTACKER).await else {
            continue;
        };
        if i % 3 != 0 {
            let _ = tcp
                .write_all(
                    b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                      Content-Length: 8000\r\n\r\n{",
                )
                .await;
        }
        held.push((i % 3 != 0, tcp));
    }

    // Everyone else still gets in: the health check, a chat, a new
    // help-seeker (inside `chat_works`), while the attacker holds on.
    for _ in 0..5 {
        let health = tokio::time::timeout(Duration::from_secs(2), server.get("/healthz"))
            .await
            .expect("/healthz did not answer while one source held its connections");
        assert_eq!(health.status, 200);
    }
    tokio::time::timeout(Duration::from_secs(10), chat_works(&server, 0))
        .await
        .expect("a chat could not start while one source held its connections");

    // Of the attacker's connections, no more than its share were taken
    // in, every slow body was answered 408, and none is left open once
    // the deadlines have passed (a few reach the server late, from the
    // kernel's backlog, and get their own deadline then).
    let readers: Vec<_> = held
        .into_iter()
        .map(|(slow_body, mut tcp)| {
            tokio::spawn(async move {
                let reply = read_until_closed(&mut tcp, Duration::from_secs(15)).await;
                (slow_body, reply)
            })
        })
        .collect();
    let mut timed_out = 0;
    for reader in readers {
        match reader.await.unwrap() {
            (_, None) => panic!("a connection was still open long after its deadlines"),
            (true, Some(reply)) if reply.starts_with("HTTP/1.1 408") => timed_out += 1,
            _ => {}
        }
    }
    assert!(
        (1..=40).contains(&timed_out),
        "{timed_out} slow bodies were answered 408; at most the source's 40 may have been taken in"
    );
    chat_works(&server, 1).await;
}

#[tokio::test]
async fn a_request_body_that_never_arrives_gets_408() {
    let server =
        TestServer::start_with(|c| c.limits.body_timeout = Duration::from_millis(500)).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 8000\r\n\r\n{\"name\"",
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    let reply = read_until_closed(&mut tcp, Duration::from_secs(5))
        .await
        .expect("a connection with a slow body was kept open");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_timeout"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A body that does arrive in time is read as before.
    let ok = server.login("nobody", "whatever-long").await;
    assert_eq!(ok.status, 401);
}

/// An HTTP answer read off a raw connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The value of a cookie the answer sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie: "))
            .map(|l| &l["set-cookie: ".len()..])
            .filter_map(|c| c.split(';').next()?.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// `POST /api/v1/login` from a chosen local address.
async fn login_from(
    server: &TestServer,
    local: [u8; 4],
    name: &str,
    password: &str,
    cookie: Option<&str>,
) -> Reply {
    let body = serde_json::json!({ "name": name, "password": password }).to_string();
    let cookie = cookie.map_or(String::new(), |c| format!("cookie: haven_device={c}\r\n"));
    let request = format!(
        "POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n{cookie}\r\n{body}",
        body.len()
    );
    let mut tcp = connect_from(server.addr, local).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut tcp, Duration::from_secs(20))
        .await
        .expect("no answer to a login");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn password_checks(server: &TestServer) -> f64 {
    super::support::value(&server.metrics().await, "haven_password_checks_total").unwrap_or(0.0)
}

#[tokio::test]
async fn one_source_is_refused_before_any_password_is_checked() {
    let server = TestServer::start_with(|c| {
        c.auth.source_logins_per_minute = 10;
        c.auth.source_login_burst = 10;
    })
    .await;
    // Sixty names from one address: ten are checked, fifty refused with
    // 429 before Argon2 runs.
    let mut answers = Vec::new();
    for i in 0..60 {
        let reply = login_from(
            &server,
            ATTACKER,
            &format!("guess{i}"),
            "hunter2hunter2",
            None,
        )
        .await;
        answers.push((reply.status, reply.code()));
    }
    let checked = answers.iter().filter(|(s, _)| *s == 401).count();
    let refused = answers
        .iter()
        .filter(|(s, c)| *s == 429 && c == "rate_limited")
        .count();
    assert_eq!((checked, refused), (10, 50), "{answers:?}");
    assert_eq!(password_checks(&server).await, 10.0);
    // Another source is not held back by it.
    let other = login_from(&server, [127, 0, 0, 1], "guess0", "hunter2hunter2", None).await;
    assert_eq!(other.status, 401);
}

#[tokio::test]
async fn wrong_passwords_from_elsewhere_never_lock_the_real_user_out() {
    let server = TestServer::start_with(|c| {
        c.auth = haven_server::config::AuthConfig {
            secure_cookie: false,
            ..haven_server::config::AuthConfig::default()
        };
    })
    .await;
    let password = server.add_account("anna", haven_server::accounts::Role::Counsellor, Some(2));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let reply = login_from(&server, ATTACKER, "anna", "not her password", None).await;
        statuses.push((reply.status, reply.code()));
    }
    // The guessing source backs off after five failures...
    assert!(statuses[..5].iter().all(|(s, _)| *s == 401), "{statuses:?}");
    assert!(
        statuses[5..]
            .iter()
            .all(|(s, c)| *s == 429 && c == "too_many_failures"),
        "{statuses:?}"
    );
    // ... and not even the right password gets in from there for now.
    assert_eq!(
        login_from(&server, ATTACKER, "anna", &password, None)
            .await
            .status,
        429
    );
    // Anna, from her own address, logs in at once, never locked out.
    let home = login_from(&server, [127, 0, 0, 1], "anna", &password, None).await;
    assert_eq!(home.status, 200, "{home:?}");
}

#[tokio::test]
async fn past_a_full_failure_table_guesses_are_refused_not_let_through() {
    let server = TestServer::start_with(|c| {
        c.auth.max_tracked = 30;
        c.auth.source_logins_per_minute = 10_000;
        c.auth.source_login_burst = 10_000;
    })
    .await;
    let password = server.add_account("anna", haven_server::accounts::Role::Counsellor, Some(2));
    // Anna's browser knows her account.
    let home = login_from(&server, [127, 0, 0, 1], "anna", &password, None).await;
    assert_eq!(home.status, 200);
    let device = home.cookie("haven_device").expect("a device cookie");
    // Thirty junk names fill the table of failures...
    for i in 0..30 {
        let reply = login_from(&server, ATTACKER, &format!("junk{i}"), "x0123456789", None).await;
        assert_eq!(reply.status, 401);
    }
    let checks = password_checks(&server).await;
    // ... after which a guess at a name not in it is refused, unchecked,
    // instead of going through unrecorded.
    for _ in 0..10 {
        let reply = login_from(&server, ATTACKER, "anna", "a guess 123456", None).await;
        assert_eq!((reply.status, reply.code().as_str()), (503, "busy"));
    }
    assert_eq!(password_checks(&server).await, checks);
    // Anna's own browser still gets in.
    let known = login_from(&server, [127, 0, 0, 1], "anna", &password, Some(&device)).await;
    assert_eq!(known.status, 200, "{known:?}");
}

#[tokio::test]
async fn a_login_flood_starves_neither_chat_nor_genuine_logins() {
    // The login rules as shipped, with one checking thread.
    let server = TestServer::start_with(|c| {
        let shipped = haven_server::config::AuthConfig::default();
        c.auth = haven_server::config::AuthConfig {
            max_concurrent_hashes: 1,
            secure_cookie: false,
            ..shipped
        };
    })
    .await;
    let bram = server.add_account("bram", haven_server::accounts::Role::Counsellor, Some(2));
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = server.seeker().await;
    seeker.hello(Some("Kim")).await;
    let session = anna.assigned().await;

    // Sixteen addresses, four clients each, log in as fast as answers come.
    let stop = tokio_util::sync::CancellationToken::new();
    let server = std::sync::Arc::new(server);
    let flooders: Vec<_> = (10..26u8)
        .flat_map(|host| [host; 4])
        .map(|host| {
            let (server, stop) = (server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sent = 0u32;
                while !stop.is_cancelled() {
                    let name = format!("flood{host}x{sent}");
                    let _ =
                        login_from(&server, [127, 0, 0, host], &name, "wrong-password", None).await;
                    sent += 1;
                }
                sent
            })
        })
        .collect();

    // Meanwhile genuine logins succeed, every one, and the chat goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let reply = login_from(&server, [127, 0, 0, 1], "bram", &bram, None).await;
        assert_eq!(
            reply.status, 200,
            "genuine login {round} during the flood: {reply:?}"
        );
        let id = format!("m{round}");
        seeker.say(&id, "nog steeds hier").await;
        assert_eq!(anna.heard(&session).await.1, "nog steeds hier");
        anna.say(&session, &id, "ik ook").await;
        assert_eq!(seeker.heard().await.1, "ik ook");
    }
    stop.cancel();
    let mut sent = 0;
    for f in flooders {
        sent += f.await.unwrap();
    }
    assert!(sent >= 1000, "the flood was only {sent} logins");
}
