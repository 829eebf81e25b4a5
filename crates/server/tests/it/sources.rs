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
