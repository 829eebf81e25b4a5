//! The `haven` command: serve, check the configuration, manage accounts,
//! and make keys for and read transcripts.

mod transcript_cli;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use haven_server::accounts::{AccountSpec, AccountStore, Role};
use haven_server::config::{Config, Loaded};
use haven_server::{Server, TranscriptKeys, telemetry};
use tracing::{info, warn};

/// mimalloc rather than glibc's malloc: a relayed message allocates a
/// handful of small buffers, and glibc's per-thread arenas also cost an
/// `mprotect` now and then. See docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Haven: anonymous chat counselling.
#[derive(Debug, Parser)]
#[command(name = "haven", version, about)]
struct Cli {
    /// Configuration file (default: config/haven.toml when it exists).
    #[arg(long, global = true, env = "HAVEN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Check the configuration and print it as it takes effect.
    CheckConfig,
    /// Manage counsellor, supervisor and admin accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Make a transcript identity: the private key goes to FILE (keep it
    /// offline); the recipient line for `transcript_recipients` is printed.
    Keygen {
        /// Where to write the identity; must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Read transcripts offline.
    #[command(subcommand)]
    Transcript(transcript_cli::TranscriptCommand),
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Add an account. Prints a generated password unless --password-stdin.
    Add {
        /// Login name: lowercase letters, digits, '.', '_' or '-'.
        name: String,
        /// counsellor, supervisor or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an account's name shown, skills or capacity.
    Update {
        /// Login name.
        name: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// List accounts.
    List,
    /// Remove an account. Its logins end at once on every running server.
    Remove {
        /// Login name.
        name: String,
    },
    /// End every login of an account now, on every running server using
    /// this data dir, and forget the browsers it logged in from.
    Revoke {
        /// Login name.
        name: String,
    },
    /// Remove an account's second factor (a lost phone); it sets up a new
    /// one at its next login where its role requires one. Ends its logins.
    #[command(name = "reset-2fa")]
    ResetSecondFactor {
        /// Login name.
        name: String,
    },
    /// Set a new password. Prints a generated one unless --password-stdin.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// An account's profile on the command line.
#[derive(Debug, clap::Args)]
struct ProfileArgs {
    /// The name help-seekers see (default: the login name, capitalised).
    #[arg(long)]
    display_name: Option<String>,
    /// Sessions taken at once (default: session.default_capacity).
    #[arg(long)]
    capacity: Option<u32>,
    /// The most they may raise it to (default: session.default_max_capacity).
    #[arg(long)]
    max_capacity: Option<u32>,
    /// Topics served, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    topics: Option<Vec<String>>,
    /// Languages spoken, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    languages: Option<Vec<String>>,
}

impl ProfileArgs {
    /// Checks the skills against the configured topics and languages.
    fn spec(self, config: &Config) -> anyhow::Result<AccountSpec> {
        let plan = config
            .plan()
            .map_err(|(key, problem)| anyhow::anyhow!("{key}: {problem}"))?;
        for topic in self.topics.iter().flatten() {
            if plan.topic(topic).is_none() {
                let known: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
                bail!("unknown topic {topic:?}; the topics are {known:?}");
            }
        }
        for language in self.languages.iter().flatten() {
            if plan.language(language).is_none() {
                bail!(
                    "unknown language {language:?}; the languages are {:?}",
                    plan.languages
                );
            }
        }
        if let (Some(capacity), Some(max)) = (self.capacity, self.max_capacity)
            && capacity > max
        {
            bail!("--capacity {capacity} is above --max-capacity {max}");
        }
        if self.capacity == Some(0) || self.max_capacity == Some(0) {
            bail!("capacities start at 1");
        }
        Ok(AccountSpec {
            display_name: self.display_name,
            capacity: self.capacity,
            max_capacity: self.max_capacity,
            topics: self.topics,
            languages: self.languages,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haven: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Loaded> {
    Config::load(path).context("configuration")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The offline commands need no configuration.
    let command = match cli.command {
        Command::Keygen { out } => return transcript_cli::keygen(&out),
        Command::Transcript(cmd) => return transcript_cli::run(cmd).map(|_| ()),
        other => other,
    };
    let loaded = load(cli.config.as_deref())?;
    match command {
        Command::Serve => serve(loaded),
        Command::CheckConfig => check_config(&loaded),
        Command::Account(cmd) => account(&loaded.config, cmd),
        Command::Keygen { .. } | Command::Transcript(_) => Ok(()),
    }
}

#[allow(clippy::print_stdout)] // The effective configuration is the output.
fn check_config(loaded: &Loaded) -> anyhow::Result<()> {
    let source = loaded.file.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    println!("# configuration OK (file: {source}; HAVEN_* variables applied)");
    print!("{}", loaded.config.to_redacted_toml());
    Ok(())
}

fn serve(loaded: Loaded) -> anyhow::Result<()> {
    let config = loaded.config;
    telemetry::init(&config.log);
    // No transparent huge pages, as Redis does for the same reason: the
    // first touch of a fresh 2 MiB page zeroes all of it inside the
    // allocation that touched it, a stall of milliseconds for every socket
    // served by that thread (seen with perf as `clear_page_erms` under
    // `do_huge_pmd_anonymous_page` while replay buffers grew under load).
    // Ordinary 4 KiB pages spread that cost thinly.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "could not turn off transparent huge pages");
    }
    // As many threads as the process may use CPUs (its affinity and its
    // cgroup's quota). On one CPU a single-threaded runtime does the same
    // work without the hand-offs between a worker and the main thread, and
    // without the work-stealing bookkeeping (2–3 % fewer instructions per
    // relayed message). If the count is unknown, Tokio's default.
    let single = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if single {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        info!(single_threaded = single, "runtime started");
        match &loaded.file {
            Some(file) => info!(file = %file.display(), "configuration loaded"),
            None => info!("no config file; using built-in defaults"),
        }
        raise_file_limit(config.limits.max_connections);
        survive_file_size_limit();
        let data_dir = config.data_dir.clone();
        let mut server = Server::bind(config).await?;
        if let Some(password) = server.take_initial_admin_password() {
            show_initial_password(&data_dir, &password)?;
        }
        if let Some(keys) = server.transcript_keys() {
            tokio::spawn(reload_recipients_on_hangup(keys, loaded.file.clone()));
        }
        server.run(shutdown_signal()).await;
        anyhow::Ok(())
    })
}

/// Each socket is a file descriptor, and service managers often start
/// processes with a soft limit of 1024. Raises the soft limit to the hard
/// one, and warns when `limits.max_connections` still does not fit.
fn raise_file_limit(max_connections: u32) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    if limit.current != hard {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        );
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    // Room for the listener, logs, the accounts file and plain HTTP.
    let needed = u64::from(max_connections) + 128;
    if soft < needed {
        warn!(
            open_files = soft,
            max_connections,
            "the open-file limit is below limits.max_connections: upgrades beyond it fail; \
             raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower max_connections"
        );
    }
}

/// A write beyond the file-size limit (`ulimit -f`) raises SIGXFSZ, which
/// kills the process by default. Listening for it turns it into an error
/// of that one write (`EFBIG`), which the writer handles: a transcript
/// stops, the server does not.
fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let xfsz = SignalKind::from_raw(rustix::process::Signal::XFSZ.as_raw());
        match signal(xfsz) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        warn!("a write went beyond the file-size limit (ulimit -f)");
                    }
                });
            }
            Err(e) => warn!(error = %e, "cannot listen for SIGXFSZ"),
        }
    }
}

