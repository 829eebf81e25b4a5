//! Handing what the leading node holds to the node that leads next, when
//! it stops: the router, every session (its conversation, its counsellors,
//! its resume tokens), the counsellors' resume tokens and the pending
//! transfer notes, as plain data. The receiving node restores them with
//! every party away (each within their grace period), so clients that
//! come back through any node resume where they were.
//!
//! This travels between nodes directly over the internal network (as the
//! sockets passed on do), never through Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use haven_core::router::RouterSnapshot;
use haven_core::{
    CounsellorId, Party, ResumeSlot, Router, Session, SessionExport, SessionId, TopicId,
};
use haven_protocol::counsellor::TranscriptState;
use serde::{Deserialize, Serialize};

use super::super::ResumeTarget;
use super::super::session::{MemberLink, SeekerInfo, SessionCell};
use super::{Actor, Link, now};
use crate::tokens::TokenHash;

/// Everything the broker holds, as plain data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Handover {
    router: RouterSnapshot,
    /// How long before the export the router's origin was, in ms.
    origin_age_ms: u64,
    sessions: Vec<CellHandover>,
    counsellors: Vec<LinkHandover>,
    notes: Vec<(String, String)>,
    pauses: Vec<Option<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CellHandover {
    id: String,
    nickname: Option<String>,
    topic: String,
    language: Option<String>,
    urgent: bool,
    returning: bool,
    /// The conversation, each message the receiver's frame.
    session: SessionExport<String>,
    /// Display names of the counsellors in it.
    names: Vec<(u64, String)>,
    /// The help-seeker's good resume tokens (hashes), newest first.
    tokens: Vec<String>,
    recorded: TranscriptState,
}

#[derive(Debug, Serialize, Deserialize)]
struct LinkHandover {
    id: u64,
    name: String,
    display: String,
    topics: Vec<u16>,
    max_capacity: u32,
    /// Good resume tokens (hashes), newest first.
    tokens: Vec<String>,
}

impl Handover {
    /// How many sessions it holds.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }
}

fn slot(tokens: &[String]) -> Option<ResumeSlot<TokenHash>> {
    let mut hashes = tokens.iter().filter_map(|t| TokenHash::from_hex(t));
    let current = hashes.next()?;
    let mut slot = ResumeSlot::new(current);
    if let Some(previous) = hashes.next() {
        // Rebuild "current, resumed with previous" as the rotation made it.
        slot = ResumeSlot::new(previous);
        let _ = slot.rotate(previous, current);
    }
    Some(slot)
}

impl Actor {
    /// What this broker holds, as plain data. Take it once every socket
    /// has closed, so nothing changes after.
    pub(super) fn hand_over(&self) -> Handover {
        let at = now();
        let sessions = self
            .shared
            .sessions
            .iter()
            .map(|entry| {
                let cell = entry.value();
                let st = cell.lock();
                CellHandover {
                    id: cell.id.to_string(),
                    nickname: cell.info.nickname.clone(),
                    topic: cell.info.topic.clone(),
                    language: cell.info.language.clone(),
                    urgent: cell.info.urgent,
                    returning: cell.info.returning,
                    session: st.session.export(|frame| frame.as_str().to_owned()),
                    names: st
                        .members()
                        .iter()
                        .map(|m| (m.id.0, m.link.name.to_string()))
                        .collect(),
                    tokens: st
                        .seeker_keys
                        .iter()
                        .flat_map(|k| k.tokens())
                        .map(TokenHash::to_hex)
                        .collect(),
                    recorded: st.recorded,
                }
            })
            .collect();
        let counsellors = self
            .counsellors
            .iter()
            .map(|(id, l)| LinkHandover {
                id: id.0,
                name: l.name.clone(),
                display: l.display.to_string(),
                topics: l.topics.iter().map(|t| t.0).collect(),
                max_capacity: l.max_capacity,
                tokens: l.resume.tokens().map(TokenHash::to_hex).collect(),
            })
            .collect();
        Handover {
            router: self.router.snapshot(),
            origin_age_ms: u64::try_from(
                at.saturating_duration_since(self.router.origin())
                    .as_millis(),
            )
            .unwrap_or(u64::MAX),
            sessions,
            counsellors,
            notes: self
                .notes
                .iter()
                .map(|(s, n)| (s.to_string(), n.clone()))
                .collect(),
            pauses: self.pauses.clone(),
        }
    }

