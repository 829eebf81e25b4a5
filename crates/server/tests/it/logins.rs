//! A staff login's end ends everything it holds open, at once: the
//! counsellor socket, the supervisor feed, a watch. Logout, expiry,
//! idleness, a password change, removal or revocation of the account
//! (also by another process on the same data dir, as `haven account`
//! does), or a supervisor ending it.

use std::time::Duration;

use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::{AccountSpec, AccountStore, Role};
use haven_testkit::{CounsellorClient, SeekerClient, SseStream, TestServer};
use hyper::Method;

/// How soon "at once" must be: the sweep runs every second.
const AT_ONCE: Duration = Duration::from_secs(3);

/// Anna in a chat with Sam, and supervisor Coco watching it and the feed.
struct Scene {
    server: TestServer,
    anna: CounsellorClient,
    anna_token: String,
    sam: SeekerClient,
    coco: String,
    feed: SseStream,
    watch: SseStream,
}

async fn scene(tweak: impl FnOnce(&mut haven_server::config::Config)) -> Scene {
    let server = TestServer::start_with(tweak).await;
    let (mut anna, anna_token) = server.counsellor("anna", 1).await;
    anna.available().await;
    let mut sam = server.seeker().await;
    sam.hello(Some("Sam")).await;
    let session = anna.assigned().await;
    let password = server.add_account_with(
        "coco",
        Role::Supervisor,
        &AccountSpec {
            display_name: Some("Coco".into()),
            ..AccountSpec::default()
        },
    );
    let coco = format!("Bearer {}", server.token("coco", &password).await);
    let mut feed = server
        .sse("/api/v1/supervisor/feed", &[("authorization", &coco)])
        .await;
    assert_eq!(feed.status, 200);
    feed.expect("snapshot", |_| true).await;
    let path = format!("/api/v1/supervisor/sessions/{}/observe", session.0);
    let mut watch = server.sse(&path, &[("authorization", &coco)]).await;
    assert_eq!(watch.status, 200);
    watch.expect("message", |m| m["type"] == "watching").await;
    Scene {
        server,
        anna,
        anna_token,
        sam,
        coco,
        feed,
        watch,
    }
}

async fn post(server: &TestServer, auth: &str, path: &str) -> u16 {
    server
        .http(Method::POST, path, &[("authorization", auth)], None)
        .await
        .status
        .as_u16()
}

async fn get(server: &TestServer, auth: &str, path: &str) -> u16 {
    server
        .http(Method::GET, path, &[("authorization", auth)], None)
        .await
        .status
        .as_u16()
}