/// Shows the generated admin password once: on the terminal when there is
/// one, otherwise in a file only the server's user can read (never in a
/// log).
fn show_initial_password(data_dir: &Path, password: &str) -> anyhow::Result<()> {
    let text = format!(
        "\n  First start: created account `admin` with password\n\n      {password}\n\n  \
         It is shown only this once. Log in and add counsellors with\n  \
         `haven account add NAME --role counsellor`.\n\n"
    );
    if std::io::stderr().is_terminal() {
        eprint!("{text}");
        return Ok(());
    }
    let path = data_dir.join(haven_server::accounts::INITIAL_PASSWORD_FILE);
    let mut file = haven_server::private::file_options()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(format!("{password}\n").as_bytes())?;
    warn!(file = %path.display(), "created account `admin`; its password is in this file (read it, then delete it)");
    Ok(())
}

/// On SIGHUP, reads the configuration again and seals new transcript
/// records to the last recipient it lists (key rotation without a
/// restart). Only the recipients change; everything else needs a restart.
async fn reload_recipients_on_hangup(keys: TranscriptKeys, file: Option<std::path::PathBuf>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            warn!("cannot listen for SIGHUP; transcript keys change only with a restart");
            return;
        };
        while hangups.recv().await.is_some() {
            let loaded = tokio::task::spawn_blocking({
                let file = file.clone();
                move || Config::load(file.as_deref())
            })
            .await;
            match loaded {
                Ok(Ok(loaded)) => match keys.rotate(&loaded.config.transcript_recipients) {
                    Ok(kid) => info!(kid, "SIGHUP: transcripts now sealed to this key"),
                    Err(e) => warn!(error = %e, "SIGHUP: transcript recipient unchanged"),
                },
                Ok(Err(e)) => warn!(error = %e, "SIGHUP: configuration not reloaded"),
                Err(_) => warn!("SIGHUP: configuration not reloaded"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (keys, file);
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, container stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = term => info!("SIGTERM received"),
    }
}

fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password)
}

