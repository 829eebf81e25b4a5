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

/// One node of the cluster on `redis`, with its data dir `dir`.
fn start_node(dir: &std::path::Path, redis: &RedisServer, i: usize) -> Served {
    serve(
        dir,
        &[
            ("HAVEN_REDIS_URL", &redis.url()),
            ("HAVEN_NODE_ID", &format!("node-{i}")),
            ("HAVEN_CLUSTER__ENABLED", "true"),
            ("HAVEN_CLUSTER__LEASE", "1s"),
        ],
    )
}

async fn nodes(n: usize) -> Nodes {
    let redis = RedisServer::start().await;
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        for (name, role, display, capacity) in [
            ("anna", "counsellor", "Anna", "1"),
            ("bob", "counsellor", "Bob", "1"),
            ("coco", "supervisor", "Coco", "1"),
            ("dirk", "counsellor", "Dirk", "3"),
            ("eva", "counsellor", "Eva", "3"),
        ] {
            add_account_with(
                dir.path(),
                name,
                role,
                &["--capacity", capacity, "--display-name", display],
            );
        }
        nodes.push(start_node(dir.path(), &redis, i));
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
            if let Some(reply @ s::ServerMessage::Resumed { .. }) =
                client.try_recv(Duration::from_secs(2)).await
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

/// One help-seeker's side of a chat in the rolling-restart test, with
/// what it has heard so far by seq.
struct SeekerSide {
    client: haven_testkit::SeekerClient,
    token: haven_protocol::common::ResumeToken,
    heard: Vec<String>,
    node: usize,
}

/// One counsellor, with what they heard per session by seq.
struct CounsellorSide {
    name: &'static str,
    login: String,
    client: CounsellorClient,
    heard: std::collections::HashMap<haven_protocol::SessionRef, Vec<String>>,
    node: usize,
}

/// Takes in `seq`/`text` for one direction: the next one is kept, one
/// already heard (a replay after coming back) must say the same again,
/// and a gap fails.
fn take(heard: &mut Vec<String>, seq: u64, text: String, what: &str) {
    let seq = usize::try_from(seq).unwrap();
    if seq <= heard.len() {
        assert_eq!(
            heard[seq - 1],
            text,
            "{what}: seq {seq} replayed differently"
        );
    } else {
        assert_eq!(
            seq,
            heard.len() + 1,
            "{what}: a gap before seq {seq} ({text})"
        );
        heard.push(text);
    }
}

impl SeekerSide {
    async fn hears(&mut self, text: &str) {
        loop {
            match self
                .client
                .expect("message", |m| {
                    matches!(
                        m,
                        s::ServerMessage::Message { .. } | s::ServerMessage::Ended { .. }
                    )
                })
                .await
            {
                s::ServerMessage::Message { seq, text: t, .. } => {
                    take(&mut self.heard, seq, t.0.clone(), "to the help-seeker");
                    if t.0 == text {
                        return;
                    }
                }
                other => panic!("the chat ended: {other:?}"),
            }
        }
    }

    async fn come_back(&mut self, nodes: &[Option<Served>], pick: usize) {
        let node = live(nodes, pick);
        let (client, resumed) = resume_through(
            nodes[node].as_ref().unwrap(),
            &self.token,
            self.heard.len() as u64,
        )
        .await;
        let s::ServerMessage::Resumed {
            token, recovered, ..
        } = resumed
        else {
            unreachable!()
        };
        assert!(recovered, "a help-seeker came back to a gap");
        self.client = client;
        self.token = token;
        self.node = node;
    }
}

impl CounsellorSide {
    async fn hears(&mut self, session: &haven_protocol::SessionRef, text: &str) {
        loop {
            match self
                .client
                .expect(
                    "message",
                    |m| matches!(m, c::ServerMessage::Message { session: s, .. } if s == session),
                )
                .await
            {
                c::ServerMessage::Message { seq, text: t, .. } => {
                    let heard = self.heard.entry(session.clone()).or_default();
                    take(heard, seq, t.0.clone(), "to the counsellor");
                    if t.0 == text {
                        let up_to = heard.len() as u64;
                        self.client
                            .send(&c::ClientMessage::Received {
                                session: session.clone(),
                                up_to,
                            })
                            .await;
                        return;
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    async fn come_back(&mut self, nodes: &[Option<Served>], pick: usize, sessions: usize) {
        for attempt in 0..100 {
            let node = live(nodes, pick + attempt);
            let addr = nodes[node].as_ref().unwrap().addr;
            if let Ok(ws) = Ws::connect(&format!("ws://{addr}/ws/counsellor"), &[]).await {
                let mut client = CounsellorClient::new(ws);
                client
                    .send(&c::ClientMessage::Hello {
                        protocol: haven_protocol::PROTOCOL_VERSION,
                        token: Some(haven_protocol::common::AuthToken(self.login.clone())),
                    })
                    .await;
                if let Some(c::ServerMessage::Welcome { sessions: held, .. }) =
                    client.try_recv(Duration::from_secs(2)).await
                {
                    assert_eq!(held.len(), sessions, "{} lost a session", self.name);
                    self.client = client;
                    self.node = node;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} could not come back", self.name);
    }
}

/// A live node, chosen by `pick`.
fn live(nodes: &[Option<Served>], pick: usize) -> usize {
    let up: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].is_some()).collect();
    up[pick % up.len()]
}

/// Every node restarted in turn (each a SIGTERM and a new process), the
/// leading one among them, and a node that does not lead killed outright
/// twice, while six chats go on with their parties spread over the nodes
/// and coming back through whichever node is up: every message arrives
/// once and in order (replays after coming back repeat what was said),
/// no chat ends, no counsellor loses a session, and nobody logs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_and_killed_nodes_end_no_chat() {
    let cluster = nodes(3).await;
    let Nodes {
        _dirs: dirs,
        nodes,
        redis,
    } = cluster;
    let mut nodes: Vec<Option<Served>> = nodes.into_iter().map(Some).collect();
    let mut counsellors = Vec::new();
    for (i, name) in ["dirk", "eva"].into_iter().enumerate() {
        let node = nodes[i].as_ref().unwrap();
        let login = login(node, name).await;
        let client = counsellor(node, node, name).await;
        counsellors.push(CounsellorSide {
            name,
            login,
            client,
            heard: Default::default(),
            node: i,
        });
    }
    let mut chats = Vec::new();
    for n in 0..6 {
        let node = n % 3;
        let ws = Ws::connect(
            &format!("ws://{}/ws/seeker", nodes[node].as_ref().unwrap().addr),
            &[],
        )
        .await
        .unwrap();
        let mut client = haven_testkit::SeekerClient::new(ws);
        let s::ServerMessage::Welcome { token, session, .. } =
            client.hello(Some(&format!("S{n}"))).await
        else {
            unreachable!()
        };
        let s::ServerMessage::Assigned { counsellor } = client
            .expect("assigned", |m| {
                matches!(m, s::ServerMessage::Assigned { .. })
            })
            .await
        else {
            unreachable!()
        };
        let who = usize::from(counsellor == "Eva");
        chats.push((
            SeekerSide {
                client,
                token,
                heard: Vec::new(),
                node,
            },
            who,
            session,
        ));
    }
    let mut held = [0usize; 2];
    for (_, who, _) in &chats {
        held[*who] += 1;
    }
    assert_eq!(held, [3, 3]);

    // A round: every help-seeker writes and is heard, every counsellor
    // answers and is heard.
    let mut round = 0;
    let mut talk = async |chats: &mut Vec<(SeekerSide, usize, haven_protocol::SessionRef)>,
                          counsellors: &mut Vec<CounsellorSide>| {
        round += 1;
        for (n, (seeker, who, session)) in chats.iter_mut().enumerate() {
            let text = format!("seeker {n} round {round}");
            seeker.client.say(&format!("s{round}"), &text).await;
            counsellors[*who].hears(session, &text).await;
            let text = format!("counsellor to {n} round {round}");
            counsellors[*who]
                .client
                .say(session, &format!("c{n}-{round}"), &text)
                .await;
            seeker.hears(&text).await;
        }
    };
    talk(&mut chats, &mut counsellors).await;

    // Each node in turn: two not leading are killed outright first, then
    // every node is restarted, the leading one last.
    let lead = |nodes: &[Option<Served>]| {
        (0..nodes.len()).find(|&i| {
            nodes[i].as_ref().is_some_and(|n| {
                let log = n.log.lock().unwrap();
                log.contains("this node leads")
                    && !log.contains("no longer leads")
                    && !log.contains("handing over")
            })
        })
    };
    let mut plan: Vec<(usize, bool)> = Vec::new();
    let leader = lead(&nodes).unwrap();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    plan.push((others[0], true));
    plan.push((others[1], true));
    plan.extend(others.iter().map(|&i| (i, false)));
    plan.push((leader, false));
    for (step, (i, kill)) in plan.into_iter().enumerate() {
        let was_leading = lead(&nodes) == Some(i);
        let mut gone = nodes[i].take().unwrap();
        if kill {
            let _ = gone.child.kill();
        } else {
            sigterm(&gone.child);
        }
        assert!(kill || wait_exit(&mut gone.child, Duration::from_secs(15)).success());
        if was_leading {
            // It handed over to another node, not to itself.
            let log = gone.log.lock().unwrap();
            assert!(
                log.contains("cluster: handed over") && !log.contains("took over"),
                "{log}"
            );
        }
        drop(gone);
        // A node that leads hands everyone over: all come back; otherwise
        // those that came in by it.
        for (n, (seeker, _, _)) in chats.iter_mut().enumerate() {
            if was_leading || seeker.node == i {
                seeker.come_back(&nodes, step + n).await;
            }
        }
        for (n, (c, held)) in counsellors.iter_mut().zip(held).enumerate() {
            if was_leading || c.node == i {
                c.come_back(&nodes, step + n, held).await;
            }
        }
        nodes[i] = Some(start_node(dirs[i].path(), &redis, i));
        talk(&mut chats, &mut counsellors).await;
    }
    for (seeker, _, _) in &chats {
        assert_eq!(seeker.heard.len(), round);
        assert!(
            !seeker
                .client
                .pending()
                .iter()
                .any(|m| matches!(m, s::ServerMessage::Ended { .. }))
        );
    }
    for c in &counsellors {
        assert!(c.heard.values().all(|h| h.len() == round), "{}", c.name);
    }
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

/// Every byte of every Redis value of any type, in order.
async fn redis_contents(con: &mut redis::aio::MultiplexedConnection) -> Vec<u8> {
    fn flatten(value: &redis::Value, out: &mut Vec<u8>) {
        match value {
            redis::Value::BulkString(b) => out.extend_from_slice(b),
            redis::Value::SimpleString(s) => out.extend_from_slice(s.as_bytes()),
            redis::Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            redis::Value::Array(items) | redis::Value::Set(items) => {
                items.iter().for_each(|v| flatten(v, out));
            }
            redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                flatten(k, out);
                flatten(v, out);
            }),
            other => out.extend_from_slice(format!("{other:?}").as_bytes()),
        }
    }
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(con).await.unwrap();
    let mut all = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(con).await.unwrap();
        let mut cmd = match kind.as_str() {
            "string" => redis::cmd("GET"),
            "hash" => redis::cmd("HGETALL"),
            "list" => {
                let mut c = redis::cmd("LRANGE");
                c.arg(&key).arg(0).arg(-1);
                let v: redis::Value = c.query_async(con).await.unwrap();
                all.extend_from_slice(key.as_bytes());
                flatten(&v, &mut all);
                continue;
            }
            "set" => redis::cmd("SMEMBERS"),
            "zset" => {
                let mut c = redis::cmd("ZRANGE");
                c.arg(&key).arg(0).arg(-1).arg("WITHSCORES");
                let v: redis::Value = c.query_async(con).await.unwrap();
                all.extend_from_slice(key.as_bytes());
                flatten(&v, &mut all);
                continue;
            }
            "stream" => {
                let mut c = redis::cmd("XRANGE");
                c.arg(&key).arg("-").arg("+");
                let v: redis::Value = c.query_async(con).await.unwrap();
                all.extend_from_slice(key.as_bytes());
                flatten(&v, &mut all);
                continue;
            }
            _ => continue,
        };
        let v: redis::Value = cmd.arg(&key).query_async(con).await.unwrap();
        all.extend_from_slice(key.as_bytes());
        flatten(&v, &mut all);
    }
    all
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
