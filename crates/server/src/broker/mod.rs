//! The broker: the shared registries and the router actor, behind a cheap
//! cloneable [`Broker`] handle.
//!
//! Two planes, two owners:
//!
//! - **Control plane** (hello, resume, routing, offers, transfers, status,
//!   capacity, wrap-up, grace timers, opening hours, pauses): one actor
//!   task owns the core [`haven_core::Router`] and carries out its effects
//!   in order. Socket tasks talk to it through a bounded command channel.
//!   It never sees chat text (only a transfer's private note passes
//!   through it, on its way to the colleague).
//! - **Data plane** (chat messages, acks, typing, delivery): each session's
//!   [`SessionCell`] behind its own short mutex. Socket tasks call it
//!   directly, so chat never funnels through the actor or a global lock.
//!
//! Supervisors watch, whisper in and join a session through its cell too
//! ([`observe`]).
//!
//! The session index and the resume-token index are DashMaps of handles;
//! no guard is ever held across an `.await`.

mod actor;
pub(crate) mod observe;
mod returns;
pub(crate) mod session;

use std::sync::Arc;

use dashmap::DashMap;
use haven_core::{CounsellorId, LangId, Profile, ReplayLimits, SessionId, Status, TopicId};
use haven_protocol::common::{Epoch, Limits};
use haven_protocol::counsellor::{QueueSummary, ResumePoint};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use self::actor::handover::Handover;
pub(crate) use self::returns::Kept;
pub(crate) use self::returns::parse_code as parse_return_code;
pub(crate) use self::session::{SeekerInfo, SessionCell};
use crate::config::Plan;
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;

/// How deep the actor's command queue is. Socket tasks wait when it is
/// full, which slows hellos and resumes but never chat.
const COMMAND_QUEUE: usize = 8192;

/// Settings the broker needs from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct BrokerSettings {
    pub(crate) plan: Arc<Plan>,
    pub(crate) replay: ReplayLimits,
    pub(crate) limits: Limits,
    /// Where events and snapshots go.
    pub(crate) events: Arc<crate::events::Events>,
    /// Service level and alert thresholds.
    pub(crate) supervisor: crate::config::SupervisorConfig,
    /// Where waits are recorded.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The transcript writers, when some topic records.
    pub(crate) transcripts: Option<Arc<crate::transcripts::Transcripts>>,
    /// Help-seekers from one source that may wait at once.
    pub(crate) source_max_waiting: u32,
    /// This node's place among several, when `cluster.enabled`.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Return codes kept in Redis too, when it is configured.
    pub(crate) kept: Option<Arc<returns::Kept>>,
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
    /// Skills and capacities for routing.
    pub(crate) profile: Profile,
    /// The login this socket was opened with: when it ends, the socket
    /// closes.
    pub(crate) login: Arc<crate::auth::Login>,
}

/// A help-seeker asking for a session.
#[derive(Debug)]
pub(crate) struct HelloRequest {
    pub(crate) info: SeekerInfo,
    pub(crate) topic: TopicId,
    pub(crate) language: Option<LangId>,
    pub(crate) return_code: Option<u64>,
    /// The counsellor Redis had for `return_code` (kept before a restart),
    /// when this node's router does not know the code.
    pub(crate) returning_to: Option<CounsellorId>,
    /// The help-seeker's answer when the topic asks whether to record.
    pub(crate) transcript_consent: bool,
    /// Where they came from, as a keyed hash (per-source waiting limit,
    /// blocks).
    pub(crate) source: crate::limits::SourceTag,
}

/// Why a hello did not start a session, as the help-seeker is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HelloRefused {
    pub(crate) reason: haven_protocol::seeker::Unavailability,
    /// When a closed topic opens next (milliseconds since the Unix epoch).
    pub(crate) opens_at: Option<u64>,
    /// A paused topic's message from the coordinator.
    pub(crate) message: Option<String>,
}

/// Why a resume did not work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResumeFailed;

/// Where a counsellor hands a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferTarget {
    Counsellor(CounsellorId),
    Topic(TopicId),
}