    /// Takes over what another broker handed over. Every party is away
    /// from now on, within their grace period: they come back by resuming
    /// (or, counsellors, by `hello`).
    pub(super) fn take_over(&mut self, handover: Handover) {
        let at = now();
        let origin = at
            .checked_sub(Duration::from_millis(handover.origin_age_ms))
            .unwrap_or(at);
        self.router = Router::restore(
            self.shared.settings.plan.router.clone(),
            &handover.router,
            origin,
        );
        let limits = self.shared.settings.replay;
        for c in handover.sessions {
            let Some(id) = SessionId::parse(&c.id) else {
                continue;
            };
            let names: HashMap<u64, Arc<str>> = c
                .names
                .into_iter()
                .map(|(id, n)| (id, Arc::from(n)))
                .collect();
            let session: Session<Utf8Bytes, MemberLink> = Session::restore(
                limits,
                SessionExport {
                    phase: c.session.phase,
                    members: c.session.members,
                    conversation: map_conversation(c.session.conversation),
                },
                |m| MemberLink {
                    conn: None,
                    name: names.get(&m.0).cloned().unwrap_or_else(|| Arc::from("")),
                },
            );
            let info = SeekerInfo {
                nickname: c.nickname,
                topic: c.topic,
                language: c.language,
                urgent: c.urgent,
                returning: c.returning,
            };
            let keys = slot(&c.tokens);
            let cell = SessionCell::restored(id, info, session, keys, c.recorded);
            for t in keys.iter().flat_map(|k| k.tokens()) {
                self.shared.resume.insert(t, ResumeTarget::Seeker(id));
            }
            self.shared.sessions.insert(id, cell);
        }
        for l in handover.counsellors {
            let Some(keys) = slot(&l.tokens) else {
                continue;
            };
            let id = CounsellorId(l.id);
            for t in keys.tokens() {
                self.shared.resume.insert(t, ResumeTarget::Counsellor(id));
            }
            let display: Arc<str> = Arc::from(l.display.as_str());
            self.supervision.name(id, &l.name, &display);
            self.counsellors.insert(
                id,
                Link {
                    conn: None,
                    name: l.name,
                    display,
                    topics: l.topics.into_iter().map(TopicId).collect(),
                    max_capacity: l.max_capacity,
                    resume: keys,
                },
            );
        }
        for (s, note) in handover.notes {
            if let Some(id) = SessionId::parse(&s) {
                self.notes.insert(id, note);
            }
        }
        for (i, pause) in handover.pauses.into_iter().enumerate() {
            if let Some(p) = self.pauses.get_mut(i) {
                *p = pause;
            }
        }
        // Everyone's connection was to the node that stopped.
        let seekers: Vec<SessionId> = handover.router.seekers.iter().map(|s| s.session).collect();
        for s in seekers {
            let _ = self.router.detached(at, Party::Seeker(s));
        }
        let counsellors: Vec<CounsellorId> =
            handover.router.counsellors.iter().map(|c| c.id).collect();
        for c in counsellors {
            let _ = self.router.detached(at, Party::Counsellor(c));
        }
    }
}

fn map_conversation(
    c: haven_core::ConversationExport<String>,
) -> haven_core::ConversationExport<Utf8Bytes> {
    let map = |s: haven_core::StreamExport<String>| haven_core::StreamExport {
        last_seq: s.last_seq,
        confirmed: s.confirmed,
        unconfirmed: s
            .unconfirmed
            .into_iter()
            .map(|(seq, w, p)| (seq, w, Utf8Bytes::from(p)))
            .collect(),
        ids: s.ids,
    };
    haven_core::ConversationExport {
        to_seeker: map(c.to_seeker),
        to_counsellor: map(c.to_counsellor),
    }
}
