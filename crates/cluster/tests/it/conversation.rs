//! The conversation scripts against haven-core's `Conversation`: the same
//! random operations (sends with repeated and forgotten ids, confirms,
//! resumes from anywhere, full backlogs) on both, on a real Redis, give
//! the same answers.

use std::time::Duration;

use haven_cluster::{Appended, Conversations, SessionKey};
use haven_core::conversation::Seq;
use haven_core::{Accept, Conversation, ReplayLimits, SessionId, Side};
use haven_testkit::RedisServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Op {
    Send { from: Side, id: u8, weight: usize },
    Confirm { by: Side, up_to: Seq },
    Resume { to: Side, last_seen: Seq },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Seeker), Just(Side::Counsellor)]
}

fn seq() -> impl Strategy<Value = Seq> {
    prop_oneof![8 => 0..12u64, 1 => Just(u64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (side(), 0..7u8, 1..60usize).prop_map(|(from, id, weight)| Op::Send { from, id, weight }),
        2 => (side(), seq()).prop_map(|(by, up_to)| Op::Confirm { by, up_to }),
        2 => (side(), seq()).prop_map(|(to, last_seen)| Op::Resume { to, last_seen }),
    ]
}

/// Small bounds, so full backlogs and forgotten ids happen often.
const LIMITS: ReplayLimits = ReplayLimits {
    max_entries: 4,
    max_bytes: 100,
    max_ids: 3,
};

#[test]
fn redis_scripts_and_core_agree_on_random_operations() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = rt.block_on(RedisServer::start());
    let client = redis::Client::open(redis.url()).unwrap();
    let con = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    let store = Conversations::new("hv:test:", LIMITS, Duration::from_secs(600));
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..48), |ops| {
            let mut con = con.clone();
            // Each case its own session: nothing carries over.
            let session = SessionId(rand::random());
            let key = SessionKey::generate();
            let mut core: Conversation<(Seq, Vec<u8>)> = Conversation::new(LIMITS);
            for (n, op) in ops.iter().enumerate() {
                match *op {
                    Op::Send { from, id, weight } => {
                        let id = key.id_mac(&format!("id-{id}"));
                        let sealed =
                            key.seal(session, from.peer(), &id, format!("m{n}").as_bytes());
                        let want = match core
                            .accept(from, id.as_str(), weight, |seq| (seq, sealed.clone()))
                        {
                            Accept::New { seq, .. } => Appended::New(seq),
                            Accept::Duplicate { seq } => Appended::Duplicate(seq),
                            Accept::BacklogFull => Appended::BacklogFull,
                        };
                        let got = rt
                            .block_on(store.append(&mut con, session, from, &id, weight, &sealed))
                            .unwrap();
                        prop_assert_eq!(got, want, "op {} {:?}", n, op);
                    }
                    Op::Confirm { by, up_to } => {
                        let want = core.confirm(by, up_to);
                        let got = rt
                            .block_on(store.confirm(&mut con, session, by, up_to))
                            .unwrap();
                        prop_assert_eq!(got, want, "op {} {:?}", n, op);
                    }
                    Op::Resume { to, last_seen } => {
                        let want = core.resume(to, last_seen);
                        let got = rt
                            .block_on(store.resume(&mut con, session, to, last_seen))
                            .unwrap();
                        prop_assert_eq!(got.recovered, want.recovered, "op {} {:?}", n, op);
                        prop_assert_eq!(got.last_seq, want.last_seq, "op {} {:?}", n, op);
                        let want: Vec<(Seq, Vec<u8>)> = want.replay.into_iter().cloned().collect();
                        prop_assert_eq!(&got.replay, &want, "op {} {:?}", n, op);
                        // What is replayed follows what the receiver saw.
                        for (seq, _) in &got.replay {
                            prop_assert!(*seq > last_seen.min(got.last_seq));
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Every key a conversation leaves in Redis holds ciphertext and MACs
/// only, and expires by itself.
#[test]
fn redis_holds_no_text_or_id_and_forgets_by_itself() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let redis = RedisServer::start().await;
        let client = redis::Client::open(redis.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let store = Conversations::new("hv:", ReplayLimits::default(), Duration::from_secs(90));
        let session = SessionId(rand::random());
        let key = SessionKey::generate();
        for (n, from) in [Side::Seeker, Side::Counsellor, Side::Seeker]
            .into_iter()
            .enumerate()
        {
            let id = key.id_mac(&format!("canary-id-{n}"));
            let sealed = key.seal(
                session,
                from.peer(),
                &id,
                format!("canary-text-{n}").as_bytes(),
            );
            let got = store
                .append(&mut con, session, from, &id, 13, &sealed)
                .await
                .unwrap();
            assert!(matches!(got, Appended::New(_)));
        }
        // One direction partly confirmed: its counters change, no text shows.
        store
            .confirm(&mut con, session, Side::Counsellor, 1)
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(keys.len(), 5, "{keys:?}");
        let mut everything = Vec::new();
        for k in &keys {
            let kind: String = redis::cmd("TYPE")
                .arg(k)
                .query_async(&mut con)
                .await
                .unwrap();
            let value: redis::Value = match kind.as_str() {
                "hash" => redis::cmd("HGETALL")
                    .arg(k)
                    .query_async(&mut con)
                    .await
                    .unwrap(),
                "stream" => redis::cmd("XRANGE")
                    .arg(k)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut con)
                    .await
                    .unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut con)
                    .await
                    .unwrap(),
                other => panic!("unexpected {other} at {k}"),
            };
            everything.extend_from_slice(k.as_bytes());
            flatten(&value, &mut everything);
            let ttl: i64 = redis::cmd("PTTL")
                .arg(k)
                .query_async(&mut con)
                .await
                .unwrap();
            assert!(ttl > 0 && ttl <= 90_000, "{k} expires in {ttl} ms");
        }
        let text = String::from_utf8_lossy(&everything);
        assert!(
            text.contains("last:c") && text.len() > 200,
            "the scan saw nothing: {text}"
        );
        assert!(!text.contains("canary"), "{text}");
    });
}

/// Every byte a reply holds, in order.
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
