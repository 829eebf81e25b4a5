//! The `haven` binary itself: configuration errors, `check-config`,
//! accounts, the first-start admin password, SIGTERM, and what ends up in
//! its logs.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::support::process::{
    HAVEN, command, haven, output, post_from, request_from, serve, serve_command, sigterm,
    wait_exit,
};
use haven_protocol::{counsellor as c, seeker as s};
use haven_testkit::{CounsellorClient, SeekerClient, Ws};

#[test]
fn invalid_configuration_names_the_key_and_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_LISTEN", "not-an-address"),
    );
    assert!(!ok);
    assert!(
        err.contains("listen") && err.contains("HAVEN_LISTEN"),
        "{err}"
    );

    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_SESSION__MAX_CHARS", "0"),
    );
    assert!(!ok);
    assert!(
        err.contains("session.max_chars") && err.contains("HAVEN_SESSION__MAX_CHARS"),
        "{err}"
    );

    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_SESSION__SEEKER_GRACE", "1000000y"),
    );
    assert!(!ok);
    assert!(
        err.contains("session.seeker_grace") && err.contains("30 days"),
        "{err}"
    );

    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_SESION__MAX_CHARS", "5"),
    );
    assert!(!ok);
    assert!(
        err.contains("sesion"),
        "a misspelt variable must fail: {err}"
    );

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[limits]\nmax_frame_bytes = \"big\"\n").unwrap();
    let (ok, _, err) = output(
        haven(dir.path())
            .args(["check-config", "--config"])
            .arg(&file),
    );
    assert!(!ok);
    assert!(
        err.contains("max_frame_bytes") && err.contains("bad.toml"),
        "{err}"
    );

    let (ok, _, err) = output(haven(dir.path()).args(["check-config", "--config", "missing.toml"]));
    assert!(!ok);
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_LISTEN", "127.0.0.1:9999")
            .env("HAVEN_REDIS_URL", "redis://:hunter2@10.0.0.5:6379/")
            .env("HAVEN_CONTROL_KEY", "control-secret-0123456789-abcdefghij")
            .env("HAVEN_METRICS__TOKEN", "metrics-secret-42")
            .env("HAVEN_SESSION__SEEKER_GRACE", "90s"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("listen = \"127.0.0.1:9999\""), "{out}");
    assert!(out.contains("seeker_grace = \"1m 30s\""), "{out}");
    for secret in ["hunter2", "control-secret", "metrics-secret"] {
        assert!(out.contains("<redacted>") && !out.contains(secret), "{out}");
    }
    // Redis without a control key is refused, and says why.
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_REDIS_URL", "redis://10.0.0.5:6379/")
            .env_remove("HAVEN_CONTROL_KEY"),
    );
    assert!(
        !ok && err.contains("control_key") && err.contains("HAVEN_CONTROL_KEY"),
        "{err}"
    );
}

#[test]
fn the_shipped_configuration_file_is_valid_and_complete() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = output(
        haven(dir.path())
            .arg("check-config")
            .arg("--config")
            .arg(root.join("config/haven.toml")),
    );
    assert!(ok, "{err}");
    // Every key the server knows is written (and so documented) in the file.
    let shipped = std::fs::read_to_string(root.join("config/haven.toml")).unwrap();
    for line in out.lines().filter(|l| l.contains(" = ")) {
        let key = line.split(" = ").next().unwrap().trim();
        assert!(
            shipped.lines().any(|l| l
                .trim_start_matches('#')
                .trim_start()
                .starts_with(&format!("{key} ="))),
            "config/haven.toml does not document `{key}`"
        );
    }
}

