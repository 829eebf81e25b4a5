//! Events to the supervisor view over a real Redis: the sequence of a
//! session's life, two nodes in one view, and the live feed.

use std::time::Duration;

use futures_util::StreamExt;
use haven_protocol::events::{Event, Record, Snapshot};
use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::{AccountSpec, Role};
use haven_testkit::{RedisServer, TestServer};
use tokio::sync::mpsc;

use super::support::topics::{hello, waiting};

/// Every message on `haven:events`, raw, from now on.
async fn subscribe(redis: &RedisServer) -> mpsc::UnboundedReceiver<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("haven:events").await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = pubsub.into_on_message();
        while let Some(msg) = stream.next().await {
            if tx.send(msg.get_payload::<String>().unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Raw events until one satisfies `last` (included).
async fn until(
    rx: &mut mpsc::UnboundedReceiver<String>,
    last: impl Fn(&Event) -> bool,
) -> Vec<(String, Record)> {
    let mut seen = Vec::new();
    loop {
        let raw = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no such event within 5 s")
            .unwrap();
        let record: Record = serde_json::from_str(&raw).unwrap();
        let done = last(&record.event);
        seen.push((raw, record));
        if done {
            return seen;
        }
    }
}

async fn node(redis: &RedisServer, name: &str) -> TestServer {
    let url = redis.url();
    let name = name.to_owned();
    TestServer::start_with(move |c| {
        c.redis_url = Some(url);
        c.node_id = Some(name);
        c.supervisor.snapshot_interval = Duration::from_millis(200);
    })
    .await
}

#[tokio::test]
async fn a_session_life_is_published_in_order_without_text_or_names() {
    let redis = RedisServer::start().await;
    let mut events = subscribe(&redis).await;
    let server = node(&redis, "node-a").await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = server.seeker().await;
    seeker.hello(Some("Geheimenaam")).await;
    let session = anna.assigned().await;
    seeker.say("m1", "canary-4821 ik voel me slecht").await;
    anna.heard(&session).await;
    anna.say(&session, "a1", "canary-9377 ik luister").await;
    anna.send(&c::ClientMessage::RaiseHand {
        session: session.clone(),
        raised: true,
    })
    .await;
    anna.send(&c::ClientMessage::End {
        session: session.clone(),
        block: None,
    })
    .await;
    seeker
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;

    let seen = until(&mut events, |e| matches!(e, Event::SessionEnded { .. })).await;
    let types: Vec<&str> = seen
        .iter()
        .map(|(_, r)| r.event.type_name())
        .filter(|t| !matches!(*t, "counsellor" | "position"))
        .collect();
    assert_eq!(
        types,
        ["queued", "session_started", "hand", "session_ended"],
        "{seen:?}"
    );
    // One node, numbered without gaps.
    for (i, (_, r)) in seen.iter().enumerate() {
        assert_eq!(r.node, "node-a");
        assert_eq!(r.seq, seen[0].1.seq + i as u64, "{seen:?}");
    }
    let ended = &seen.last().unwrap().1.event;
    assert!(
        matches!(ended, Event::SessionEnded { counsellors, by: haven_protocol::events::EndedBy::Counsellor, topic, .. }
            if counsellors == &["anna".to_owned()] && topic == "algemeen"),
        "{ended:?}"
    );
    // Anna's status and load travel as `counsellor` events.
    assert!(seen.iter().any(|(_, r)| matches!(&r.event,
        Event::Counsellor { counsellor, active: 1, .. } if counsellor == "anna")));
    // No text, no nickname, ever.
    for (raw, _) in &seen {
        for secret in ["canary", "Geheimenaam", "ik voel", "ik luister"] {
            assert!(!raw.contains(secret), "an event holds {secret:?}: {raw}");
        }
    }
}

#[tokio::test]
async fn two_nodes_on_one_redis_show_up_in_one_feed_with_correct_totals() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let _wait_a = waiting(&a, "algemeen").await;
    let _wait_b1 = waiting(&b, "algemeen").await;
    let _wait_b2 = waiting(&b, "algemeen").await;

    let password = a.add_account("coord", Role::Supervisor, None);
    let token = a.token("coord", &password).await;
    let auth = format!("Bearer {token}");
    let mut feed = a
        .sse("/api/v1/supervisor/feed", &[("authorization", &auth)])
        .await;
    assert_eq!(feed.status, 200);
    // Snapshots refresh every 200 ms and the feed sends one at once, on
    // any gap, and every few seconds: wait for one that has caught up with
    // both nodes.
    let total = |nodes: &[Snapshot]| -> u32 {
        nodes
            .iter()
            .flat_map(|n| &n.topics)
            .map(|t| t.waiting)
            .sum()
    };
    let snapshot = loop {
        let value = feed.expect("snapshot", |_| true).await;
        let nodes: Vec<Snapshot> = serde_json::from_value(value["nodes"].clone()).unwrap();
        if nodes.len() == 2 && total(&nodes) == 3 {
            break nodes;
        }
    };
    let mut names: Vec<&str> = snapshot.iter().map(|n| n.node.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["node-a", "node-b"]);
    let per_node: Vec<(String, usize)> = snapshot
        .iter()
        .map(|n| (n.node.clone(), n.waiting.len()))
        .collect();
    assert!(
        per_node.contains(&("node-a".into(), 1)) && per_node.contains(&("node-b".into(), 2)),
        "{per_node:?}"
    );

    // A new arrival on node B reaches node A's feed as an event.
    let _wait_b3 = waiting(&b, "algemeen").await;
    let event = feed
        .expect("event", |e| e["type"] == "queued" && e["node"] == "node-b")
        .await;
    assert_eq!(event["topic"], "algemeen");

    // Counsellors may not watch.
    let (_anna, anna_token) = a.counsellor("anna", 1).await;
    let denied = a
        .sse(
            "/api/v1/supervisor/feed",
            &[("authorization", &format!("Bearer {anna_token}"))],
        )
        .await;
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn without_redis_the_feed_carries_this_node_alone() {
    let server = TestServer::start_with(|c| {
        c.supervisor.snapshot_interval = Duration::from_millis(200);
        c.supervisor.history_interval = Duration::from_millis(200);
    })
    .await;
    let password = server.add_account("coord", Role::Supervisor, None);
    let token = server.token("coord", &password).await;
    let auth = format!("Bearer {token}");
    let _first = waiting(&server, "algemeen").await;
    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &auth)])
        .await;
    feed.expect("snapshot", |_| true).await;
    let _second = waiting(&server, "algemeen").await;
    let queued = feed.expect("event", |e| e["type"] == "queued").await;
    assert!(queued["node"].is_string());
    let snapshot = feed
        .expect("snapshot", |s| s["nodes"][0]["topics"][0]["waiting"] == 2)
        .await;
    assert_eq!(snapshot["nodes"].as_array().unwrap().len(), 1);

    // The chart's history: samples of each topic's line, newest last.
    let history = server
        .http(
            hyper::Method::GET,
            "/api/v1/supervisor/history",
            &[("authorization", &auth)],
            None,
        )
        .await
        .json();
    let samples = history["nodes"][0]["topics"]["algemeen"]
        .as_array()
        .unwrap();
    assert!(!samples.is_empty(), "{history}");
    assert_eq!(samples.last().unwrap()[1], 2, "{history}");
    assert_eq!(server.get("/api/v1/supervisor/history").await.status, 401);
}

