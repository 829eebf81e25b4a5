//! Several `haven serve` processes on one `redis-server`, with
//! `cluster.enabled`, each with its own data dir holding the same
//! accounts; and what tests of them share.

use std::time::Duration;

use haven_protocol::seeker as s;
use haven_testkit::{RedisServer, SeekerClient, Ws};

use super::process::{Served, add_account_with, serve};

/// Three nodes, each with its own data dir holding the same accounts.
pub(crate) struct Nodes {
    pub(crate) _dirs: Vec<tempfile::TempDir>,
    pub(crate) nodes: Vec<Served>,
    pub(crate) redis: RedisServer,
}

/// One node of the cluster on `redis`, with its data dir `dir`.
pub(crate) fn start_node(dir: &std::path::Path, redis: &RedisServer, i: usize) -> Served {
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

pub(crate) async fn nodes(n: usize) -> Nodes {
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
    pub(crate) fn leader(&self) -> usize {
        self.nodes
            .iter()
            .position(|n| n.log.lock().unwrap().contains("this node leads"))
            .expect("a node leads")
    }
}

/// Resumes a help-seeker through `node`, retrying while the node that
/// leads next is taking over (each try a new socket, as the widget does).
pub(crate) async fn resume_through(
    node: &Served,
    token: &haven_protocol::common::ResumeToken,
    last_seq: u64,
) -> (SeekerClient, s::ServerMessage) {
    for _ in 0..100 {
        if let Ok(ws) = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[]).await {
            let mut client = SeekerClient::new(ws);
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

/// A help-seeker who said hello through `node`, with their resume token.
pub(crate) async fn welcomed(
    node: &Served,
    nickname: &str,
) -> (SeekerClient, haven_protocol::common::ResumeToken) {
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", node.addr), &[])
        .await
        .unwrap();
    let mut client = SeekerClient::new(ws);
    let s::ServerMessage::Welcome { token, .. } = client.hello(Some(nickname)).await else {
        unreachable!()
    };
    (client, token)
}

/// Every byte of every Redis value of any type, in order.
pub(crate) async fn redis_contents(con: &mut redis::aio::MultiplexedConnection) -> Vec<u8> {
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
