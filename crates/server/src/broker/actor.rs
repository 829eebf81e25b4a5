//! The router actor: the one task that owns the core [`Router`] and carries
//! out its effects.
//!
//! Every control-plane change (arrivals, resumes, assignments, ends, status,
//! grace timers) happens here, one at a time, so the router's invariants
//! never race. Effects are executed in the order the router decided them,
//! and frames that must arrive in a particular order (a `resumed` before
//! its replay, a `session_assigned` before the messages that follow it) are
//! queued while the cells involved are locked, so no chat message from the
//! data plane can slip in between.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use haven_core::{CounsellorId, Effect, EndReason, Party, Router, SessionId, Side, Status};
use haven_protocol::common::{self, ResumeToken};
use haven_protocol::counsellor::{self, CounsellorStatus, ResumePoint, SessionInfo, SessionState};
use haven_protocol::seeker;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::session::{CellState, Phase, SessionCell};
use super::{Command, CounsellorLogin, ResumeFailed, ResumeTarget, Shared, secs};
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::{encode_counsellor, encode_seeker};

/// What the actor knows of a counsellor who is connected or in grace.
#[derive(Debug)]
struct Link {
    conn: Option<ConnHandle>,
    display_name: String,
    resume: Option<TokenHash>,
    auth: TokenHash,
}

pub(super) struct Actor {
    shared: Arc<Shared>,
    router: Router,
    counsellors: HashMap<CounsellorId, Link>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").finish_non_exhaustive()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn wire_status(status: Status) -> CounsellorStatus {
    match status {
        Status::Available => CounsellorStatus::Available,
        Status::Away => CounsellorStatus::Away,
    }
}

fn wire_reason(reason: EndReason) -> common::EndReason {
    match reason {
        EndReason::SeekerEnded => common::EndReason::SeekerEnded,
        EndReason::CounsellorEnded => common::EndReason::CounsellorEnded,
        EndReason::SeekerTimedOut => common::EndReason::SeekerTimedOut,
    }
}

