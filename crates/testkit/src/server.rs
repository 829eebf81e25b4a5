//! [`TestServer`]: the real Haven server on `127.0.0.1:0` with a temporary
//! data directory.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use haven_server::Server;
use haven_server::accounts::{AccountSpec, AccountStore, Role};
use haven_server::config::{Config, TopicConfig};
use hyper::Method;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::{CounsellorClient, SeekerClient, Ws, WsError};
use crate::http::{HttpResponse, request};

/// The key test servers sign orders between nodes with.
pub const CONTROL_KEY: &str = "test-control-key-of-thirty-two-chars-or-more";

/// The bearer token test servers take for `/metrics`.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// The configuration tests start from: port 0, the given data dir, and
/// per-source limits high enough for many clients from 127.0.0.1.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.limits.source_upgrades_per_minute = 100_000;
    config.limits.source_upgrade_burst = 100_000;
    config.limits.source_max_connections = 100_000;
    config.limits.max_http_connections = 100_000;
    config.limits.source_max_http_connections = 50_000;
    config.limits.source_max_waiting = 100_000;
    config.limits.staff_reserved_connections = 0;
    config.auth.secure_cookie = false;
    // Logins too: many bots and counsellors log in from 127.0.0.1. Tests
    // of the login rules set these back.
    config.auth.source_logins_per_minute = 100_000;
    config.auth.source_login_burst = 100_000;
    config.auth.source_queued_logins = 1024;
    config.auth.max_queued_logins = 1024;
    config.metrics.token = Some(METRICS_TOKEN.to_owned());
    config.control_key = Some(CONTROL_KEY.to_owned());
    // Acks still take the delayed path, but briefly, so tests that wait for
    // one stay quick.
    config.session.ack_delay = std::time::Duration::from_millis(5);
    // No wrap-up unless a test asks for it: most tests hand sessions out
    // back to back.
    config.topics.insert(
        config.session.default_topic.clone(),
        TopicConfig {
            wrap_up: std::time::Duration::ZERO,
            ..TopicConfig::default()
        },
    );
    config
}

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where `/metrics` has a listener of its own, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The configuration it runs with.
    pub config: Config,
    /// The generated password of `admin` (empty when the data dir already
    /// had accounts).
    pub admin_password: String,
    data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with [`test_config`].
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with [`test_config`] changed by `tweak`. Set
    /// `TEST_LOG=1` to see its logs.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(data_dir.path());
        tweak(&mut config);
        if std::env::var_os("TEST_LOG").is_some() {
            haven_server::telemetry::init(&config.log);
        }
        let mut server = Server::bind(config.clone()).await.unwrap();
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        // The first start's password must be changed at the first login;
        // tests that are not about that start from an admin who has. (A
        // data dir with accounts already has no first start.)
        let admin_password = server.take_initial_admin_password().unwrap_or_default();
        if !admin_password.is_empty() {
            AccountStore::new(&config.data_dir)
                .set_password("admin", &admin_password)
                .unwrap();
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            metrics_addr,
            config,
            admin_password,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// `ws://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// A help-seeker socket, connected but not greeted.
    pub async fn seeker(&self) -> SeekerClient {
        SeekerClient::new(Ws::connect(&self.url("/ws/seeker"), &[]).await.unwrap())
    }

    /// A counsellor socket, connected but not greeted.
    pub async fn counsellor_socket(
        &self,
        headers: &[(&str, &str)],
    ) -> Result<CounsellorClient, WsError> {
        Ws::connect(&self.url("/ws/counsellor"), headers)
            .await
            .map(CounsellorClient::new)
    }

    /// Adds an account and returns its password.
    pub fn add_account(&self, name: &str, role: Role, capacity: Option<u32>) -> String {
        let spec = AccountSpec {
            capacity,
            ..AccountSpec::default()
        };
        self.add_account_with(name, role, &spec)
    }

    /// Adds an account with a full profile and returns its password.
    pub fn add_account_with(&self, name: &str, role: Role, spec: &AccountSpec) -> String {
        let password = format!("pw-{name}-0123456789");
        AccountStore::new(self.data_dir())
            .add(name, role, &password, spec)
            .unwrap();
        password
    }

    /// Adds a counsellor with `spec`, logs in, connects and says hello.
    pub async fn counsellor_with(
        &self,
        name: &str,
        spec: &AccountSpec,
    ) -> (CounsellorClient, String) {
        let password = self.add_account_with(name, Role::Counsellor, spec);
        let token = self.token(name, &password).await;
        let mut client = self.counsellor_socket(&[]).await.unwrap();
        client.hello(Some(&token)).await;
        (client, token)
    }

    /// `POST /api/v1/login`.
    pub async fn login(&self, name: &str, password: &str) -> HttpResponse {
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        self.http(Method::POST, "/api/v1/login", &[], Some(body))
            .await
    }

    /// Logs in and returns the token.
    pub async fn token(&self, name: &str, password: &str) -> String {
        let response = self.login(name, password).await;
        assert_eq!(response.status, 200, "login failed: {}", response.body);
        response.json()["token"].as_str().unwrap().to_owned()
    }

    /// Adds a counsellor account, logs in, connects and says hello.
    /// Returns the client (still away) and its login token.
    pub async fn counsellor(&self, name: &str, capacity: u32) -> (CounsellorClient, String) {
        let password = self.add_account(name, Role::Counsellor, Some(capacity));
        let token = self.token(name, &password).await;
        let mut client = self.counsellor_socket(&[]).await.unwrap();
        client.hello(Some(&token)).await;
        (client, token)
    }

    /// Any HTTP request.
    pub async fn http(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> HttpResponse {
        request(self.addr, method, path, headers, body).await
    }

    /// Opens a server-sent event stream at `path`.
    pub async fn sse(&self, path: &str, headers: &[(&str, &str)]) -> crate::SseStream {
        crate::SseStream::open(self.addr, path, headers).await
    }

    /// `/metrics`' text, read with the test token.
    pub async fn metrics(&self) -> String {
        let bearer = format!("Bearer {METRICS_TOKEN}");
        let response = self
            .http(Method::GET, "/metrics", &[("authorization", &bearer)], None)
            .await;
        assert_eq!(response.status, 200, "/metrics: {}", response.body);
        response.body
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> HttpResponse {
        self.http(Method::GET, path, &[], None).await
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits until the server has stopped; returns how long
    /// that took.
    pub async fn stop(mut self) -> Duration {
        let started = tokio::time::Instant::now();
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        started.elapsed()
    }

    /// Waits for a shutdown begun earlier to finish.
    pub async fn stopped(&mut self) -> Duration {
        let started = tokio::time::Instant::now();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        started.elapsed()
    }
}