/// Requests to the router actor.
#[derive(Debug)]
enum Command {
    SeekerHello {
        request: HelloRequest,
        conn: ConnHandle,
        reply: oneshot::Sender<Result<Arc<SessionCell>, HelloRefused>>,
    },
    SeekerResume {
        session: SessionId,
        conn: ConnHandle,
        last_seq: u64,
        /// The token resumed with.
        used: TokenHash,
        /// Where the new connection comes from.
        source: crate::limits::SourceTag,
        /// The token handed out in its place.
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
        /// `None` for `hello`, the token resumed with and the client's
        /// positions for `resume`.
        resume: Option<(TokenHash, Vec<ResumePoint>)>,
        token: String,
        reply: oneshot::Sender<Result<(), ResumeFailed>>,
    },
    SetStatus {
        counsellor: CounsellorId,
        status: Status,
    },
    SetCapacity {
        counsellor: CounsellorId,
        capacity: u32,
    },
    Ready {
        counsellor: CounsellorId,
    },
    EndAll {
        reply: oneshot::Sender<()>,
    },
    HandOver {
        reply: oneshot::Sender<actor::handover::Handover>,
    },
    TakeOver {
        handover: Box<actor::handover::Handover>,
        reply: oneshot::Sender<()>,
    },
    Answer {
        counsellor: CounsellorId,
        session: SessionId,
        accept: bool,
        reply: oneshot::Sender<Result<(), haven_core::Refusal>>,
    },
    CounsellorEnd {
        counsellor: CounsellorId,
        session: SessionId,
        reply: oneshot::Sender<Result<(), haven_core::Refusal>>,
    },
    RaiseHand {
        counsellor: CounsellorId,
        session: SessionId,
        raised: bool,
        reply: oneshot::Sender<Result<(), haven_core::Refusal>>,
    },
    Transfer {
        counsellor: CounsellorId,
        session: SessionId,
        target: TransferTarget,
        warm: bool,
        note: Option<String>,
        reply: oneshot::Sender<Result<(), haven_core::Refusal>>,
    },
    CounsellorGone {
        counsellor: CounsellorId,
        conn_id: u64,
    },
    CounsellorRevoked {
        counsellor: CounsellorId,
    },
    Pause {
        topic: TopicId,
        paused: bool,
        message: Option<String>,
        reply: oneshot::Sender<Result<(), haven_core::Refusal>>,
    },
    Queues {
        reply: oneshot::Sender<Vec<QueueSummary>>,
    },
    ClearQueue {
        topic: TopicId,
        within: std::time::Duration,
        reply: oneshot::Sender<u32>,
    },
    Colleagues {
        reply: oneshot::Sender<Vec<Colleague>>,
    },
}

/// A connected counsellor, as colleagues see them when choosing whom to
/// hand a session to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Colleague {
    /// Account name (what a transfer names).
    pub(crate) name: String,
    /// The name help-seekers see.
    pub(crate) display_name: String,
    /// Available, away or in wrap-up.
    pub(crate) status: haven_protocol::counsellor::CounsellorStatus,
    /// Sessions and offers they have.
    pub(crate) active: u32,
    /// Sessions they take at once.
    pub(crate) capacity: u32,
    /// The topics they serve.
    pub(crate) topics: Vec<String>,
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