impl Actor {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let router = Router::new(shared.settings.router);
        Self {
            shared,
            router,
            counsellors: HashMap::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        loop {
            let deadline = self.router.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                () = sleep => self.router.handle_timeout(now()),
            }
            self.run_effects();
        }
        debug!("router actor stopped");
    }

    fn cell(&self, session: SessionId) -> Option<Arc<SessionCell>> {
        self.shared.sessions.get(&session).map(|c| c.clone())
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::SeekerArrived { cell } => {
                info!(session = %cell.id, "help-seeker queued");
                if self.router.seeker_arrived(now(), cell.id).is_err() {
                    // Ids are 128 random bits and checked on creation, so this
                    // does not happen; refuse loudly rather than mix sessions.
                    if let Some(conn) = cell.lock().seeker.take() {
                        conn.close_now(haven_protocol::CloseCode::InternalError);
                    }
                    self.shared.sessions.remove(&cell.id);
                }
            }
            Command::SeekerResume {
                session,
                conn,
                last_seq,
                token,
                reply,
            } => {
                let result = self.seeker_resume(session, &conn, last_seq, token);
                let _ = reply.send(result);
            }
            Command::SeekerEnd { session } => {
                let _ = self.router.seeker_ended(now(), session);
            }
            Command::SeekerGone { session, conn_id } => {
                let Some(cell) = self.cell(session) else {
                    return;
                };
                let mut st = cell.lock();
                if st.seeker.as_ref().is_some_and(|c| c.id() == conn_id) {
                    st.seeker = None;
                    drop(st);
                    debug!(session = %session, "help-seeker disconnected");
                    let _ = self.router.detached(now(), Party::Seeker(session));
                }
            }
            Command::CounsellorAttach {
                login,
                conn,
                points,
                token,
                reply,
            } => {
                let result = self.counsellor_attach(&login, &conn, points, token);
                let _ = reply.send(result);
            }
            Command::SetStatus { counsellor, status } => {
                let _ = self.router.set_status(now(), counsellor, status);
            }
            Command::CounsellorEnd {
                counsellor,
                session,
                reply,
            } => {
                let ok = self
                    .router
                    .counsellor_ended(now(), counsellor, session)
                    .is_ok();
                let _ = reply.send(ok);
            }
            Command::CounsellorGone {
                counsellor,
                conn_id,
            } => {
                let Some(link) = self.counsellors.get_mut(&counsellor) else {
                    return;
                };
                if link.conn.as_ref().is_none_or(|c| c.id() != conn_id) {
                    return;
                }
                link.conn = None;
                let sessions = self.router.counsellor(counsellor).map(|c| c.sessions);
                for session in sessions.unwrap_or_default() {
                    if let Some(cell) = self.cell(session) {
                        let mut st = cell.lock();
                        if let Some((_, conn)) = &mut st.counsellor {
                            *conn = None;
                        }
                    }
                }
                debug!(counsellor = counsellor.0, "counsellor disconnected");
                let _ = self.router.detached(now(), Party::Counsellor(counsellor));
            }
            Command::Logout { auth } => {
                for link in self.counsellors.values() {
                    if link.auth == auth
                        && let Some(conn) = &link.conn
                    {
                        conn.close_after_queued(haven_protocol::CloseCode::Unauthorized);
                    }
                }
            }
        }
    }

    fn seeker_resume(
        &mut self,
        session: SessionId,
        conn: &ConnHandle,
        last_seq: u64,
        token: String,
    ) -> Result<Arc<SessionCell>, ResumeFailed> {
        let cell = self.cell(session).ok_or(ResumeFailed)?;
        let hash = tokens::hash(&token);
        {
            let mut st = cell.lock();
            if st.phase == Phase::Ended {
                return Err(ResumeFailed);
            }
            if let Some(old) = st.seeker.replace(conn.clone())
                && old.id() != conn.id()
            {
                old.close_now(haven_protocol::CloseCode::Replaced);
            }
            st.seeker_token = Some(hash);
            self.shared
                .resume
                .insert(hash, ResumeTarget::Seeker(session));

            let delivered = st.conv.delivered(Side::Seeker);
            let resume = st.conv.resume(Side::Seeker, last_seq);
            conn.send(encode_seeker(&seeker::ServerMessage::Resumed {
                token: ResumeToken(token),
                recovered: resume.recovered,
                last_seq: resume.last_seq,
                delivered,
            }));
            let replay: Vec<Utf8Bytes> = resume.replay.into_iter().cloned().collect();
            match st.phase {
                Phase::Waiting => {
                    let position = self.router.position(session).unwrap_or(1);
                    conn.send(encode_seeker(&seeker::ServerMessage::Queued {
                        position,
                        requeued: false,
                    }));
                }
                Phase::Assigned => {
                    let name = st
                        .counsellor
                        .as_ref()
                        .and_then(|(c, _)| self.counsellors.get(c))
                        .map(|l| l.display_name.clone())
                        .unwrap_or_default();
                    conn.send(encode_seeker(&seeker::ServerMessage::Assigned {
                        counsellor: name,
                    }));
                    conn.send(encode_seeker(&seeker::ServerMessage::Peer {
                        connected: st.counsellor_conn().is_some(),
                    }));
                }
                Phase::Ended => {}
            }
            for frame in replay {
                conn.send(frame);
            }
        }
        let _ = self.router.seeker_reattached(now(), session);
        info!(session = %session, "help-seeker resumed");
        Ok(cell)
    }

    fn counsellor_attach(
        &mut self,
        login: &CounsellorLogin,
        conn: &ConnHandle,
        points: Option<Vec<ResumePoint>>,
        token: String,
    ) -> Result<(), ResumeFailed> {
        let id = login.id;
        let resuming = points.is_some();
        if resuming && self.router.counsellor(id).is_none() {
            return Err(ResumeFailed);
        }
        let hash = tokens::hash(&token);
        if let Some(old) = self.counsellors.remove(&id) {
            if let Some(old_conn) = old.conn
                && old_conn.id() != conn.id()
            {
                old_conn.close_now(haven_protocol::CloseCode::Replaced);
            }
            if let Some(t) = old.resume {
                self.shared.resume.remove(&t);
            }
        }
        self.shared
            .resume
            .insert(hash, ResumeTarget::Counsellor(id));
        self.counsellors.insert(
            id,
            Link {
                conn: Some(conn.clone()),
                display_name: login.display_name.clone(),
                resume: Some(hash),
                auth: login.auth,
            },
        );
        let at = now();
        let sessions = self.router.counsellor_connected(at, id, login.capacity);
        let (status, capacity) = self
            .router
            .counsellor(id)
            .map_or((Status::Away, login.capacity), |c| (c.status, c.capacity));

        // Lock every cell involved, in id order, so the welcome, the states
        // and the replays reach the client before any live message.
        let mut cells: Vec<Arc<SessionCell>> =
            sessions.iter().filter_map(|s| self.cell(*s)).collect();
        cells.sort_by_key(|c| c.id);
        let mut guards: Vec<MutexGuard<'_, CellState>> = cells.iter().map(|c| c.lock()).collect();
        let known: HashMap<String, u64> = points
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.session.0, p.last_seq))
            .collect();
        let mut states = Vec::with_capacity(cells.len());
        let mut replays = Vec::with_capacity(cells.len());
        for (cell, st) in cells.iter().zip(guards.iter_mut()) {
            st.counsellor = Some((id, Some(conn.clone())));
            let last_seen = known.get(&cell.wire.0).copied().unwrap_or(0);
            let delivered = st.conv.delivered(Side::Counsellor);
            let seeker_connected = st.seeker.is_some();
            let resume = st.conv.resume(Side::Counsellor, last_seen);
            states.push(SessionState {
                info: self.session_info(at, cell, seeker_connected),
                last_seq: resume.last_seq,
                delivered,
                recovered: resume.recovered,
            });
            replays.push(resume.replay.into_iter().cloned().collect::<Vec<_>>());
        }
        let token = ResumeToken(token);
        let status = wire_status(status);
        let settings = &self.shared.settings;
        conn.send(encode_counsellor(&if resuming {
            counsellor::ServerMessage::Resumed {
                token,
                status,
                sessions: states,
            }
        } else {
            counsellor::ServerMessage::Welcome {
                protocol: haven_protocol::PROTOCOL_VERSION,
                name: login.name.clone(),
                display_name: login.display_name.clone(),
                capacity,
                status,
                token,
                grace_secs: secs(settings.router.counsellor_grace),
                epoch: self.shared.epoch.clone(),
                limits: settings.limits,
                sessions: states,
            }
        }));
        for frame in replays.into_iter().flatten() {
            conn.send(frame);
        }
        drop(guards);
        info!(
            counsellor = id.0,
            sessions = cells.len(),
            resumed = resuming,
            "counsellor connected"
        );
        Ok(())
    }

    fn session_info(&self, at: Instant, cell: &SessionCell, seeker_connected: bool) -> SessionInfo {
        SessionInfo {
            session: cell.wire.clone(),
            nickname: cell.info.nickname.clone(),
            topic: cell.info.topic.clone(),
            language: cell.info.language.clone(),
            waited_secs: secs(self.router.waited(at, cell.id).unwrap_or_default()),
            seeker_connected,
        }
    }

    fn run_effects(&mut self) {
        while let Some(effect) = self.router.poll_effect() {
            match effect {
                Effect::Queued {
                    session,
                    position,
                    requeued,
                } => {
                    let Some(cell) = self.cell(session) else {
                        continue;
                    };
                    let mut st = cell.lock();
                    if requeued {
                        st.phase = Phase::Waiting;
                        st.counsellor = None;
                        info!(session = %session, "help-seeker requeued after losing their counsellor");
                    }
                    if let Some(conn) = &st.seeker {
                        conn.send(encode_seeker(&seeker::ServerMessage::Queued {
                            position,
                            requeued,
                        }));
                    }
                }
                Effect::Assigned {
                    session,
                    counsellor,
                    waited,
                } => self.assign(session, counsellor, waited),
                Effect::Ended {
                    session,
                    counsellor,
                    reason,
                    waited,
                } => {
                    info!(session = %session, reason = ?reason, waited_s = waited.as_secs(), "session ended");
                    let Some((_, cell)) = self.shared.sessions.remove(&session) else {
                        continue;
                    };
                    let mut st = cell.lock();
                    st.phase = Phase::Ended;
                    if let Some(token) = st.seeker_token.take() {
                        self.shared.resume.remove(&token);
                    }
                    let reason = wire_reason(reason);
                    if let Some(conn) = st.seeker.take() {
                        conn.send(encode_seeker(&seeker::ServerMessage::Ended { reason }));
                        conn.close_after_queued(haven_protocol::CloseCode::Normal);
                    }
                    if let Some(conn) = st.counsellor.take().and_then(|(_, c)| c) {
                        conn.send(encode_counsellor(
                            &counsellor::ServerMessage::SessionEnded {
                                session: cell.wire.clone(),
                                reason,
                            },
                        ));
                    } else if let Some(c) = counsellor {
                        debug!(
                            counsellor = c.0,
                            "session ended while its counsellor was away"
                        );
                    }
                }
                Effect::Presence {
                    session,
                    to,
                    connected,
                } => {
                    let Some(cell) = self.cell(session) else {
                        continue;
                    };
                    let st = cell.lock();
                    let frame = match to {
                        Side::Seeker => encode_seeker(&seeker::ServerMessage::Peer { connected }),
                        Side::Counsellor => encode_counsellor(&counsellor::ServerMessage::Peer {
                            session: cell.wire.clone(),
                            connected,
                        }),
                    };
                    if let Some(conn) = st.conn(to) {
                        conn.send(frame);
                    }
                }
                Effect::Load {
                    counsellor,
                    status,
                    capacity,
                    active,
                } => {
                    if let Some(conn) = self
                        .counsellors
                        .get(&counsellor)
                        .and_then(|l| l.conn.as_ref())
                    {
                        conn.send(encode_counsellor(&counsellor::ServerMessage::Status {
                            status: wire_status(status),
                            capacity,
                            active,
                        }));
                    }
                }
                Effect::CounsellorExpired { counsellor } => {
                    info!(
                        counsellor = counsellor.0,
                        "counsellor did not come back; sessions requeued"
                    );
                    if let Some(link) = self.counsellors.remove(&counsellor)
                        && let Some(token) = link.resume
                    {
                        self.shared.resume.remove(&token);
                    }
                }
            }
        }
    }

    fn assign(
        &mut self,
        session: SessionId,
        counsellor: CounsellorId,
        waited: std::time::Duration,
    ) {
        let Some(cell) = self.cell(session) else {
            return;
        };
        let link = self.counsellors.get(&counsellor);
        let conn = link.and_then(|l| l.conn.clone());
        let display_name = link.map(|l| l.display_name.clone()).unwrap_or_default();
        let mut st = cell.lock();
        st.phase = Phase::Assigned;
        st.counsellor = Some((counsellor, conn.clone()));
        info!(session = %session, counsellor = counsellor.0, waited_s = waited.as_secs(), "session assigned");
        if let Some(seeker) = &st.seeker {
            seeker.send(encode_seeker(&seeker::ServerMessage::Assigned {
                counsellor: display_name,
            }));
        }
        if let Some(conn) = conn {
            let info = SessionInfo {
                session: cell.wire.clone(),
                nickname: cell.info.nickname.clone(),
                topic: cell.info.topic.clone(),
                language: cell.info.language.clone(),
                waited_secs: secs(waited),
                seeker_connected: st.seeker.is_some(),
            };
            conn.send(encode_counsellor(
                &counsellor::ServerMessage::SessionAssigned(info),
            ));
            // Whatever the help-seeker wrote while waiting, or that a lost
            // counsellor never confirmed, goes to the new counsellor.
            let resume = st.conv.resume(Side::Counsellor, 0);
            for frame in resume.replay {
                conn.send(frame.clone());
            }
        }
    }
}
