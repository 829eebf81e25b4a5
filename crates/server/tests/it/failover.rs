//! Several real `haven serve` processes on one real Redis, with
//! `cluster.enabled`: restarts, upgrades, killed nodes and a Redis outage
//! end no chat.

use std::time::Duration;

use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{CounsellorClient, Ws};

use super::support::cluster::{Nodes, nodes, resume_through, start_node, welcomed};
use super::support::process::{
    Served, counsellor_via as counsellor, login, seeker, sigterm, wait_exit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_lead_restarts_and_no_chat_ends() {
    let mut cluster = nodes(3).await;
    let lead = cluster.leader();
    let (by, other) = ((lead + 1) % 3, (lead + 2) % 3);
    // Both parties came in by the node about to restart.
    let token = login(&cluster.nodes[by], "anna").await;
    let mut anna = counsellor(&cluster.nodes[by], &cluster.nodes[by], "anna").await;
    let (mut sam, resume) = welcomed(&cluster.nodes[by], "Sam").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_node_stops_and_hands_every_chat_to_the_next() {
    let mut cluster = nodes(3).await;
    let lead = cluster.leader();
    let by = (lead + 1) % 3;
    let node = &cluster.nodes[by];
    let token = login(node, "anna").await;
    let mut anna = counsellor(node, node, "anna").await;
    let (mut sam, resume) = welcomed(node, "Sam").await;
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
    let (_wes, wes_token) = welcomed(node, "Wes").await;

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
