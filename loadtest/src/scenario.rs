//! Runs one scenario end to end: find or start the server, connect the
//! responders (counsellor bots, or side `b`), ramp up the sessions, run
//! the load through a warm-up and a measurement window, let what is in
//! flight arrive, and sum it all up in a [`Report`].

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use crate::cli::{RunArgs, Target};
use crate::codec::Codec;
use crate::codec::haven::Counsellor;
use crate::driver::{Phase, Plan, Start, responder};
use crate::net::{Endpoint, Sources, connect, raise_file_limit};
use crate::progress::Progress;
use crate::report::{Percentiles, Report};
use crate::spawn::{Bots, Load, Spawned};
use crate::stats::Stats;
use crate::sysinfo::{self, ProcSample};

mod open;
mod shape;

use open::Opener;
use shape::{Shape, validate};

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Pairs chatting at a fixed rate.
    Chat,
    /// Matched, quiet sessions.
    Idle,
    /// A chat load plus sessions that come and go.
    Churn,
    /// Many waiting for few.
    Queue,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Chat => "chat",
            Scenario::Idle => "idle",
            Scenario::Churn => "churn",
            Scenario::Queue => "queue",
        }
    }
}

/// Logins checked at once while connecting the bots.
const LOGINS_AT_ONCE: usize = 16;

/// Runs `scenario` with `args`.
pub async fn run(scenario: Scenario, args: &RunArgs) -> anyhow::Result<Report> {
    validate(scenario, args)?;
    let shape = Shape::of(scenario, args);
    // Our sockets (a spawned server inherits the raised limit for its own).
    raise_file_limit(shape.connections + 1024)?;
    let loadavg_before = sysinfo::loadavg().unwrap_or(0.0);
    let busy_before = sysinfo::machine_busy(Duration::from_millis(500))
        .await
        .unwrap_or(0.0);
    let password = args.bot_password.clone();
    let bots = Bots {
        prefix: args.bot_prefix.clone(),
        password: password.unwrap_or_else(random_password),
        count: shape.bots,
        capacity: args.capacity.max(1),
    };
    let topic = args.topic.clone().unwrap_or_else(|| "algemeen".to_owned());
    let spawned = match &args.spawn {
        Some(binary) => {
            let load = Load {
                connections: shape.connections,
                queue: u64::from(args.sessions),
                rate: args.rate,
                capacity: bots.capacity,
                topic,
            };
            Some(
                Spawned::start(
                    binary,
                    args.data_dir.as_deref(),
                    args.server_cpus.as_deref(),
                    &load,
                    &bots,
                )
                .await?,
            )
        }
        None => None,
    };
    let (endpoint, mut pids) = match &spawned {
        Some(s) => (s.endpoint.clone(), vec![s.pid]),
        None => {
            let url = args.url.as_deref().context("give --url or --spawn")?;
            let endpoint = Endpoint::resolve(url).await?;
            if args.target == Target::Haven && args.bot_password.is_none() && shape.bots > 0 {
                bail!(
                    "with --url, give the bots' password (--bot-password or \
                     HAVEN_LOADTEST_PASSWORD); create them with `haven-loadtest provision`"
                );
            }
            (endpoint, Vec::new())
        }
    };
    pids.extend(&args.server_pids);
    let mut runner = Runner::new(scenario, args, shape, endpoint, pids, bots);
    let result = runner.drive().await;
    if let Some(s) = spawned {
        let stopped = s.stop().await;
        if result.is_ok() {
            stopped?;
        }
    }
    let mut report = result?;
    report.loadavg_before = loadavg_before;
    report.machine_busy_before_pct = busy_before;
    report.check_conditions();
    Ok(report)
}

fn random_password() -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// Readings taken at both ends of the window.
#[derive(Clone, Copy, Debug)]
struct Readings {
    server: Option<ProcSample>,
    client: Option<ProcSample>,
}

struct Runner<'a> {
    scenario: Scenario,
    args: &'a RunArgs,
    shape: Shape,
    endpoint: Arc<Endpoint>,
    sources: Arc<Sources>,
    /// The server's processes, summed.
    pids: Vec<u32>,
    bots: Bots,
    stats: Arc<Stats>,
    phase: watch::Sender<Phase>,
    tasks: JoinSet<()>,
    fatal: Arc<OnceLock<String>>,
    progress: Progress,
}