/// A help-seeker put back in line and taken again is answered once, and
/// one who then leaves the line is not abandoned: the events say how
/// today's figures counted them, and the snapshot agrees.
#[tokio::test]
async fn figures_count_each_help_seeker_once_and_events_say_how() {
    let server = TestServer::start_with(|c| {
        c.supervisor.snapshot_interval = Duration::from_millis(100);
    })
    .await;
    let password = server.add_account("coord", Role::Supervisor, None);
    let auth = format!("Bearer {}", server.token("coord", &password).await);
    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &auth)])
        .await;
    feed.expect("snapshot", |_| true).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(None).await;
    let session = anna.assigned().await;
    let first = feed
        .expect("event", |e| e["type"] == "session_started")
        .await;
    assert_eq!(
        (&first["counted"], &first["in_target"]),
        (&true.into(), &true.into())
    );
    let back = c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: None,
        to_topic: Some("algemeen".into()),
        warm: false,
        note: None,
    };
    anna.send(&back).await;
    let again = feed
        .expect("event", |e| e["type"] == "session_started")
        .await;
    assert_eq!(again["counted"], false, "{again}");
    // Anna steps away; back in line once more, Sam gives up.
    anna.send(&c::ClientMessage::SetStatus {
        status: haven_protocol::counsellor::CounsellorStatus::Away,
    })
    .await;
    anna.send(&back).await;
    feed.expect("event", |e| e["type"] == "transferred").await;
    sam.send(&s::ClientMessage::End).await;
    let gone = feed.expect("event", |e| e["type"] == "abandoned").await;
    assert_eq!(gone["counted"], false, "{gone}");
    let snapshot = feed
        .expect("snapshot", |s| s["nodes"][0]["topics"][0]["waiting"] == 0)
        .await;
    let topic = &snapshot["nodes"][0]["topics"][0];
    assert_eq!(
        (
            &topic["answered"],
            &topic["answered_in_target"],
            &topic["abandoned"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{snapshot}"
    );
}

#[tokio::test]
async fn a_snapshot_names_everyone_and_lists_the_longest_waits_first() {
    let server = TestServer::start_with(|c| {
        c.supervisor.snapshot_interval = Duration::from_millis(200);
    })
    .await;
    let password = server.add_account("coord", Role::Supervisor, None);
    let token = server.token("coord", &password).await;
    let auth = format!("Bearer {token}");
    let anna = AccountSpec {
        display_name: Some("Anna B.".into()),
        capacity: Some(1),
        ..AccountSpec::default()
    };
    let (mut anna, _) = server.counsellor_with("anna", &anna).await;
    anna.available().await;
    let mut talking = server.seeker().await;
    talking.hello(None).await;
    let session = anna.assigned().await;
    // Anna is full: two wait, the urgent one a second and more later.
    let welcome = |m: s::ServerMessage| match m {
        s::ServerMessage::Welcome { session, .. } => session,
        other => panic!("{other:?}"),
    };
    let (_first, m) = hello(&server, "algemeen", None, false, None).await;
    let first = welcome(m);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_urgent, m) = hello(&server, "algemeen", None, true, None).await;
    let urgent = welcome(m);

    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &auth)])
        .await;
    let snapshot = feed
        .expect("snapshot", |s| {
            s["nodes"][0]["waiting"]
                .as_array()
                .is_some_and(|w| w.len() == 2)
        })
        .await;
    let node = &snapshot["nodes"][0];
    let topic = &node["topics"][0];
    assert_eq!(topic["topic"], "algemeen", "{node}");
    assert_eq!(topic["waiting"], 2, "{node}");
    assert_eq!(topic["urgent_waiting"], 1, "{node}");
    // The urgent help-seeker is ahead in line, but waited less.
    let waiting = node["waiting"].as_array().unwrap();
    assert_eq!(waiting[0]["session"], first.0, "{node}");
    assert_eq!(waiting[0]["urgent"], false, "{node}");
    assert_eq!(waiting[1]["session"], urgent.0, "{node}");
    assert_eq!(waiting[1]["urgent"], true, "{node}");
    assert!(
        waiting[0]["waited_secs"].as_u64() > waiting[1]["waited_secs"].as_u64(),
        "{node}"
    );
    assert!(waiting.iter().all(|w| w["topic"] == "algemeen"), "{node}");
    let sessions = node["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{node}");
    assert_eq!(sessions[0]["session"], session.0, "{node}");
    assert_eq!(sessions[0]["topic"], "algemeen", "{node}");
    assert_eq!(
        sessions[0]["counsellors"],
        serde_json::json!(["anna"]),
        "{node}"
    );
    assert_eq!(sessions[0]["hand_raised"], false, "{node}");
    let counsellor = &node["counsellors"][0];
    assert_eq!(counsellor["counsellor"], "anna", "{node}");
    assert_eq!(counsellor["display_name"], "Anna B.", "{node}");
    assert_eq!(counsellor["status"], "available", "{node}");
    assert_eq!(counsellor["capacity"], 1, "{node}");
    assert_eq!(counsellor["active"], 1, "{node}");
    assert!(
        counsellor["topics"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("algemeen")),
        "{node}"
    );
}

