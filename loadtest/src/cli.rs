//! The command line: one subcommand per scenario, plus `provision` (bot
//! accounts for a server you run yourself) and `report` (the benchmark
//! page from result lines).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drives Haven (or a peer server) with many real clients and reports
/// latency, throughput, loss and the server's cost.
#[derive(Debug, Parser)]
#[command(name = "haven-loadtest", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pairs chatting at a fixed rate: each help-seeker sends, its
    /// counsellor echoes, the round trip is timed.
    Chat(RunArgs),
    /// Connected, matched, quiet sessions: what holding them costs.
    Idle(RunArgs),
    /// A chat load while extra sessions connect, chat once and leave at
    /// `--churn-rate` a second.
    Churn(RunArgs),
    /// Many help-seekers waiting for few counsellors, each served for
    /// `--messages` round trips and then ended.
    Queue(RunArgs),
    /// Adds counsellor bot accounts to a data dir, for runs against a
    /// server you started yourself.
    Provision(ProvisionArgs),
    /// Turns result lines (`--json` output) into docs/benchmarks.md and its
    /// plot.
    Report(ReportArgs),
}

/// Which server protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Haven's own protocol: `/ws/seeker` and `/ws/counsellor`.
    Haven,
    /// A pair relay: `/s/<id>/a` and `/s/<id>/b`, text relayed verbatim
    /// (the bare relay, Node `ws`, uWebSockets.js).
    Relay,
    /// socket.io over its WebSocket transport, one room per session.
    Socketio,
    /// Centrifuge's JSON protocol, one channel per side.
    Centrifuge,
}

/// Options every scenario takes.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// The server to drive, as `ws://HOST:PORT`.
    #[arg(long, required_unless_present = "spawn", conflicts_with = "spawn")]
    pub url: Option<String>,

    /// Start this `haven` binary on a free port with a temporary data dir,
    /// run against it, report its CPU and memory, and stop it.
    #[arg(long, value_name = "PATH_TO_HAVEN")]
    pub spawn: Option<PathBuf>,

    /// With `--spawn`: keep the server's data dir here instead of a
    /// temporary one.
    #[arg(long, requires = "spawn")]
    pub data_dir: Option<PathBuf>,

    /// With `--spawn`: pin the server to these CPUs (as `taskset -c`).
    #[arg(long, requires = "spawn", value_name = "LIST")]
    pub server_cpus: Option<String>,

    /// The pid of the server behind `--url`, for its CPU time and memory.
    /// Give it again for processes the server relies on (such as the Redis
    /// its messages go through): their CPU and memory count as the
    /// server's.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// The protocol to speak.
    #[arg(long, value_enum, default_value = "haven")]
    pub target: Target,

    /// Sessions (pairs of sockets) to hold.
    #[arg(long, default_value_t = 100)]
    pub sessions: u32,

    /// Counsellor bots (Haven). Default: one per session for chat, idle and
    /// churn; 10 for queue.
    #[arg(long)]
    pub counsellors: Option<u32>,

    /// Sessions each counsellor bot takes at once (Haven).
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,

    /// Messages each help-seeker sends a second; each is echoed, so a
    /// session relays twice this.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,

    /// Bytes of chat text per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,

    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Load before the measurement starts.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// How long to wait after sending stops for what is still in flight.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,

    /// New connections a second while ramping up (0: as fast as possible).
    #[arg(long, default_value_t = 2000)]
    pub connect_rate: u32,

    /// Churn: sessions a second that connect, chat once and leave.
    #[arg(long, default_value_t = 50)]
    pub churn_rate: u32,

    /// Queue: round trips per session before the help-seeker ends it.
    #[arg(long, default_value_t = 3)]
    pub messages: u32,

    /// Haven: how often a confirmation of what clients received falls due,
    /// as the protocol allows ("every second or two"). It goes along with
    /// the client's next `send`, or as a `received` frame of its own at
    /// the next tick when nothing was sent.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub confirm_every: Duration,

    /// Haven: the topic help-seekers ask for (the server's default when
    /// absent).
    #[arg(long)]
    pub topic: Option<String>,

    /// Haven with `--url`: bot account names are this prefix and a number
    /// (see `provision`).
    #[arg(long, default_value = "lt-bot-")]
    pub bot_prefix: String,

    /// Haven with `--url`: the bot accounts' password.
    #[arg(long, env = "HAVEN_LOADTEST_PASSWORD", hide_env_values = true)]
    pub bot_password: Option<String>,

    /// Spread client sockets over this many 127.0.0.x source addresses
    /// (loopback targets only). Default: enough for the connection count.
    #[arg(long)]
    pub sources: Option<u8>,

    /// Seed for the random send phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON line instead of the readable summary.
    #[arg(long)]
    pub json: bool,

    /// A label for the result line (e.g. the peer's name in a benchmark).
    #[arg(long)]
    pub label: Option<String>,
}

/// Options of `provision`.
#[derive(Clone, Debug, Args)]
pub struct ProvisionArgs {
    /// The server's data dir (its `data_dir` setting).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// How many bots.
    #[arg(long)]
    pub count: u32,
    /// Sessions each bot may take at once.
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,
    /// Name prefix; bots are `<prefix>0`, `<prefix>1`, ...
    #[arg(long, default_value = "lt-bot-")]
    pub prefix: String,
    /// Their password (at least 10 characters).
    #[arg(long, env = "HAVEN_LOADTEST_PASSWORD", hide_env_values = true)]
    pub password: String,
}

/// Options of `report`.
#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// The result lines, one JSON object per line.
    #[arg(long)]
    pub results: PathBuf,
    /// The Markdown page to write.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// The plot to write next to it.
    #[arg(long, default_value = "docs/benchmarks.svg")]
    pub plot: PathBuf,
    /// A Markdown fragment to include (the command, the machine, notes).
    #[arg(long)]
    pub preamble: Option<PathBuf>,
}
