//! One session's shared cell: its core [`Session`] (phase, members and
//! conversation, with the rules of who may do what) and who is attached
//! to each end, behind a short std mutex.
//!
//! This is the chat hot path. A help-seeker's socket task holds its cell
//! directly; a counsellor's finds it in the session index. Sending a message
//! locks only this cell, stamps the message with its sequence number,
//! queues it for the other side and acks the sender: no global lock, no hop
//! through another task. The lock is never held across an `.await`
//! (everything inside is a non-blocking queue push), and it is taken one
//! cell at a time except by the router actor, which may lock several in
//! session-id order.
//!
//! A session usually has one counsellor; during a warm transfer it has two.
//! Everything the help-seeker sends goes to each of them, and what one
//! counsellor writes to the help-seeker is echoed to the other (`said`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::limits::{SourceTag, WaitingGuard};
use axum::extract::ws::Utf8Bytes;
use haven_core::{
    Accept, CounsellorId, Member, Phase, Refused, ReplayLimits, ResumeSlot, Session, SessionId,
    Side,
};
use haven_protocol::common::{ChatText, ClientMsgId, SessionRef};
use haven_protocol::counsellor::TranscriptState;
use haven_protocol::{ErrorCode, counsellor, fast, seeker};
use haven_transcript::{Body, Role};

use crate::tokens::TokenHash;
use crate::transcripts::{Recording, Reserved};
use crate::ws::conn::ConnHandle;
use crate::ws::frames::{encode_counsellor, encode_seeker};

/// What the help-seeker told us at hello. Shown to the counsellor; never
/// logged.
#[derive(Clone)]
pub(crate) struct SeekerInfo {
    pub(crate) nickname: Option<String>,
    pub(crate) topic: String,
    pub(crate) language: Option<String>,
    pub(crate) urgent: bool,
    pub(crate) returning: bool,
}

impl std::fmt::Debug for SeekerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekerInfo")
            .field("topic", &self.topic)
            .field("urgent", &self.urgent)
            .finish_non_exhaustive()
    }
}

/// What the cell keeps for a counsellor in the session.
#[derive(Clone, Debug)]
pub(crate) struct MemberLink {
    /// Their live socket, if connected.
    pub(crate) conn: Option<ConnHandle>,
    /// The name help-seekers see.
    pub(crate) name: Arc<str>,
}

/// The mutable part of a cell.
#[derive(Debug)]
pub(crate) struct CellState {
    /// The session: its phase, its counsellors and its conversation (each
    /// message stored as the receiver's encoded frame).
    pub(crate) session: Session<Utf8Bytes, MemberLink>,
    /// The help-seeker's live socket, if connected.
    pub(crate) seeker: Option<ConnHandle>,
    /// The help-seeker's good resume tokens (see [`ResumeSlot`]), to
    /// revoke when the session ends; `None` once it has.
    pub(crate) seeker_keys: Option<ResumeSlot<TokenHash>>,
    /// Where the help-seeker has connected from (keyed hashes, in memory
    /// only): the hello's source, then any other a resume came from.
    pub(crate) sources: Vec<SourceTag>,
    /// Counts the help-seeker among their source's waiting ones, until the
    /// session is first answered or ends.
    pub(crate) waiting: Option<WaitingGuard>,
    /// Supervisors watching silently.
    pub(crate) observers: Vec<super::observe::Observer>,
    /// Supervisors who joined visibly.
    pub(crate) guests: Vec<super::observe::Guest>,
    /// The transcript, while the session is recorded.
    pub(crate) transcript: Option<Recording>,
    /// Whether it is recorded, as counsellors are shown.
    pub(crate) recorded: TranscriptState,
}

/// The most places a session remembers its help-seeker came from.
const MAX_SOURCES: usize = 4;

impl CellState {
    /// Remembers that the help-seeker (also) connected from `source`.
    pub(crate) fn came_from(&mut self, source: SourceTag) {
        if self.sources.len() < MAX_SOURCES && !self.sources.iter().any(|s| s.same(&source)) {
            self.sources.push(source);
        }
    }