/// A metric's value from `/metrics` (the first series that matches).
async fn metric(server: &TestServer, series: &str) -> Option<f64> {
    super::support::value(&server.metrics().await, series)
}

/// Polls `/metrics` until `want` holds for `series` (at most 10 s).
async fn metric_until(server: &TestServer, series: &str, want: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..200 {
        if let Some(v) = metric(server, series).await
            && want(v)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{series} never reached the wanted value; last {:?}",
        metric(server, series).await
    );
}

#[tokio::test]
async fn a_redis_outage_leaves_chat_alone_and_events_resume_after_it() {
    let mut redis = RedisServer::start().await;
    let server = node(&redis, "node-a").await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut seeker = server.seeker().await;
    seeker.hello(None).await;
    let session = anna.assigned().await;
    metric_until(&server, "haven_redis_connected", |v| v == 1.0).await;

    redis.stop();
    // Chat goes on both ways while Redis is gone, and new help-seekers
    // still queue.
    for i in 0..5 {
        let seq = seeker.say(&format!("m{i}"), "nog hier").await;
        assert_eq!(anna.heard(&session).await.0, seq);
        let seq = anna.say(&session, &format!("a{i}"), "ik ook").await;
        let m = seeker
            .expect("message", |m| matches!(m, s::ServerMessage::Message { .. }))
            .await;
        assert!(matches!(m, s::ServerMessage::Message { seq: got, .. } if got == seq));
    }
    let mut second = server.seeker().await;
    second.hello(None).await;
    metric_until(&server, "haven_redis_connected", |v| v == 0.0).await;
    let dropped = metric_until(&server, "haven_events_dropped_total", |v| v > 0.0).await;
    // This node's dashboard does not go blank: its own snapshot and its
    // own events still come, Redis or not.
    let password = server.add_account("coord", Role::Supervisor, None);
    let auth = format!("Bearer {}", server.token("coord", &password).await);
    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &auth)])
        .await;
    assert_eq!(feed.status, 200);
    let snapshot = feed.expect("snapshot", |_| true).await;
    let nodes: Vec<Snapshot> = serde_json::from_value(snapshot["nodes"].clone()).unwrap();
    assert_eq!(nodes.len(), 1, "{snapshot}");
    assert_eq!(nodes[0].node, "node-a");
    let mut third = server.seeker().await;
    third.hello(None).await;
    let queued = feed.expect("event", |e| e["type"] == "queued").await;
    assert_eq!(queued["node"], "node-a");
    drop(feed);

    // Back: the publisher reconnects by itself, events flow again and the
    // snapshot is rewritten.
    redis.resume().await;
    let mut events = subscribe(&redis).await;
    metric_until(&server, "haven_redis_connected", |v| v == 1.0).await;
    second.send(&s::ClientMessage::End).await;
    let seen = until(&mut events, |e| matches!(e, Event::Abandoned { .. })).await;
    assert_eq!(seen.last().unwrap().1.node, "node-a");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut snapshot: Option<String> = None;
    for _ in 0..100 {
        snapshot = redis::AsyncCommands::get(&mut conn, "haven:node:node-a")
            .await
            .unwrap();
        if snapshot.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot: Snapshot =
        serde_json::from_str(&snapshot.expect("no snapshot after Redis came back")).unwrap();
    assert_eq!(snapshot.sessions.len(), 1);
    // The drops stay counted.
    assert!(metric(&server, "haven_events_dropped_total").await.unwrap() >= dropped);
}

