//! `haven keygen` and `haven transcript decrypt|verify`: the offline side of
//! transcripts. None of it needs the server or its configuration.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use haven_transcript::{Identity, Kind, Opened, Record, Role, Verdict};

/// Reading transcripts offline.
#[derive(Debug, Subcommand)]
pub(crate) enum TranscriptCommand {
    /// Print transcripts readably (or as JSON lines), with their verdict.
    Decrypt {
        /// An identity file from `haven keygen`; repeat for transcripts
        /// sealed to several keys (after a rotation).
        #[arg(long = "identity", required = true)]
        identities: Vec<PathBuf>,
        /// One JSON object per record instead of text.
        #[arg(long)]
        json: bool,
        /// Transcript files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Say whether each transcript is complete, truncated or tampered.
    /// Without an identity, order, chain and completeness are checked;
    /// with one, every byte is.
    Verify {
        /// Identity files, to check inside the records too.
        #[arg(long = "identity")]
        identities: Vec<PathBuf>,
        /// Transcript files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// `haven keygen --out FILE`: a new identity in FILE (mode 0600, never
/// overwritten); the recipient line goes to stdout.
#[allow(clippy::print_stdout)] // The recipient line is the output.
pub(crate) fn keygen(out: &Path) -> anyhow::Result<()> {
    let identity = Identity::generate();
    let recipient = identity.recipient().to_text();
    let text = format!(
        "# Haven transcript identity: it opens every transcript sealed to\n\
         # {recipient}\n\
         # Keep it offline, never on the server. Destroying it makes those\n\
         # transcripts unreadable for good (crypto-shredding).\n{}\n",
        identity.to_text()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    println!("{recipient}");
    Ok(())
}

fn identities(paths: &[PathBuf]) -> anyhow::Result<Vec<Identity>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Identity::parse(&text).with_context(|| format!("{}", p.display()))
        })
        .collect()
}

fn verdict_text(opened: &Opened) -> String {
    match &opened.verdict {
        Verdict::Complete => "complete".to_owned(),
        Verdict::Truncated => "truncated (no end record: cut short, or still going)".to_owned(),
        Verdict::Tampered(d) => format!("TAMPERED at record {}: {}", d.record, d.why),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || ms.to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

fn line(record: &Record, nickname: &str) -> String {
    let b = &record.body;
    let name = b.from.as_deref().unwrap_or("?");
    let who = match b.role {
        Some(Role::Seeker) => format!("{nickname} (help-seeker)"),
        Some(Role::Supervisor) => format!("{name} (supervisor)"),
        Some(Role::Counsellor) | None => name.to_owned(),
    };
    let what = match record.kind {
        Kind::Start => format!(
            "— chat starts: topic {}, nickname {}",
            b.topic.as_deref().unwrap_or("?"),
            b.nickname.as_deref().unwrap_or("(none)")
        ),
        Kind::Message => format!("{who}: {}", b.text.as_deref().unwrap_or("")),
        Kind::Transfer => format!(
            "— handed on by {name} to {}",
            b.to.as_deref()
                .or(b.topic.as_deref())
                .unwrap_or("the queue")
        ),
        Kind::Join => format!("— {who} joined"),
        Kind::Leave => format!("— {who} left"),
        Kind::Notice => format!("— {}", b.text.as_deref().unwrap_or("")),
        Kind::End => format!("— chat ends ({})", b.text.as_deref().unwrap_or("")),
    };
    format!("{}  {what}", time(record.at))
}

/// Runs a transcript command; returns whether every transcript was
/// readable and untampered.
#[allow(clippy::print_stdout)] // Transcripts and verdicts are the output.
pub(crate) fn run(cmd: TranscriptCommand) -> anyhow::Result<bool> {
    let mut all_good = true;
    match cmd {
        TranscriptCommand::Decrypt {
            identities: ids,
            json,
            paths,
        } => {
            let ids = identities(&ids)?;
            for path in paths {
                let data = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let opened = haven_transcript::read(&data, &ids);
                all_good &= !matches!(opened.verdict, Verdict::Tampered(_));
                if json {
                    for r in &opened.records {
                        println!("{}", serde_json::to_string(r)?);
                    }
                    continue;
                }
                let nickname = opened
                    .records
                    .first()
                    .and_then(|r| r.body.nickname.clone())
                    .unwrap_or_else(|| "Help-seeker".to_owned());
                println!(
                    "== {} · session {} · {}",
                    path.display(),
                    hex(&opened.session),
                    verdict_text(&opened)
                );
                for r in &opened.records {
                    println!("{}", line(r, &nickname));
                }
            }
        }
        TranscriptCommand::Verify {
            identities: ids,
            paths,
        } => {
            let ids = identities(&ids)?;
            for path in paths {
                let data = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let opened = if ids.is_empty() {
                    haven_transcript::verify(&data)
                } else {
                    haven_transcript::read(&data, &ids)
                };
                all_good &= !matches!(opened.verdict, Verdict::Tampered(_));
                println!("{}: {}", path.display(), verdict_text(&opened));
            }
        }
    }
    if !all_good {
        bail!("some transcripts are tampered or sealed to keys not given");
    }
    Ok(all_good)
}
