//! The audit log of supervision: who watched, whispered in, joined or left
//! which session, and when. One JSON object per line in `audit.log` under
//! the data dir, appended and synced; never any text of the chat or the
//! whisper.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use haven_protocol::events::SupervisionAction;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::warn;

/// The file name under the data dir.
pub(crate) const FILE: &str = "audit.log";
/// The most a read of the log returns.
const READ_LIMIT: usize = 1000;

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// When, in milliseconds since the Unix epoch.
    pub(crate) at: u64,
    /// The supervisor's account name.
    pub(crate) supervisor: String,
    /// The session.
    pub(crate) session: String,
    /// What they did.
    pub(crate) action: SupervisionAction,
}

/// The audit log. Writes are serialised so lines never interleave.
#[derive(Debug)]
pub(crate) struct AuditLog {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl AuditLog {
    pub(crate) fn new(data_dir: &std::path::Path) -> Self {
        Self {
            path: data_dir.join(FILE),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Appends an entry and syncs it to disk. A failure is logged (without
    /// the entry) and does not stop the supervisor's action.
    pub(crate) async fn record(&self, entry: Entry) {
        let Ok(mut line) = serde_json::to_string(&entry) else {
            return;
        };
        line.push('\n');
        let path = self.path.clone();
        let _held = self.lock.lock().await;
        let written = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(line.as_bytes())?;
            file.sync_data()
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            warn!("could not write the audit log");
        }
    }

    /// The last entries, newest last.
    pub(crate) async fn read(&self, limit: usize) -> Vec<Entry> {
        let path = self.path.clone();
        let limit = limit.clamp(1, READ_LIMIT);
        let _held = self.lock.lock().await;
        tokio::task::spawn_blocking(move || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let entries: Vec<Entry> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let skip = entries.len().saturating_sub(limit);
            entries.into_iter().skip(skip).collect()
        })
        .await
        .unwrap_or_default()
    }
}
