//! Configuration: built-in defaults, then `config/haven.toml` (or the file
//! given with `--config` / `HAVEN_CONFIG`), then `HAVEN_*` environment
//! variables.
//!
//! The common knobs are flat top-level keys with flat variables (`listen` /
//! `HAVEN_LISTEN`, `data_dir` / `HAVEN_DATA_DIR`, `redis_url` /
//! `HAVEN_REDIS_URL`). Keys inside a section take a double underscore:
//! `HAVEN_SESSION__SEEKER_GRACE=90s`. Unknown keys are errors, so a typo
//! never silently falls back to a default. Every error names the key and
//! where its value came from (the file or the variable).

mod check;
mod cluster;
mod console;
mod plan;
mod render;
mod supervisor;
mod topics;
mod transcripts;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use self::cluster::ClusterConfig;
pub use self::console::{CannedResponse, ConsoleConfig, Ring};
pub use self::plan::{Plan, TopicPlan};
pub use self::supervisor::SupervisorConfig;
pub use self::topics::{AlternativeConfig, HoursConfig, Mode, RoutingConfig, TopicConfig};
pub use self::transcripts::TranscriptMode;

/// Where the config file is looked for when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "config/haven.toml";

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Where Haven keeps its small state (accounts).
    pub data_dir: PathBuf,
    /// Redis for events between nodes; unset keeps events in-process.
    pub redis_url: Option<String>,
    /// This node's name in events and snapshots; unset: the host name.
    pub node_id: Option<String>,
    /// The secret that signs orders between nodes on Redis (pausing a
    /// topic); required with `redis_url`, the same on every node, at least
    /// 32 characters, from the environment (`HAVEN_CONTROL_KEY`), never
    /// kept in Redis.
    pub control_key: Option<String>,
    /// Whether sessions are recorded (`off`, `on`, `ask`); topics may
    /// override it.
    pub transcripts: TranscriptMode,
    /// The public keys transcripts are sealed to (`haven keygen` prints
    /// one); the last one is used for new records.
    #[serde(deserialize_with = "transcripts::list_or_commas")]
    pub transcript_recipients: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may embed the widget
    /// and open help-seeker sockets.
    pub allowed_origins: Vec<String>,
    /// Origins besides Haven's own whose pages may use a staff login (the
    /// console and dashboard served from elsewhere). Empty: Haven's own
    /// origin only.
    pub staff_origins: Vec<String>,
    /// Where the widget's quick exit may lead when the chat page is opened
    /// on its own (`/embed/chat.html?exit=…` is honoured only for these);
    /// the first is where it goes otherwise.
    pub quick_exit_urls: Vec<String>,
    /// Whether a WebSocket upgrade without an `Origin` header is accepted.
    pub allow_missing_origin: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// On shutdown, how long `/readyz` reports 503 (so a load balancer
    /// stops sending new help-seekers) before sockets are closed.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// How long shutdown then waits for connections to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Languages the helpline chats in (tags like `nl`, `fr`, `en`).
    pub languages: Vec<String>,
    /// Topics (queues) by name. When none are configured, one topic named
    /// after `session.default_topic` with default settings is used.
    pub topics: BTreeMap<String, TopicConfig>,
    /// Routing settings shared by all topics.
    pub routing: RoutingConfig,
    /// Logging.
    pub log: LogConfig,
    /// Session behaviour.
    pub session: SessionConfig,
    /// Resource and abuse limits.
    pub limits: LimitsConfig,
    /// Counsellor login.
    pub auth: AuthConfig,
    /// The counsellor console: ring and canned responses.
    pub console: ConsoleConfig,
    /// The supervisor view: service level, alerts, events.
    pub supervisor: SupervisorConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// Cool-downs counsellors may put on abusive help-seekers.
    pub abuse: AbuseConfig,
    /// Several nodes on one Redis as one helpline.
    pub cluster: ClusterConfig,
}