/// The audit log once it holds `needle` (it is written just after the
/// login ends), or a failure naming what it held.
async fn audit_with(server: &TestServer, needle: &str) -> String {
    let mut audit = String::new();
    for _ in 0..60 {
        audit = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap_or_default();
        if audit.contains(needle) {
            return audit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the audit log has no {needle}:\n{audit}");
}

/// The help-seeker is back in line at once, not after the counsellor's
/// grace period.
async fn requeued_at_once(sam: &mut SeekerClient) {
    let queued = tokio::time::timeout(
        AT_ONCE,
        sam.expect("queued", |m| matches!(m, s::ServerMessage::Queued { .. })),
    )
    .await
    .expect("the help-seeker waited for a counsellor who is not coming back");
    assert!(matches!(
        queued,
        s::ServerMessage::Queued { position: 1, .. }
    ));
}

#[tokio::test]
async fn logout_ends_the_feed_the_watch_and_the_socket_at_once() {
    let Scene {
        server,
        mut anna,
        anna_token,
        coco,
        mut feed,
        mut watch,
        ..
    } = scene(|_| {}).await;
    assert_eq!(post(&server, &coco, "/api/v1/logout").await, 204);
    assert!(
        feed.ends_within(AT_ONCE).await,
        "the feed outlived its login"
    );
    assert!(
        watch.ends_within(AT_ONCE).await,
        "the watch outlived its login"
    );
    assert_eq!(get(&server, &coco, "/api/v1/me").await, 401);

    let bearer = format!("Bearer {anna_token}");
    assert_eq!(post(&server, &bearer, "/api/v1/logout").await, 204);
    let closed = tokio::time::timeout(AT_ONCE, anna.closed()).await;
    assert_eq!(closed.expect("the socket outlived its login"), Some(4501));
}

#[tokio::test]
async fn an_expired_login_ends_its_feed_and_watch() {
    let Scene {
        server,
        coco,
        mut feed,
        mut watch,
        ..
    } = scene(|c| c.auth.token_ttl = Duration::from_secs(3)).await;
    assert!(feed.ends_within(Duration::from_secs(6)).await);
    assert!(watch.ends_within(Duration::from_secs(1)).await);
    assert_eq!(get(&server, &coco, "/api/v1/me").await, 401);
    audit_with(
        &server,
        r#""action":"login_ended","target":"coco","detail":"expired""#,
    )
    .await;
}

#[tokio::test]
async fn an_idle_login_ends_and_activity_keeps_it() {
    let server = TestServer::start_with(|c| c.auth.idle_timeout = Duration::from_secs(3)).await;
    let (mut anna, _) = server.counsellor("anna", 1).await;
    let (mut bram, _) = server.counsellor("bram", 1).await;
    // Bram works (sets his status now and then); Anna does nothing.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bram.available().await;
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), anna.closed())
            .await
            .expect("an idle login stayed open"),
        Some(4501)
    );
    // Bram's socket is still open: it answers.
    bram.send(&c::ClientMessage::Ping).await;
    bram.expect("pong", |m| matches!(m, c::ServerMessage::Pong))
        .await;
    let audit = audit_with(&server, r#""target":"anna","detail":"idle""#).await;
    assert!(
        !audit.contains(r#""target":"bram","detail":"idle""#),
        "{audit}"
    );
}

#[tokio::test]
async fn an_account_removed_by_another_process_stops_writing_at_once() {
    let Scene {
        server,
        mut anna,
        mut sam,
        ..
    } = scene(|_| {}).await;
    // `haven account remove anna`, from another process on the data dir.
    AccountStore::new(server.data_dir()).remove("anna").unwrap();
    let closed = tokio::time::timeout(AT_ONCE, anna.closed()).await;
    assert_eq!(
        closed.expect("a removed account kept its socket"),
        Some(4501)
    );
    requeued_at_once(&mut sam).await;
}

#[tokio::test]
async fn a_new_password_voids_every_old_login() {
    let Scene {
        server,
        mut anna,
        anna_token,
        mut sam,
        ..
    } = scene(|_| {}).await;
    // `haven account passwd anna`, from another process.
    AccountStore::new(server.data_dir())
        .set_password("anna", "a brand new password 42")
        .unwrap();
    let bearer = format!("Bearer {anna_token}");
    assert_eq!(get(&server, &bearer, "/api/v1/me").await, 401);
    let closed = tokio::time::timeout(AT_ONCE, anna.closed()).await;
    assert_eq!(closed.expect("the old login kept its socket"), Some(4501));
    requeued_at_once(&mut sam).await;
    // The new password works.
    assert_eq!(
        server.login("anna", "a brand new password 42").await.status,
        200
    );
}

#[tokio::test]
async fn a_supervisor_ends_a_counsellors_logins_and_not_an_admins() {
    let Scene {
        server,
        mut anna,
        anna_token,
        mut sam,
        coco,
        ..
    } = scene(|_| {}).await;
    let anna_bearer = format!("Bearer {anna_token}");
    // A counsellor may not end anyone's logins; a supervisor may not end
    // an admin's.
    assert_eq!(
        post(
            &server,
            &anna_bearer,
            "/api/v1/supervisor/accounts/coco/logout"
        )
        .await,
        403
    );
    assert_eq!(
        post(&server, &coco, "/api/v1/supervisor/accounts/admin/logout").await,
        403
    );
    assert_eq!(
        post(&server, &coco, "/api/v1/supervisor/accounts/nobody/logout").await,
        404
    );
    assert_eq!(
        post(&server, &coco, "/api/v1/supervisor/accounts/anna/logout").await,
        204
    );
    let closed = tokio::time::timeout(AT_ONCE, anna.closed()).await;
    assert_eq!(closed.expect("anna's socket stayed open"), Some(4501));
    requeued_at_once(&mut sam).await;
    assert_eq!(get(&server, &anna_bearer, "/api/v1/me").await, 401);
    // She can log in again (with her password) and resume work.
    let password = "pw-anna-0123456789";
    assert_eq!(server.login("anna", password).await.status, 200);
    audit_with(
        &server,
        r#""actor":"coco","action":"logins_ended","target":"anna""#,
    )
    .await;
}
