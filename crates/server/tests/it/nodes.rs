//! Two real `haven serve` processes sharing one real Redis: one
//! supervisor view with correct totals, and nothing personal in Redis.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use haven_protocol::events::Snapshot;
use haven_testkit::{RedisServer, SeekerClient, SseStream, Ws};

use super::support::process::{Served, haven, post_from, serve};

fn node(dir: &std::path::Path, redis: &RedisServer, name: &str) -> Served {
    serve(
        dir,
        &[
            ("HAVEN_REDIS_URL", &redis.url()),
            ("HAVEN_NODE_ID", name),
            ("HAVEN_SUPERVISOR__SNAPSHOT_INTERVAL", "200ms"),
        ],
    )
}

async fn waiting(served: &Served, nickname: &str, canary: &str) -> SeekerClient {
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", served.addr), &[])
        .await
        .unwrap();
    let mut seeker = SeekerClient::new(ws);
    seeker.hello(Some(nickname)).await;
    seeker.say("m1", canary).await;
    seeker
}

#[tokio::test]
async fn two_serve_processes_on_one_redis_make_one_view_and_keep_redis_impersonal() {
    let redis = RedisServer::start().await;
    // Watch everything published, to check it for personal data.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("haven:*").await.unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(dir_a.path(), &redis, "node-a");
    let mut b = node(dir_b.path(), &redis, "node-b");

    let mut add = haven(dir_a.path())
        .args([
            "account",
            "add",
            "coord",
            "--role",
            "supervisor",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(add.wait().unwrap().success());

    let _one = waiting(&a, "Nickname-Alpha", "canary-7301 on a").await;
    let _two = waiting(&b, "Nickname-Beta", "canary-7302 on b").await;
    let _three = waiting(&b, "Nickname-Gamma", "canary-7303 on b").await;

    let login = post_from(
        a.addr,
        Ipv4Addr::LOCALHOST.into(),
        "/api/v1/login",
        r#"{"name": "coord", "password": "a long enough password"}"#,
        None,
    )
    .await;
    let token = login["token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let mut feed = SseStream::open(
        a.addr,
        "/api/v1/supervisor/feed",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(feed.status, 200);
    let nodes = loop {
        let value = feed.expect("snapshot", |_| true).await;
        let nodes: Vec<Snapshot> = serde_json::from_value(value["nodes"].clone()).unwrap();
        let total: u32 = nodes
            .iter()
            .flat_map(|n| &n.topics)
            .map(|t| t.waiting)
            .sum();
        if nodes.len() == 2 && total == 3 {
            break nodes;
        }
    };
    let on_b = nodes.iter().find(|n| n.node == "node-b").unwrap();
    assert_eq!(on_b.waiting.len(), 2);

    // Nothing personal in anything published or stored in Redis.
    let mut published = String::new();
    let mut stream = pubsub.into_on_message();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await
    {
        published.push_str(&msg.get_payload::<String>().unwrap());
    }
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut conn, "*").await.unwrap();
    let mut stored = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if kind == "string" {
            let v: String = redis::AsyncCommands::get(&mut conn, key).await.unwrap();
            stored.push_str(&v);
        }
    }
    assert!(
        keys.iter().any(|k| k == "haven:node:node-a")
            && keys.iter().any(|k| k == "haven:node:node-b"),
        "{keys:?}"
    );
    for text in [&published, &stored] {
        assert!(!text.is_empty());
        for secret in ["canary", "Nickname", "127.0.0.1", &token] {
            assert!(!text.contains(secret), "Redis holds {secret:?}");
        }
    }
    for served in [&mut a, &mut b] {
        let _ = served.child.kill();
        let _ = served.child.wait();
    }
}

/// A node on Redis is restarted: a return code given before it still
/// leads the help-seeker to the same counsellor, once, and Redis never
/// holds the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_code_outlives_a_restart_and_redis_never_holds_it() {
    use super::support::process::{add_account, counsellor, seeker, sigterm, wait_exit};
    use haven_protocol::{counsellor as c, seeker as s};

    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "anna", "counsellor", "1");
    add_account(dir.path(), "bob", "counsellor", "1");
    let mut served = node(dir.path(), &redis, "node-a");
    let mut anna = counsellor(&served, "anna").await;
    let mut sam = seeker(&served, "Sam").await;
    let session = anna.assigned().await;
    anna.send(&c::ClientMessage::End {
        session,
        block: None,
    })
    .await;
    let ended = sam
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;
    let s::ServerMessage::Ended {
        return_code: Some(code),
        ..
    } = ended
    else {
        panic!("no return code: {ended:?}")
    };

    sigterm(&served.child);
    assert!(wait_exit(&mut served.child, Duration::from_secs(10)).success());
    let served = node(dir.path(), &redis, "node-a");
    // Bob comes on first, so without the code he would be next.
    let mut bob = counsellor(&served, "bob").await;
    let mut anna = counsellor(&served, "anna").await;
    let back = |code: Option<String>| s::ClientMessage::Hello {
        protocol: 1,
        nickname: Some("Sam".into()),
        topic: None,
        language: None,
        urgent: false,
        return_code: code,
        transcript_consent: false,
    };
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", served.addr), &[])
        .await
        .unwrap();
    let mut again = SeekerClient::new(ws);
    again.send(&back(Some(code.clone()))).await;
    let assigned = anna
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(assigned, c::ServerMessage::SessionAssigned { ref info, .. } if info.returning),
        "{assigned:?}"
    );
    // The code is spent: the next one with it is a newcomer, for Bob.
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", served.addr), &[])
        .await
        .unwrap();
    let mut third = SeekerClient::new(ws);
    third.send(&back(Some(code.clone()))).await;
    let assigned = bob
        .expect("assigned", |m| {
            matches!(m, c::ServerMessage::SessionAssigned { .. })
        })
        .await;
    assert!(
        matches!(assigned, c::ServerMessage::SessionAssigned { ref info, .. } if !info.returning),
        "{assigned:?}"
    );

    // Redis never held the code, in any of its forms.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut con, "*").await.unwrap();
    let mut dump = format!("{keys:?}");
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        if kind == "string" {
            let v: Vec<u8> = redis::AsyncCommands::get(&mut con, key).await.unwrap();
            dump.push_str(&String::from_utf8_lossy(&v));
        }
    }
    assert!(
        dump.contains("haven:node:node-a"),
        "the scan saw nothing: {dump}"
    );
    let digits = haven_code_value(&code);
    for form in [
        code.clone(),
        code.replace('-', ""),
        digits.to_string(),
        format!("{digits:x}"),
    ] {
        assert!(
            !dump.contains(&form),
            "Redis names the code as {form}: {dump}"
        );
    }
}

/// A return code's number, as the server reads it.
fn haven_code_value(code: &str) -> u64 {
    const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    code.bytes().filter(|b| *b != b'-').fold(0, |n, b| {
        (n << 5) | ALPHABET.iter().position(|a| *a == b).unwrap() as u64
    })
}