#[allow(clippy::print_stdout)] // Command output.
fn account(config: &Config, cmd: AccountCommand) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.fill_default_topic();
    let config = &config;
    haven_server::private::create_dir(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = AccountStore::new(&config.data_dir);
    match cmd {
        AccountCommand::Add {
            name,
            role,
            profile,
            password_stdin,
        } => {
            let spec = profile.spec(config)?;
            let generated = !password_stdin;
            let password = if password_stdin {
                read_password_line()?
            } else {
                haven_server_password()
            };
            let account = store.add(&name, role, &password, &spec)?;
            println!(
                "added {} ({}, shown as {:?})",
                account.name, account.role, account.display_name
            );
            if generated {
                println!("password (shown only now): {password}");
            }
        }
        AccountCommand::Update { name, profile } => {
            let account = store.update(&name, &profile.spec(config)?)?;
            println!("updated {}", account.name);
        }
        AccountCommand::List => {
            let session = &config.session;
            for a in store.list()? {
                let capacity = a.capacity.unwrap_or(session.default_capacity);
                let max = a
                    .max_capacity
                    .unwrap_or(session.default_max_capacity)
                    .max(capacity);
                let topics = a
                    .topics
                    .map_or_else(|| "all topics".to_owned(), |t| t.join(","));
                let languages = a
                    .languages
                    .map_or_else(|| "all languages".to_owned(), |l| l.join(","));
                let second = if a.totp.is_some() { "2fa" } else { "no 2fa" };
                println!(
                    "{}\t{}\t{}\tcapacity {capacity} (max {max})\t{topics}\t{languages}\t{second}",
                    a.name, a.role, a.display_name
                );
            }
        }
        AccountCommand::Remove { name } => {
            store.remove(&name)?;
            println!("removed {name}");
        }
        AccountCommand::Revoke { name } => {
            store.revoke(&name)?;
            println!("ended every login of {name}");
        }
        AccountCommand::ResetSecondFactor { name } => {
            store.clear_second_factor(&name)?;
            println!("removed the second factor of {name} and ended its logins");
        }
        AccountCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                read_password_line()?
            } else {
                haven_server_password()
            };
            store.set_password(&name, &password)?;
            println!("password changed for {name}");
            if !password_stdin {
                println!("password (shown only now): {password}");
            }
        }
    }
    Ok(())
}

/// A generated password, from the server's token source.
fn haven_server_password() -> String {
    haven_server::accounts::generate_password()
}