/// The cool-downs (blocks) a counsellor may choose when ending an abusive
/// chat.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbuseConfig {
    /// The lengths offered, in hours (at most 30 days).
    pub block_hours: Vec<u32>,
    /// The reasons offered, as short codes the console and the audit log
    /// show (letters, digits, `_` and `-`).
    pub block_reasons: Vec<String>,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        Self {
            block_hours: vec![24, 168],
            block_reasons: ["abusive", "sexual", "threats", "prank", "spam"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

/// Who may read `/metrics`: staffing and queue figures are not for anyone
/// who can reach the public address.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token Prometheus sends (`Authorization: Bearer …`) to read
    /// `/metrics` on the public listener. Keep it in the environment
    /// (`HAVEN_METRICS__TOKEN`), not in the file.
    pub token: Option<String>,
    /// A separate address (a private or loopback one) that serves
    /// `/metrics` and nothing else, without a token; the public listener
    /// then has no `/metrics` at all.
    pub listen: Option<SocketAddr>,
}

/// How logs are written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` for people, `json` for journald and log shippers.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `haven_server=debug,info`.
    /// `RUST_LOG` overrides it when set.
    pub level: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable, coloured on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Session behaviour.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How long a dropped help-seeker may take to resume.
    #[serde(with = "humantime_serde")]
    pub seeker_grace: Duration,
    /// How long a dropped counsellor may take to resume.
    #[serde(with = "humantime_serde")]
    pub counsellor_grace: Duration,
    /// How long a new socket may take to send `hello` or `resume`.
    #[serde(with = "humantime_serde")]
    pub hello_timeout: Duration,
    /// How often the server pings an idle socket.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A socket that sends nothing (not even a pong) for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long an ack or delivery mark may wait to share a write with the
    /// next frame to the same socket (zero: never waits).
    #[serde(with = "humantime_serde")]
    pub ack_delay: Duration,
    /// Longest chat message, in characters.
    pub max_chars: u32,
    /// Most unconfirmed messages kept per session and direction for resume.
    pub replay_max_messages: u32,
    /// Most unconfirmed bytes kept per session and direction for resume.
    pub replay_max_bytes: u32,
    /// Sessions a counsellor takes at once unless their account says
    /// otherwise.
    pub default_capacity: u32,
    /// The most a counsellor may raise their capacity to, unless their
    /// account says otherwise.
    pub default_max_capacity: u32,
    /// The topic of a help-seeker who names none.
    pub default_topic: String,
}

/// Resource and abuse limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most WebSockets at once; above it upgrades get 503.
    pub max_connections: u32,
    /// Of those, how many only staff may use: help-seekers, however many,
    /// never take the last ones.
    pub staff_reserved_connections: u32,
    /// Most plain HTTP connections at once (requests, upgrades in
    /// progress, supervisor feeds); above it new connections are dropped.
    pub max_http_connections: u32,
    /// Plain HTTP connections open at once from one source.
    pub source_max_http_connections: u32,
    /// Largest WebSocket frame and message read, in bytes.
    pub max_frame_bytes: u32,
    /// Per-socket read buffer, in bytes.
    pub read_buffer_bytes: u32,
    /// Per-socket write buffer before a write goes out, in bytes.
    pub write_buffer_bytes: u32,
    /// Frames queued for one socket before it counts as a slow consumer.
    pub outbound_queue: u32,
    /// Chat messages (`send`) per minute a help-seeker may send, sustained.
    pub seeker_messages_per_minute: u32,
    /// Burst of chat messages a help-seeker may send above that.
    pub seeker_message_burst: u32,
    /// Frames of any kind per minute a help-seeker may send, sustained.
    pub seeker_frames_per_minute: u32,
    /// Burst of frames a help-seeker may send above that.
    pub seeker_frame_burst: u32,
    /// Chat messages per minute a counsellor may send (all sessions).
    pub counsellor_messages_per_minute: u32,
    /// Burst of chat messages a counsellor may send above that.
    pub counsellor_message_burst: u32,
    /// Frames of any kind per minute a counsellor may send.
    pub counsellor_frames_per_minute: u32,
    /// Burst of frames a counsellor may send above that.
    pub counsellor_frame_burst: u32,
    /// Seconds of continued flooding, after the first warning, before the
    /// socket is closed.
    pub flood_strikes: u32,
    /// WebSocket upgrades per minute from one source address.
    pub source_upgrades_per_minute: u32,
    /// Burst of upgrades from one source address.
    pub source_upgrade_burst: u32,
    /// WebSockets open at once from one source address.
    pub source_max_connections: u32,
    /// Help-seekers from one source waiting in a queue at once; more are
    /// told the queue is full.
    pub source_max_waiting: u32,
    /// How often the key that hashes source addresses is replaced.
    #[serde(with = "humantime_serde")]
    pub source_key_rotation: Duration,
    /// How long a client may take to send its HTTP request headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body, once its
    /// headers are in.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

