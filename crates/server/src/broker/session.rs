//! One session's shared cell: its [`Conversation`] and who is attached to
//! each end, behind a short std mutex.
//!
//! This is the chat hot path. A help-seeker's socket task holds its cell
//! directly; a counsellor's finds it in the session index. Sending a message
//! locks only this cell, stamps the message with its sequence number,
//! queues it for the peer and acks the sender: no global lock, no hop
//! through another task. The lock is never held across an `.await`
//! (everything inside is a non-blocking queue push), and it is taken one
//! cell at a time except by the router actor, which may lock several in
//! session-id order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use haven_core::{Accept, Conversation, CounsellorId, ReplayLimits, SessionId, Side};
use haven_protocol::common::{ChatText, ClientMsgId, SessionRef};
use haven_protocol::{ErrorCode, counsellor, seeker};

use crate::tokens::TokenHash;
use crate::ws::conn::ConnHandle;
use crate::ws::frames::{encode_counsellor, encode_seeker};

/// What the help-seeker told us at hello. Shown to the counsellor; never
/// logged.
#[derive(Clone)]
pub(crate) struct SeekerInfo {
    pub(crate) nickname: Option<String>,
    pub(crate) topic: String,
    pub(crate) language: Option<String>,
}

impl std::fmt::Debug for SeekerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekerInfo")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Where a session is in its life, as far as the data plane cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// In the queue. The help-seeker may already write; the first
    /// counsellor receives it.
    Waiting,
    /// With a counsellor.
    Assigned,
    /// Over; every further message is refused.
    Ended,
}

/// The mutable part of a cell.
#[derive(Debug)]
pub(crate) struct CellState {
    pub(crate) conv: Conversation<Utf8Bytes>,
    pub(crate) phase: Phase,
    /// The help-seeker's live socket, if connected.
    pub(crate) seeker: Option<ConnHandle>,
    /// The counsellor the session is with, and their live socket if
    /// connected. Invariant: `Some` exactly when `phase == Assigned`.
    pub(crate) counsellor: Option<(CounsellorId, Option<ConnHandle>)>,
    /// The help-seeker's current resume token, to revoke when the session
    /// ends.
    pub(crate) seeker_token: Option<TokenHash>,
}

impl CellState {
    pub(crate) fn counsellor_conn(&self) -> Option<&ConnHandle> {
        self.counsellor.as_ref().and_then(|(_, c)| c.as_ref())
    }

    pub(crate) fn conn(&self, side: Side) -> Option<&ConnHandle> {
        match side {
            Side::Seeker => self.seeker.as_ref(),
            Side::Counsellor => self.counsellor_conn(),
        }
    }
}

/// One session, shared between the sockets of both sides and the router
/// actor.
#[derive(Debug)]
pub(crate) struct SessionCell {
    pub(crate) id: SessionId,
    /// `id` as it appears on the wire, rendered once.
    pub(crate) wire: SessionRef,
    pub(crate) info: SeekerInfo,
    state: Mutex<CellState>,
}

/// Why a `send` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendRefused {
    /// Not in a state that allows chat.
    WrongState,
    /// Not this counsellor's session.
    NotYours,
    /// The receiver's backlog is full; retry later.
    BacklogFull,
}

impl SendRefused {
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            SendRefused::WrongState => ErrorCode::WrongState,
            SendRefused::NotYours => ErrorCode::UnknownSession,
            SendRefused::BacklogFull => ErrorCode::PeerBacklogFull,
        }
    }
}

