//! Several real `haven serve` processes on one real Redis, with
//! `cluster.enabled`: one helpline whatever node each party reaches.

use std::net::Ipv4Addr;
use std::time::Duration;

use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{CounsellorClient, RedisServer, SseStream, Ws};
use hyper::Method;

use super::support::process::{
    PASSWORD, Served, add_account_with, post_from, request_from, serve, sigterm, wait_exit,
};

/// Three nodes, each with its own data dir holding the same accounts.
struct Nodes {
    _dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Served>,
    redis: RedisServer,
}

async fn nodes(n: usize) -> Nodes {
    let redis = RedisServer::start().await;
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        for (name, role, display) in [
            ("anna", "counsellor", "Anna"),
            ("bob", "counsellor", "Bob"),
            ("coco", "supervisor", "Coco"),
        ] {
            add_account_with(
                dir.path(),
                name,
                role,
                &["--capacity", "1", "--display-name", display],
            );
        }
        nodes.push(serve(
            dir.path(),
            &[
                ("HAVEN_REDIS_URL", &redis.url()),
                ("HAVEN_NODE_ID", &format!("node-{i}")),
                ("HAVEN_CLUSTER__ENABLED", "true"),
                ("HAVEN_CLUSTER__LEASE", "1s"),
            ],
        ));
        dirs.push(dir);
    }
    // Wait until one leads and every other knows it.
    for _ in 0..100 {
        if nodes
            .iter()
            .any(|n| n.log.lock().unwrap().contains("this node leads"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    Nodes {
        _dirs: dirs,
        nodes,
        redis,
    }
}

impl Nodes {
    fn leader(&self) -> usize {
        self.nodes
            .iter()
            .position(|n| n.log.lock().unwrap().contains("this node leads"))
            .expect("a node leads")
    }
}

async fn login(node: &Served, name: &str) -> String {
    let login = post_from(
        node.addr,
        Ipv4Addr::LOCALHOST.into(),
        "/api/v1/login",
        &format!(r#"{{"name": "{name}", "password": "{PASSWORD}"}}"#),
        None,
    )
    .await;
    login["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no login: {login}"))
        .to_owned()
}

/// A counsellor logged in by `login_node` whose socket is on `socket_node`.
async fn counsellor(login_node: &Served, socket_node: &Served, name: &str) -> CounsellorClient {
    let token = login(login_node, name).await;
    let ws = Ws::connect(&format!("ws://{}/ws/counsellor", socket_node.addr), &[])
        .await
        .unwrap();
    let mut client = CounsellorClient::new(ws);
    client.hello(Some(&token)).await;
    client.available().await;
    client
}

async fn seeker(node: &Served, nickname: &str) -> haven_testkit::SeekerClient {
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[])
        .await
        .unwrap();
    let mut client = haven_testkit::SeekerClient::new(ws);
    client.hello(Some(nickname)).await;
    client
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_lead_restarts_and_no_chat_ends() {
    let mut cluster = nodes(3).await;
    let lead = cluster.leader();
    let (by, other) = ((lead + 1) % 3, (lead + 2) % 3);
    // Both parties came in by the node about to restart.
    let token = login(&cluster.nodes[by], "anna").await;
    let mut anna = counsellor(&cluster.nodes[by], &cluster.nodes[by], "anna").await;
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", cluster.nodes[by].addr), &[])
        .await
        .unwrap();
    let mut sam = haven_testkit::SeekerClient::new(ws);
    let s::ServerMessage::Welcome { token: resume, .. } = sam.hello(Some("Sam")).await else {
        unreachable!()
    };
    let session = anna.assigned().await;
    sam.say("m1", "Hallo?").await;
    anna.heard(&session).await;
    anna.say(&session, "a1", "Ik ben er.").await;
    assert_eq!(sam.heard().await.1, "Ik ben er.");

    // The node stops (an upgrade): its clients are told to come back.
    sigterm(&cluster.nodes[by].child);
    assert_eq!(sam.closed().await, Some(1001));
    assert_eq!(anna.closed().await, Some(1001));
    assert!(wait_exit(&mut cluster.nodes[by].child, Duration::from_secs(10)).success());

    // They come back through another node and carry on where they were.
    let node = &cluster.nodes[other];
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[])
        .await
        .unwrap();
    let mut sam = haven_testkit::SeekerClient::new(ws);
    sam.send(&s::ClientMessage::Resume {
        token: resume,
        last_seq: 1,
    })
    .await;
    let resumed = sam
        .expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;
    assert!(
        matches!(
            resumed,
            s::ServerMessage::Resumed {
                recovered: true,
                last_seq: 1,
                ..
            }
        ),
        "{resumed:?}"
    );
    let ws = Ws::connect(&format!("ws://{}/ws/counsellor", node.addr), &[])
        .await
        .unwrap();
    let mut anna = CounsellorClient::new(ws);
    let welcome = anna.hello(Some(&token)).await;
    assert!(
        matches!(welcome, c::ServerMessage::Welcome { ref sessions, .. } if sessions.iter().any(|x| x.info.session == session)),
        "{welcome:?}"
    );
    // What Anna had not confirmed comes again; nothing is lost.
    assert_eq!(anna.heard(&session).await, (1, "Hallo?".into()));
    sam.say("m2", "Je bent er nog.").await;
    assert_eq!(anna.heard(&session).await, (2, "Je bent er nog.".into()));
    anna.say(&session, "a2", "Ja.").await;
    assert_eq!(sam.heard().await.1, "Ja.");
    for m in sam.pending() {
        assert!(!matches!(m, s::ServerMessage::Ended { .. }), "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_ends_no_chat_and_the_same_node_leads_after_it() {
    let mut cluster = nodes(2).await;
    let lead = cluster.leader();
    let by = &cluster.nodes[(lead + 1) % 2];
    let mut anna = counsellor(by, by, "anna").await;
    let mut sam = seeker(by, "Sam").await;
    let session = anna.assigned().await;
    sam.say("m1", "Hallo?").await;
    assert_eq!(anna.heard(&session).await.1, "Hallo?");

    // Redis goes away for several leases: nobody can take the lease, so
    // nothing changes hands and the chat goes on.
    cluster.redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    sam.say("m2", "Ben je er nog?").await;
    assert_eq!(anna.heard(&session).await.1, "Ben je er nog?");
    anna.say(&session, "a1", "Ja, ik ben er.").await;
    assert_eq!(sam.heard().await.1, "Ja, ik ben er.");

    // Redis comes back empty: the same node takes the lease back.
    cluster.redis.resume().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (by, lead_node) = (&cluster.nodes[(lead + 1) % 2], &cluster.nodes[lead]);
    assert!(!by.log.lock().unwrap().contains("this node leads"));
    assert!(!lead_node.log.lock().unwrap().contains("no longer leads"));
    sam.say("m3", "Gelukkig.").await;
    assert_eq!(anna.heard(&session).await.1, "Gelukkig.");
    for m in sam.pending() {
        assert!(!matches!(m, s::ServerMessage::Ended { .. }), "{m:?}");
    }
}

/// Resumes a help-seeker through `node`, retrying while the node that
/// leads next is taking over (each try a new socket, as the widget does).
async fn resume_through(
    node: &Served,
    token: &haven_protocol::common::ResumeToken,
    last_seq: u64,
) -> (haven_testkit::SeekerClient, s::ServerMessage) {
    for _ in 0..100 {
        if let Ok(ws) = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[]).await {
            let mut client = haven_testkit::SeekerClient::new(ws);
            client
                .send(&s::ClientMessage::Resume {
                    token: token.clone(),
                    last_seq,
                })
                .await;
            if let Some(reply) = client.try_recv(Duration::from_secs(2)).await
                && matches!(reply, s::ServerMessage::Resumed { .. })
            {
                return (client, reply);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the help-seeker could not resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_node_stops_and_hands_every_chat_to_the_next() {
    let mut cluster = nodes(3).await;
    let lead = cluster.leader();
    let by = (lead + 1) % 3;
    let node = &cluster.nodes[by];
    let token = login(node, "anna").await;
    let mut anna = counsellor(node, node, "anna").await;
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[])
        .await
        .unwrap();
    let mut sam = haven_testkit::SeekerClient::new(ws);
    let s::ServerMessage::Welcome { token: resume, .. } = sam.hello(Some("Sam")).await else {
        unreachable!()
    };
    let session = anna.assigned().await;
    sam.say("m1", "Ik kan niet slapen.").await;
    assert_eq!(anna.heard(&session).await.1, "Ik kan niet slapen.");
    anna.send(&c::ClientMessage::Received {
        session: session.clone(),
        up_to: 1,
    })
    .await;
    anna.say(&session, "a1", "Sinds wanneer?").await;
    assert_eq!(sam.heard().await, (1, "Sinds wanneer?".into()));
    // Wes waits behind Sam (Anna has one seat).
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[])
        .await
        .unwrap();
    let mut wes = haven_testkit::SeekerClient::new(ws);
    let s::ServerMessage::Welcome {
        token: wes_token, ..
    } = wes.hello(Some("Wes")).await
    else {
        unreachable!()
    };

    // The leading node is upgraded: it stops.
    sigterm(&cluster.nodes[lead].child);
    assert_eq!(sam.closed().await, Some(1001));
    assert_eq!(anna.closed().await, Some(1001));
    assert!(wait_exit(&mut cluster.nodes[lead].child, Duration::from_secs(15)).success());
    assert!(
        cluster.nodes[lead]
            .log
            .lock()
            .unwrap()
            .contains("cluster: handed over"),
        "{}",
        cluster.nodes[lead].log.lock().unwrap()
    );

    // Everyone comes back through a node and carries on.
    let node = &cluster.nodes[by];
    let (mut sam, resumed) = resume_through(node, &resume, 1).await;
    assert!(
        matches!(
            resumed,
            s::ServerMessage::Resumed {
                recovered: true,
                last_seq: 1,
                delivered: 1,
                ..
            }
        ),
        "{resumed:?}"
    );
    let ws = Ws::connect(&format!("ws://{}/ws/counsellor", node.addr), &[])
        .await
        .unwrap();
    let mut anna = CounsellorClient::new(ws);
    // Still logged in: her login went over too.
    let welcome = anna.hello(Some(&token)).await;
    assert!(
        matches!(welcome, c::ServerMessage::Welcome { ref sessions, .. } if sessions.iter().any(|x| x.info.session == session)),
        "{welcome:?}"
    );
    sam.say("m2", "Al weken.").await;
    assert_eq!(anna.heard(&session).await, (2, "Al weken.".into()));
    anna.say(&session, "a2", "Dat is lang.").await;
    assert_eq!(sam.heard().await, (2, "Dat is lang.".into()));
    // Wes kept his place in line.
    let (mut wes, _) = resume_through(node, &wes_token, 0).await;
    wes.expect("position", |m| {
        matches!(m, s::ServerMessage::Queued { position: 1, .. })
    })
    .await;
    for m in sam.pending().iter().chain(wes.pending()) {
        assert!(!matches!(m, s::ServerMessage::Ended { .. }), "{m:?}");
    }
}
