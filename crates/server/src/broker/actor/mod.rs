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

mod counsellors;
mod effects;
pub(crate) mod handover;
mod seekers;
mod snapshot;
mod supervision;
mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use haven_core::{
    Activity, CounsellorId, EndReason, Gate, Party, Router, SessionId, TopicId, Transfer,
};
use haven_protocol::common;
use haven_protocol::counsellor::{CounsellorStatus, QueueSummary};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::session::SessionCell;
use super::{Command, Shared, TransferTarget, secs};
use crate::tokens::TokenHash;
use crate::ws::conn::ConnHandle;

/// What the actor knows of a counsellor who is connected or in grace.
#[derive(Debug)]
struct Link {
    conn: Option<ConnHandle>,
    name: String,
    display: Arc<str>,
    topics: Vec<TopicId>,
    max_capacity: u32,
    /// The counsellor's good resume tokens.
    resume: haven_core::ResumeSlot<TokenHash>,
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
    /// Every topic's summary as of the last overview round: when it has
    /// not changed, only counsellors not yet sent one need one.
    queues_seen: Vec<QueueSummary>,
    /// Events, today's figures and alerts for the supervisor view.
    supervision: supervision::Supervision,
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
        EndReason::Cleared => common::EndReason::Cleared,
        EndReason::ServiceStopped => common::EndReason::ServiceRestarted,
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
            queues_seen: Vec::new(),
            supervision: supervision::Supervision::new(
                topics,
                shared.settings.supervisor.service_level_target,
            ),
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
        let mut snapshots =
            tokio::time::interval(self.shared.settings.supervisor.snapshot_interval);
        snapshots.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = snapshots.tick() => self.supervise(),
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
                used,
                source,
                token,
                reply,
            } => {
                let resumed = self.seeker_resume(session, &conn, last_seq, used, token);
                if let Ok(cell) = &resumed {
                    cell.lock().came_from(source);
                }
                let _ = reply.send(resumed);
            }
            Command::HandOver { reply } => {
                let _ = reply.send(self.hand_over());
            }
            Command::TakeOver { handover, reply } => {
                self.take_over(*handover);
                self.run_effects();
                let _ = reply.send(());
            }
            Command::EndAll { reply } => {
                self.router.stop(now());
                // The farewells are queued before the caller closes the
                // sockets.
                self.run_effects();
                let _ = reply.send(());
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
                resume,
                token,
                reply,
            } => {
                let attached = self.counsellor_attach(&login, &conn, resume, token);
                // The queues at once, after the welcome, not at the next tick.
                if attached.is_ok() {
                    self.send_queue_overviews();
                }
                let _ = reply.send(attached);
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
            Command::RaiseHand {
                counsellor,
                session,
                raised,
                reply,
            } => {
                let _ = reply.send(self.router.raise_hand(counsellor, session, raised));
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
                // Only the session's own counsellor may leave a note; it must
                // be there before the effects that carry it, and a refused
                // transfer puts back the note of the one still pending.
                let result = self.router.check_owner(counsellor, session).and_then(|()| {
                    let pending = note.map(|note| self.notes.insert(session, note));
                    let result = self.router.transfer(now(), counsellor, session, to);
                    match (&result, pending) {
                        (Err(_), Some(Some(earlier))) => {
                            self.notes.insert(session, earlier);
                        }
                        (Err(_), Some(None)) => {
                            self.notes.remove(&session);
                        }
                        _ => {}
                    }
                    result
                });
                if let (Ok(()), TransferTarget::Topic(topic), Some(cell)) =
                    (&result, target, self.cell(session))
                {
                    let topic = self.shared.settings.plan.topic_name(topic).to_owned();
                    cell.lock().record(
                        haven_transcript::Kind::Transfer,
                        haven_transcript::Body {
                            role: Some(haven_transcript::Role::Counsellor),
                            from: Some(self.display(counsellor).to_string()),
                            topic: Some(topic),
                            ..haven_transcript::Body::default()
                        },
                    );
                }
                let _ = reply.send(result);
            }
            Command::CounsellorGone {
                counsellor,
                conn_id,
            } => self.counsellor_gone(counsellor, conn_id),
            Command::CounsellorRevoked { counsellor } => {
                if let Some(conn) = self
                    .counsellors
                    .get(&counsellor)
                    .and_then(|l| l.conn.as_ref())
                {
                    conn.close_after_queued(haven_protocol::CloseCode::Unauthorized);
                }
                if self.router.counsellor_left(now(), counsellor).is_ok() {
                    info!(
                        counsellor = counsellor.0,
                        "counsellor revoked: sessions handed on"
                    );
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
            Command::ClearQueue {
                topic,
                within,
                reply,
            } => {
                let _ = reply.send(self.clear_queue(topic, within));
            }
            Command::Queues { reply } => {
                let _ = reply.send(self.queue_summaries());
            }
            Command::Colleagues { reply } => {
                let _ = reply.send(self.colleagues());
            }
        }
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
