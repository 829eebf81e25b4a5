//! The console's HTTP side: its settings (ring, canned responses) and the
//! list of colleagues to hand a session to.

use haven_server::config::{CannedResponse, Ring};
use haven_testkit::TestServer;
use hyper::Method;

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> haven_testkit::HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    server.http(Method::GET, path, &headers, None).await
}

#[tokio::test]
async fn the_console_gets_its_canned_responses_and_ring_from_config_after_login() {
    let server = TestServer::start_with(|c| {
        c.console.ring = Ring::Chime;
        c.console.canned = vec![CannedResponse {
            title: "Welkom".into(),
            text: "Hoi, fijn dat je er bent.".into(),
            language: Some("nl".into()),
            topics: Vec::new(),
        }];
    })
    .await;
    assert_eq!(get(&server, "/api/v1/console", None).await.status, 401);
    let (_anna, token) = server.counsellor("anna", 1).await;
    let settings = get(&server, "/api/v1/console", Some(&token)).await;
    assert_eq!(settings.status, 200);
    let body = settings.json();
    assert_eq!(body["ring"], "chime");
    assert_eq!(body["ring_repeat_secs"], 10);
    assert_eq!(body["canned"][0]["title"], "Welkom");
    assert_eq!(body["canned"][0]["text"], "Hoi, fijn dat je er bent.");
    assert_eq!(body["canned"][0]["language"], "nl");
    assert_eq!(body["topics"], serde_json::json!(["algemeen"]));
}

#[tokio::test]
async fn colleagues_lists_who_is_connected_with_status_and_load() {
    let server = TestServer::start().await;
    assert_eq!(get(&server, "/api/v1/colleagues", None).await.status, 401);
    let (mut anna, token) = server.counsellor("anna", 2).await;
    anna.available().await;
    let (bob, _) = server.counsellor("bob", 1).await;
    let list = get(&server, "/api/v1/colleagues", Some(&token))
        .await
        .json();
    let names: Vec<&str> = list["colleagues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anna", "bob"]);
    assert_eq!(list["colleagues"][0]["status"], "available");
    assert_eq!(list["colleagues"][0]["capacity"], 2);
    assert_eq!(list["colleagues"][1]["status"], "away");
    assert_eq!(
        list["colleagues"][1]["topics"],
        serde_json::json!(["algemeen"])
    );

    // Someone who closed the console is no longer listed.
    bob.ws.close().await;
    let mut left = Vec::new();
    for _ in 0..50 {
        let list = get(&server, "/api/v1/colleagues", Some(&token))
            .await
            .json();
        left = list["colleagues"].as_array().unwrap().clone();
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["name"], "anna");
}
