//! The application: shared state, routes, and the server's accept loop
//! with its shutdown sequence.
//!
//! The accept loop is our own instead of `axum::serve` for two reasons the
//! defaults get wrong for a public service: hyper needs a timer for its
//! header timeout (slow-loris), and a connection that sends nothing at all
//! needs a first-byte deadline. Upgraded WebSockets are not tracked by
//! hyper's graceful shutdown, so they run on our own [`TaskTracker`] and
//! close on our own [`CancellationToken`].
//!
//! Shutdown: `/readyz` turns 503 and new upgrades are refused; after
//! `drain_delay` every socket is closed with 1001 "going away, reconnect";
//! then the server waits up to `shutdown_timeout` for socket tasks and
//! HTTP connections to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use haven_core::ReplayLimits;
use haven_protocol::CloseCode;
use haven_protocol::common::Limits;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

use crate::accounts::{AccountError, AccountStore};
use crate::auth::{Ending, Logins};
use crate::broker::{Broker, BrokerSettings};
use crate::config::{Config, Plan};
use crate::events::Events;
use crate::limits::{ConnectionCap, SourceLimiter};
use crate::metrics::Metrics;
use crate::supervisor::audit::{Action as AuditAction, AuditLog, Entry};
use crate::supervisor::controls;
use crate::transcripts::{Transcripts, retention};
use crate::ws::conn::{LazyClock, Registry};
use crate::{api, assets, supervisor, ws};

/// The largest request body any endpoint reads.
const MAX_BODY: usize = 8 * 1024;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppInner {
    pub(crate) config: Config,
    pub(crate) broker: Broker,
    pub(crate) events: Arc<Events>,
    pub(crate) metrics: Arc<Metrics>,
    /// The transcript writers, when some topic records.
    pub(crate) transcripts: Option<Arc<Transcripts>>,
    /// Who watched, whispered in or joined which session.
    pub(crate) audit: AuditLog,
    pub(crate) accounts: Arc<AccountStore>,
    pub(crate) logins: Logins,
    pub(crate) cap: Arc<ConnectionCap>,
    pub(crate) sources: SourceLimiter,
    /// Cool-downs on abusive help-seekers' sources.
    pub(crate) blocks: crate::blocks::Blocks,
    /// This node's place among several, when `cluster.enabled`.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Set when shutdown starts: `/readyz` answers 503 and upgrades stop.
    pub(crate) draining: AtomicBool,
    /// Fires when the broker must stop.
    pub(crate) shutdown: CancellationToken,
    /// Every open socket, to close at shutdown.
    pub(crate) connections: Registry,
    /// Sends acks and delivery marks that found no company in time.
    pub(crate) lazy: Arc<LazyClock>,
    /// Every socket task; shutdown waits for it to empty.
    pub(crate) sockets: TaskTracker,
}