impl<'a> Runner<'a> {
    fn new(
        scenario: Scenario,
        args: &'a RunArgs,
        shape: Shape,
        endpoint: Endpoint,
        pids: Vec<u32>,
        bots: Bots,
    ) -> Self {
        let sources = Sources::new(endpoint.addr, args.sources, shape.connections);
        Self {
            scenario,
            args,
            shape,
            endpoint: Arc::new(endpoint),
            sources: Arc::new(sources),
            pids,
            bots,
            stats: Arc::new(Stats::new()),
            phase: watch::Sender::new(Phase::Ramp),
            tasks: JoinSet::new(),
            fatal: Arc::new(OnceLock::new()),
            progress: Progress::new(),
        }
    }

    fn readings(&self) -> Readings {
        Readings {
            server: sysinfo::sample_all(&self.pids),
            client: sysinfo::sample(std::process::id()).ok(),
        }
    }

    async fn drive(&mut self) -> anyhow::Result<Report> {
        let baseline = self.readings();
        self.connect_bots().await?;
        let sessions = u64::from(self.args.sessions);
        let (before, after) = match self.scenario {
            Scenario::Queue => {
                self.phase.send_replace(Phase::Run {
                    start_us: self.stats.now_us(),
                });
                let before = self.readings();
                self.stats.open_window();
                self.ramp(sessions).await?;
                let limit = self.args.duration + self.args.drain;
                let stats = self.stats.clone();
                self.wait("serving the queue", limit, move || {
                    stats.sessions_done.get() >= sessions
                })
                .await
                .ok();
                self.stats.close_window();
                (before, self.readings())
            }
            _ => {
                self.ramp(sessions).await?;
                self.wait_matched(sessions).await?;
                self.measure().await?
            }
        };
        self.phase.send_replace(Phase::Stop);
        let stats = self.stats.clone();
        let _ = self
            .wait(
                "letting the last messages arrive",
                self.args.drain,
                move || stats.outstanding() == 0,
            )
            .await;
        self.phase.send_replace(Phase::Done);
        let finish = tokio::time::timeout(Duration::from_secs(10), async {
            while self.tasks.join_next().await.is_some() {}
        });
        if finish.await.is_err() {
            self.tasks.abort_all();
        }
        self.progress.finish();
        Ok(self.report(baseline, before, after))
    }

    /// Logs the counsellor bots in and waits until all are available.
    async fn connect_bots(&mut self) -> anyhow::Result<()> {
        let count = self.shape.bots;
        if count == 0 {
            return Ok(());
        }
        let logins = Arc::new(Semaphore::new(LOGINS_AT_ONCE));
        for i in 0..count {
            let name = self.bots.name(i);
            let password = self.bots.password.clone();
            let endpoint = self.endpoint.clone();
            let sources = self.sources.clone();
            let stats = self.stats.clone();
            let phase = self.phase.subscribe();
            let fatal = self.fatal.clone();
            let logins = logins.clone();
            let confirm = Some(self.args.confirm_every);
            self.tasks.spawn(async move {
                let token = {
                    let _permit = logins.acquire().await;
                    match crate::http::login(endpoint.addr, &name, &password).await {
                        Ok(token) => token,
                        Err(e) => {
                            let _ = fatal.set(format!("{e:#}"));
                            return;
                        }
                    }
                };
                let codec = Counsellor::new(token);
                match connect(&endpoint, &sources, &codec.path()).await {
                    Ok(ws) => responder(ws, codec, confirm, stats, phase, None).await,
                    Err(e) => {
                        let _ = fatal.set(e.to_string());
                    }
                }
            });
        }
        let stats = self.stats.clone();
        let within = Duration::from_secs(30) + Duration::from_millis(u64::from(count) * 5);
        self.wait("logging counsellor bots in", within, move || {
            stats.bots_ready.get() >= u64::from(count)
        })
        .await
    }

    /// Opens `count` sessions at `--connect-rate`.
    async fn ramp(&mut self, count: u64) -> anyhow::Result<()> {
        let mut pace = (self.args.connect_rate > 0).then(|| {
            let mut i = tokio::time::interval(Duration::from_secs(1) / self.args.connect_rate);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            i
        });
        let interval = Duration::from_secs_f64(1.0 / self.args.rate.max(1e-6));
        for idx in 0..count {
            if let Some(pace) = &mut pace {
                pace.tick().await;
            }
            if let Some(e) = self.fatal.get() {
                bail!("{e}");
            }
            let plan = Plan {
                idx: usize::try_from(idx).unwrap_or(0),
                start: if self.scenario == Scenario::Queue {
                    Start::OnMatch
                } else {
                    Start::Together
                },
                interval: (self.scenario != Scenario::Idle).then_some(interval),
                offset: interval.mul_f64(phase_of(self.args.seed, idx)),
                limit: (self.scenario == Scenario::Queue).then_some(u64::from(self.args.messages)),
                size: self.args.size,
                confirm_every: self.confirm_every(),
                churn: false,
            };
            self.open_session(idx, plan);
            if idx % 256 == 0 {
                self.progress.status(format!(
                    "connecting: {idx} of {count} sessions opened, {} matched",
                    self.stats.sessions_matched.get()
                ));
            }
        }
        Ok(())
    }

