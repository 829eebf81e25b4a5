//! The broker can write transcripts but never read them, against a real
//! `haven serve` process: its config, environment and data dir hold
//! nothing that decrypts, a canary stays out of files, logs and Redis, and
//! a key rotated with SIGHUP applies to the next record.

use std::time::Duration;

use haven_protocol::seeker as s;
use haven_testkit::RedisServer;
use haven_transcript::{Identity, Verdict};

use super::support::process::serve;
use super::support::process::{add_account, counsellor, logged, seeker};
use super::support::recording::{Keys, all_files};

/// Reads `/proc/<pid>/environ` of a running server.
fn environment(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/environ")).unwrap()
}

/// Every string of key material in `bytes`: each 32-byte window, and each
/// run of base64url characters that decodes to 32 bytes.
fn candidates(bytes: &[u8], out: &mut Vec<[u8; 32]>) {
    for w in bytes.windows(32) {
        out.push(w.try_into().unwrap());
    }
    use base64::Engine as _;
    let text = String::from_utf8_lossy(bytes);
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        for start in 0..word.len().saturating_sub(42) {
            let Some(chunk) = word.get(start..start + 43) else {
                continue;
            };
            if let Ok(b) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(chunk)
                && let Ok(key) = <[u8; 32]>::try_from(b.as_slice())
            {
                out.push(key);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_the_server_holds_decrypts_and_a_canary_stays_out_of_files_logs_and_redis() {
    let keys = Keys::new();
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "anna", "counsellor", "1");
    // The recipient in a config file this time, and Redis on.
    let config = dir.path().join("haven.toml");
    std::fs::write(
        &config,
        format!(
            "transcripts = \"on\"\ntranscript_recipients = [\"{}\"]\n",
            keys.recipient
        ),
    )
    .unwrap();
    let mut served = serve(
        dir.path(),
        &[
            ("HAVEN_CONFIG", config.to_str().unwrap()),
            ("HAVEN_REDIS_URL", &redis.url()),
            ("HAVEN_SUPERVISOR__SNAPSHOT_INTERVAL", "200ms"),
        ],
    );
    let mut anna = counsellor(&served, "anna").await;
    let mut sam = seeker(&served, "Kanarievogel").await;
    let session = anna.assigned().await;
    let canary = "canary-9d41 ik wil niet meer";
    sam.say("m1", canary).await;
    anna.heard(&session).await;
    anna.say(&session, "a1", "canary-9d42 ik hoor je").await;
    sam.heard().await;
    sam.send(&s::ClientMessage::End).await;
    let path =
        super::support::recording::finished(&dir.path().join("data"), "algemeen", &session.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Everything the process can reach: its config, its environment, its
    // data dir (transcripts included).
    let mut reachable = vec![
        std::fs::read(&config).unwrap(),
        environment(served.child.id()),
    ];
    for file in all_files(&dir.path().join("data")) {
        reachable.push(std::fs::read(&file).unwrap());
    }
    let mut keys_found = Vec::new();
    for bytes in &reachable {
        candidates(bytes, &mut keys_found);
    }
    let tried: Vec<Identity> = keys_found
        .iter()
        .map(|k| {
            use base64::Engine as _;
            let text = format!(
                "{}{}",
                haven_transcript::IDENTITY_PREFIX,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)
            );
            Identity::parse(&text).unwrap()
        })
        .collect();
    let data = std::fs::read(&path).unwrap();
    // With every candidate: not one record opens.
    let opened = haven_transcript::read(&data, &tried);
    assert!(
        opened.records.is_empty(),
        "key material the server holds opened its transcript"
    );
    assert!(tried.len() > 1000, "searched too little: {}", tried.len());
    // The real key does open it (the search above could have worked).
    let real = keys.read(&data);
    assert_eq!(real.verdict, Verdict::Complete);
    assert!(
        real.records
            .iter()
            .any(|r| r.body.text.as_deref() == Some(canary))
    );

    // The canary in plaintext: not in a file, not in the log, not in Redis.
    for bytes in &reachable {
        assert!(!bytes.windows(11).any(|w| w == b"canary-9d41"));
        assert!(!bytes.windows(11).any(|w| w == b"canary-9d42"));
    }
    let log = served.log.lock().unwrap().clone();
    assert!(
        !log.contains("canary-9d4") && !log.contains("Kanarievogel"),
        "{log}"
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!all.is_empty(), "the server wrote nothing to Redis");
    for key in all {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "list" | "zset" => {
                let range = if kind == "list" { "LRANGE" } else { "ZRANGE" };
                redis::cmd(range).arg(&key).arg(0).arg(-1).clone()
            }
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            other => panic!("{key}: unexpected type {other}"),
        };
        let values: Vec<Vec<u8>> = if kind == "string" {
            vec![read.query_async(&mut con).await.unwrap()]
        } else {
            read.query_async(&mut con).await.unwrap()
        };
        for v in values.iter().chain(std::iter::once(&key.into_bytes())) {
            let text = String::from_utf8_lossy(v);
            assert!(
                !text.contains("canary-9d4") && !text.contains("Kanarievogel"),
                "Redis holds it: {text}"
            );
        }
    }
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_seals_the_next_records_to_a_new_key_and_old_ones_still_open_with_the_old_one() {
    let (old, new) = (Keys::new(), Keys::new());
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "anna", "counsellor", "1");
    let config = dir.path().join("haven.toml");
    let write_config = |recipients: &[&str]| {
        let list: Vec<String> = recipients.iter().map(|r| format!("\"{r}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "transcripts = \"on\"\ntranscript_recipients = [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
    };
    write_config(&[&old.recipient]);
    let mut served = serve(dir.path(), &[("HAVEN_CONFIG", config.to_str().unwrap())]);
    let mut anna = counsellor(&served, "anna").await;
    let mut sam = seeker(&served, "Sam").await;
    let session = anna.assigned().await;
    sam.say("m1", "voor de wissel").await;

    // The new key goes last in the list; SIGHUP.
    write_config(&[&old.recipient, &new.recipient]);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let kid = new.identity.recipient().kid().to_owned();
    for _ in 0..200 {
        if served.log.lock().unwrap().contains(&kid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        served.log.lock().unwrap().contains(&kid),
        "SIGHUP was not taken"
    );
    sam.say("m2", "na de wissel").await;
    anna.say(&session, "a1", "ook na de wissel").await;
    sam.send(&s::ClientMessage::End).await;
    let path =
        super::support::recording::finished(&dir.path().join("data"), "algemeen", &session.0).await;
    let data = std::fs::read(&path).unwrap();
    let old_id = Identity::parse(&old.identity.to_text()).unwrap();
    let new_id = Identity::parse(&new.identity.to_text()).unwrap();
    let both = haven_transcript::read(&data, &[old_id, new_id]);
    assert_eq!(both.verdict, Verdict::Complete);
    let kids: Vec<(&str, Option<&str>)> = both
        .records
        .iter()
        .map(|r| (r.kid.as_str(), r.body.text.as_deref()))
        .collect();
    let old_kid = old.identity.recipient().kid().to_owned();
    let first_new = kids.iter().position(|(k, _)| *k == kid).unwrap();
    assert!(
        kids[..first_new].iter().all(|(k, _)| *k == old_kid),
        "{kids:?}"
    );
    assert!(kids[first_new..].iter().all(|(k, _)| *k == kid), "{kids:?}");
    assert!(
        kids[..first_new]
            .iter()
            .any(|(_, t)| *t == Some("voor de wissel")),
        "{kids:?}"
    );
    // The old identity alone still opens everything before the rotation.
    let old_only = old.read(&data);
    assert_eq!(old_only.records.len(), first_new);
    // A bad reload changes nothing and says so.
    std::fs::write(
        &config,
        "transcripts = \"on\"\ntranscript_recipients = [\"nonsense\"]\n",
    )
    .unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(logged(&served, "not reloaded").await);
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
