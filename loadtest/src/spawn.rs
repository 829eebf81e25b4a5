//! `--spawn`: a fresh `haven serve` on a free port with its own data dir
//! and bot accounts, configured for the run, and stopped afterwards.
//!
//! The generated config only lifts what would otherwise refuse the load
//! (connection caps, per-source limits, per-socket rates sized to the
//! requested rate, no wrap-up between sessions); every check still runs.
//! The server inherits the environment, so `HAVEN_*` variables (such as
//! `HAVEN_REDIS_URL`) apply on top, except `HAVEN_LISTEN` and
//! `HAVEN_DATA_DIR`, which the run owns.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use haven_server::accounts::{AccountSpec, AccountStore, Role};

use crate::net::Endpoint;

/// The bot accounts a run logs in as.
#[derive(Clone, Debug)]
pub struct Bots {
    /// Name prefix; bot `i` is `<prefix><i>`.
    pub prefix: String,
    /// Their shared password.
    pub password: String,
    /// How many.
    pub count: u32,
    /// Sessions each takes at once.
    pub capacity: u32,
}

impl Bots {
    /// Bot `i`'s account name.
    pub fn name(&self, i: u32) -> String {
        format!("{}{i}", self.prefix)
    }

    /// Writes the bots into the accounts file under `data_dir`, in one go.
    ///
    /// Their password hash uses Argon2id's smallest cost: a benchmark logs
    /// thousands of bots in, and the server verifies with whatever cost the
    /// stored hash names. Real accounts keep the full cost.
    pub fn provision(&self, data_dir: &Path) -> anyhow::Result<usize> {
        use argon2::password_hash::PasswordHasher as _;
        use argon2::{Algorithm, Argon2, Params, Version};
        if self.password.chars().count() < 10 {
            bail!("the bot password must be at least 10 characters");
        }
        let params = Params::new(Params::MIN_M_COST, 1, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(self.password.as_bytes())
            .map_err(|e| anyhow::anyhow!("hashing the bot password: {e}"))?
            .to_string();
        let names: Vec<String> = (0..self.count).map(|i| self.name(i)).collect();
        let spec = AccountSpec {
            display_name: Some("Bot".to_owned()),
            capacity: Some(self.capacity),
            max_capacity: Some(self.capacity),
            ..AccountSpec::default()
        };
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        Ok(AccountStore::new(data_dir).add_many_hashed(&names, Role::Counsellor, &hash, &spec)?)
    }
}

/// The bearer token a spawned server takes for `/metrics`
/// (`loadtest/instructions.sh` reads the relayed count with it).
pub const METRICS_TOKEN: &str = "haven-loadtest";

/// What the spawned server must allow.
#[derive(Clone, Debug)]
pub struct Load {
    /// Sockets at once, all kinds.
    pub connections: u64,
    /// Sessions waiting at once, at most.
    pub queue: u64,
    /// Chat messages a help-seeker sends a second.
    pub rate: f64,
    /// Sessions per counsellor bot.
    pub capacity: u32,
    /// The topic help-seekers ask for.
    pub topic: String,
}

impl Load {
    /// The config file for this load.
    fn config(&self, listen: SocketAddr, data_dir: &Path) -> String {
        // Per-socket rates with half again as much headroom as the load
        // needs, never below the defaults.
        let per_minute = |per_second: f64, floor: u32| -> u32 {
            let wanted = (per_second * 60.0 * 1.5).ceil();
            if wanted >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                // In range: checked just above, and never negative.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let wanted = wanted as u32;
                wanted.max(floor)
            }
        };
        let seeker_msgs = per_minute(self.rate, 120);
        let counsellor_msgs = per_minute(self.rate * f64::from(self.capacity), 600);
        let mut toml = String::new();
        let _ = writeln!(toml, "# Written by haven-loadtest for one run.");
        let _ = writeln!(toml, "listen = \"{listen}\"");
        let _ = writeln!(toml, "data_dir = {:?}", data_dir.display().to_string());
        let _ = writeln!(toml, "allow_missing_origin = true");
        let _ = writeln!(toml, "drain_delay = \"0s\"");
        let _ = writeln!(toml, "shutdown_timeout = \"5s\"");
        let _ = writeln!(toml, "[log]\nlevel = \"warn\"");
        let _ = writeln!(toml, "[metrics]\ntoken = \"{METRICS_TOKEN}\"");
        let _ = writeln!(
            toml,
            "[auth]\nsecure_cookie = false\nmax_concurrent_hashes = 16\n\
             max_queued_logins = 1024\nsource_queued_logins = 1024\n\
             source_logins_per_minute = 1000000\nsource_login_burst = 1000000\n\
             max_failures = 1000000\naccount_failures = 1000000\nidle_timeout = \"12h\""
        );
        let _ = writeln!(toml, "[limits]");
        let _ = writeln!(toml, "max_connections = {}", self.connections + 1000);
        let _ = writeln!(toml, "source_max_connections = {}", self.connections + 1000);
        let _ = writeln!(toml, "source_upgrades_per_minute = 100000000");
        let _ = writeln!(toml, "source_upgrade_burst = 10000000");
        // Every simulated client comes from 127.0.0.1: one source.
        let _ = writeln!(toml, "max_http_connections = {}", self.connections + 2000);
        let _ = writeln!(
            toml,
            "source_max_waiting = {}",
            self.queue + self.connections + 1
        );
        let _ = writeln!(
            toml,
            "source_max_http_connections = {}",
            self.connections + 1000
        );
        let _ = writeln!(toml, "seeker_messages_per_minute = {seeker_msgs}");
        let _ = writeln!(toml, "seeker_message_burst = {}", (seeker_msgs / 6).max(20));
        let _ = writeln!(toml, "seeker_frames_per_minute = {}", seeker_msgs * 2 + 600);
        let _ = writeln!(toml, "seeker_frame_burst = {}", (seeker_msgs / 3).max(60));
        let _ = writeln!(toml, "counsellor_messages_per_minute = {counsellor_msgs}");
        let _ = writeln!(
            toml,
            "counsellor_message_burst = {}",
            (counsellor_msgs / 6).max(60)
        );
        let _ = writeln!(
            toml,
            "counsellor_frames_per_minute = {}",
            counsellor_msgs * 2 + 1800
        );
        let _ = writeln!(
            toml,
            "counsellor_frame_burst = {}",
            (counsellor_msgs / 3).max(120)
        );
        let _ = writeln!(toml, "[topics.{}]", self.topic);
        let _ = writeln!(toml, "mode = \"auto\"");
        let _ = writeln!(toml, "wrap_up = \"0s\"");
        let _ = writeln!(toml, "max_queue = {}", self.queue + 1000);
        let _ = writeln!(toml, "[session]\ndefault_topic = \"{}\"", self.topic);
        toml
    }
}

