//! The router actor: the one task that owns the core [`Router`] and carries
//! out its effects.
//!
//! Every control-plane change (arrivals, resumes, routing, offers,
//! transfers, ends, status, grace timers, opening hours, pauses) happens
//! here, one at a time, so the router's invariants never race. Effects are
//! executed in the order the router decided them, and frames that must
//! arrive in a particular order (a `welcome` before the first `queued`, a
//! `resumed` before its replay, a `session_assigned` before the messages
//! that follow it) are queued while the cells involved are locked, so no
//! chat message from the data plane can slip in between.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use haven_core::router::{TransferFailed, Withdrawn};
use haven_core::{
    Activity, Arrival, CounsellorId, Effect, EndReason, Gate, Notice, Party, Refusal, Router,
    SessionId, Side, TopicId, Transfer,
};
use haven_protocol::common::{self, ResumeToken};
use haven_protocol::counsellor::{
    self, CounsellorStatus, OfferEnd, QueueSummary, ResumePoint, SessionInfo, SessionState,
    TransferFailure,
};
use haven_protocol::seeker::{self, TopicState, Unavailability};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::session::{CellState, Member, Phase, SessionCell};
use super::{
    Command, CounsellorLogin, HelloRefused, HelloRequest, ResumeFailed, ResumeTarget, Shared,
    TransferTarget, returns, secs,
};
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::{encode_counsellor, encode_seeker};

/// What the actor knows of a counsellor who is connected or in grace.
#[derive(Debug)]
struct Link {
    conn: Option<ConnHandle>,
    name: String,
    display: Arc<str>,
    topics: Vec<TopicId>,
    max_capacity: u32,
    resume: Option<TokenHash>,
    auth: TokenHash,
}

pub(super) struct Actor {
    shared: Arc<Shared>,
    router: Router,
    counsellors: HashMap<CounsellorId, Link>,
    /// Private notes travelling with transfers, until the receiver gets the
    /// session (or the transfer fails).
    notes: HashMap<SessionId, String>,
    /// Per topic: the coordinator's message while paused.
    pauses: Vec<Option<String>>,
    /// Per topic: the opening-hours gate last set.
    gates: Vec<Gate>,
    /// When opening hours must be looked at again.
    hours_due: Option<Instant>,
    /// The queue overview last sent to each counsellor.
    queues_sent: HashMap<CounsellorId, Vec<QueueSummary>>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor").finish_non_exhaustive()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn wire_status(activity: Activity) -> (CounsellorStatus, Option<u32>) {
    match activity {
        Activity::Available => (CounsellorStatus::Available, None),
        Activity::Away => (CounsellorStatus::Away, None),
        Activity::WrapUp { remaining } => (CounsellorStatus::WrapUp, Some(secs(remaining).max(1))),
    }
}

