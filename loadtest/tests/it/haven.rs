//! Every scenario against a real Haven server (in-process, on real
//! sockets), checked for what each one promises to measure.

use clap::Parser as _;
use haven_loadtest::cli::{Cli, Command};
use haven_loadtest::report::Report;
use haven_loadtest::scenario::{self, Scenario};
use haven_loadtest::spawn::Bots;
use haven_testkit::TestServer;

const PASSWORD: &str = "loadtest-bots-0123";

/// A server with `count` bot accounts taking `capacity` sessions each,
/// and per-socket rate limits above what the tests send (the defaults are
/// for people typing, and the load generator reports what they refuse).
async fn server_with_bots(count: u32, capacity: u32) -> TestServer {
    let server = TestServer::start_with(|c| {
        let l = &mut c.limits;
        l.seeker_messages_per_minute = 6_000;
        l.seeker_message_burst = 100;
        l.seeker_frames_per_minute = 12_000;
        l.seeker_frame_burst = 200;
        l.counsellor_messages_per_minute = 6_000;
        l.counsellor_message_burst = 100;
        l.counsellor_frames_per_minute = 12_000;
        l.counsellor_frame_burst = 200;
    })
    .await;
    let bots = Bots {
        prefix: "lt-bot-".to_owned(),
        password: PASSWORD.to_owned(),
        count,
        capacity,
    };
    assert_eq!(bots.provision(server.data_dir()).unwrap(), count as usize);
    server
}

async fn run(server: &TestServer, scenario: &str, extra: &[&str]) -> Report {
    let url = format!("ws://{}", server.addr);
    let mut argv = vec![
        "haven-loadtest",
        scenario,
        "--url",
        &url,
        "--bot-password",
        PASSWORD,
        "--warmup",
        "300ms",
        "--drain",
        "2s",
    ];
    argv.extend_from_slice(extra);
    let cli = Cli::try_parse_from(argv).unwrap();
    let (scenario, args) = match cli.command {
        Command::Chat(a) => (Scenario::Chat, a),
        Command::Idle(a) => (Scenario::Idle, a),
        Command::Churn(a) => (Scenario::Churn, a),
        Command::Queue(a) => (Scenario::Queue, a),
        other => panic!("not a scenario: {other:?}"),
    };
    scenario::run(scenario, &args).await.unwrap()
}

fn assert_clean(report: &Report) {
    assert!(report.clean(), "not clean: {report:?}");
    assert!(
        report.warnings.iter().all(|w| !w.contains("lost")),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_relays_every_message_both_ways_and_times_it() {
    let server = server_with_bots(6, 1).await;
    let report = run(
        &server,
        "chat",
        &[
            "--sessions",
            "6",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--confirm-every",
            "200ms",
        ],
    )
    .await;
    assert_clean(&report);
    // 6 sessions × 20 a second × 2 ways × 1 s, give or take the window's
    // edges.
    assert!((180..=300).contains(&report.messages), "{report:?}");
    // Round trips are counted by when they were due, relayed messages by
    // when they arrived: the window's edges may split a few.
    assert!(report.rtt.count * 2 >= report.messages - 12, "{report:?}");
    assert!(report.rtt.count * 2 <= report.messages + 12, "{report:?}");
    assert!(report.rtt_p50_ms > 0.0 && report.rtt_p99_ms >= report.rtt_p50_ms);
    assert_eq!(
        report.matched.count, 6,
        "every session matched once: {report:?}"
    );
    assert!(report.match_p99_ms > 0.0);
    assert_eq!(report.seq_errors, 0);
    // The JSON line has the fields scripts read.
    let line: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    for field in [
        "scenario",
        "sessions",
        "messages",
        "lost",
        "duplicated",
        "reordered",
        "errors",
        "rtt_p50_ms",
        "rtt_p99_ms",
        "match_p99_ms",
        "msgs_per_s",
    ] {
        assert!(line.get(field).is_some(), "{field} missing from {line}");
    }
    // No pid given for an in-process server: no server figures, rather
    // than made-up ones.
    assert!(line.get("server_cpu_us_per_msg").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_matched_sessions_without_a_message() {
    let server = server_with_bots(5, 2).await;
    let report = run(
        &server,
        "idle",
        &["--sessions", "10", "--capacity", "2", "--duration", "500ms"],
    )
    .await;
    assert_clean(&report);
    assert_eq!(report.matched.count, 10, "{report:?}");
    assert_eq!((report.messages, report.sent), (0, 0), "{report:?}");
    // Ten help-seekers and five bots.
    assert_eq!(report.connections, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_brings_sessions_that_come_chat_and_go_during_the_load() {
    // 4 main bots and the spares churn needs (churn rate / 5, at least 4).
    let server = server_with_bots(8, 1).await;
    let report = run(
        &server,
        "churn",
        &[
            "--sessions",
            "4",
            "--rate",
            "10",
            "--churn-rate",
            "20",
            "--duration",
            "1s",
        ],
    )
    .await;
    assert_clean(&report);
    assert!(
        report.sessions_done >= 10,
        "about 20 a second for a second: {report:?}"
    );
    assert_eq!(report.churn_match.count, report.sessions_done, "{report:?}");
    assert!(report.messages > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_serves_many_seekers_with_few_counsellors_in_turn() {
    let server = server_with_bots(2, 1).await;
    let report = run(
        &server,
        "queue",
        &[
            "--sessions",
            "8",
            "--counsellors",
            "2",
            "--messages",
            "2",
            "--rate",
            "50",
            "--duration",
            "10s",
        ],
    )
    .await;
    assert_clean(&report);
    assert_eq!(report.sessions_done, 8, "every seeker served: {report:?}");
    assert_eq!(report.matched.count, 8);
    // Two at a time: the last ones waited for three rounds before them.
    assert!(report.matched.max > report.matched.p50, "{report:?}");
    assert!(
        report.positions > 0,
        "waiting seekers hear their position: {report:?}"
    );
    // Two round trips each: two messages out, two echoes back.
    assert_eq!(report.sent, 8 * 2 * 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bot_passwords_stop_the_run_with_a_clear_error() {
    let server = server_with_bots(1, 1).await;
    let url = format!("ws://{}", server.addr);
    let cli = Cli::try_parse_from([
        "haven-loadtest",
        "chat",
        "--url",
        &url,
        "--bot-password",
        "not-the-password",
        "--sessions",
        "1",
        "--duration",
        "1s",
    ])
    .unwrap();
    let Command::Chat(args) = cli.command else {
        unreachable!()
    };
    let e = scenario::run(Scenario::Chat, &args).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("lt-bot-0"), "names the account: {text}");
}