/// A running spawned server.
#[derive(Debug)]
pub struct Spawned {
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Its process id.
    pub pid: u32,
    /// Its data dir.
    pub data_dir: PathBuf,
    child: Child,
    _temp: Option<tempfile::TempDir>,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

impl Spawned {
    /// Provisions `bots`, starts `binary`, and waits until it is ready.
    pub async fn start(
        binary: &Path,
        data_dir: Option<&Path>,
        cpus: Option<&str>,
        load: &Load,
        bots: &Bots,
    ) -> anyhow::Result<Self> {
        if !binary.is_file() {
            bail!(
                "--spawn {}: no such file (build it with `cargo build --release -p haven-server`)",
                binary.display()
            );
        }
        let (temp, dir) = match data_dir {
            Some(dir) => (None, dir.to_owned()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("haven-loadtest-")
                    .tempdir()
                    .context("cannot create a temporary data dir")?;
                let dir = temp.path().to_owned();
                (Some(temp), dir)
            }
        };
        bots.provision(&dir)?;
        let listen = free_port()?;
        let config_path = dir.join("loadtest.toml");
        std::fs::write(&config_path, load.config(listen, &dir))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let log_path = dir.join("haven.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut command = match cpus {
            Some(list) => {
                let mut c = Command::new("taskset");
                c.args(["-c", list]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("HAVEN_LISTEN", listen.to_string())
            .env("HAVEN_DATA_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let endpoint = Endpoint {
            authority: listen.to_string(),
            addr: listen,
        };
        if let Err(e) = crate::http::wait_ready(listen, Duration::from_secs(30)).await {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{e}; its log ends with:\n{}", tail.join("\n"));
        }
        Ok(Self {
            endpoint,
            pid: child.id(),
            data_dir: dir,
            child,
            _temp: temp,
        })
    }

    /// Stops the server with SIGTERM (SIGKILL after 10 s) and reports how it
    /// exited.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        use rustix::process::{Pid, Signal, kill_process};
        let pid = i32::try_from(self.pid).ok().and_then(Pid::from_raw);
        if let Some(pid) = pid {
            let _ = kill_process(pid, Signal::TERM);
        }
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the spawned server exited with {status}");
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the spawned server did not stop within 10 s of SIGTERM and was killed")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A run that failed half-way must not leave a server behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scales_the_limits_with_the_load() {
        let load = Load {
            connections: 20_000,
            queue: 10_000,
            rate: 5.0,
            capacity: 2,
            topic: "algemeen".to_owned(),
        };
        let toml = load.config("127.0.0.1:9".parse().unwrap(), Path::new("/tmp/x"));
        assert!(toml.contains("max_connections = 21000"), "{toml}");
        // 5/s * 60 * 1.5 = 450 for a help-seeker; twice that for a bot.
        assert!(toml.contains("seeker_messages_per_minute = 450"), "{toml}");
        assert!(
            toml.contains("counsellor_messages_per_minute = 900"),
            "{toml}"
        );
        assert!(toml.contains("wrap_up = \"0s\""));
        // A slow load keeps the defaults.
        let slow = Load { rate: 0.1, ..load };
        let toml = slow.config("127.0.0.1:9".parse().unwrap(), Path::new("/tmp/x"));
        assert!(toml.contains("seeker_messages_per_minute = 120"), "{toml}");
    }

    #[test]
    fn bots_are_written_once_with_a_cheap_hash() {
        let dir = tempfile::tempdir().unwrap();
        let bots = Bots {
            prefix: "lt-".to_owned(),
            password: "bot-password-123".to_owned(),
            count: 3,
            capacity: 2,
        };
        assert_eq!(bots.provision(dir.path()).unwrap(), 3);
        assert_eq!(bots.provision(dir.path()).unwrap(), 0);
        let store = AccountStore::new(dir.path());
        let bot = store.get("lt-2").unwrap().unwrap();
        assert_eq!(bot.capacity, Some(2));
        assert!(bot.password_hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(haven_server::accounts::verify_password(
            "bot-password-123",
            &bot.password_hash
        ));
        let short = Bots {
            password: "short".to_owned(),
            ..bots
        };
        assert!(short.provision(dir.path()).is_err());
    }
}