    fn confirm_every(&self) -> Option<Duration> {
        (self.args.target == Target::Haven).then_some(self.args.confirm_every)
    }

    /// What opens sessions, detached from the runner so background tasks
    /// can own one. Connection failures of the main load stop the run.
    fn opener(&self) -> Opener {
        Opener {
            endpoint: self.endpoint.clone(),
            sources: self.sources.clone(),
            stats: self.stats.clone(),
            phase: self.phase.subscribe(),
            target: self.args.target,
            topic: self.args.topic.clone(),
            fatal: Some(self.fatal.clone()),
        }
    }

    fn open_session(&mut self, idx: u64, plan: Plan) {
        let opened = self.opener().open(idx, plan);
        self.tasks.spawn(opened);
    }

    async fn wait_matched(&mut self, sessions: u64) -> anyhow::Result<()> {
        let stats = self.stats.clone();
        let within = Duration::from_secs(30)
            + Duration::from_secs_f64(sessions as f64 / f64::from(self.args.connect_rate.max(1)));
        self.wait("matching sessions", within, move || {
            stats.sessions_matched.get() >= sessions && stats.peers_matched.get() >= sessions
        })
        .await
    }

    /// Warm-up, window and (for churn) the coming and going.
    async fn measure(&mut self) -> anyhow::Result<(Readings, Readings)> {
        let start_us = self.stats.now_us() + 20_000;
        if self.scenario != Scenario::Idle {
            self.phase.send_replace(Phase::Run { start_us });
        }
        let churn = (self.scenario == Scenario::Churn).then(|| self.start_churn());
        let settle = if self.scenario == Scenario::Idle {
            Duration::from_secs(1)
        } else {
            self.args.warmup
        };
        self.progress.status("warming up".to_owned());
        self.sleep_watching(settle).await?;
        let before = self.readings();
        self.stats.open_window();
        let started = Instant::now();
        while started.elapsed() < self.args.duration {
            self.sleep_watching(Duration::from_millis(250)).await?;
            let secs = started.elapsed().as_secs_f64();
            self.progress.status(format!(
                "measuring: {:.1} of {:.0} s, {:.0} msg/s, {} errors",
                secs,
                self.args.duration.as_secs_f64(),
                self.stats.window_msgs.get() as f64 / secs.max(0.001),
                self.stats.errors().values().sum::<u64>()
            ));
        }
        self.stats.close_window();
        let after = self.readings();
        if let Some(stop) = churn {
            let _ = stop.send(());
        }
        Ok((before, after))
    }