fn wire_reason(reason: EndReason) -> common::EndReason {
    match reason {
        EndReason::SeekerEnded => common::EndReason::SeekerEnded,
        EndReason::CounsellorEnded => common::EndReason::CounsellorEnded,
        EndReason::SeekerTimedOut => common::EndReason::SeekerTimedOut,
        EndReason::TopicClosed => common::EndReason::TopicClosed,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let plan = &shared.settings.plan;
        let router = Router::new(plan.router.clone(), now());
        let topics = plan.topics.len();
        Self {
            router,
            counsellors: HashMap::new(),
            notes: HashMap::new(),
            pauses: vec![None; topics],
            gates: vec![Gate::Open; topics],
            hours_due: None,
            queues_sent: HashMap::new(),
            shared,
        }
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        let interval = self.shared.settings.plan.router.position_interval;
        let mut overview = tokio::time::interval(interval);
        overview.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.refresh_hours();
        self.run_effects();
        loop {
            let routing = self.router.poll_timeout();
            let hours = self.hours_due;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                () = sleep_until(routing) => self.router.handle_timeout(now()),
                () = sleep_until(hours) => self.refresh_hours(),
                _ = overview.tick() => self.send_queue_overviews(),
            }
            self.run_effects();
        }
        debug!("router actor stopped");
    }

    fn cell(&self, session: SessionId) -> Option<Arc<SessionCell>> {
        self.shared.sessions.get(&session).map(|c| c.clone())
    }

    fn display(&self, c: CounsellorId) -> Arc<str> {
        self.counsellors
            .get(&c)
            .map_or_else(|| Arc::from(""), |l| l.display.clone())
    }

    fn conn_of(&self, c: CounsellorId) -> Option<&ConnHandle> {
        self.counsellors.get(&c).and_then(|l| l.conn.as_ref())
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::SeekerHello {
                request,
                conn,
                reply,
            } => {
                let _ = reply.send(self.seeker_hello(request, &conn));
            }
            Command::SeekerResume {
                session,
                conn,
                last_seq,
                token,
                reply,
            } => {
                let _ = reply.send(self.seeker_resume(session, &conn, last_seq, token));
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
                let _ = reply.send(self.counsellor_attach(&login, &conn, points, token));
            }
            Command::SetStatus { counsellor, status } => {
                let _ = self.router.set_status(now(), counsellor, status);
            }
            Command::SetCapacity {
                counsellor,
                capacity,
            } => {
                let _ = self.router.set_capacity(now(), counsellor, capacity);
            }
            Command::Ready { counsellor } => {
                let _ = self.router.end_wrap_up(now(), counsellor);
            }
            Command::Answer {
                counsellor,
                session,
                accept,
                reply,
            } => {
                let result = if accept {
                    self.router.accept(now(), counsellor, session)
                } else {
                    self.router.decline(now(), counsellor, session)
                };
                let _ = reply.send(result);
            }
            Command::CounsellorEnd {
                counsellor,
                session,
                reply,
            } => {
                let _ = reply.send(self.router.counsellor_ended(now(), counsellor, session));
            }
            Command::Transfer {
                counsellor,
                session,
                target,
                warm,
                note,
                reply,
            } => {
                let to = match target {
                    TransferTarget::Counsellor(to) => Transfer::ToCounsellor { to, warm },
                    TransferTarget::Topic(topic) => Transfer::ToTopic(topic),
                };
                // The note must be there before the effects that carry it.
                if let Some(note) = note.clone() {
                    self.notes.insert(session, note);
                }
                let result = self.router.transfer(now(), counsellor, session, to);
                if result.is_err() && note.is_some() {
                    self.notes.remove(&session);
                }
                let _ = reply.send(result);
            }
            Command::CounsellorGone {
                counsellor,
                conn_id,
            } => self.counsellor_gone(counsellor, conn_id),
            Command::Logout { auth } => {
                for link in self.counsellors.values() {
                    if link.auth == auth
                        && let Some(conn) = &link.conn
                    {
                        conn.close_after_queued(haven_protocol::CloseCode::Unauthorized);
                    }
                }
            }
            Command::Pause {
                topic,
                paused,
                message,
                reply,
            } => {
                let t = usize::from(topic.0);
                if let Some(slot) = self.pauses.get_mut(t) {
                    *slot = if paused { message } else { None };
                }
                let result = self.router.set_paused(now(), topic, paused);
                if result.is_ok() {
                    info!(
                        topic = self.shared.settings.plan.topic_name(topic),
                        paused, "topic pause changed"
                    );
                }
                let _ = reply.send(result);
            }
            Command::Queues { reply } => {
                let _ = reply.send(self.queue_summaries());
            }
        }
    }

    fn seeker_hello(
        &mut self,
        request: HelloRequest,
        conn: &ConnHandle,
    ) -> Result<Arc<SessionCell>, HelloRefused> {
        let at = now();
        let prefer = request
            .return_code
            .and_then(|code| self.router.redeem_return(at, code));
        let mut id = tokens::new_session_id();
        while self.shared.sessions.contains_key(&id) {
            id = tokens::new_session_id();
        }
        let arrival = Arrival {
            topic: request.topic,
            language: request.language,
            urgent: request.info.urgent,
            prefer,
        };
        if let Err(refusal) = self.router.seeker_arrived(at, id, arrival) {
            let (reason, opens_at) = match refusal {
                Refusal::Closed { opens_ms } => (Unavailability::Closed, opens_ms),
                Refusal::Paused => (Unavailability::Paused, None),
                Refusal::Full => (Unavailability::Full, None),
                _ => (Unavailability::UnknownTopic, None),
            };
            let message = (reason == Unavailability::Paused)
                .then(|| {
                    self.pauses
                        .get(usize::from(request.topic.0))
                        .cloned()
                        .flatten()
                })
                .flatten();
            return Err(HelloRefused {
                reason,
                opens_at,
                message,
            });
        }
        let token = tokens::new_token();
        let hash = tokens::hash(&token);
        let mut info = request.info;
        info.returning = prefer.is_some();
        let settings = &self.shared.settings;
        let cell = SessionCell::new(id, info, settings.replay, conn.clone(), hash);
        self.shared.sessions.insert(id, cell.clone());
        self.shared.resume.insert(hash, ResumeTarget::Seeker(id));
        let plan = &settings.plan;
        let topic = plan.topic_plan(request.topic);
        conn.send(encode_seeker(&seeker::ServerMessage::Welcome {
            protocol: haven_protocol::PROTOCOL_VERSION,
            session: cell.wire.clone(),
            token: ResumeToken(token),
            grace_secs: secs(plan.router.seeker_grace),
            epoch: self.shared.epoch.clone(),
            limits: settings.limits,
            topic: cell.info.topic.clone(),
            alternatives: topic.map(|t| t.alternatives.clone()).unwrap_or_default(),
        }));
        if let Some(Gate::Closing { at_ms }) = self.gates.get(usize::from(request.topic.0)) {
            conn.send(encode_seeker(&seeker::ServerMessage::TopicStatus {
                state: TopicState::Closing,
                at: Some(*at_ms),
                message: None,
            }));
        }
        info!(session = %id, topic = %cell.info.topic, urgent = cell.info.urgent, returning = cell.info.returning, "help-seeker arrived");
        Ok(cell)
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
                    let wait = self.router.estimated_wait(session);
                    conn.send(encode_seeker(&seeker::ServerMessage::Queued {
                        position,
                        wait_secs: wait.map(secs),
                        requeued: false,
                    }));
                }
                Phase::Assigned => {
                    for member in &st.members {
                        conn.send(encode_seeker(&seeker::ServerMessage::Assigned {
                            counsellor: member.name.to_string(),
                        }));
                    }
                    conn.send(encode_seeker(&seeker::ServerMessage::Peer {
                        connected: st.counsellor_conns().next().is_some(),
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
        let at = now();
        let resuming = points.is_some();
        if resuming && self.router.counsellor(at, id).is_none() {
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
        let display: Arc<str> = Arc::from(login.display_name.as_str());
        self.counsellors.insert(
            id,
            Link {
                conn: Some(conn.clone()),
                name: login.name.clone(),
                display: display.clone(),
                topics: login.profile.topics.clone(),
                max_capacity: login.profile.max_capacity,
                resume: Some(hash),
                auth: login.auth,
            },
        );
        self.queues_sent.remove(&id);
        let sessions = self
            .router
            .counsellor_connected(at, id, login.profile.clone());
        let view = self.router.counsellor(at, id);
        let (status, _) = wire_status(view.as_ref().map_or(Activity::Away, |v| v.activity));
        let capacity = view.as_ref().map_or(login.profile.capacity, |v| v.capacity);

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
            match st.member_mut(id) {
                Some(member) => member.conn = Some(conn.clone()),
                None => st.members.push(Member {
                    id,
                    conn: Some(conn.clone()),
                    name: display.clone(),
                }),
            }
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
        let plan = &self.shared.settings.plan;
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
                max_capacity: login.profile.max_capacity,
                topics: login
                    .profile
                    .topics
                    .iter()
                    .map(|t| plan.topic_name(*t).to_owned())
                    .collect(),
                languages: login
                    .profile
                    .languages
                    .iter()
                    .map(|l| plan.language_tag(*l).to_owned())
                    .collect(),
                status,
                token,
                grace_secs: secs(plan.router.counsellor_grace),
                epoch: self.shared.epoch.clone(),
                limits: self.shared.settings.limits,
                sessions: states,
            }
        }));
        for frame in replays.into_iter().flatten() {
            conn.send(frame);
        }
        drop(guards);
        // Offers still standing (after a dropped connection).
        for session in view.map(|v| v.offers).unwrap_or_default() {
            self.send_offer(at, session, id);
        }
        info!(
            counsellor = id.0,
            sessions = cells.len(),
            resumed = resuming,
            "counsellor connected"
        );
        Ok(())
    }

    fn counsellor_gone(&mut self, counsellor: CounsellorId, conn_id: u64) {
        let Some(link) = self.counsellors.get_mut(&counsellor) else {
            return;
        };
        if link.conn.as_ref().is_none_or(|c| c.id() != conn_id) {
            return;
        }
        link.conn = None;
        let sessions = self
            .router
            .counsellor(now(), counsellor)
            .map(|c| c.sessions);
        for session in sessions.unwrap_or_default() {
            if let Some(cell) = self.cell(session)
                && let Some(member) = cell.lock().member_mut(counsellor)
            {
                member.conn = None;
            }
        }
        debug!(counsellor = counsellor.0, "counsellor disconnected");
        let _ = self.router.detached(now(), Party::Counsellor(counsellor));
    }

    fn session_info(&self, at: Instant, cell: &SessionCell, seeker_connected: bool) -> SessionInfo {
        SessionInfo {
            session: cell.wire.clone(),
            nickname: cell.info.nickname.clone(),
            topic: cell.info.topic.clone(),
            language: cell.info.language.clone(),
            waited_secs: secs(self.router.waited(at, cell.id).unwrap_or_default()),
            seeker_connected,
            urgent: cell.info.urgent,
            returning: cell.info.returning,
        }
    }

    fn send_offer(&self, at: Instant, session: SessionId, to: CounsellorId) {
        let (Some(cell), Some(conn)) = (self.cell(session), self.conn_of(to)) else {
            return;
        };
        let Some((_, remaining, from, warm)) = self.router.pending_offer(at, session) else {
            return;
        };
        let seeker_connected = cell.lock().seeker.is_some();
        conn.send(encode_counsellor(&counsellor::ServerMessage::Offer {
            info: self.session_info(at, &cell, seeker_connected),
            expires_in_secs: secs(remaining),
            from: from.map(|f| self.display(f).to_string()),
            warm,
            note: from.and_then(|_| self.notes.get(&session).cloned()),
        }));
    }

    /// Re-evaluates every topic's opening hours and schedules the next look.
    fn refresh_hours(&mut self) {
        let wall = jiff::Timestamp::now();
        let at = now();
        let mut due: Option<Instant> = None;
        let plan = self.shared.settings.plan.clone();
        for (t, topic) in plan.topics.iter().enumerate() {
            let Some(schedule) = &topic.schedule else {
                continue;
            };
            let (gate, next) = schedule.gate_at(wall);
            let id = TopicId(u16::try_from(t).unwrap_or(u16::MAX));
            if self.gates[t] != gate {
                self.gates[t] = gate;
                info!(topic = %topic.name, ?gate, "opening hours");
                let _ = self.router.set_gate(at, id, gate);
            }
            if let Some(next) = next {
                // A little after the change, so the new state is certain.
                let wait = std::time::Duration::try_from(next.duration_since(wall))
                    .unwrap_or_default()
                    + std::time::Duration::from_millis(50);
                let when = at + wait;
                due = Some(due.map_or(when, |d| d.min(when)));
            }
        }
        self.hours_due = due;
    }

    /// Every topic's summary, in topic order. O(topics × counsellors).
    fn queue_summaries(&self) -> Vec<QueueSummary> {
        let at = now();
        let plan = &self.shared.settings.plan;
        (0..plan.topics.len())
            .filter_map(|t| u16::try_from(t).ok().map(TopicId))
            .filter_map(|t| {
                let s = self.router.topic_summary(at, t)?;
                Some(QueueSummary {
                    topic: plan.topic_name(t).to_owned(),
                    waiting: u32::try_from(s.waiting).unwrap_or(u32::MAX),
                    longest_wait_secs: secs(s.longest_wait),
                    free_seats: s.free,
                    paused: s.paused,
                })
            })
            .collect()
    }

    /// Sends each connected counsellor the queues they serve, when changed.
    /// The summaries are computed once per round, not per counsellor.
    fn send_queue_overviews(&mut self) {
        if self.counsellors.values().all(|l| l.conn.is_none()) {
            return;
        }
        let all = self.queue_summaries();
        let mut sends = Vec::new();
        for (id, link) in &self.counsellors {
            let Some(conn) = &link.conn else { continue };
            let topics: Vec<QueueSummary> = link
                .topics
                .iter()
                .filter_map(|t| all.get(usize::from(t.0)).cloned())
                .collect();
            if self.queues_sent.get(id) != Some(&topics) {
                sends.push((*id, conn.clone(), topics));
            }
        }
        for (id, conn, topics) in sends {
            conn.send(encode_counsellor(&counsellor::ServerMessage::Queues {
                topics: topics.clone(),
            }));
            self.queues_sent.insert(id, topics);
        }
    }

    fn run_effects(&mut self) {
        while let Some(effect) = self.router.poll_effect() {
            let at = now();
            match effect {
                Effect::Queued {
                    session,
                    position,
                    wait,
                    requeued,
                } => {
                    let Some(cell) = self.cell(session) else {
                        continue;
                    };
                    let mut st = cell.lock();
                    if requeued && st.phase == Phase::Assigned {
                        st.phase = Phase::Waiting;
                        st.members.clear();
                        info!(session = %session, "help-seeker back in line");
                    }
                    if let Some(conn) = &st.seeker {
                        conn.send(encode_seeker(&seeker::ServerMessage::Queued {
                            position,
                            wait_secs: wait.map(secs),
                            requeued,
                        }));
                    }
                }
                Effect::Offered {
                    session,
                    counsellor,
                    ..
                } => self.send_offer(at, session, counsellor),
                Effect::OfferWithdrawn {
                    session,
                    counsellor,
                    reason,
                } => {
                    if let Some(conn) = self.conn_of(counsellor) {
                        conn.send(encode_counsellor(
                            &counsellor::ServerMessage::OfferWithdrawn {
                                session: haven_protocol::SessionRef(session.to_string()),
                                reason: match reason {
                                    Withdrawn::TimedOut => OfferEnd::TimedOut,
                                    Withdrawn::Ended => OfferEnd::Ended,
                                },
                            },
                        ));
                    }
                }
                Effect::Assigned {
                    session,
                    counsellor,
                    waited,
                    from,
                    warm,
                } => self.assign(at, session, counsellor, waited, from, warm),
                Effect::Left {
                    session,
                    counsellor,
                } => self.left(session, counsellor),
                Effect::TransferFailed {
                    session,
                    from,
                    to,
                    reason,
                } => {
                    self.notes.remove(&session);
                    let to_name = self
                        .counsellors
                        .get(&to)
                        .map(|l| l.name.clone())
                        .unwrap_or_default();
                    if let Some(conn) = self.conn_of(from) {
                        conn.send(encode_counsellor(
                            &counsellor::ServerMessage::TransferFailed {
                                session: haven_protocol::SessionRef(session.to_string()),
                                to: to_name,
                                reason: match reason {
                                    TransferFailed::Declined => TransferFailure::Declined,
                                    TransferFailed::TimedOut => TransferFailure::TimedOut,
                                    TransferFailed::Gone => TransferFailure::Gone,
                                },
                            },
                        ));
                    }
                }
                Effect::Ended {
                    session,
                    topic,
                    counsellors,
                    reason,
                    waited,
                } => self.ended(at, session, topic, &counsellors, reason, waited),
                Effect::Presence {
                    session,
                    to,
                    connected,
                } => {
                    let Some(cell) = self.cell(session) else {
                        continue;
                    };
                    let st = cell.lock();
                    match to {
                        Side::Seeker => {
                            if let Some(conn) = &st.seeker {
                                conn.send(encode_seeker(&seeker::ServerMessage::Peer {
                                    connected,
                                }));
                            }
                        }
                        Side::Counsellor => st.to_counsellors(&encode_counsellor(
                            &counsellor::ServerMessage::Peer {
                                session: cell.wire.clone(),
                                connected,
                            },
                        )),
                    }
                }
                Effect::TopicNotice { session, notice } => {
                    let Some(cell) = self.cell(session) else {
                        continue;
                    };
                    let topic = self.router.topic_of(session);
                    let (state, at_ms, message) = match notice {
                        Notice::Gate(Gate::Open) | Notice::Paused(false) => {
                            (TopicState::Open, None, None)
                        }
                        Notice::Gate(Gate::Closing { at_ms }) => {
                            (TopicState::Closing, Some(at_ms), None)
                        }
                        Notice::Gate(Gate::Closed { opens_ms }) => {
                            (TopicState::Closed, opens_ms, None)
                        }
                        Notice::Paused(true) => (
                            TopicState::Paused,
                            None,
                            topic
                                .and_then(|t| self.pauses.get(usize::from(t.0)).cloned().flatten()),
                        ),
                    };
                    if let Some(conn) = &cell.lock().seeker {
                        conn.send(encode_seeker(&seeker::ServerMessage::TopicStatus {
                            state,
                            at: at_ms,
                            message,
                        }));
                    }
                }
                Effect::Load {
                    counsellor,
                    activity,
                    capacity,
                    active,
                } => {
                    if let Some(link) = self.counsellors.get(&counsellor)
                        && let Some(conn) = &link.conn
                    {
                        let (status, wrap_up_secs) = wire_status(activity);
                        conn.send(encode_counsellor(&counsellor::ServerMessage::Status {
                            status,
                            capacity,
                            max_capacity: link.max_capacity,
                            active,
                            wrap_up_secs,
                        }));
                    }
                }
                Effect::CounsellorExpired { counsellor } => {
                    info!(counsellor = counsellor.0, "counsellor did not come back");
                    self.queues_sent.remove(&counsellor);
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
        at: Instant,
        session: SessionId,
        c: CounsellorId,
        waited: std::time::Duration,
        from: Option<CounsellorId>,
        warm: bool,
    ) {
        let Some(cell) = self.cell(session) else {
            return;
        };
        let conn = self.conn_of(c).cloned();
        let name = self.display(c);
        let note = self.notes.remove(&session);
        let from_name = from.map(|f| self.display(f).to_string());
        let mut st = cell.lock();
        st.phase = Phase::Assigned;
        if st.member(c).is_none() {
            st.members.push(Member {
                id: c,
                conn: conn.clone(),
                name: name.clone(),
            });
        }
        info!(session = %session, counsellor = c.0, waited_s = waited.as_secs(), transfer = from.is_some(), warm, "session assigned");
        if let Some(seeker) = &st.seeker {
            seeker.send(encode_seeker(&seeker::ServerMessage::Assigned {
                counsellor: name.to_string(),
            }));
        }
        let joined = encode_counsellor(&counsellor::ServerMessage::Participant {
            session: cell.wire.clone(),
            counsellor: name.to_string(),
            joined: true,
        });
        for m in st.members.iter().filter(|m| m.id != c) {
            if let Some(other) = &m.conn {
                other.send(joined.clone());
            }
        }
        if let Some(conn) = conn {
            let info = self.session_info(at, &cell, st.seeker.is_some());
            conn.send(encode_counsellor(
                &counsellor::ServerMessage::SessionAssigned {
                    info,
                    from: from_name,
                    note,
                },
            ));
            // What the help-seeker wrote while waiting, or that nobody has
            // confirmed yet, goes to the counsellor who takes over.
            let resume = st.conv.resume(Side::Counsellor, 0);
            for frame in resume.replay {
                conn.send(frame.clone());
            }
        }
    }

    fn left(&mut self, session: SessionId, c: CounsellorId) {
        let Some(cell) = self.cell(session) else {
            return;
        };
        let name = self.display(c);
        let mut st = cell.lock();
        let member = st
            .members
            .iter()
            .position(|m| m.id == c)
            .map(|i| st.members.remove(i));
        if let Some(conn) = member.and_then(|m| m.conn) {
            conn.send(encode_counsellor(
                &counsellor::ServerMessage::SessionEnded {
                    session: cell.wire.clone(),
                    reason: common::EndReason::Transferred,
                },
            ));
        }
        if let Some(seeker) = &st.seeker {
            seeker.send(encode_seeker(&seeker::ServerMessage::CounsellorLeft {
                counsellor: name.to_string(),
            }));
        }
        st.to_counsellors(&encode_counsellor(
            &counsellor::ServerMessage::Participant {
                session: cell.wire.clone(),
                counsellor: name.to_string(),
                joined: false,
            },
        ));
        debug!(session = %session, counsellor = c.0, "counsellor left the session");
    }

    fn ended(
        &mut self,
        at: Instant,
        session: SessionId,
        topic: TopicId,
        counsellors: &[CounsellorId],
        reason: EndReason,
        waited: std::time::Duration,
    ) {
        info!(session = %session, reason = ?reason, waited_s = waited.as_secs(), answered = !counsellors.is_empty(), "session ended");
        self.notes.remove(&session);
        let Some((_, cell)) = self.shared.sessions.remove(&session) else {
            return;
        };
        let plan = self.shared.settings.plan.clone();
        let return_code = match (reason, counsellors.first()) {
            (EndReason::SeekerEnded | EndReason::CounsellorEnded, Some(c))
                if plan.topic_plan(topic).is_some_and(|t| t.return_codes) =>
            {
                let code = returns::new_code();
                self.router.remember_return(at, code, *c);
                Some(returns::format_code(code))
            }
            _ => None,
        };
        let mut st = cell.lock();
        st.phase = Phase::Ended;
        if let Some(token) = st.seeker_token.take() {
            self.shared.resume.remove(&token);
        }
        let reason = wire_reason(reason);
        if let Some(conn) = st.seeker.take() {
            conn.send(encode_seeker(&seeker::ServerMessage::Ended {
                reason,
                return_code,
            }));
            conn.close_after_queued(haven_protocol::CloseCode::Normal);
        }
        let frame = encode_counsellor(&counsellor::ServerMessage::SessionEnded {
            session: cell.wire.clone(),
            reason,
        });
        st.to_counsellors(&frame);
        st.members.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_up_is_shown_with_at_least_a_second_left() {
        assert_eq!(
            wire_status(Activity::WrapUp {
                remaining: std::time::Duration::from_millis(300)
            }),
            (CounsellorStatus::WrapUp, Some(1))
        );
        assert_eq!(wire_status(Activity::Away), (CounsellorStatus::Away, None));
    }
}