/// Counsellor login.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a login lasts at most.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// A login nobody has done anything with for this long ends.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Whether the login cookie is marked `Secure` (HTTPS only). Turn off
    /// only for plain-HTTP testing on a non-loopback address.
    pub secure_cookie: bool,
    /// Threads that check passwords (each check uses about 19 MiB and
    /// 30 ms of CPU), at a priority below chat.
    pub max_concurrent_hashes: u32,
    /// Password checks that may wait, in each of the two lanes (browsers
    /// known to the account, and everyone else); beyond it "busy".
    pub max_queued_logins: u32,
    /// Password checks one source may have waiting or running at once in
    /// the lane for browsers not known to the account.
    pub source_queued_logins: u32,
    /// Login attempts per minute from one source, whatever the name or
    /// the outcome, refused before any password is checked.
    pub source_logins_per_minute: u32,
    /// Burst of login attempts from one source above that.
    pub source_login_burst: u32,
    /// Failed logins for one account from one source (or one device)
    /// within `lockout_window` before that source waits, twice as long
    /// after each further failure.
    pub max_failures: u32,
    /// Failed logins for one account from browsers it has never logged in
    /// from, from anywhere, within `lockout_window`, before such browsers
    /// wait for the window to pass. Browsers with a device cookie for the
    /// account are never held by this.
    pub account_failures: u32,
    /// The window for `max_failures` and `account_failures`, and the
    /// longest back-off.
    #[serde(with = "humantime_serde")]
    pub lockout_window: Duration,
    /// Entries each failure table holds at most; when one is full, new
    /// attempts are refused rather than let through unrecorded.
    pub max_tracked: u32,
    /// How long a device cookie marks a browser as known to an account.
    #[serde(with = "humantime_serde")]
    pub device_ttl: Duration,
    /// Roles that must log in with a second factor (TOTP): an account of
    /// such a role without one sets it up at its next login, before
    /// anything else.
    pub second_factor_roles: Vec<crate::accounts::Role>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            redis_url: None,
            node_id: None,
            control_key: None,
            transcripts: TranscriptMode::Off,
            transcript_recipients: Vec::new(),
            allowed_origins: vec![
                "http://127.0.0.1:8080".to_owned(),
                "http://localhost:8080".to_owned(),
            ],
            staff_origins: Vec::new(),
            quick_exit_urls: vec!["https://www.google.com/".to_owned()],
            allow_missing_origin: true,
            trusted_proxies: Vec::new(),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
            languages: vec!["nl".to_owned(), "fr".to_owned(), "en".to_owned()],
            topics: BTreeMap::new(),
            routing: RoutingConfig::default(),
            log: LogConfig::default(),
            session: SessionConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            console: ConsoleConfig::default(),
            supervisor: SupervisorConfig::default(),
            cluster: ClusterConfig::default(),
            metrics: MetricsConfig::default(),
            abuse: AbuseConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            seeker_grace: Duration::from_secs(120),
            counsellor_grace: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            ack_delay: Duration::from_millis(250),
            max_chars: 4000,
            replay_max_messages: 256,
            replay_max_bytes: 256 * 1024,
            default_capacity: 3,
            default_max_capacity: 5,
            default_topic: "algemeen".to_owned(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 5000,
            staff_reserved_connections: 200,
            max_http_connections: 1024,
            source_max_http_connections: 64,
            max_frame_bytes: 16 * 1024,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 4096,
            outbound_queue: 512,
            seeker_messages_per_minute: 120,
            seeker_message_burst: 20,
            seeker_frames_per_minute: 600,
            seeker_frame_burst: 60,
            counsellor_messages_per_minute: 600,
            counsellor_message_burst: 60,
            counsellor_frames_per_minute: 1800,
            counsellor_frame_burst: 120,
            flood_strikes: 3,
            source_upgrades_per_minute: 30,
            source_upgrade_burst: 10,
            source_max_connections: 50,
            source_max_waiting: 5,
            source_key_rotation: Duration::from_secs(24 * 3600),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(12 * 3600),
            idle_timeout: Duration::from_secs(30 * 60),
            secure_cookie: true,
            max_concurrent_hashes: 2,
            max_queued_logins: 32,
            source_queued_logins: 1,
            source_logins_per_minute: 20,
            source_login_burst: 30,
            max_failures: 5,
            account_failures: 50,
            lockout_window: Duration::from_secs(15 * 60),
            max_tracked: 100_000,
            device_ttl: Duration::from_secs(90 * 24 * 3600),
            second_factor_roles: Vec::new(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` or `HAVEN_CONFIG` does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A value could not be read (wrong type, unknown key, bad syntax).
    #[error("{}", check::describe(.0))]
    Parse(Box<figment::Error>),
    /// Private key material where the server could read it.
    #[error(
        "{origin} holds a private transcript key ({prefix}…). The server must hold only \
         recipients (public keys); keep identities offline and remove it"
    )]
    PrivateKey {
        /// Where it was found: the file, or the variable's name.
        origin: String,
        /// The start of what was found.
        prefix: &'static str,
    },
    /// A value was read but is not acceptable.
    #[error("invalid value for `{key}` (from {origin}): {problem}")]
    Invalid {
        /// The key, dotted (`limits.max_frame_bytes`).
        key: String,
        /// Where the value came from.
        origin: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// What private keys start with: Haven transcript identities, and age
/// identities in case one is pasted by mistake.
const PRIVATE_KEY_PREFIXES: [&str; 2] = [haven_transcript::IDENTITY_PREFIX, "AGE-SECRET-KEY-"];

/// Refuses to go on when the config file or any environment variable holds
/// a private key: the broker must never be able to read transcripts.
fn refuse_private_keys(file: Option<&Path>) -> Result<(), ConfigError> {
    let found = |text: &str| {
        PRIVATE_KEY_PREFIXES
            .into_iter()
            .find(|p| text.to_ascii_uppercase().contains(&p.to_ascii_uppercase()))
    };
    if let Some(path) = file
        && let Ok(text) = std::fs::read_to_string(path)
        && let Some(prefix) = found(&text)
    {
        return Err(ConfigError::PrivateKey {
            origin: path.display().to_string(),
            prefix,
        });
    }
    for (name, value) in std::env::vars_os() {
        if let Some(prefix) = value.to_str().and_then(found) {
            return Err(ConfigError::PrivateKey {
                origin: format!("the environment variable {}", name.to_string_lossy()),
                prefix,
            });
        }
    }
    Ok(())
}

/// Where the configuration was read from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration. `explicit` is a path from the command line
    /// or `HAVEN_CONFIG`; it must exist. Without one, `config/haven.toml`
    /// is read when present and built-in defaults are used otherwise.
    pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
        let file = match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_owned())),
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        refuse_private_keys(file.as_deref())?;
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("HAVEN_").ignore(&["config"]).split("__"));
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.fill_default_topic();
        config.validate(&figment)?;
        Ok(Loaded { config, file })
    }

    /// With no topics configured, the default topic with default settings.
    /// (Defaults cannot hold it: configured topics would be merged with it
    /// instead of replacing it.)
    pub fn fill_default_topic(&mut self) {
        if self.topics.is_empty() {
            self.topics
                .insert(self.session.default_topic.clone(), TopicConfig::default());
        }
    }

    /// This node's name: `node_id`, else the host name.
    pub fn node(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        })
    }

    /// The configuration as TOML with secrets (the Redis password) hidden.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.redis_url = shown.redis_url.as_deref().map(render::redact_url);
        if shown.control_key.is_some() {
            shown.control_key = Some("<redacted>".to_owned());
        }
        if shown.metrics.token.is_some() {
            shown.metrics.token = Some("<redacted>".to_owned());
        }
        render::to_toml(&shown)
    }
}