/// Queues a newly accepted message for the peer, if connected, and returns
/// the sequence number to ack; a retry gets its original number.
fn relay(accepted: &Accept<'_, Utf8Bytes>, peer: Option<&ConnHandle>) -> Result<u64, SendRefused> {
    match *accepted {
        Accept::New { seq, payload } => {
            if let Some(conn) = peer {
                conn.send(payload.clone());
            }
            Ok(seq)
        }
        Accept::Duplicate { seq } => Ok(seq),
        Accept::BacklogFull => Err(SendRefused::BacklogFull),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl SessionCell {
    pub(crate) fn new(
        id: SessionId,
        info: SeekerInfo,
        limits: ReplayLimits,
        seeker: ConnHandle,
        seeker_token: TokenHash,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            wire: SessionRef(id.to_string()),
            info,
            state: Mutex::new(CellState {
                conv: Conversation::new(limits),
                phase: Phase::Waiting,
                seeker: Some(seeker),
                counsellor: None,
                seeker_token: Some(seeker_token),
            }),
        })
    }

    /// Locks the cell. Poisoning cannot leave the state half-changed in a
    /// way that matters more than losing the session, so a poisoned lock
    /// is taken over rather than propagated as a panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, CellState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A help-seeker's chat message. Returns the frame to ack it with.
    pub(crate) fn seeker_send(
        &self,
        id: ClientMsgId,
        text: ChatText,
    ) -> Result<Utf8Bytes, SendRefused> {
        let mut guard = self.lock();
        let st: &mut CellState = &mut guard;
        if st.phase == Phase::Ended {
            return Err(SendRefused::WrongState);
        }
        let weight = text.0.len();
        let wire = &self.wire;
        let accepted = st.conv.accept(Side::Seeker, &id.0, weight, |seq| {
            encode_counsellor(&counsellor::ServerMessage::Message {
                session: wire.clone(),
                seq,
                text,
                at: now_ms(),
            })
        });
        let peer = st.counsellor.as_ref().and_then(|(_, conn)| conn.as_ref());
        let seq = relay(&accepted, peer)?;
        Ok(encode_seeker(&seeker::ServerMessage::Ack { id, seq }))
    }

    /// A counsellor's chat message. Returns the frame to ack it with.
    pub(crate) fn counsellor_send(
        &self,
        from: CounsellorId,
        id: ClientMsgId,
        text: ChatText,
    ) -> Result<Utf8Bytes, SendRefused> {
        let mut guard = self.lock();
        let st: &mut CellState = &mut guard;
        match (st.phase, &st.counsellor) {
            (Phase::Assigned, Some((c, _))) if *c == from => {}
            (Phase::Ended, _) => return Err(SendRefused::WrongState),
            _ => return Err(SendRefused::NotYours),
        }
        let weight = text.0.len();
        let accepted = st.conv.accept(Side::Counsellor, &id.0, weight, |seq| {
            encode_seeker(&seeker::ServerMessage::Message {
                seq,
                text,
                at: now_ms(),
            })
        });
        let seq = relay(&accepted, st.seeker.as_ref())?;
        Ok(encode_counsellor(&counsellor::ServerMessage::Ack {
            session: self.wire.clone(),
            id,
            seq,
        }))
    }

    /// Relays a typing indicator to the other side, if it is there.
    pub(crate) fn typing(
        &self,
        from: Side,
        counsellor: Option<CounsellorId>,
        active: bool,
    ) -> bool {
        let st = self.lock();
        if !self.may_act(&st, from, counsellor) {
            return false;
        }
        let frame = match from {
            Side::Seeker => encode_counsellor(&counsellor::ServerMessage::Typing {
                session: self.wire.clone(),
                active,
            }),
            Side::Counsellor => encode_seeker(&seeker::ServerMessage::Typing { active }),
        };
        if let Some(conn) = st.conn(from.peer()) {
            conn.send(frame);
        }
        true
    }

    /// `by` has received everything up to `up_to`: frees the replay buffer
    /// and tells the sender its messages were delivered.
    pub(crate) fn confirm(&self, by: Side, counsellor: Option<CounsellorId>, up_to: u64) -> bool {
        let mut st = self.lock();
        if !self.may_act(&st, by, counsellor) {
            return false;
        }
        if let Some(mark) = st.conv.confirm(by, up_to) {
            let frame = match by {
                Side::Seeker => encode_counsellor(&counsellor::ServerMessage::Delivered {
                    session: self.wire.clone(),
                    up_to: mark,
                }),
                Side::Counsellor => {
                    encode_seeker(&seeker::ServerMessage::Delivered { up_to: mark })
                }
            };
            if let Some(conn) = st.conn(by.peer()) {
                conn.send(frame);
            }
        }
        true
    }

    /// Whether `side` (and for counsellors, which one) may act on this
    /// session now.
    fn may_act(&self, st: &CellState, side: Side, counsellor: Option<CounsellorId>) -> bool {
        match side {
            Side::Seeker => st.phase != Phase::Ended,
            Side::Counsellor => {
                st.phase == Phase::Assigned
                    && matches!((&st.counsellor, counsellor), (Some((c, _)), Some(me)) if *c == me)
            }
        }
    }
}
