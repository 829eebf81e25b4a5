//! The `haven-loadtest` binary as a user runs it: `--spawn` measuring a
//! fresh `haven` end to end, and clear errors with exit code 2 when the
//! run cannot start.

use std::path::PathBuf;
use std::process::{Command, Output};

fn loadtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haven-loadtest"))
        .args(args)
        .output()
        .unwrap()
}

/// `target/<profile>/haven`, next to this test's own directory. The
/// workspace test command builds it (haven-server's tests need it too).
fn haven_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let haven = dir.join("haven");
    assert!(
        haven.exists(),
        "{} is missing: build it first with `cargo build -p haven-server` \
         (`cargo test --workspace` does)",
        haven.display()
    );
    haven
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn spawn_starts_a_fresh_haven_measures_it_and_stops_it() {
    let haven = haven_binary();
    let data = tempfile::tempdir().unwrap();
    let kept = data.path().join("run");
    let out = loadtest(&[
        "chat",
        "--spawn",
        haven.to_str().unwrap(),
        "--data-dir",
        kept.to_str().unwrap(),
        "--sessions",
        "4",
        // Enough work in the window for the server's CPU time (counted in
        // 10 ms ticks by /proc) to show.
        "--rate",
        "100",
        "--warmup",
        "300ms",
        "--duration",
        "1s",
        "--drain",
        "2s",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["scenario"], "chat");
    assert_eq!(line["lost"], 0);
    assert_eq!(line["errors"], 0, "{line}");
    assert!(line["messages"].as_u64().unwrap() > 40, "{line}");
    // The spawned server's pid is known: its cost is reported.
    assert!(
        line["server_cpu_us_per_msg"].as_f64().unwrap() > 0.0,
        "{line}"
    );
    assert!(line["server_rss_kb_per_conn"].as_f64().is_some(), "{line}");
    // The data dir stays for inspection, with the bots it provisioned.
    let accounts = std::fs::read_dir(&kept).unwrap().count();
    assert!(accounts > 0, "nothing kept in {}", kept.display());
    // And the server is gone: nothing listens on its port any more.
    let pid = line["server_pids"][0].as_u64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "haven {pid} still runs"
    );
}

#[test]
fn a_url_that_is_not_ws_is_refused_with_the_form_to_use() {
    let out = loadtest(&["chat", "--url", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must start with ws://"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_refused_connection_says_so() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let out = loadtest(&[
        "chat",
        "--target",
        "relay",
        "--url",
        &url,
        "--sessions",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_limit_too_low_for_the_run_is_named_with_the_fix() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    // Hard limit 64: the run cannot raise it to the ~1,000 it needs.
    let script = format!(
        "ulimit -n 64 && exec {} idle --target relay --url {url} --sessions 500",
        env!("CARGO_BIN_EXE_haven-loadtest")
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("file descriptors"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("ulimit -n"), "{}", stderr(&out));
}
