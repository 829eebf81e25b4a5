//! The few HTTP calls the generator makes: counsellor logins and the
//! readiness probe of a spawned server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends one request on a fresh connection; returns the status and body.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, String)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response = sender.send_request(req).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Logs a counsellor in and returns the login token. Retries while the
/// server says it is busy checking other passwords.
pub async fn login(addr: SocketAddr, name: &str, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "name": name, "password": password }).to_string();
    for attempt in 0..50u32 {
        let (status, text) =
            request(addr, Method::POST, "/api/v1/login", Some(body.clone())).await?;
        match status {
            StatusCode::OK => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).context("login answer is not JSON")?;
                return value["token"]
                    .as_str()
                    .map(str::to_owned)
                    .context("login answer has no token");
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt + 1))).await;
            }
            StatusCode::UNAUTHORIZED => bail!(
                "login of {name:?} refused: no such bot account or a wrong password \
                 (create bots with `haven-loadtest provision`, or use --spawn)"
            ),
            other => bail!("login of {name:?} failed with HTTP {other}: {text}"),
        }
    }
    bail!("login of {name:?}: the server stayed busy")
}

/// Waits until `GET /readyz` answers 200.
pub async fn wait_ready(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok((StatusCode::OK, _)) = request(addr, Method::GET, "/readyz", None).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the server at {addr} did not become ready within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
