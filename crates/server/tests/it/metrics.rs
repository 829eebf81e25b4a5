//! `/metrics`: Prometheus text with real histogram buckets, and nothing
//! that names a person or a session.

use std::time::Duration;

use super::support::value;
use haven_protocol::seeker as s;
use haven_testkit::TestServer;

#[tokio::test]
async fn metrics_show_queues_staffing_waits_and_traffic_without_identities() {
    let server = TestServer::start_with(|c| {
        c.supervisor.snapshot_interval = Duration::from_millis(100);
    })
    .await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(Some("Samira-geheim")).await;
    let session = anna.assigned().await;
    for i in 0..3 {
        sam.say(&format!("m{i}"), "canary-5150").await;
        anna.heard(&session).await;
    }
    let mut waiting = server.seeker().await;
    waiting.hello(None).await;
    // A malformed frame is a counted protocol error.
    sam.ws.send_text("{not json").await;
    sam.expect("error", |m| matches!(m, s::ServerMessage::Error { .. }))
        .await;

    let mut body = String::new();
    for _ in 0..100 {
        body = server.metrics().await;
        if value(&body, "haven_queue_waiting{topic=\"algemeen\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        value(&body, "haven_queue_waiting{topic=\"algemeen\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(value(&body, "haven_sessions_active"), Some(1.0), "{body}");
    assert_eq!(
        value(&body, "haven_counsellors{state=\"busy\"}"),
        Some(1.0),
        "{body}"
    );
    // Other tests share the process: these count at least ours.
    assert!(value(&body, "haven_messages_relayed_total").unwrap() >= 3.0);
    assert!(value(&body, "haven_connections{role=\"seeker\"}").unwrap() >= 2.0);
    assert!(value(&body, "haven_connections{role=\"counsellor\"}").unwrap() >= 1.0);
    assert!(value(&body, "haven_protocol_errors_total{code=\"malformed\"}").unwrap() >= 1.0);
    // Waits are histograms with real buckets, not summaries.
    assert!(
        body.contains(
            "haven_wait_seconds_bucket{topic=\"algemeen\",outcome=\"answered\",le=\"60\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("# TYPE haven_wait_seconds histogram"),
        "{body}"
    );
    // Without Redis there is no Redis gauge.
    assert!(!body.contains("haven_redis_connected"));
    for secret in ["Samira", "canary", &session.0, "127.0.0.1"] {
        assert!(!body.contains(secret), "/metrics holds {secret:?}");
    }
}

#[tokio::test]
async fn metrics_and_readiness_show_nothing_to_anyone_who_asks() {
    // With a token: nothing without it, or with a wrong one.
    let server = TestServer::start().await;
    assert_eq!(server.get("/metrics").await.status, 401);
    let wrong = server
        .http(
            hyper::Method::GET,
            "/metrics",
            &[("authorization", "Bearer guess")],
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(server.metrics().await.contains("haven_connections"));
    // Readiness says ready, and no figures.
    let ready = server.get("/readyz").await.json();
    assert_eq!(ready, serde_json::json!({ "status": "ready" }));

    // Neither a token nor a listener: metrics are off on the public side.
    let off = TestServer::start_with(|c| c.metrics.token = None).await;
    let refused = off.get("/metrics").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("metrics.token"), "{}", refused.body);

    // A listener of their own: there without a token, gone from the
    // public address.
    let private = TestServer::start_with(|c| {
        c.metrics.token = None;
        c.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    assert_eq!(private.get("/metrics").await.status, 404);
    let addr = private.metrics_addr.expect("a metrics address");
    let scraped = haven_testkit::request(addr, hyper::Method::GET, "/metrics", &[], None).await;
    assert_eq!(scraped.status, 200);
    assert!(scraped.body.contains("haven_connections"));
    // It serves nothing else.
    let other = haven_testkit::request(addr, hyper::Method::GET, "/healthz", &[], None).await;
    assert_eq!(other.status, 404);
}
