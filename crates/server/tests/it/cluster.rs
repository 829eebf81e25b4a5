//! Several real `haven serve` processes on one real Redis, with
//! `cluster.enabled`: one helpline whatever node each party reaches, a
//! stalled or dead leading node replaced, and nothing personal in Redis.

use std::net::Ipv4Addr;
use std::time::Duration;

use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{SseStream, Ws};
use hyper::Method;

use super::support::cluster::{nodes, redis_contents};
use super::support::process::{
    counsellor_via as counsellor, login, request_from, seeker, sigterm, wait_exit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_are_one_helpline_whatever_node_each_party_reaches() {
    let cluster = nodes(3).await;
    // Name the nodes so that both proxied and direct parties take part.
    let lead = cluster.leader();
    let [a, b, c] = [(lead + 1) % 3, (lead + 2) % 3, lead].map(|i| &cluster.nodes[i]);

    // Sam on node A is served by the only counsellor, Anna, on node B.
    let mut anna = counsellor(a, b, "anna").await;
    let mut sam = seeker(a, "Sam").await;
    let session = anna.assigned().await;
    sam.expect(
        "assigned",
        |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Anna"),
    )
    .await;
    let seq = sam.say("m1", "Ik weet niet waar ik moet beginnen.").await;
    assert_eq!(
        anna.heard(&session).await,
        (seq, "Ik weet niet waar ik moet beginnen.".into())
    );
    anna.send(&c::ClientMessage::Received {
        session: session.clone(),
        up_to: seq,
    })
    .await;
    assert_eq!(sam.delivered().await, seq, "delivery marks cross nodes");
    anna.send(&c::ClientMessage::Typing {
        session: session.clone(),
        active: true,
    })
    .await;
    sam.expect("typing", |m| {
        matches!(m, s::ServerMessage::Typing { active: true })
    })
    .await;
    anna.say(&session, "a1", "Neem je tijd.").await;
    assert_eq!(sam.heard().await, (1, "Neem je tijd.".into()));

    // Anna hands Sam to Bob, on node C.
    let mut bob = counsellor(c, c, "bob").await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: false,
        note: Some("Sam slaapt slecht.".into()),
    })
    .await;
    let offer = bob
        .expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    assert!(
        matches!(offer, c::ServerMessage::Offer { ref from, .. } if from.as_deref() == Some("Anna")),
        "{offer:?}"
    );
    bob.accept(&session).await;
    bob.expect("assigned", |m| {
        matches!(m, c::ServerMessage::SessionAssigned { .. })
    })
    .await;
    sam.say("m2", "Hallo Bob.").await;
    assert_eq!(bob.heard(&session).await.1, "Hallo Bob.");

    // Coco, a supervisor on node A, watches, whispers and joins.
    let token = login(a, "coco").await;
    let auth = format!("Bearer {token}");
    // The view shows every node, and which one leads.
    let mut feed = SseStream::open(
        a.addr,
        "/api/v1/supervisor/feed",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(feed.status, 200);
    let snapshot = feed
        .expect("snapshot", |s| {
            s["nodes"].as_array().is_some_and(|n| n.len() == 3)
        })
        .await;
    let leading: Vec<&str> = snapshot["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["leading"] == true)
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(leading, [format!("node-{lead}")], "{snapshot}");
    let base = format!("/api/v1/supervisor/sessions/{}", session.0);
    let mut watch = SseStream::open(
        a.addr,
        &format!("{base}/observe"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(watch.status, 200);
    assert_eq!(watch.expect("message", |_| true).await["type"], "watching");
    sam.say("m3", "Het is zwaar.").await;
    let m = watch.expect("message", |m| m["type"] == "message").await;
    assert_eq!(m["text"], "Het is zwaar.");
    let (status, _) = request_from(
        a.addr,
        Ipv4Addr::LOCALHOST.into(),
        Method::POST,
        &format!("{base}/whisper"),
        r#"{"text": "Vraag naar slaap."}"#,
        Some(&token),
    )
    .await;
    assert_eq!(status, 204);
    bob.expect(
        "whisper",
        |m| matches!(m, c::ServerMessage::Whisper { from, .. } if from == "Coco"),
    )
    .await;
    let (status, _) = request_from(
        a.addr,
        Ipv4Addr::LOCALHOST.into(),
        Method::POST,
        &format!("{base}/join"),
        "{}",
        Some(&token),
    )
    .await;
    assert_eq!(status, 204);
    sam.expect(
        "joined",
        |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Coco"),
    )
    .await;
    let (status, said) = request_from(
        a.addr,
        Ipv4Addr::LOCALHOST.into(),
        Method::POST,
        &format!("{base}/say"),
        r#"{"id": "s1", "text": "Hallo Sam, ik ben Coco."}"#,
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{said}");
    let m = sam
        .expect(
            "message",
            |m| matches!(m, s::ServerMessage::Message { from, .. } if from == "Coco"),
        )
        .await;
    assert!(
        matches!(m, s::ServerMessage::Message { ref text, .. } if text.0 == "Hallo Sam, ik ben Coco."),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_queue_and_one_capacity_across_nodes() {
    let cluster = nodes(2).await;
    let lead = cluster.leader();
    let (a, b) = (&cluster.nodes[(lead + 1) % 2], &cluster.nodes[lead]);

    // Anna (one seat) opens the console on node A, then again on node B:
    // one counsellor, one seat; the older socket is replaced.
    let mut first = counsellor(a, a, "anna").await;
    let mut anna = counsellor(b, b, "anna").await;
    assert_eq!(first.closed().await, Some(4504));
    let mut one = seeker(a, "One").await;
    let _session = anna.assigned().await;
    one.expect("assigned", |m| {
        matches!(m, s::ServerMessage::Assigned { .. })
    })
    .await;
    // A second help-seeker, on the other node, waits: her seat is taken.
    let mut two = seeker(b, "Two").await;
    let queued = two
        .expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. }))
        .await;
    assert!(
        matches!(queued, s::ServerMessage::Queued { position: 1, .. }),
        "{queued:?}"
    );
    // Nobody waits while a counsellor on any node has a free seat: Bob
    // comes on on node A and takes the help-seeker who came in by node B.
    let mut bob = counsellor(a, a, "bob").await;
    bob.assigned().await;
    two.expect(
        "assigned",
        |m| matches!(m, s::ServerMessage::Assigned { counsellor } if counsellor == "Bob"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leading_node_dies_another_leads_and_serves_through_every_node() {
    let mut cluster = nodes(3).await;
    let lead = cluster.leader();
    let _ = cluster.nodes[lead].child.kill();
    let _ = cluster.nodes[lead].child.wait();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != lead).collect();
    // Within the lease (1 s here) and a renewal, a survivor leads.
    let mut next = None;
    for _ in 0..100 {
        next = survivors.iter().copied().find(|&i| {
            cluster.nodes[i]
                .log
                .lock()
                .unwrap()
                .contains("this node leads")
        });
        if next.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = next.expect("no survivor leads");
    let other = survivors.into_iter().find(|&i| i != next).unwrap();
    // The other survivor learns who leads at its next look.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (a, b) = (&cluster.nodes[other], &cluster.nodes[next]);
    let mut anna = counsellor(a, b, "anna").await;
    let mut sam = seeker(a, "Sam").await;
    let session = anna.assigned().await;
    sam.say("m1", "Ben je er?").await;
    assert_eq!(anna.heard(&session).await.1, "Ben je er?");
}

/// The leading node stalls (SIGSTOP): the sockets passed on to it do not
/// hang on it; their clients are told to come back (1001) once another
/// node leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_leading_node_does_not_hold_the_sockets_passed_to_it() {
    let cluster = nodes(2).await;
    let lead = cluster.leader();
    let by = &cluster.nodes[(lead + 1) % 2];
    let mut sam = seeker(by, "Sam").await;
    let pid = cluster.nodes[lead].child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let closed = tokio::time::timeout(Duration::from_secs(10), sam.closed()).await;
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        closed.expect("the socket hung on the stalled node"),
        Some(1001)
    );
    assert!(by.log.lock().unwrap().contains("this node leads"));
}

/// Nothing a help-seeker wrote or is, no address a client came from, and
/// no token reaches Redis (its keys, everything published, its saved
/// file) or any node's log, with chats passed between nodes, a return
/// code, and the leading node handing over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_nodes_nothing_personal_reaches_redis_or_the_logs() {
    use futures_util::StreamExt as _;
    let mut cluster = nodes(2).await;
    let client = redis::Client::open(cluster.redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("*").await.unwrap();
    let mut published = pubsub.into_on_message();
    let lead = cluster.leader();
    let by = &cluster.nodes[(lead + 1) % 2];
    let login_token = login(by, "anna").await;
    let mut anna = counsellor(by, by, "anna").await;
    let ws = Ws::connect(
        &format!("ws://{}/ws/seeker", by.addr),
        &[
            ("x-real-ip", "198.51.100.77"),
            ("forwarded", "for=198.51.100.78"),
        ],
    )
    .await
    .unwrap();
    let mut sam = haven_testkit::SeekerClient::new(ws);
    let s::ServerMessage::Welcome { token, .. } = sam.hello(Some("Nickname-Canary-9931")).await
    else {
        unreachable!()
    };
    let session = anna.assigned().await;
    sam.say("m1", "canary-text-5521 ik durf het niet te zeggen")
        .await;
    anna.heard(&session).await;
    anna.say(&session, "a1", "canary-reply-7710").await;
    sam.heard().await;
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
        panic!("{ended:?}")
    };
    // A second chat is handed over as the leading node stops.
    let mut wes = seeker(by, "Nickname-Canary-4417").await;
    wes.say("w1", "canary-text-6630").await;
    sigterm(&cluster.nodes[lead].child);
    assert!(wait_exit(&mut cluster.nodes[lead].child, Duration::from_secs(15)).success());

    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut everything = redis_contents(&mut con).await;
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(300), published.next()).await
    {
        everything.extend_from_slice(msg.get_payload_bytes());
    }
    // What Redis would write to disk: each key's serialized form.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    for key in &keys {
        let dumped: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        everything.extend_from_slice(&dumped);
    }
    for node in &cluster.nodes {
        everything.extend_from_slice(node.log.lock().unwrap().as_bytes());
    }
    let text = String::from_utf8_lossy(&everything);
    assert!(
        text.contains("haven:node:") && text.contains("cluster: handed over"),
        "the scan saw nothing"
    );
    for secret in [
        "Nickname-Canary",
        "canary-text",
        "canary-reply",
        "198.51.100.7",
        &token.0,
        &login_token,
        &code,
        &code.replace('-', ""),
    ] {
        assert!(!text.contains(secret), "{secret:?} reached Redis or a log");
    }
}