    /// Where the session is in its life.
    pub(crate) fn phase(&self) -> Phase {
        self.session.phase()
    }

    /// The counsellors in the session.
    pub(crate) fn members(&self) -> &[Member<MemberLink>] {
        self.session.members()
    }

    /// The sockets of the connected counsellors.
    pub(crate) fn counsellor_conns(&self) -> impl Iterator<Item = &ConnHandle> {
        self.members().iter().filter_map(|m| m.link.conn.as_ref())
    }

    /// Sends a frame to every connected counsellor.
    pub(crate) fn to_counsellors(&self, frame: &Utf8Bytes) {
        for conn in self.counsellor_conns() {
            conn.send(frame.clone());
        }
    }

    /// A place in the transcript for one chat message: `Ok(None)` when the
    /// session is not recorded, `Err` when the writer is too far behind.
    fn reserve(&self) -> Result<Option<Reserved>, SendRefused> {
        match &self.transcript {
            None => Ok(None),
            Some(r) => r.reserve().map(Some).ok_or(SendRefused::BacklogFull),
        }
    }

    /// Records a session event (a join, a transfer, the end) when the
    /// session is recorded.
    pub(crate) fn record(&self, kind: haven_transcript::Kind, body: Body) {
        if let Some(r) = &self.transcript {
            r.event(kind, now_ms(), body);
        }
    }
}

/// Acknowledges a message once its record is durable (`reserved`), or at
/// once when the session is not recorded. `body` is the record of a new
/// message; a retry (`None`) waits for whatever is queued before it, so
/// its original is on disk before the ack.
///
/// `ack(lazy)`: an ack given at once may wait a moment to share a write
/// with the relayed message's answer (`lazy`); one given after the sync
/// goes out straight away, since that answer has usually gone already.
fn ack_when_durable(
    reserved: Option<Reserved>,
    body: Option<Body>,
    at: u64,
    ack: impl FnOnce(bool) + Send + 'static,
) {
    match (reserved, body) {
        (None, _) => ack(true),
        (Some(r), Some(body)) => r.record(at, body, Box::new(move || ack(false))),
        (Some(r), None) => r.after(Box::new(move || ack(false))),
    }
}