/// A cheap handle to the shared state.
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The account file could not be read or written.
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// The topics or languages are not valid (normally caught when the
    /// configuration is loaded).
    #[error("invalid value for `{key}`: {problem}")]
    Plan {
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// The transcripts directory could not be prepared.
    #[error("cannot write transcripts under {path}: {source}")]
    Transcripts {
        /// The directory.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// `metrics.listen`, when set.
    metrics: Option<TcpListener>,
    state: AppState,
    initial_admin_password: Option<String>,
}

impl Server {
    /// Prepares the data directory and accounts and binds the listener.
    /// Use port 0 to let the system pick one (tests do).
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        crate::private::create_dir(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let accounts = Arc::new(AccountStore::new(&config.data_dir));
        let initial_admin_password = accounts.ensure_admin()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let metrics_listener = match config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let sockets = TaskTracker::new();
        let mut config = config;
        config.fill_default_topic();
        let plan = config
            .plan()
            .map_err(|(key, problem)| StartError::Plan { key, problem })?;
        let transcripts = start_transcripts(&config, &plan)?;
        if let Some(t) = &transcripts {
            retention::spawn(
                t.dir().to_owned(),
                Arc::new(plan.clone()),
                shutdown.clone(),
                &sockets,
            );
        }
        let events = Events::start(&config, &shutdown, &sockets);
        let metrics = Arc::new(Metrics::new());
        let mut settings = broker_settings(&config, plan, events.clone(), metrics.clone());
        settings.transcripts = transcripts.clone();
        let cluster =
            crate::cluster::Cluster::new(&config, listener.local_addr().unwrap_or(config.listen));
        settings.cluster = cluster.clone();
        let broker = Broker::start(settings, shutdown.clone(), &sockets);
        events.apply_pauses(broker.clone(), shutdown.clone(), &sockets);
        let lazy = LazyClock::new(config.session.ack_delay);
        sockets.spawn(lazy.clone().run(shutdown.clone()));
        let logins = Logins::new(
            config.auth.clone(),
            config.limits.source_key_rotation,
            &config.data_dir,
        )
        .map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let state = AppState(Arc::new(AppInner {
            logins,
            cap: ConnectionCap::new(
                config.limits.max_connections,
                config.limits.staff_reserved_connections,
            ),
            sources: SourceLimiter::new(&config.limits),
            blocks: crate::blocks::Blocks::default(),
            cluster,
            draining: AtomicBool::new(false),
            broker,
            events,
            metrics,
            transcripts,
            audit: AuditLog::new(&config.data_dir),
            accounts,
            shutdown,
            connections: Registry::default(),
            lazy,
            sockets,
            config,
        }));
        state
            .sockets
            .spawn(sweep_logins(state.clone(), state.shutdown.clone()));
        if let Some(cluster) = state.cluster.clone() {
            state
                .sockets
                .spawn(crate::cluster::run(state.clone(), cluster));
        }
        Ok(Self {
            listener,
            metrics: metrics_listener,
            state,
            initial_admin_password,
        })
    }

    /// The metrics listener's address, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    /// Where a new transcript recipient goes (on SIGHUP), when transcripts
    /// are on.
    pub fn transcript_keys(&self) -> Option<TranscriptKeys> {
        self.state.transcripts.clone().map(TranscriptKeys)
    }

    /// The generated password of the `admin` account, if this start created
    /// it. Returned once; show it to the operator and nowhere else.
    pub fn take_initial_admin_password(&mut self) -> Option<String> {
        self.initial_admin_password.take()
    }

    /// Serves until `stop` resolves, then drains and returns.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) {
        let Self {
            listener,
            metrics,
            state,
            ..
        } = self;
        let config = &state.config;
        if let Some(metrics) = metrics {
            // Prometheus on a private address: `/metrics` and nothing else.
            let app = Router::new()
                .route("/metrics", get(api::metrics_private))
                .with_state(state.clone());
            let stop = state.shutdown.clone();
            state.sockets.spawn(async move {
                let serve = axum::serve(metrics, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(e) = serve.await {
                    warn!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let app = routes(state.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_timeout)
            .max_buf_size(64 * 1024);
        // Plain HTTP connections: told to finish when the server stops.
        let http_stop = CancellationToken::new();
        let http_tasks = TaskTracker::new();
        // Plain HTTP connections. An upgraded WebSocket gives its slot back
        // (it counts against `max_connections` instead).
        let http_slots = Arc::new(Semaphore::new(config.limits.max_http_connections as usize));
        info!(addr = %listener.local_addr().map_or(config.listen, |a| a), "listening");

        tokio::pin!(stop);
        let mut phase = Phase::Running;
        let mut handing: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(ok) => ok,
                        Err(e) => {
                            // Usually out of file descriptors: back off briefly.
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // One source may hold only its share of the slots; a
                    // trusted proxy speaks for many and limits them itself.
                    let source = if config.trusted_proxies.contains(&peer.ip()) {
                        None
                    } else {
                        let Some(guard) = state.sources.admit_http(peer.ip()) else {
                            debug!("connection dropped: too many open from one source");
                            crate::metrics::refused("http_source_limit");
                            continue;
                        };
                        Some(guard)
                    };
                    let Ok(slot) = http_slots.clone().try_acquire_owned() else {
                        debug!("connection dropped: too many open connections");
                        crate::metrics::refused("http_full");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let service = app.clone().map_request(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        req
                    });
                    let first_byte = config.limits.header_timeout;
                    let http = http.clone();
                    let stop = http_stop.clone();
                    http_tasks.spawn(async move {
                        let _slot = (slot, source);
                        if !first_byte_within(&stream, first_byte).await {
                            return;
                        }
                        let conn = http
                            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                            .with_upgrades();
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            () = stop.cancelled() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                () = &mut stop, if phase == Phase::Running => {
                    info!(drain_delay = ?config.drain_delay, "shutting down: draining");
                    state.draining.store(true, Ordering::Release);
                    if let Some(cluster) = &state.cluster {
                        cluster.stop();
                    }
                    phase = Phase::Draining(tokio::time::Instant::now() + config.drain_delay);
                }
                () = sleep_until_phase(phase), if matches!(phase, Phase::Draining(_)) => {
                    // The node that leads next carries a leading node's
                    // sessions on (clients come back through any node and
                    // resume); the hand-over runs beside this loop, which
                    // must keep answering (the next node fetches from it).
                    let leading = state.cluster.clone().filter(|c| c.leading());
                    let state = state.clone();
                    let limit = config.shutdown_timeout;
                    handing = Some(tokio::spawn(async move {
                        match leading {
                            Some(cluster) => crate::cluster::hand_over(&state, &cluster, limit).await,
                            None => false,
                        }
                    }));
                    phase = Phase::HandingOver;
                }
                handed = handed_over(&mut handing), if phase == Phase::HandingOver => {
                    handing = None;
                    if !handed {
                        // Nothing carries this node's sessions over: each
                        // ends with the reason, and every socket is told to
                        // start anew rather than to resume what will be gone.
                        info!(sockets = state.connections.len(), "ending sessions and closing sockets");
                        state.broker.end_all().await;
                    }
                    state.connections.close_all(CloseCode::Restarted);
                    state.shutdown.cancel();
                    state.sockets.close();
                    phase = Phase::Closing(tokio::time::Instant::now() + config.shutdown_timeout);
                }
                () = state.sockets.wait(), if matches!(phase, Phase::Closing(_)) => break,
                () = sleep_until_phase(phase), if matches!(phase, Phase::Closing(_)) => {
                    warn!(remaining = state.sockets.len(), "shutdown timeout: abandoning socket tasks");
                    break;
                }
            }
        }
        drop(listener);
        if let Some(t) = state.transcripts.clone() {
            // The sessions are gone: their transcripts end here.
            let _ = tokio::task::spawn_blocking(move || t.stop()).await;
        }
        http_stop.cancel();
        http_tasks.close();
        if tokio::time::timeout(Duration::from_secs(1), http_tasks.wait())
            .await
            .is_err()
        {
            debug!("some HTTP connections did not finish in time");
        }
        info!("stopped");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// `/readyz` is 503; sockets close at the instant.
    Draining(tokio::time::Instant),
    /// A leading node hands its sessions to the next one.
    HandingOver,
    /// Sockets are closing; give up waiting at the instant.
    Closing(tokio::time::Instant),
}

/// Whether the hand-over running in `handing` handed the sessions over,
/// once it finished.
async fn handed_over(handing: &mut Option<tokio::task::JoinHandle<bool>>) -> bool {
    match handing {
        Some(h) => h.await.unwrap_or(false),
        None => std::future::pending().await,
    }
}

async fn sleep_until_phase(phase: Phase) {
    match phase {
        Phase::Draining(at) | Phase::Closing(at) => tokio::time::sleep_until(at).await,
        Phase::Running | Phase::HandingOver => std::future::pending().await,
    }
}

/// Once a second: ends the logins that expired or went idle, and those
/// whose account was removed or changed (also by `haven account` in another
/// process), closing whatever they held open; a counsellor whose account
/// changed hands their sessions on at once. Each is written to the audit
/// log.
async fn sweep_logins(state: AppState, shutdown: CancellationToken) {
    let mut seen = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let ended = state
            .logins
            .sweep(&state.accounts, &mut seen, std::time::Instant::now());
        for e in ended {
            info!(account = e.account, why = e.why.as_str(), "login ended");
            let action = match e.why {
                Ending::Expired | Ending::Idle => AuditAction::LoginEnded,
                Ending::Removed | Ending::Revoked => {
                    state
                        .broker
                        .counsellor_revoked(haven_core::CounsellorId(e.account))
                        .await;
                    AuditAction::LoginRevoked
                }
            };
            state
                .audit
                .record(
                    Entry::new("haven", action)
                        .target(&e.name)
                        .detail(e.why.as_str()),
                )
                .await;
        }
    }
}

/// Waits for a new connection's first byte, so idle connections that never
/// send anything do not hold a slot forever.
async fn first_byte_within(stream: &TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(limit, stream.peek(&mut byte)).await, Ok(Ok(n)) if n > 0)
}

/// Changes the recipient new transcript records are sealed to, without a
/// restart (the server calls it on SIGHUP).
#[derive(Clone, Debug)]
pub struct TranscriptKeys(Arc<Transcripts>);

impl TranscriptKeys {
    /// Seals every record from now on to the last of `recipients` (as the
    /// configuration lists them). Returns its key id.
    pub fn rotate(&self, recipients: &[String]) -> Result<String, String> {
        let last = recipients
            .last()
            .ok_or("transcript_recipients is empty; keeping the current one")?;
        let recipient = haven_transcript::Recipient::parse(last).map_err(|e| e.to_string())?;
        let kid = recipient.kid().to_owned();
        self.0.rotate(recipient);
        Ok(kid)
    }
}

/// Starts the transcript writers when some topic records, sealing to the
/// last recipient listed.
fn start_transcripts(config: &Config, plan: &Plan) -> Result<Option<Arc<Transcripts>>, StartError> {
    let wanted = plan
        .topics
        .iter()
        .any(|t| t.transcripts != crate::config::TranscriptMode::Off);
    let Some(last) = config.transcript_recipients.last().filter(|_| wanted) else {
        return Ok(None);
    };
    let recipient = haven_transcript::Recipient::parse(last).map_err(|e| StartError::Plan {
        key: "transcript_recipients".to_owned(),
        problem: e.to_string(),
    })?;
    let path = config.data_dir.join("transcripts");
    Transcripts::start(path.clone(), recipient)
        .map(Some)
        .map_err(|source| StartError::Transcripts { path, source })
}

fn broker_settings(
    config: &Config,
    plan: Plan,
    events: Arc<Events>,
    metrics: Arc<Metrics>,
) -> BrokerSettings {
    BrokerSettings {
        events,
        metrics,
        supervisor: config.supervisor.clone(),
        plan: Arc::new(plan),
        replay: ReplayLimits {
            max_entries: config.session.replay_max_messages as usize,
            max_bytes: config.session.replay_max_bytes as usize,
            ..ReplayLimits::default()
        },
        transcripts: None,
        cluster: None,
        kept: match (&config.redis_url, &config.control_key) {
            (Some(url), Some(key)) => {
                crate::broker::Kept::new(url, key, config.routing.return_code_ttl)
            }
            _ => None,
        },
        source_max_waiting: config.limits.source_max_waiting,
        limits: Limits {
            max_chars: config.session.max_chars,
            max_frame_bytes: config.limits.max_frame_bytes,
        },
    }
}

/// Headers every response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/ws/seeker", get(ws::seeker_handler))
        .route("/ws/counsellor", get(ws::counsellor_handler))
        .route("/api/v1/login", post(api::login))
        .route("/api/v1/logout", post(api::logout))
        .route("/api/v1/login/second-factor", post(api::second_factor))
        .route("/api/v1/account/password", post(api::change_password))
        .route(
            "/api/v1/account/second-factor/start",
            post(api::second_factor_start),
        )
        .route(
            "/api/v1/account/second-factor/confirm",
            post(api::second_factor_confirm),
        )
        .route(
            "/api/v1/account/second-factor/remove",
            post(api::second_factor_remove),
        )
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/activity", post(api::activity))
        .route("/api/v1/topics", get(api::topics))
        .route("/api/v1/helpline", get(api::helpline))
        .route("/api/v1/console", get(api::console))
        .route("/api/v1/colleagues", get(api::colleagues))
        .route("/api/v1/supervisor/feed", get(supervisor::feed))
        .route("/api/v1/supervisor/history", get(supervisor::history))
        .route("/api/v1/supervisor/audit", get(controls::audit))
        .route(
            "/api/v1/supervisor/sessions/{session}/observe",
            get(controls::observe),
        )
        .route(
            "/api/v1/supervisor/sessions/{session}/whisper",
            post(controls::whisper),
        )
        .route(
            "/api/v1/supervisor/sessions/{session}/join",
            post(controls::join),
        )
        .route(
            "/api/v1/supervisor/sessions/{session}/leave",
            post(controls::leave),
        )
        .route(
            "/api/v1/supervisor/sessions/{session}/say",
            post(controls::say),
        )
        .route(
            "/api/v1/supervisor/accounts/{name}/logout",
            post(supervisor::staff::end_logins),
        )
        .route("/api/v1/supervisor/blocks", get(supervisor::abuse::blocks))
        .route(
            "/api/v1/supervisor/blocks/{id}/lift",
            post(supervisor::abuse::lift),
        )
        .route(
            "/api/v1/supervisor/topics/{topic}/clear",
            post(supervisor::abuse::clear),
        )
        .route("/api/v1/topics/{topic}/pause", post(api::pause))
        .route("/api/v1/topics/{topic}/resume", post(api::resume))
        .route(
            "/internal/v1/handover",
            get(crate::cluster::handover_endpoint),
        )
        .fallback(assets::serve)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::cluster::proxy::route,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), body_deadline))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Reads a request's whole body within `limits.body_timeout` before any
/// handler runs, so a client that announces a body and trickles it (or
/// never sends it) cannot hold its connection: it gets 408 and the
/// connection is closed. Requests without a body pass straight through.
async fn body_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = state.config.limits.body_timeout;
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return api::ApiError::TooLarge.into_response(),
        Err(_) => {
            debug!("request body too slow: connection closed");
            crate::metrics::refused("slow_body");
            let mut response = api::ApiError::BodyTimeout.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}
