//! Carrying out the router's effects, in the order it decided them.

use std::time::Instant;

use haven_core::router::{TransferFailed, Withdrawn};
use haven_core::{CounsellorId, Effect, EndReason, Gate, Notice, SessionId, Side, TopicId};
use haven_protocol::common;
use haven_protocol::counsellor::{self, OfferEnd, TransferFailure};
use haven_protocol::seeker::{self, TopicState};
use haven_transcript::{Body, Kind, Role};
use tracing::{debug, info};

use axum::extract::ws::Utf8Bytes;
use haven_core::Joined;

use super::super::session::MemberLink;
use super::super::{returns, secs};
use super::{Actor, now, wire_reason, wire_status};
use crate::ws::frames::{encode_counsellor, encode_seeker};

impl Actor {
    pub(super) fn run_effects(&mut self) {
        // Events first: they name counsellors whose links the effects may
        // remove.
        self.publish_events();
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
                    let out = if requeued {
                        st.session.requeue()
                    } else {
                        Vec::new()
                    };
                    if !out.is_empty() {
                        for m in out {
                            st.record(
                                Kind::Leave,
                                Body {
                                    role: Some(Role::Counsellor),
                                    from: Some(m.link.name.to_string()),
                                    ..Body::default()
                                },
                            );
                        }
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
                Effect::Hand {
                    session,
                    counsellor,
                    raised,
                } => self.hand(session, counsellor, raised),
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
                    if let Some(link) = self.counsellors.remove(&counsellor) {
                        for token in link.resume.tokens() {
                            self.shared.resume.remove(&token);
                        }
                    }
                }
            }
        }
        // Anything the effects' own router calls queued.
        self.publish_events();
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
        // Answered: no longer among their source's waiting help-seekers.
        st.waiting = None;
        let link = MemberLink {
            conn: conn.clone(),
            name: name.clone(),
        };
        // What the help-seeker wrote while waiting, or that nobody has
        // confirmed yet, goes to the counsellor who takes over.
        let Some(Joined { new, backlog }) = st.session.join(c, link) else {
            return;
        };
        let backlog: Vec<Utf8Bytes> = backlog.into_iter().cloned().collect();
        if new {
            let body = Body {
                role: Some(Role::Counsellor),
                ..Body::default()
            };
            match &from_name {
                Some(f) => st.record(
                    Kind::Transfer,
                    Body {
                        from: Some(f.clone()),
                        to: Some(name.to_string()),
                        text: warm.then(|| "warm".to_owned()),
                        ..body
                    },
                ),
                None => st.record(
                    Kind::Join,
                    Body {
                        from: Some(name.to_string()),
                        ..body
                    },
                ),
            }
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
        for m in st.members().iter().filter(|m| m.id != c) {
            if let Some(other) = &m.link.conn {
                other.send(joined.clone());
            }
        }
        if let Some(conn) = conn {
            let info = self.session_info(at, &cell, &st);
            conn.send(encode_counsellor(
                &counsellor::ServerMessage::SessionAssigned {
                    info,
                    from: from_name,
                    note,
                },
            ));
            for frame in backlog {
                conn.send(frame);
            }
        }
    }

    fn left(&mut self, session: SessionId, c: CounsellorId) {
        let Some(cell) = self.cell(session) else {
            return;
        };
        let name = self.display(c);
        let mut st = cell.lock();
        let member = st.session.leave(c);
        if member.is_some() {
            st.record(
                Kind::Leave,
                Body {
                    role: Some(Role::Counsellor),
                    from: Some(name.to_string()),
                    ..Body::default()
                },
            );
        }
        if let Some(conn) = member.and_then(|m| m.link.conn) {
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
                if let Some(kept) = &self.shared.settings.kept {
                    kept.keep(code, *c);
                }
                Some(returns::format_code(code))
            }
            _ => None,
        };
        let mut st = cell.lock();
        // After every message: sends check the phase under this lock.
        let members = st.session.end();
        if let Some(t) = st.transcript.take() {
            t.end(super::super::session::now_ms(), end_reason(reason));
        }
        st.waiting = None;
        // Watching supervisors' streams end; joined ones are out.
        st.observers.clear();
        st.guests.clear();
        for token in st.seeker_keys.take().iter().flat_map(|k| k.tokens()) {
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
        for conn in members.iter().filter_map(|m| m.link.conn.as_ref()) {
            conn.send(frame.clone());
        }
    }
}

/// Why a session ended, in its transcript's end record.
fn end_reason(reason: EndReason) -> &'static str {
    match reason {
        EndReason::SeekerEnded => "the help-seeker ended the chat",
        EndReason::CounsellorEnded => "the counsellor ended the chat",
        EndReason::SeekerTimedOut => "the help-seeker did not come back",
        EndReason::TopicClosed => "the topic closed",
        EndReason::Cleared => "a coordinator cleared the queue",
        EndReason::ServiceStopped => "the service restarted",
    }
}
