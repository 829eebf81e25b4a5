//! The audit log: who watched, whispered in, joined or left which
//! session; every staff login, logout, failed second factor and ended or
//! revoked login; password and second-factor changes; blocks and their
//! lifting; cleared queues and paused topics; and when. One JSON object per
//! line in `audit.log` under the data dir (mode 0600), appended and synced;
//! never any text of the chat or the whisper, and never an address.

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
    /// Who did it: an account name, `haven` for the server itself (a
    /// login that expired or went idle), `cli` for the command line.
    #[serde(alias = "supervisor")]
    pub(crate) actor: String,
    /// What they did.
    pub(crate) action: Action,
    /// The session it concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
    /// The account, topic or block it concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    /// A fixed word or two more (why a login ended, a block's reason and
    /// length), never anything a person wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

impl Entry {
    /// An entry for now.
    pub(crate) fn new(actor: &str, action: Action) -> Self {
        Self {
            at: crate::broker::session::now_ms(),
            actor: actor.to_owned(),
            action,
            session: None,
            target: None,
            detail: None,
        }
    }

    pub(crate) fn session(mut self, session: &str) -> Self {
        self.session = Some(session.to_owned());
        self
    }

    pub(crate) fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    pub(crate) fn detail(mut self, detail: &str) -> Self {
        self.detail = Some(detail.to_owned());
        self
    }
}

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// Started watching a session silently.
    Observe,
    /// Stopped watching it.
    StopObserving,
    /// Whispered to its counsellors.
    Whisper,
    /// Joined it visibly.
    Join,
    /// Left it after joining.
    Leave,
    /// Logged in.
    Login,
    /// Logged out.
    Logout,
    /// A login ended by itself (`detail`: `expired` or `idle`).
    LoginEnded,
    /// A login's account was removed or changed elsewhere, so its logins
    /// ended (`detail`: `removed` or `changed`).
    LoginRevoked,
    /// Ended every login of `target`.
    LoginsEnded,
    /// A second factor was wrong.
    SecondFactorFailed,
    /// Changed their own password.
    PasswordChanged,
    /// Set up a second factor.
    SecondFactorEnrolled,
    /// Used a recovery code.
    RecoveryCodeUsed,
    /// Removed their second factor.
    SecondFactorRemoved,
    /// Blocked a help-seeker for a while (`detail`: reason and length).
    Blocked,
    /// Lifted a block early.
    BlockLifted,
    /// Ended the waiting sessions of a suspected flood.
    QueueCleared,
    /// Paused a topic (on every node).
    TopicPaused,
    /// Resumed a paused topic.
    TopicResumed,
}

impl From<SupervisionAction> for Action {
    fn from(action: SupervisionAction) -> Self {
        match action {
            SupervisionAction::Observe => Action::Observe,
            SupervisionAction::StopObserving => Action::StopObserving,
            SupervisionAction::Whisper => Action::Whisper,
            SupervisionAction::Join => Action::Join,
            SupervisionAction::Leave => Action::Leave,
        }
    }
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
            let mut file = crate::private::append(&path)?;
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