#[tokio::test]
async fn a_pause_on_one_node_holds_on_every_node_and_for_nodes_that_start_later() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let password = a.add_account("coord", Role::Supervisor, None);
    let token = a.token("coord", &password).await;
    let auth = format!("Bearer {token}");
    let paused = a
        .http(
            hyper::Method::POST,
            "/api/v1/topics/algemeen/pause",
            &[("authorization", &auth)],
            Some(r#"{"message": "Even pauze. Bel 113 bij nood."}"#.into()),
        )
        .await;
    assert_eq!(paused.status, 204);

    /// Polls hellos on `server` until one is answered as `want` says.
    async fn hello_until(server: &TestServer, want: impl Fn(&s::ServerMessage) -> bool) {
        for _ in 0..100 {
            let mut seeker = server.seeker().await;
            seeker
                .send(&s::ClientMessage::Hello {
                    protocol: haven_protocol::PROTOCOL_VERSION,
                    nickname: None,
                    topic: None,
                    language: None,
                    urgent: false,
                    return_code: None,
                    transcript_consent: false,
                })
                .await;
            let answer = seeker.recv().await;
            if want(&answer) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the pause state never reached this node");
    }
    let refused = |m: &s::ServerMessage| {
        matches!(m, s::ServerMessage::Unavailable { reason: s::Unavailability::Paused, message: Some(text), .. }
            if text == "Even pauze. Bel 113 bij nood.")
    };
    hello_until(&b, refused).await;
    // A node that starts now takes the pause on at once.
    let c = node(&redis, "node-c").await;
    hello_until(&c, refused).await;

    let resumed = a
        .http(
            hyper::Method::POST,
            "/api/v1/topics/algemeen/resume",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(resumed.status, 204);
    let welcomed = |m: &s::ServerMessage| matches!(m, s::ServerMessage::Welcome { .. });
    hello_until(&b, welcomed).await;
    hello_until(&c, welcomed).await;
}

#[tokio::test]
async fn pause_orders_not_signed_with_the_control_key_are_ignored() {
    let redis = RedisServer::start().await;
    let b = node(&redis, "node-b").await;
    // Whoever can write to Redis: a bare order on the channel and a value
    // in the shared pause state.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let bare = r#"{"topic":"algemeen","paused":true,"message":"Gesloten. Ga naar evil.example"}"#;
    let () = redis::AsyncCommands::hset(&mut conn, "haven:paused", "algemeen", bare)
        .await
        .unwrap();
    // And a node that signs with another key.
    let url = redis.url();
    let rogue = TestServer::start_with(move |c| {
        c.redis_url = Some(url);
        c.node_id = Some("rogue".into());
        c.control_key = Some("a different key of thirty-two characters".into());
    })
    .await;
    let password = rogue.add_account("coord", Role::Supervisor, None);
    let auth = format!("Bearer {}", rogue.token("coord", &password).await);
    for _ in 0..5 {
        let _: () = redis::AsyncCommands::publish(&mut conn, "haven:control", bare)
            .await
            .unwrap();
        let paused = rogue
            .http(
                hyper::Method::POST,
                "/api/v1/topics/algemeen/pause",
                &[("authorization", &auth)],
                Some(r#"{"message": "Gesloten."}"#.into()),
            )
            .await;
        assert_eq!(paused.status, 204);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Node b (and a node that starts now and reads the pause state) stay
    // open, and count what they ignored.
    let c = node(&redis, "node-c").await;
    for server in [&b, &c] {
        let mut seeker = server.seeker().await;
        let welcome = seeker.hello(None).await;
        assert!(matches!(welcome, s::ServerMessage::Welcome { .. }));
    }
    let ignored = metric_until(
        &b,
        "haven_refused_total{reason=\"control_unsigned\"}",
        |v| v >= 1.0,
    )
    .await;
    assert!(ignored >= 1.0);
    // The rogue node paused only itself, and its audit log says who did.
    let audit = std::fs::read_to_string(rogue.data_dir().join("audit.log")).unwrap();
    assert!(
        audit.contains(r#""actor":"coord","action":"topic_paused","target":"algemeen""#),
        "{audit}"
    );
}
