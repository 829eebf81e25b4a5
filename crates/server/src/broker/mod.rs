//! The broker: the shared registries and the router actor, behind a cheap
//! cloneable [`Broker`] handle.
//!
//! Two planes, two owners:
//!
//! - **Control plane** (hello, resume, assignment, status, end, grace
//!   timers): one actor task owns the core [`haven_core::Router`] and
//!   carries out its effects in order. Socket tasks talk to it through a
//!   bounded command channel. It never sees chat text.
//! - **Data plane** (chat messages, acks, typing, delivery): each session's
//!   [`SessionCell`] behind its own short mutex. Socket tasks call it
//!   directly, so chat never funnels through the actor or a global lock.
//!
//! The session index and the resume-token index are DashMaps of handles;
//! no guard is ever held across an `.await`.

mod actor;
pub(crate) mod session;

use std::sync::Arc;

use dashmap::DashMap;
use haven_core::{CounsellorId, ReplayLimits, RouterConfig, SessionId, Status};
use haven_protocol::common::{Epoch, Limits, ResumeToken};
use haven_protocol::counsellor::ResumePoint;
use haven_protocol::seeker;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use self::session::{SeekerInfo, SessionCell};
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::encode_seeker;

/// How deep the actor's command queue is. Socket tasks wait when it is
/// full, which slows hellos and resumes but never chat.
const COMMAND_QUEUE: usize = 8192;

/// Settings the broker needs from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct BrokerSettings {
    pub(crate) router: RouterConfig,
    pub(crate) replay: ReplayLimits,
    pub(crate) limits: Limits,
}

/// Who a resume token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResumeTarget {
    Seeker(SessionId),
    Counsellor(CounsellorId),
}

/// A logged-in counsellor, as the broker needs them.
#[derive(Clone, Debug)]
pub(crate) struct CounsellorLogin {
    pub(crate) id: CounsellorId,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) capacity: u32,
    /// The login this socket was opened with; logging out closes it.
    pub(crate) auth: TokenHash,
}

/// Why a resume did not work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResumeFailed;

/// Requests to the router actor.
#[derive(Debug)]
enum Command {
    SeekerArrived {
        cell: Arc<SessionCell>,
    },
    SeekerResume {
        session: SessionId,
        conn: ConnHandle,
        last_seq: u64,
        token: String,
        reply: oneshot::Sender<Result<Arc<SessionCell>, ResumeFailed>>,
    },
    SeekerEnd {
        session: SessionId,
    },
    SeekerGone {
        session: SessionId,
        conn_id: u64,
    },
    CounsellorAttach {
        login: CounsellorLogin,
        conn: ConnHandle,
        /// `None` for `hello`, the client's positions for `resume`.
        points: Option<Vec<ResumePoint>>,
        token: String,
        reply: oneshot::Sender<Result<(), ResumeFailed>>,
    },
    SetStatus {
        counsellor: CounsellorId,
        status: Status,
    },
    CounsellorEnd {
        counsellor: CounsellorId,
        session: SessionId,
        reply: oneshot::Sender<bool>,
    },
    CounsellorGone {
        counsellor: CounsellorId,
        conn_id: u64,
    },
    Logout {
        auth: TokenHash,
    },
}

#[derive(Debug)]
struct Shared {
    sessions: DashMap<SessionId, Arc<SessionCell>>,
    resume: DashMap<TokenHash, ResumeTarget>,
    commands: mpsc::Sender<Command>,
    epoch: Epoch,
    settings: BrokerSettings,
}

/// A cheap handle to the broker.
#[derive(Clone, Debug)]
pub(crate) struct Broker {
    shared: Arc<Shared>,
}

impl Broker {
    /// Starts the router actor on `tracker`; it stops when `shutdown` fires.
    pub(crate) fn start(
        settings: BrokerSettings,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let shared = Arc::new(Shared {
            sessions: DashMap::new(),
            resume: DashMap::new(),
            commands,
            epoch: Epoch(tokens::new_epoch()),
            settings,
        });
        let actor = actor::Actor::new(shared.clone());
        tracker.spawn(actor.run(rx, shutdown));
        Self { shared }
    }

    /// The live session with this id.
    pub(crate) fn session(&self, id: SessionId) -> Option<Arc<SessionCell>> {
        self.shared.sessions.get(&id).map(|c| c.clone())
    }