/// Sends an ack, lazily or at once.
fn send_ack(conn: &ConnHandle, frame: Utf8Bytes, lazy: bool) {
    if lazy {
        conn.send_lazy(frame);
    } else {
        conn.send(frame);
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

/// Who writes to the help-seeker.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Speaker<'a> {
    /// A counsellor in the session, with their message's client id.
    Counsellor(CounsellorId, &'a str),
    /// A supervisor who joined, with the key their message is
    /// deduplicated under.
    Guest(&'a str),
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

impl From<Refused> for SendRefused {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::WrongState => SendRefused::WrongState,
            Refused::NotYours => SendRefused::NotYours,
            Refused::BacklogFull => SendRefused::BacklogFull,
        }
    }
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

/// The sequence number to ack for an accepted message: a retry gets its
/// original number.
fn accepted_seq(accepted: &Accept<'_, Utf8Bytes>) -> Result<u64, SendRefused> {
    match *accepted {
        Accept::New { seq, .. } | Accept::Duplicate { seq } => Ok(seq),
        Accept::BacklogFull => Err(SendRefused::BacklogFull),
    }
}

pub(crate) fn now_ms() -> u64 {
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
                session: Session::new(limits),
                seeker: Some(seeker),
                seeker_keys: Some(ResumeSlot::new(seeker_token)),
                sources: Vec::new(),
                waiting: None,
                observers: Vec::new(),
                guests: Vec::new(),
                transcript: None,
                recorded: TranscriptState::Off,
            }),
        })
    }

    /// A session handed over by the node that led before: nobody is
    /// attached yet.
    pub(crate) fn restored(
        id: SessionId,
        info: SeekerInfo,
        session: Session<Utf8Bytes, MemberLink>,
        seeker_keys: Option<ResumeSlot<TokenHash>>,
        recorded: TranscriptState,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            wire: SessionRef(id.to_string()),
            info,
            state: Mutex::new(CellState {
                session,
                seeker: None,
                seeker_keys,
                sources: Vec::new(),
                waiting: None,
                observers: Vec::new(),
                guests: Vec::new(),
                transcript: None,
                // A recording cannot follow the session here: the
                // counsellors are shown it stopped.
                recorded: if recorded == TranscriptState::On {
                    TranscriptState::Stopped
                } else {
                    recorded
                },
            }),
        })
    }

    /// Locks the cell. Poisoning cannot leave the state half-changed in a
    /// way that matters more than losing the session, so a poisoned lock
    /// is taken over rather than propagated as a panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, CellState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A help-seeker's chat message, for every counsellor in the session
    /// (or the first to take it). The ack goes to `conn` once the broker
    /// has it (and, in a recorded session, once its record is durable).
    pub(crate) fn seeker_send(
        &self,
        id: &ClientMsgId,
        text: ChatText,
        conn: &ConnHandle,
    ) -> Result<(), SendRefused> {
        let mut guard = self.lock();
        let st: &mut CellState = &mut guard;
        if st.phase() == Phase::Ended {
            return Err(SendRefused::WrongState);
        }
        let reserved = st.reserve()?;
        let wire = &self.wire;
        let at = now_ms();
        let accepted = st.session.seeker_says(&id.0, text.0.len(), |seq| {
            fast::counsellor_message(&wire.0, seq, &text.0, at).into()
        })?;
        let seq = accepted_seq(&accepted)?;
        let new = matches!(accepted, Accept::New { .. });
        if let Accept::New { payload, .. } = accepted {
            let payload = payload.clone();
            st.to_counsellors(&payload);
            crate::metrics::relayed();
            if !st.observers.is_empty() {
                st.tell_observers(&super::observe::said(None, &text, at));
            }
        }
        let body = (new && reserved.is_some()).then(|| Body {
            role: Some(Role::Seeker),
            text: Some(text.0),
            seq: Some(seq),
            ..Body::default()
        });
        let ack: Utf8Bytes = fast::seeker_ack(&id.0, seq).into();
        let conn = conn.clone();
        ack_when_durable(reserved, body, at, move |lazy| send_ack(&conn, ack, lazy));
        Ok(())
    }

    /// A counsellor's chat message to the help-seeker, echoed to colleagues
    /// in the session. The ack goes to `conn` as for
    /// [`SessionCell::seeker_send`].
    pub(crate) fn counsellor_send(
        &self,
        from: CounsellorId,
        id: &ClientMsgId,
        text: ChatText,
        conn: &ConnHandle,
    ) -> Result<(), SendRefused> {
        let mut guard = self.lock();
        let st: &mut CellState = &mut guard;
        if st.phase() == Phase::Ended {
            return Err(SendRefused::WrongState);
        }
        let Some(name) = st.session.member(from).map(|m| m.link.name.clone()) else {
            return Err(SendRefused::NotYours);
        };
        let session = self.wire.clone();
        let client_id = id.clone();
        let conn = conn.clone();
        self.relay_to_seeker(
            st,
            Speaker::Counsellor(from, &id.0),
            (Role::Counsellor, &name),
            text,
            move |seq, lazy| {
                send_ack(
                    &conn,
                    fast::counsellor_ack(&session.0, &client_id.0, seq).into(),
                    lazy,
                );
            },
        )
    }

    /// A message to the help-seeker from someone in the session (a
    /// counsellor, or a supervisor who joined), deduplicated as the core
    /// session does for `speaker`: it is numbered, sent, echoed to the
    /// other counsellors, and shown to watching supervisors. `acked` gets its seq (the
    /// original one for a retry) once the broker has it, and in a
    /// recorded session once its record is durable (see
    /// [`ack_when_durable`] for the flag).
    pub(crate) fn relay_to_seeker(
        &self,
        st: &mut CellState,
        speaker: Speaker<'_>,
        (role, name): (Role, &str),
        text: ChatText,
        acked: impl FnOnce(u64, bool) + Send + 'static,
    ) -> Result<(), SendRefused> {
        let reserved = st.reserve()?;
        let at = now_ms();
        let make = |seq| fast::seeker_message(seq, &text.0, at, name).into();
        let (accepted, except) = match speaker {
            Speaker::Counsellor(from, id) => (
                st.session.counsellor_says(from, id, text.0.len(), make)?,
                Some(from),
            ),
            Speaker::Guest(key) => (st.session.guest_says(key, text.0.len(), make)?, None),
        };
        let seq = accepted_seq(&accepted)?;
        let new = matches!(accepted, Accept::New { .. });
        if let Accept::New { payload, .. } = accepted {
            let payload = payload.clone();
            crate::metrics::relayed();
            if let Some(conn) = &st.seeker {
                conn.send(payload);
            }
            if !st.observers.is_empty() {
                st.tell_observers(&super::observe::said(Some(name), &text, at));
            }
            // Colleagues in the session see what was said (copied only
            // when there are some).
            if st.members().iter().any(|m| Some(m.id) != except) {
                let said = encode_counsellor(&counsellor::ServerMessage::Said {
                    session: self.wire.clone(),
                    from: name.to_owned(),
                    text: text.clone(),
                    at,
                });
                for m in st.members().iter().filter(|m| Some(m.id) != except) {
                    if let Some(conn) = &m.link.conn {
                        conn.send(said.clone());
                    }
                }
            }
        }
        let body = (new && reserved.is_some()).then(|| Body {
            role: Some(role),
            from: Some(name.to_owned()),
            text: Some(text.0),
            seq: Some(seq),
            ..Body::default()
        });
        ack_when_durable(reserved, body, at, move |lazy| acked(seq, lazy));
        Ok(())
    }

    /// The transcript stopped on a write error: nothing more is recorded,
    /// and the counsellors are told (the chat goes on).
    pub(crate) fn transcript_stopped(&self) {
        let mut st = self.lock();
        st.transcript = None;
        if st.recorded == TranscriptState::On {
            st.recorded = TranscriptState::Stopped;
            st.to_counsellors(&encode_counsellor(&counsellor::ServerMessage::Transcript {
                session: self.wire.clone(),
                state: TranscriptState::Stopped,
            }));
        }
    }

    /// Relays a typing indicator to the other side.
    pub(crate) fn typing(
        &self,
        from: Side,
        counsellor: Option<CounsellorId>,
        active: bool,
    ) -> bool {
        let st = self.lock();
        if !st.session.may_act(from, counsellor) {
            return false;
        }
        match from {
            Side::Seeker => {
                st.to_counsellors(&encode_counsellor(&counsellor::ServerMessage::Typing {
                    session: self.wire.clone(),
                    active,
                }));
            }
            Side::Counsellor => {
                if let Some(conn) = &st.seeker {
                    conn.send(encode_seeker(&seeker::ServerMessage::Typing { active }));
                }
            }
        }
        true
    }

    /// `by` has received everything up to `up_to`: frees the replay buffer
    /// and tells the sender side its messages were delivered.
    pub(crate) fn confirm(&self, by: Side, counsellor: Option<CounsellorId>, up_to: u64) -> bool {
        let mut st = self.lock();
        let Ok(mark) = st.session.confirm(by, counsellor, up_to) else {
            return false;
        };
        // Delivery marks are bookkeeping: they may wait a moment to share a
        // write with the next frame.
        if let Some(mark) = mark {
            match by {
                Side::Seeker => {
                    let frame = encode_counsellor(&counsellor::ServerMessage::Delivered {
                        session: self.wire.clone(),
                        up_to: mark,
                    });
                    for conn in st.counsellor_conns() {
                        conn.send_lazy(frame.clone());
                    }
                }
                Side::Counsellor => {
                    if let Some(conn) = &st.seeker {
                        conn.send_lazy(encode_seeker(&seeker::ServerMessage::Delivered {
                            up_to: mark,
                        }));
                    }
                }
            }
        }
        true
    }
}