#[test]
fn accounts_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = output(haven(dir.path()).args([
        "account",
        "add",
        "anna",
        "--role",
        "counsellor",
        "--capacity",
        "4",
    ]));
    assert!(ok, "{err}");
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password (shown only now): "))
        .unwrap();
    assert_eq!(generated.len(), 20);

    let mut child = haven(dir.path())
        .args([
            "account",
            "add",
            "bob",
            "--role",
            "supervisor",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a long enough password"));

    let (ok, out, _) = output(haven(dir.path()).args(["account", "list"]));
    assert!(ok);
    assert!(out.contains("anna\tcounsellor\tAnna\tcapacity 4"), "{out}");
    assert!(out.contains("bob\tsupervisor"), "{out}");
    let (ok, _, err) =
        output(haven(dir.path()).args(["account", "add", "anna", "--role", "admin"]));
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = output(haven(dir.path()).args(["account", "add", "x", "--role", "king"]));
    assert!(!ok && err.contains("king"), "{err}");
    let (ok, _, _) = output(haven(dir.path()).args(["account", "remove", "bob"]));
    assert!(ok);
    let hashes = std::fs::read_to_string(dir.path().join("data/accounts.json")).unwrap();
    assert!(hashes.contains("$argon2id$") && !hashes.contains(generated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_sessions_saying_why_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[("HAVEN_SHUTDOWN_TIMEOUT", "5s")]);
    // Not a terminal: the first admin password went to a private file.
    let password_file = dir.path().join("data/initial-admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap();
    assert_eq!(password.trim().len(), 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&password_file)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    assert!(
        !served.log.lock().unwrap().contains(password.trim()),
        "the password reached the log"
    );

    let mut ws = Ws::connect(&format!("ws://{}/ws/seeker", served.addr), &[])
        .await
        .unwrap();
    ws.send_json(&s::ClientMessage::Hello {
        protocol: 1,
        nickname: None,
        topic: None,
        language: None,
        urgent: false,
        return_code: None,
        transcript_consent: false,
    })
    .await;
    ws.recv_text().await;
    sigterm(&served.child);
    // The session cannot outlive this process: it ends, and says why.
    let ended = loop {
        let text = ws.recv_text().await;
        if text.contains("\"type\":\"ended\"") {
            break text;
        }
    };
    assert!(
        ended.contains("\"reason\":\"service_restarted\""),
        "{ended}"
    );
    assert_eq!(ws.closed().await, Some(1000));
    let status = wait_exit(&mut served.child, Duration::from_secs(8));
    assert!(status.success(), "{status:?}");
    assert!(served.log.lock().unwrap().contains("SIGTERM received"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_cpu_it_serves_from_a_single_thread_and_still_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("taskset", dir.path());
    cmd.args(["-c", "0", HAVEN, "serve"]);
    let mut served = serve_command(cmd, &[("HAVEN_SHUTDOWN_TIMEOUT", "5s")]);
    assert!(
        served
            .log
            .lock()
            .unwrap()
            .lines()
            .any(|l| l.contains("runtime started") && l.contains("\"single_threaded\":true")),
        "{}",
        served.log.lock().unwrap()
    );
    let url = format!("ws://{}/ws/seeker", served.addr);
    let mut seekers = Vec::new();
    for _ in 0..3 {
        let mut seeker = SeekerClient::new(Ws::connect(&url, &[]).await.unwrap());
        assert!(matches!(
            seeker.hello(None).await,
            s::ServerMessage::Welcome { .. }
        ));
        seekers.push(seeker);
    }
    sigterm(&served.child);
    for mut seeker in seekers {
        assert_eq!(seeker.closed().await, Some(1000));
    }
    let status = wait_exit(&mut served.child, Duration::from_secs(8));
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_raises_its_open_file_limit_and_warns_when_it_is_still_too_low() {
    let dir = tempfile::tempdir().unwrap();
    // Started the way a service manager often starts it: soft limit 256.
    let mut cmd = command("sh", dir.path());
    cmd.args(["-c", "ulimit -Sn 256 && exec \"$0\" serve", HAVEN]);
    let mut served = serve_command(cmd, &[("HAVEN_LIMITS__MAX_CONNECTIONS", "4000000000")]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", served.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[0] > 256 && numbers[0] == numbers[1], "{line}");
    // Four billion sockets still do not fit: the log says so.
    sigterm(&served.child);
    wait_exit(&mut served.child, Duration::from_secs(8));
    assert!(
        served.log.lock().unwrap().contains("open-file limit"),
        "{}",
        served.log.lock().unwrap()
    );
}

/// `haven account` run beside a running `haven serve` on the same data dir
/// ends the logins it should on that server: a revocation, a reset second
/// factor and a new password each end the account's login within the
/// sweep's second or so, and leave other accounts' logins alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_end_the_logins_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["anna", "bob"] {
        let mut child = haven(dir.path())
            .args([
                "account",
                "add",
                name,
                "--role",
                "counsellor",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"correct horse battery\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    let served = serve(dir.path(), &[]);
    let home: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let login = |name: &'static str| async move {
        let body = format!(r#"{{"name":"{name}","password":"correct horse battery"}}"#);
        let answer = post_from(served.addr, home, "/api/v1/login", &body, None).await;
        answer["token"].as_str().expect("a token").to_owned()
    };
    let me = |token: String| async move {
        request_from(
            served.addr,
            home,
            hyper::Method::GET,
            "/api/v1/me",
            "",
            Some(&token),
        )
        .await
        .0
    };
    let ended_soon = |token: String| async move {
        for _ in 0..50 {
            if me(token.clone()).await == 401 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };

    let bob = login("bob").await;
    for command in [
        vec!["account", "revoke", "anna"],
        vec!["account", "reset-2fa", "anna"],
        vec!["account", "passwd", "anna", "--password-stdin"],
    ] {
        let anna = login("anna").await;
        assert_eq!(me(anna.clone()).await, 200);
        let mut child = haven(dir.path())
            .args(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The same password again: the point is the new epoch, not the text.
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(b"correct horse battery\n");
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(ended_soon(anna).await, "{command:?} left anna's login");
        assert_eq!(me(bob.clone()).await, 200, "{command:?} ended bob's login");
    }
    sigterm(&served.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_text_token_nickname_or_address() {
    use haven_server::accounts::{AccountSpec, AccountStore, Role};
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[("HAVEN_LOG__LEVEL", "trace")]);
    let base = format!("ws://{}", served.addr);
    let store = AccountStore::new(&dir.path().join("data"));
    for (name, role) in [
        ("anna", Role::Counsellor),
        ("bob", Role::Counsellor),
        ("coord", Role::Supervisor),
    ] {
        store
            .add(
                name,
                role,
                &format!("canary-password-{name}"),
                &AccountSpec::default(),
            )
            .unwrap();
    }

    // A whole conversation with canaries everywhere a secret could leak:
    // texts, nickname, passwords, tokens, a transfer note, a pause message,
    // a return code, and the client's address.
    let from: std::net::IpAddr = "127.0.0.77".parse().unwrap();
    let server_addr = served.addr;
    let connect = |path: &str| {
        let url = format!("{base}{path}");
        async move { Ws::connect_from(&url, server_addr, from).await }
    };
    let mut logins = Vec::new();
    for name in ["anna", "bob", "coord"] {
        let body = format!(r#"{{"name":"{name}","password":"canary-password-{name}"}}"#);
        let reply = post_from(served.addr, from, "/api/v1/login", &body, None).await;
        logins.push(reply["token"].as_str().unwrap().to_owned());
    }
    let pause = r#"{"message":"canary-pause-91"}"#;
    post_from(
        served.addr,
        from,
        "/api/v1/topics/algemeen/pause",
        pause,
        Some(&logins[2]),
    )
    .await;
    post_from(
        served.addr,
        from,
        "/api/v1/topics/algemeen/resume",
        "{}",
        Some(&logins[2]),
    )
    .await;

    let mut seeker = SeekerClient::new(connect("/ws/seeker").await);
    let s::ServerMessage::Welcome { token, .. } = seeker.hello(Some("CanaryNick")).await else {
        unreachable!()
    };
    let mut anna = CounsellorClient::new(connect("/ws/counsellor").await);
    let c::ServerMessage::Welcome {
        token: counsellor_token,
        ..
    } = anna.hello(Some(&logins[0])).await
    else {
        unreachable!()
    };
    anna.available().await;
    let session = anna.assigned().await;
    seeker.say("m1", "canary-text-seeker").await;
    anna.say(&session, "c1", "canary-text-counsellor").await;
    let mut bob = CounsellorClient::new(connect("/ws/counsellor").await);
    bob.hello(Some(&logins[1])).await;
    anna.send(&c::ClientMessage::Transfer {
        session: session.clone(),
        to_counsellor: Some("bob".into()),
        to_topic: None,
        warm: false,
        note: Some("canary-note-55".into()),
    })
    .await;
    bob.expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await;
    bob.accept(&session).await;
    bob.assigned().await;
    seeker.ws.drop_abruptly();
    let mut back = SeekerClient::new(connect("/ws/seeker").await);
    back.send(&s::ClientMessage::Resume {
        token: token.clone(),
        last_seq: 0,
    })
    .await;
    back.expect("resumed", |m| matches!(m, s::ServerMessage::Resumed { .. }))
        .await;
    back.send(&s::ClientMessage::End).await;
    let ended = back
        .expect("ended", |m| matches!(m, s::ServerMessage::Ended { .. }))
        .await;
    let s::ServerMessage::Ended {
        return_code: Some(return_code),
        ..
    } = ended
    else {
        panic!("{ended:?}")
    };
    back.closed().await;
    sigterm(&served.child);
    wait_exit(&mut served.child, Duration::from_secs(10));

    let log = served.log.lock().unwrap().clone();
    assert!(
        log.contains("session assigned"),
        "the log is too quiet to prove anything:\n{log}"
    );
    for secret in [
        "canary-text-seeker",
        "canary-text-counsellor",
        "CanaryNick",
        "canary-password",
        "canary-note-55",
        "canary-pause-91",
        return_code.as_str(),
        token.0.as_str(),
        counsellor_token.0.as_str(),
        logins[0].as_str(),
        logins[1].as_str(),
        logins[2].as_str(),
        "127.0.0.77",
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
}
