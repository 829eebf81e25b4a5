//! Deleting transcripts older than their topic's `retention_days`.
//!
//! A finished transcript's age is its file's modification time: the moment
//! its last record (normally the end) was written. Sweeps run at start and
//! then every hour, off the runtime, and log counts only.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Plan;

/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(3600);

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    pub(crate) deleted: u32,
    pub(crate) kept: u32,
    pub(crate) failed: u32,
}

/// Deletes the finished transcripts under `dir` whose topic keeps them
/// for fewer days than their age at `now`. Topics without a
/// `retention_days` (and directories of topics no longer configured) are
/// kept.
pub(crate) fn sweep(dir: &Path, plan: &Plan, now: SystemTime) -> Swept {
    let mut swept = Swept::default();
    for path in super::files(dir, super::DONE_EXT) {
        let topic = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        let days = topic
            .and_then(|t| plan.topics.iter().find(|p| p.name == t))
            .and_then(|p| p.retention_days);
        let Some(days) = days else {
            swept.kept += 1;
            continue;
        };
        let limit = Duration::from_secs(u64::from(days) * 86_400);
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        if age.is_some_and(|age| age > limit) {
            if std::fs::remove_file(&path).is_ok() {
                swept.deleted += 1;
            } else {
                swept.failed += 1;
            }
        } else {
            swept.kept += 1;
        }
    }
    swept
}

/// Sweeps now and every hour until shutdown.
pub(crate) fn spawn(
    dir: std::path::PathBuf,
    plan: Arc<Plan>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    if plan.topics.iter().all(|t| t.retention_days.is_none()) {
        return;
    }
    tasks.spawn(async move {
        loop {
            let (dir2, plan2) = (dir.clone(), plan.clone());
            let swept =
                tokio::task::spawn_blocking(move || sweep(&dir2, &plan2, SystemTime::now())).await;
            match swept {
                Ok(s) if s.failed > 0 => {
                    warn!(
                        deleted = s.deleted,
                        kept = s.kept,
                        failed = s.failed,
                        "transcript retention: some expired transcripts could not be deleted"
                    );
                }
                Ok(s) => info!(
                    deleted = s.deleted,
                    kept = s.kept,
                    "transcript retention sweep"
                ),
                Err(_) => warn!("transcript retention sweep did not finish"),
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = shutdown.cancelled() => break,
            }
        }
    });
}