    /// Starts sessions that connect, chat once and leave, at
    /// `--churn-rate`, until the returned sender fires.
    fn start_churn(&mut self) -> oneshot::Sender<()> {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let rate = self.args.churn_rate.max(1);
        let mut n = u64::from(self.args.sessions);
        let template = Plan {
            idx: 0,
            start: Start::OnMatch,
            interval: Some(Duration::from_millis(1)),
            offset: Duration::ZERO,
            limit: Some(1),
            size: self.args.size,
            confirm_every: self.confirm_every(),
            churn: true,
        };
        // A churn session that fails counts as an error; it does not stop
        // the run.
        let opener = Opener {
            fatal: None,
            ..self.opener()
        };
        self.tasks.spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_secs(1) / rate);
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = pace.tick() => {
                        let plan = Plan { idx: usize::try_from(n).unwrap_or(0), ..template };
                        sessions.spawn(opener.open(n, plan));
                        n += 1;
                        while sessions.try_join_next().is_some() {}
                    }
                }
            }
            while sessions.join_next().await.is_some() {}
        });
        stop
    }

    /// Sleeps, failing early if a connection failed fatally.
    async fn sleep_watching(&self, d: Duration) -> anyhow::Result<()> {
        tokio::time::sleep(d).await;
        match self.fatal.get() {
            Some(e) => bail!("{e}"),
            None => Ok(()),
        }
    }

    /// Waits until `done` holds, showing `what`, for at most `within`.
    async fn wait(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if done() {
                return Ok(());
            }
            if let Some(e) = self.fatal.get() {
                bail!("{e}");
            }
            if started.elapsed() >= within {
                bail!(
                    "{what}: not done within {within:?} ({} of {} sessions matched, {} bots \
                     ready, errors: {:?})",
                    self.stats.sessions_matched.get(),
                    self.args.sessions,
                    self.stats.bots_ready.get(),
                    self.stats.errors()
                );
            }
            self.progress.status(format!(
                "{what}: {} matched, {} bots ready, {} in flight",
                self.stats.sessions_matched.get(),
                self.stats.bots_ready.get(),
                self.stats.outstanding()
            ));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn report(&self, baseline: Readings, before: Readings, after: Readings) -> Report {
        let s = &self.stats;
        let window = s.window().as_secs_f64();
        let messages = s.window_msgs.get();
        let rtt = Percentiles::of(&s.rtt.merged());
        let ack = Percentiles::of(&s.ack.merged());
        let matched = Percentiles::of(&s.matched.merged());
        let errors = s.errors();
        let out = s.out.tally();
        let back = s.back.tally();
        let seq = *s.seq.lock().unwrap_or_else(|p| p.into_inner());
        let cpu_secs = |a: Option<ProcSample>, b: Option<ProcSample>| {
            Some(b?.cpu.saturating_sub(a?.cpu).as_secs_f64())
        };
        let server_cpu = cpu_secs(before.server, after.server);
        let client_cpu = cpu_secs(before.client, after.client).unwrap_or(0.0);
        let connections = self.shape.connections;
        Report {
            scenario: self.scenario.name().to_owned(),
            target: format!("{:?}", self.args.target).to_lowercase(),
            label: self.args.label.clone(),
            sessions: u64::from(self.args.sessions),
            connections,
            rate: if self.scenario == Scenario::Idle {
                0.0
            } else {
                self.args.rate
            },
            size: self.args.size as u64,
            window_s: window,
            messages,
            msgs_per_s: if window > 0.0 {
                messages as f64 / window
            } else {
                0.0
            },
            sent: s.out.sent.get() + s.back.sent.get(),
            lost: s.outstanding(),
            duplicated: out.duplicated + back.duplicated,
            reordered: out.reordered + back.reordered,
            seq_errors: seq.duplicated + seq.reordered + seq.missing,
            errors: errors.values().sum(),
            error_kinds: errors,
            rtt,
            ack,
            send_lag: Percentiles::of(&s.send_lag.merged()),
            matched,
            sessions_done: s.sessions_done.get(),
            churn_match: Percentiles::of(&s.churn_matched.merged()),
            positions: s.positions.get(),
            rtt_p50_ms: rtt.p50,
            rtt_p99_ms: rtt.p99,
            ack_p99_ms: ack.p99,
            match_p99_ms: matched.p99,
            server_pids: self.pids.clone(),
            server_cpu_us_per_msg: server_cpu
                .filter(|_| messages > 0)
                .map(|cpu| cpu * 1e6 / messages as f64),
            server_cpu_pct: server_cpu
                .filter(|_| window > 0.0)
                .map(|cpu| cpu * 100.0 / window),
            server_rss_kb: after.server.map(|p| p.rss_kb),
            server_rss_kb_per_conn: match (baseline.server, after.server) {
                (Some(b), Some(a)) if connections > 0 => {
                    Some(a.rss_kb.saturating_sub(b.rss_kb) as f64 / connections as f64)
                }
                _ => None,
            },
            client_cpu_pct: if window > 0.0 {
                client_cpu * 100.0 / window
            } else {
                0.0
            },
            client_cpus: sysinfo::cpus() as u64,
            loadavg_before: 0.0,
            machine_busy_before_pct: 0.0,
            loadavg_after: sysinfo::loadavg().unwrap_or(0.0),
            warnings: Vec::new(),
        }
    }
}

/// A session's place within one send interval, in [0, 1), spread evenly
/// and reproducibly by `seed`.
fn phase_of(seed: u64, idx: u64) -> f64 {
    // The golden-ratio sequence spreads any number of sessions evenly.
    let x = (idx as f64 + seed as f64 * 0.5).mul_add(0.618_033_988_749_895, 0.0);
    x.fract()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_evenly_over_the_interval() {
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let p = phase_of(1, i);
            assert!((0.0..1.0).contains(&p));
            let bucket = (0..10).rev().find(|&b| p * 10.0 >= f64::from(b)).unwrap();
            buckets[usize::try_from(bucket).unwrap()] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (900..=1100).contains(&b)),
            "{buckets:?}"
        );
    }
}