/// A refusal for when the actor is gone (shutting down).
const GONE: haven_core::Refusal = haven_core::Refusal::UnknownSession;

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

    /// Return codes kept in Redis, when it is configured.
    pub(crate) fn kept(&self) -> Option<&Arc<returns::Kept>> {
        self.shared.settings.kept.as_ref()
    }

    /// The routing plan (topics and languages).
    pub(crate) fn plan(&self) -> &Plan {
        &self.shared.settings.plan
    }

    /// The live session with this id.
    pub(crate) fn session(&self, id: SessionId) -> Option<Arc<SessionCell>> {
        self.shared.sessions.get(&id).map(|c| c.clone())
    }

    /// Who a resume token belongs to, with its hash. Looking spends
    /// nothing: the token is rotated only by a resume that goes ahead (see
    /// [`haven_core::ResumeSlot`]), so a refused one (the wrong endpoint,
    /// the wrong login) leaves it good for its owner.
    pub(crate) fn resume_target(&self, token: &str) -> Option<(TokenHash, ResumeTarget)> {
        let hash = tokens::hash(token);
        self.shared.resume.get(&hash).map(|t| (hash, *t))
    }

    async fn command(&self, cmd: Command) {
        // Fails only when the actor is gone, i.e. during shutdown, when the
        // socket is closing anyway.
        let _ = self.shared.commands.send(cmd).await;
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.command(make(reply)).await;
        rx.await.ok()
    }

    /// A new help-seeker. On success the session exists, `welcome` is queued
    /// on `conn` and they are in line (or already with a counsellor).
    pub(crate) async fn seeker_hello(
        &self,
        request: HelloRequest,
        conn: &ConnHandle,
    ) -> Result<Arc<SessionCell>, HelloRefused> {
        let conn = conn.clone();
        self.ask(|reply| Command::SeekerHello {
            request,
            conn,
            reply,
        })
        .await
        .unwrap_or(Err(HelloRefused {
            reason: haven_protocol::seeker::Unavailability::Closed,
            opens_at: None,
            message: None,
        }))
    }

    /// A help-seeker resumes `session` on `conn` with the token whose hash
    /// is `used`.
    pub(crate) async fn seeker_resume(
        &self,
        session: SessionId,
        used: TokenHash,
        last_seq: u64,
        conn: &ConnHandle,
        source: crate::limits::SourceTag,
    ) -> Result<Arc<SessionCell>, ResumeFailed> {
        let conn = conn.clone();
        let token = tokens::new_token();
        self.ask(|reply| Command::SeekerResume {
            session,
            conn,
            last_seq,
            used,
            source,
            token,
            reply,
        })
        .await
        .unwrap_or(Err(ResumeFailed))
    }

    /// The help-seeker ends their session.
    pub(crate) async fn seeker_end(&self, session: SessionId) {
        self.command(Command::SeekerEnd { session }).await;
    }

    /// A help-seeker's socket closed.
    pub(crate) async fn seeker_gone(&self, session: SessionId, conn_id: u64) {
        self.command(Command::SeekerGone { session, conn_id }).await;
    }

    /// A counsellor starts (`resume == None`) or resumes on `conn` (with
    /// the token whose hash is given, and their positions). The actor
    /// queues `welcome` or `resumed` and their sessions' backlog.
    pub(crate) async fn counsellor_attach(
        &self,
        login: CounsellorLogin,
        conn: &ConnHandle,
        resume: Option<(TokenHash, Vec<ResumePoint>)>,
    ) -> Result<(), ResumeFailed> {
        let conn = conn.clone();
        let token = tokens::new_token();
        self.ask(|reply| Command::CounsellorAttach {
            login,
            conn,
            resume,
            token,
            reply,
        })
        .await
        .unwrap_or(Err(ResumeFailed))
    }

    /// A counsellor goes available or away.
    pub(crate) async fn set_status(&self, counsellor: CounsellorId, status: Status) {
        self.command(Command::SetStatus { counsellor, status })
            .await;
    }

    /// A counsellor changes their capacity (clamped to their maximum).
    pub(crate) async fn set_capacity(&self, counsellor: CounsellorId, capacity: u32) {
        self.command(Command::SetCapacity {
            counsellor,
            capacity,
        })
        .await;
    }

    /// The service stops and nothing carries its sessions over: every
    /// session ends with the reason `service_restarted`, and returns once
    /// each party's farewell is queued on their socket.
    pub(crate) async fn end_all(&self) {
        self.ask(|reply| Command::EndAll { reply }).await;
    }

    /// Everything this broker holds, as plain data, for the node that leads
    /// next. Take it once every socket has closed.
    pub(crate) async fn hand_over(&self) -> Option<Handover> {
        self.ask(|reply| Command::HandOver { reply }).await
    }

    /// Takes over what the node that led before handed over; its parties
    /// are away until they come back.
    pub(crate) async fn take_over(&self, handover: Handover) {
        self.ask(|reply| Command::TakeOver {
            handover: Box::new(handover),
            reply,
        })
        .await;
    }

    /// A counsellor ends their wrap-up early.
    pub(crate) async fn ready(&self, counsellor: CounsellorId) {
        self.command(Command::Ready { counsellor }).await;
    }

    /// A counsellor accepts or declines an offer.
    pub(crate) async fn answer(
        &self,
        counsellor: CounsellorId,
        session: SessionId,
        accept: bool,
    ) -> Result<(), haven_core::Refusal> {
        self.ask(|reply| Command::Answer {
            counsellor,
            session,
            accept,
            reply,
        })
        .await
        .unwrap_or(Err(GONE))
    }

    /// A counsellor ends (or leaves) one of their sessions.
    pub(crate) async fn counsellor_end(
        &self,
        counsellor: CounsellorId,
        session: SessionId,
    ) -> Result<(), haven_core::Refusal> {
        self.ask(|reply| Command::CounsellorEnd {
            counsellor,
            session,
            reply,
        })
        .await
        .unwrap_or(Err(GONE))
    }

    /// A counsellor raises or lowers their hand about a session.
    pub(crate) async fn raise_hand(
        &self,
        counsellor: CounsellorId,
        session: SessionId,
        raised: bool,
    ) -> Result<(), haven_core::Refusal> {
        self.ask(|reply| Command::RaiseHand {
            counsellor,
            session,
            raised,
            reply,
        })
        .await
        .unwrap_or(Err(GONE))
    }

    /// A counsellor hands a session on.
    pub(crate) async fn transfer(
        &self,
        counsellor: CounsellorId,
        session: SessionId,
        target: TransferTarget,
        warm: bool,
        note: Option<String>,
    ) -> Result<(), haven_core::Refusal> {
        self.ask(|reply| Command::Transfer {
            counsellor,
            session,
            target,
            warm,
            note,
            reply,
        })
        .await
        .unwrap_or(Err(GONE))
    }

    /// A counsellor's socket closed.
    pub(crate) async fn counsellor_gone(&self, counsellor: CounsellorId, conn_id: u64) {
        self.command(Command::CounsellorGone {
            counsellor,
            conn_id,
        })
        .await;
    }

    /// A counsellor's logins were revoked (their account removed or
    /// changed, or ended by a supervisor): their socket closes, and what
    /// they held is handed on at once rather than after a grace period.
    pub(crate) async fn counsellor_revoked(&self, counsellor: CounsellorId) {
        self.command(Command::CounsellorRevoked { counsellor })
            .await;
    }

    /// A coordinator pauses or resumes a topic, with a message for those
    /// waiting and arriving.
    pub(crate) async fn pause(
        &self,
        topic: TopicId,
        paused: bool,
        message: Option<String>,
    ) -> Result<(), haven_core::Refusal> {
        self.ask(|reply| Command::Pause {
            topic,
            paused,
            message,
            reply,
        })
        .await
        .unwrap_or(Err(GONE))
    }

    /// Every connected counsellor, by display name.
    pub(crate) async fn colleagues(&self) -> Vec<Colleague> {
        self.ask(|reply| Command::Colleagues { reply })
            .await
            .unwrap_or_default()
    }

    /// Ends the waits in `topic` of help-seekers who arrived within
    /// `within`, have written nothing and are not returning (a suspected
    /// flood of fakes). Returns how many.
    pub(crate) async fn clear_queue(&self, topic: TopicId, within: std::time::Duration) -> u32 {
        self.ask(|reply| Command::ClearQueue {
            topic,
            within,
            reply,
        })
        .await
        .unwrap_or(0)
    }

    /// Every topic's queue at a glance.
    pub(crate) async fn queues(&self) -> Vec<QueueSummary> {
        self.ask(|reply| Command::Queues { reply })
            .await
            .unwrap_or_default()
    }
}

/// Whole seconds, saturating.
pub(crate) fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
