//! Real `haven` processes: the command with a private data dir, `haven
//! serve` on port 0 with its log captured, signals, HTTP from a chosen
//! local address, accounts made with `haven account`, and clients logged
//! in to a served process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haven_testkit::{CounsellorClient, SeekerClient, Ws};

pub(crate) const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

pub(crate) fn haven(dir: &Path) -> Command {
    command(HAVEN, dir)
}

/// `program` in `dir`, with the data dir there and no other `HAVEN_*`
/// variables from the test's environment.
pub(crate) fn command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("HAVEN_DATA_DIR", dir.join("data"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HAVEN_") && key != "HAVEN_DATA_DIR" {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub(crate) fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `haven serve` process with its stderr (the log) captured.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A server a failed assertion left running is killed, not left behind.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(dir: &Path, envs: &[(&str, &str)]) -> Served {
    let mut cmd = haven(dir);
    cmd.arg("serve");
    serve_command(cmd, envs)
}

/// Starts `cmd` (which runs `haven serve`) on port 0 with a JSON log.
pub(crate) fn serve_command(mut cmd: Command, envs: &[(&str, &str)]) -> Served {
    cmd.env("HAVEN_LISTEN", "127.0.0.1:0")
        .env("HAVEN_LOG__FORMAT", "json")
        .env("HAVEN_METRICS__TOKEN", haven_testkit::METRICS_TOKEN)
        .env("HAVEN_CONTROL_KEY", haven_testkit::CONTROL_KEY)
        // Every client here comes from 127.0.0.1.
        .env("HAVEN_LIMITS__SOURCE_MAX_WAITING", "100000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"listening\"")
                && let Some(addr) = line
                    .split("\"addr\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
            {
                let _ = tx.send(addr.parse().unwrap());
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("haven serve did not start");
    Served { child, addr, log }
}

pub(crate) fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "haven did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends an HTTP POST with a JSON body from the given local address.
pub(crate) async fn post_from(
    server: std::net::SocketAddr,
    from: std::net::IpAddr,
    path: &str,
    body: &str,
    bearer: Option<&str>,
) -> serde_json::Value {
    request_from(server, from, hyper::Method::POST, path, body, bearer)
        .await
        .1
}

/// Sends an HTTP request from the given local address: its status and its
/// JSON body (`Null` when it has none).
pub(crate) async fn request_from(
    server: std::net::SocketAddr,
    from: std::net::IpAddr,
    method: hyper::Method,
    path: &str,
    body: &str,
    bearer: Option<&str>,
) -> (u16, serde_json::Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake::<
        _,
        http_body_util::Full<hyper::body::Bytes>,
    >(hyper_util::rt::TokioIo::new(stream))
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "x")
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub(crate) const PASSWORD: &str = "a long enough password";

/// Limits high enough for chats as fast as acks come back, and acks sent
/// at once instead of waiting to share a write.
pub(crate) const FAST: [(&str, &str); 7] = [
    ("HAVEN_SESSION__ACK_DELAY", "1ms"),
    ("HAVEN_LIMITS__SEEKER_MESSAGES_PER_MINUTE", "600000"),
    ("HAVEN_LIMITS__SEEKER_MESSAGE_BURST", "10000"),
    ("HAVEN_LIMITS__SEEKER_FRAMES_PER_MINUTE", "600000"),
    ("HAVEN_LIMITS__SEEKER_FRAME_BURST", "10000"),
    ("HAVEN_LIMITS__COUNSELLOR_MESSAGES_PER_MINUTE", "600000"),
    ("HAVEN_LIMITS__COUNSELLOR_FRAMES_PER_MINUTE", "600000"),
];

pub(crate) fn add_account(dir: &Path, name: &str, role: &str, capacity: &str) {
    add_account_with(dir, name, role, &["--capacity", capacity]);
}

/// Adds an account with `PASSWORD` and the given `account add` options.
pub(crate) fn add_account_with(dir: &Path, name: &str, role: &str, options: &[&str]) {
    let mut add = haven(dir)
        .args(["account", "add", name, "--role", role])
        .args(options)
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
}

/// Logs `name` in through `served`: the login token.
pub(crate) async fn login(served: &Served, name: &str) -> String {
    let login = post_from(
        served.addr,
        Ipv4Addr::LOCALHOST.into(),
        "/api/v1/login",
        &format!(r#"{{"name": "{name}", "password": "{PASSWORD}"}}"#),
        None,
    )
    .await;
    login["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no login: {login}"))
        .to_owned()
}

/// A counsellor logged in and available through `served`.
pub(crate) async fn counsellor(served: &Served, name: &str) -> CounsellorClient {
    counsellor_via(served, served, name).await
}

/// A counsellor logged in through `login_node`, with their socket on
/// `socket_node`, available.
pub(crate) async fn counsellor_via(
    login_node: &Served,
    socket_node: &Served,
    name: &str,
) -> CounsellorClient {
    let token = login(login_node, name).await;
    let ws = Ws::connect(&format!("ws://{}/ws/counsellor", socket_node.addr), &[])
        .await
        .unwrap();
    let mut client = CounsellorClient::new(ws);
    client.hello(Some(&token)).await;
    client.available().await;
    client
}

pub(crate) async fn seeker(served: &Served, nickname: &str) -> SeekerClient {
    let ws = Ws::connect(&format!("ws://{}/ws/seeker", served.addr), &[])
        .await
        .unwrap();
    let mut client = SeekerClient::new(ws);
    client.hello(Some(nickname)).await;
    client
}

/// Waits (up to 2 s) until the server's log holds `text`.
pub(crate) async fn logged(served: &Served, text: &str) -> bool {
    for _ in 0..200 {
        if served.log.lock().unwrap().contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
