//! The browser code served from the binary: pages, headers, caching.

use haven_testkit::TestServer;
use hyper::Method;

#[tokio::test]
async fn pages_are_served_with_a_strict_policy() {
    let server = TestServer::start().await;

    let chat = server.get("/embed/chat.html").await;
    assert_eq!(chat.status, 200);
    assert!(chat.body.contains("/embed/chat.js"));
    assert_eq!(
        chat.headers["content-type"], "text/html; charset=utf-8",
        "html with a charset"
    );
    let policy = chat.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    // Only the chat may be framed, by the helpline sites allowed.
    let origins = &server.config.allowed_origins;
    assert!(!origins.is_empty());
    for origin in origins {
        assert!(policy.contains(origin.as_str()), "{policy}");
    }

    let console = server.get("/console/").await;
    assert_eq!(console.status, 200);
    let policy = console.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");

    let loader = server.get("/widget.js").await;
    assert_eq!(loader.status, 200);
    assert!(
        loader.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(
        loader.headers["cross-origin-resource-policy"],
        "cross-origin"
    );
    // No help-seeker page sets a cookie.
    for response in [&chat, &loader] {
        assert!(response.headers.get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn files_revalidate_by_etag() {
    let server = TestServer::start().await;
    let first = server.get("/embed/chat.js").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["cache-control"], "no-cache");
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let again = server
        .http(
            Method::GET,
            "/embed/chat.js",
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = server
        .http(
            Method::GET,
            "/embed/chat.js",
            &[("if-none-match", "\"x\"")],
            None,
        )
        .await;
    assert_eq!(other.status, 200);
    let head = server.http(Method::HEAD, "/embed/chat.js", &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn directories_redirect_and_unknown_paths_are_404() {
    let server = TestServer::start().await;
    let console = server.get("/console").await;
    assert_eq!(console.status, 308);
    assert_eq!(console.headers["location"], "/console/");
    let root = server.get("/").await;
    assert_eq!(root.headers["location"], "/demo/");
    let missing = server.get("/embed/nope.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "not_found");
    let traversal = server.get("/embed/../../Cargo.toml").await;
    assert_eq!(traversal.status, 404);
    let post = server.http(Method::POST, "/widget.js", &[], None).await;
    assert_eq!(post.status, 404);
}

#[tokio::test]
async fn the_widget_learns_topics_and_languages_without_a_login() {
    let server = TestServer::start().await;
    let info = server.get("/api/v1/helpline").await;
    assert_eq!(info.status, 200);
    let json = info.json();
    assert_eq!(json["default_topic"], "algemeen");
    assert!(
        json["topics"]
            .as_array()
            .unwrap()
            .contains(&"algemeen".into())
    );
    assert!(json["languages"].as_array().is_some());
}
