//! The `haven-loadtest` command. See loadtest/README.md.

use std::process::ExitCode;

use clap::Parser as _;
use haven_loadtest::cli::{Cli, Command};
use haven_loadtest::scenario::{self, Scenario};
use haven_loadtest::spawn::Bots;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (scenario, args) = match command {
        Command::Chat(a) => (Scenario::Chat, a),
        Command::Idle(a) => (Scenario::Idle, a),
        Command::Churn(a) => (Scenario::Churn, a),
        Command::Queue(a) => (Scenario::Queue, a),
        Command::Provision(p) => {
            let bots = Bots {
                prefix: p.prefix,
                password: p.password,
                count: p.count,
                capacity: p.capacity,
            };
            let added = bots.provision(&p.data_dir)?;
            eprintln!(
                "{added} bot accounts added to {} ({} asked for; existing ones kept)",
                p.data_dir.display(),
                p.count
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Report(r) => {
            haven_loadtest::bench::write_page(&r)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let report = scenario::run(scenario, &args).await?;
    if args.json {
        #[allow(clippy::print_stdout)] // The JSON line is the output.
        {
            println!("{}", report.json());
        }
    } else {
        eprint!("{}", report.summary());
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
