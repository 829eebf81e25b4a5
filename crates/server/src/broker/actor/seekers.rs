//! Help-seekers arriving and coming back.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use haven_core::{Arrival, Gate, Refusal, SessionId, Side, Stage, TopicId};
use haven_protocol::common::ResumeToken;
use haven_protocol::counsellor::TranscriptState;
use haven_protocol::seeker::{self, TopicState, Unavailability};
use haven_transcript::{Body, Role};
use tracing::info;

use haven_core::Phase;

use super::super::session::SessionCell;
use super::super::{HelloRefused, HelloRequest, ResumeFailed, ResumeTarget, secs};
use super::{Actor, now};
use crate::config::TranscriptMode;
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::encode_seeker;

impl Actor {
    pub(super) fn seeker_hello(
        &mut self,
        request: HelloRequest,
        conn: &ConnHandle,
    ) -> Result<Arc<SessionCell>, HelloRefused> {
        let at = now();
        let prefer = request
            .return_code
            .and_then(|code| self.router.redeem_return(at, code))
            .or(request.returning_to);
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
        // One source may have only so many waiting at once: a flood from
        // one address is told the queue is full.
        let Some(waiting) = request.source.wait(self.shared.settings.source_max_waiting) else {
            self.supervision.refused_arrival(request.topic, now());
            crate::metrics::refused("seeker_source_waiting");
            return Err(HelloRefused {
                reason: Unavailability::Full,
                opens_at: None,
                message: None,
            });
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
        let plan = &settings.plan;
        let topic = plan.topic_plan(request.topic);
        {
            let mut st = cell.lock();
            st.came_from(request.source);
            st.waiting = Some(waiting);
        }
        let recorded = self.start_transcript(&cell, topic, request.transcript_consent);
        self.shared.sessions.insert(id, cell.clone());
        self.shared.resume.insert(hash, ResumeTarget::Seeker(id));
        conn.send(encode_seeker(&seeker::ServerMessage::Welcome {
            protocol: haven_protocol::PROTOCOL_VERSION,
            session: cell.wire.clone(),
            token: ResumeToken(token),
            grace_secs: secs(plan.router.seeker_grace),
            epoch: self.shared.epoch.clone(),
            limits: settings.limits,
            topic: cell.info.topic.clone(),
            alternatives: topic.map(|t| t.alternatives.clone()).unwrap_or_default(),
            transcript: recorded,
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

    /// Starts the session's transcript when its topic records it (always,
    /// or when asked and the help-seeker agreed). Returns whether it is
    /// recorded.
    fn start_transcript(
        &self,
        cell: &Arc<SessionCell>,
        topic: Option<&crate::config::TopicPlan>,
        consent: bool,
    ) -> bool {
        let mode = topic.map_or(TranscriptMode::Off, |t| t.transcripts);
        let mut st = cell.lock();
        st.recorded = match mode {
            TranscriptMode::Off => TranscriptState::Off,
            TranscriptMode::Ask if !consent => TranscriptState::Declined,
            TranscriptMode::On | TranscriptMode::Ask => TranscriptState::On,
        };
        let Some(transcripts) = &self.shared.settings.transcripts else {
            st.recorded = TranscriptState::Off;
            return false;
        };
        if st.recorded != TranscriptState::On {
            return false;
        }
        let start = Body {
            role: Some(Role::Seeker),
            nickname: cell.info.nickname.clone(),
            topic: Some(cell.info.topic.clone()),
            ..Body::default()
        };
        let weak = Arc::downgrade(cell);
        let failed = Box::new(move || {
            if let Some(cell) = weak.upgrade() {
                cell.transcript_stopped();
            }
        });
        st.transcript = Some(transcripts.open(
            cell.id,
            &cell.info.topic,
            super::super::session::now_ms(),
            start,
            failed,
        ));
        true
    }

    /// Ends the waits in `topic` of newcomers (within `within`) who have
    /// written nothing and are not returning: what a flood of fakes looks
    /// like, and what a coordinator clears. Returns how many.
    pub(super) fn clear_queue(&mut self, topic: TopicId, within: std::time::Duration) -> u32 {
        let at = now();
        let newcomers: Vec<SessionId> = self
            .router
            .sessions_overview(at)
            .filter(|o| o.topic == topic)
            .filter(|o| matches!(o.stage, Stage::Waiting { waited } if waited <= within))
            .map(|o| o.session)
            .collect();
        let mut cleared = 0;
        for session in newcomers {
            let silent = self.cell(session).is_some_and(|cell| {
                !cell.info.returning
                    && cell
                        .lock()
                        .session
                        .conversation()
                        .last_seq(Side::Counsellor)
                        == 0
            });
            if silent && self.router.clear_waiting(at, session).is_ok() {
                cleared += 1;
            }
        }
        info!(
            topic = self.shared.settings.plan.topic_name(topic),
            cleared, "queue cleared of silent newcomers"
        );
        cleared
    }

    pub(super) fn seeker_resume(
        &mut self,
        session: SessionId,
        conn: &ConnHandle,
        last_seq: u64,
        used: TokenHash,
        token: String,
    ) -> Result<Arc<SessionCell>, ResumeFailed> {
        let cell = self.cell(session).ok_or(ResumeFailed)?;
        let hash = tokens::hash(&token);
        {
            let mut st = cell.lock();
            if st.phase() == Phase::Ended {
                return Err(ResumeFailed);
            }
            // The token resumed with stays good until the new one is used
            // once; the other good one, if any, is retired.
            let keys = st.seeker_keys.as_mut().ok_or(ResumeFailed)?;
            let retired = keys.rotate(used, hash).map_err(|()| ResumeFailed)?;
            if let Some(retired) = retired {
                self.shared.resume.remove(&retired);
            }
            self.shared
                .resume
                .insert(hash, ResumeTarget::Seeker(session));
            if let Some(old) = st.seeker.replace(conn.clone())
                && old.id() != conn.id()
            {
                old.close_now(haven_protocol::CloseCode::Replaced);
            }

            let delivered = st.session.conversation().delivered(Side::Seeker);
            let resume = st
                .session
                .resume(Side::Seeker, last_seq)
                .ok_or(ResumeFailed)?;
            conn.send(encode_seeker(&seeker::ServerMessage::Resumed {
                token: ResumeToken(token),
                recovered: resume.recovered,
                last_seq: resume.last_seq,
                delivered,
            }));
            let replay: Vec<Utf8Bytes> = resume.replay.into_iter().cloned().collect();
            match st.phase() {
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
                    for member in st.members() {
                        conn.send(encode_seeker(&seeker::ServerMessage::Assigned {
                            counsellor: member.link.name.to_string(),
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
}
