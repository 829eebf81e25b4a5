//! Counsellors connecting, resuming and dropping, and offers to them.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use haven_core::{Activity, CounsellorId, Party, ResumeSlot, SessionId, Side};
use haven_protocol::common::ResumeToken;
use haven_protocol::counsellor::{self, ResumePoint, SessionInfo, SessionState};
use tracing::{debug, info};

use super::super::session::{CellState, MemberLink, SessionCell};
use super::super::{Colleague, CounsellorLogin, ResumeFailed, ResumeTarget, secs};
use super::{Actor, Link, now, wire_status};
use crate::tokens::{self, TokenHash};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::encode_counsellor;

impl Actor {
    pub(super) fn counsellor_attach(
        &mut self,
        login: &CounsellorLogin,
        conn: &ConnHandle,
        resume: Option<(TokenHash, Vec<ResumePoint>)>,
        token: String,
    ) -> Result<(), ResumeFailed> {
        let id = login.id;
        let at = now();
        let hash = tokens::hash(&token);
        let (keys, points) = match resume {
            // `hello`: a fresh start, every earlier token retired.
            None => {
                if let Some(old) = self.counsellors.get(&id) {
                    for t in old.resume.tokens() {
                        self.shared.resume.remove(&t);
                    }
                }
                (ResumeSlot::new(hash), None)
            }
            // `resume`: the token used stays good until the new one is
            // used once.
            Some((used, points)) => {
                if self.router.counsellor(at, id).is_none() {
                    return Err(ResumeFailed);
                }
                let mut keys = self.counsellors.get(&id).ok_or(ResumeFailed)?.resume;
                if let Some(retired) = keys.rotate(used, hash).map_err(|()| ResumeFailed)? {
                    self.shared.resume.remove(&retired);
                }
                (keys, Some(points))
            }
        };
        let resuming = points.is_some();
        if let Some(old) = self.counsellors.remove(&id)
            && let Some(old_conn) = old.conn
            && old_conn.id() != conn.id()
        {
            old_conn.close_now(haven_protocol::CloseCode::Replaced);
        }
        self.shared
            .resume
            .insert(hash, ResumeTarget::Counsellor(id));
        let display: Arc<str> = Arc::from(login.display_name.as_str());
        self.supervision.name(id, &login.name, &display);
        self.counsellors.insert(
            id,
            Link {
                conn: Some(conn.clone()),
                name: login.name.clone(),
                display: display.clone(),
                topics: login.profile.topics.clone(),
                max_capacity: login.profile.max_capacity,
                resume: keys,
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
            // The name they were shown under stays.
            let name = st
                .session
                .member(id)
                .map_or_else(|| display.clone(), |m| m.link.name.clone());
            let link = MemberLink {
                conn: Some(conn.clone()),
                name,
            };
            if st.session.reattach(id, link).is_none() {
                continue;
            }
            let last_seen = known.get(&cell.wire.0).copied().unwrap_or(0);
            let delivered = st.session.conversation().delivered(Side::Counsellor);
            let info = self.session_info(at, cell, st);
            let Some(resume) = st.session.resume(Side::Counsellor, last_seen) else {
                continue;
            };
            states.push(SessionState {
                info,
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

    pub(super) fn counsellor_gone(&mut self, counsellor: CounsellorId, conn_id: u64) {
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
                && let Some(member) = cell.lock().session.member_mut(counsellor)
            {
                member.link.conn = None;
            }
        }
        debug!(counsellor = counsellor.0, "counsellor disconnected");
        let _ = self.router.detached(now(), Party::Counsellor(counsellor));
    }

    pub(super) fn session_info(
        &self,
        at: Instant,
        cell: &SessionCell,
        st: &CellState,
    ) -> SessionInfo {
        SessionInfo {
            session: cell.wire.clone(),
            nickname: cell.info.nickname.clone(),
            topic: cell.info.topic.clone(),
            language: cell.info.language.clone(),
            waited_secs: secs(self.router.waited(at, cell.id).unwrap_or_default()),
            seeker_connected: st.seeker.is_some(),
            urgent: cell.info.urgent,
            returning: cell.info.returning,
            hand_raised: self.router.hand_raised(cell.id),
            transcript: st.recorded,
        }
    }

    /// Every connected counsellor, by display name.
    pub(super) fn colleagues(&self) -> Vec<Colleague> {
        let at = now();
        let plan = &self.shared.settings.plan;
        let mut all: Vec<Colleague> = self
            .counsellors
            .iter()
            .filter(|(_, link)| link.conn.is_some())
            .filter_map(|(id, link)| {
                let view = self.router.counsellor(at, *id)?;
                Some(Colleague {
                    name: link.name.clone(),
                    display_name: link.display.to_string(),
                    status: wire_status(view.activity).0,
                    active: u32::try_from(view.sessions.len() + view.offers.len())
                        .unwrap_or(u32::MAX),
                    capacity: view.capacity,
                    topics: link
                        .topics
                        .iter()
                        .map(|t| plan.topic_name(*t).to_owned())
                        .collect(),
                })
            })
            .collect();
        all.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        all
    }

    /// Tells everyone in a session that a hand went up or down.
    pub(super) fn hand(&self, session: SessionId, by: CounsellorId, raised: bool) {
        info!(session = %session, counsellor = by.0, raised, "hand raised or lowered");
        let frame = encode_counsellor(&counsellor::ServerMessage::Hand {
            session: haven_protocol::SessionRef(session.to_string()),
            raised,
            by: self.display(by).to_string(),
        });
        for c in self.router.counsellors_of(session) {
            if let Some(conn) = self.conn_of(*c) {
                conn.send(frame.clone());
            }
        }
    }

    pub(super) fn send_offer(&self, at: Instant, session: SessionId, to: CounsellorId) {
        let (Some(cell), Some(conn)) = (self.cell(session), self.conn_of(to)) else {
            return;
        };
        let Some((_, remaining, from, warm)) = self.router.pending_offer(at, session) else {
            return;
        };
        let info = self.session_info(at, &cell, &cell.lock());
        conn.send(encode_counsellor(&counsellor::ServerMessage::Offer {
            info,
            expires_in_secs: secs(remaining),
            from: from.map(|f| self.display(f).to_string()),
            warm,
            note: from.and_then(|_| self.notes.get(&session).cloned()),
        }));
    }
}