    /// How many sessions exist (waiting or active).
    pub(crate) fn session_count(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Spends a resume token: returns who it belonged to, at most once.
    pub(crate) fn take_resume(&self, token: &str) -> Option<ResumeTarget> {
        self.shared
            .resume
            .remove(&tokens::hash(token))
            .map(|(_, t)| t)
    }

    async fn command(&self, cmd: Command) {
        // Fails only when the actor is gone, i.e. during shutdown, when the
        // socket is closing anyway.
        let _ = self.shared.commands.send(cmd).await;
    }

    /// A new help-seeker: creates the session, queues `welcome` on `conn`
    /// and puts them in the queue. Returns the session's cell.
    pub(crate) async fn seeker_hello(
        &self,
        info: SeekerInfo,
        conn: &ConnHandle,
    ) -> Arc<SessionCell> {
        let token = tokens::new_token();
        let hash = tokens::hash(&token);
        let mut id = tokens::new_session_id();
        while self.shared.sessions.contains_key(&id) {
            id = tokens::new_session_id();
        }
        let cell = SessionCell::new(id, info, self.shared.settings.replay, conn.clone(), hash);
        self.shared.sessions.insert(id, cell.clone());
        self.shared.resume.insert(hash, ResumeTarget::Seeker(id));
        conn.send(encode_seeker(&seeker::ServerMessage::Welcome {
            protocol: haven_protocol::PROTOCOL_VERSION,
            session: cell.wire.clone(),
            token: ResumeToken(token),
            grace_secs: secs(self.shared.settings.router.seeker_grace),
            epoch: self.shared.epoch.clone(),
            limits: self.shared.settings.limits,
        }));
        self.command(Command::SeekerArrived { cell: cell.clone() })
            .await;
        cell
    }

    /// A help-seeker resumes `session` on `conn`.
    pub(crate) async fn seeker_resume(
        &self,
        session: SessionId,
        last_seq: u64,
        conn: &ConnHandle,
    ) -> Result<Arc<SessionCell>, ResumeFailed> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::SeekerResume {
            session,
            conn: conn.clone(),
            last_seq,
            token: tokens::new_token(),
            reply,
        })
        .await;
        rx.await.unwrap_or(Err(ResumeFailed))
    }

    /// The help-seeker ends their session.
    pub(crate) async fn seeker_end(&self, session: SessionId) {
        self.command(Command::SeekerEnd { session }).await;
    }

    /// A help-seeker's socket closed.
    pub(crate) async fn seeker_gone(&self, session: SessionId, conn_id: u64) {
        self.command(Command::SeekerGone { session, conn_id }).await;
    }

    /// A counsellor starts (`points == None`) or resumes on `conn`. The
    /// actor queues `welcome` or `resumed` and their sessions' backlog.
    pub(crate) async fn counsellor_attach(
        &self,
        login: CounsellorLogin,
        conn: &ConnHandle,
        points: Option<Vec<ResumePoint>>,
    ) -> Result<(), ResumeFailed> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::CounsellorAttach {
            login,
            conn: conn.clone(),
            points,
            token: tokens::new_token(),
            reply,
        })
        .await;
        rx.await.unwrap_or(Err(ResumeFailed))
    }

    /// A counsellor goes available or away.
    pub(crate) async fn set_status(&self, counsellor: CounsellorId, status: Status) {
        self.command(Command::SetStatus { counsellor, status })
            .await;
    }

    /// A counsellor ends one of their sessions; `false` if it is not theirs.
    pub(crate) async fn counsellor_end(
        &self,
        counsellor: CounsellorId,
        session: SessionId,
    ) -> bool {
        let (reply, rx) = oneshot::channel();
        self.command(Command::CounsellorEnd {
            counsellor,
            session,
            reply,
        })
        .await;
        rx.await.unwrap_or(false)
    }

    /// A counsellor's socket closed.
    pub(crate) async fn counsellor_gone(&self, counsellor: CounsellorId, conn_id: u64) {
        self.command(Command::CounsellorGone {
            counsellor,
            conn_id,
        })
        .await;
    }

    /// A login was ended: close the sockets opened with it.
    pub(crate) async fn logout(&self, auth: TokenHash) {
        self.command(Command::Logout { auth }).await;
    }
}

/// Whole seconds, saturating.
pub(crate) fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
