//! Messages on `/ws/counsellor`, the counsellor's socket.
//!
//! A counsellor logs in over HTTP first (`POST /api/v1/login`). The socket
//! then needs that login, either as the `haven_auth` cookie sent with the
//! upgrade or as `token` in `hello` / `auth` in `resume`. One counsellor
//! socket carries all of that counsellor's sessions, so most messages name
//! a `session`.

use serde::{Deserialize, Serialize};

use crate::common::{
    AuthToken, ChatText, ClientMsgId, EndReason, Epoch, Limits, ResumeToken, Seq, SessionRef,
    is_false,
};
use crate::error::ErrorCode;

/// Whether a counsellor wants new sessions.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounsellorStatus {
    /// Routes new sessions to them while they have free capacity.
    Available,
    /// On a break: keeps current sessions, gets no new ones.
    Away,
    /// (Sent only.) Available, but in wrap-up (*nazorg*) after a session:
    /// no new session until it ends or they send `ready`.
    WrapUp,
}

/// What a counsellor needs to know about one of their sessions.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session.
    pub session: SessionRef,
    /// The help-seeker's nickname, if they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// The topic (queue) the help-seeker chose.
    pub topic: String,
    /// The language the help-seeker chose, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// How long the help-seeker waited in the queue, in seconds.
    pub waited_secs: u32,
    /// Whether the help-seeker is connected right now.
    pub seeker_connected: bool,
    /// Whether the help-seeker's triage answer said they need help
    /// urgently.
    #[serde(default, skip_serializing_if = "is_false")]
    pub urgent: bool,
    /// Whether the help-seeker came back with a return code naming this
    /// counsellor.
    #[serde(default, skip_serializing_if = "is_false")]
    pub returning: bool,
    /// Whether a counsellor's hand is up about this session (a supervisor
    /// was asked to look at it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub hand_raised: bool,
    /// Whether the session is recorded in an encrypted transcript.
    #[serde(default, skip_serializing_if = "TranscriptState::is_off")]
    pub transcript: TranscriptState,
}

/// Whether a session is recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptState {
    /// Its topic keeps no transcripts.
    #[default]
    Off,
    /// Recorded (encrypted; the broker cannot read it back).
    On,
    /// The topic asks, and the help-seeker said no: not recorded.
    Declined,
    /// Recording stopped on a write error; nothing after it is recorded.
    Stopped,
}

impl TranscriptState {
    /// For serde: `off` is left out.
    pub fn is_off(&self) -> bool {
        *self == TranscriptState::Off
    }
}

/// One topic's queue, for the console's overview.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QueueSummary {
    /// The topic.
    pub topic: String,
    /// How many wait.
    pub waiting: u32,
    /// The longest current wait, in seconds.
    pub longest_wait_secs: u32,
    /// Seats free right now among counsellors serving it.
    pub free_seats: u32,
    /// Whether a coordinator paused it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
}

/// Why an offer went away unanswered.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferEnd {
    /// Not answered in time; it moved on (and you were set away).
    TimedOut,
    /// The help-seeker left first.
    Ended,
}

/// Why a transfer did not happen.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferFailure {
    /// The colleague declined.
    Declined,
    /// The colleague did not answer in time.
    TimedOut,
    /// The colleague went offline.
    Gone,
}

/// A session's state when a counsellor connects or resumes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SessionState {
    /// Who and what the session is.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// The highest `seq` the broker has sent to the counsellor in this
    /// session so far.
    pub last_seq: Seq,
    /// The highest `seq` of the counsellor's messages the help-seeker has
    /// received.
    pub delivered: Seq,
    /// `true` when every message after the client's last seen `seq`
    /// follows as `message` frames; `false` when earlier ones are gone.
    pub recovered: bool,
}

/// A cool-down a counsellor puts on an abusive help-seeker's source with
/// `end` (see `docs/protocol.md` §7).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    /// How long, in hours: one of the helpline's `abuse.block_hours`.
    pub hours: u32,
    /// Why: one of the helpline's `abuse.block_reasons`.
    pub reason: String,
}

/// Where a resuming counsellor's client left off in one session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The session.
    pub session: SessionRef,
    /// The highest `seq` of a `message` received in it.
    pub last_seq: Seq,
}

/// What a counsellor's client sends.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start working. Takes over any sessions the counsellor still has from
    /// a dropped connection.
    Hello {
        /// The protocol version the client speaks.
        protocol: u32,
        /// The login token, unless the upgrade carried the login cookie.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<AuthToken>,
    },
    /// Come back after the connection dropped.
    Resume {
        /// The resume token from the last `welcome` or `resumed`.
        token: ResumeToken,
        /// The login token, unless the upgrade carried the login cookie.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<AuthToken>,
        /// Where the client left off in each session it knows.
        #[serde(default)]
        sessions: Vec<ResumePoint>,
    },
    /// Go available or away.
    SetStatus {
        /// The new status (`available` or `away`).
        status: CounsellorStatus,
    },
    /// Take this many sessions at once, from 1 up to the account's maximum.
    SetCapacity {
        /// The new capacity.
        capacity: u32,
    },
    /// End wrap-up early: ready for the next session now.
    Ready,
    /// Accept an offered session (from the queue or a colleague's transfer).
    Accept {
        /// The session.
        session: SessionRef,
    },
    /// Decline an offered session; it is offered to someone else (a
    /// transfer stays with the colleague who asked).
    Decline {
        /// The session.
        session: SessionRef,
    },
    /// Hand a session on: to a colleague by account name (who must accept)
    /// or back to a topic's queue, at its front. Exactly one of
    /// `to_counsellor` and `to_topic`.
    Transfer {
        /// The session.
        session: SessionRef,
        /// The colleague's account name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_counsellor: Option<String>,
        /// The topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_topic: Option<String>,
        /// Stay in the session with the colleague until one of you leaves.
        #[serde(default, skip_serializing_if = "is_false")]
        warm: bool,
        /// A private note for the colleague (never shown to the
        /// help-seeker).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Send a chat message in one of the counsellor's sessions.
    Send {
        /// The session.
        session: SessionRef,
        /// The client's id for this message; retries reuse it.
        id: ClientMsgId,
        /// The text.
        text: ChatText,
        /// Also confirms the session's messages up to this `seq`, as a `received`
        /// would: a client that answers takes its confirmation along
        /// instead of sending it in a frame of its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<Seq>,
    },
    /// The counsellor started or stopped typing in a session.
    Typing {
        /// The session.
        session: SessionRef,
        /// Whether they are typing now.
        active: bool,
    },
    /// The client has received every `message` of `session` up to `up_to`.
    Received {
        /// The session.
        session: SessionRef,
        /// The highest contiguous `seq` received.
        up_to: Seq,
    },
    /// Raise a hand about a session (ask a supervisor to look at it), or
    /// lower it again.
    RaiseHand {
        /// The session.
        session: SessionRef,
        /// `true` to raise, `false` to lower.
        raised: bool,
    },
    /// End a session, or leave it when a colleague is in it too.
    End {
        /// The session.
        session: SessionRef,
        /// End an abusive chat with a cool-down: the help-seeker's source
        /// may start no new chat for this long.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block: Option<Block>,
    },
    /// Application-level keepalive; answered with `pong`.
    Ping,
}

impl ClientMessage {
    /// Every `type` value this enum accepts.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "resume",
        "set_status",
        "set_capacity",
        "ready",
        "accept",
        "decline",
        "transfer",
        "send",
        "typing",
        "received",
        "raise_hand",
        "end",
        "ping",
    ];

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::SetStatus { .. } => "set_status",
            ClientMessage::SetCapacity { .. } => "set_capacity",
            ClientMessage::Ready => "ready",
            ClientMessage::Accept { .. } => "accept",
            ClientMessage::Decline { .. } => "decline",
            ClientMessage::Transfer { .. } => "transfer",
            ClientMessage::Send { .. } => "send",
            ClientMessage::Typing { .. } => "typing",
            ClientMessage::Received { .. } => "received",
            ClientMessage::RaiseHand { .. } => "raise_hand",
            ClientMessage::End { .. } => "end",
            ClientMessage::Ping => "ping",
        }
    }
}

/// What the broker sends to a counsellor.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome {
        /// The protocol version the server speaks.
        protocol: u32,
        /// The counsellor's account name.
        name: String,
        /// The name help-seekers see.
        display_name: String,
        /// How many sessions they take at once.
        capacity: u32,
        /// The most they may raise that to.
        max_capacity: u32,
        /// The topics they serve.
        topics: Vec<String>,
        /// The languages they chat in.
        languages: Vec<String>,
        /// Their current status.
        status: CounsellorStatus,
        /// Keep this to `resume` after a dropped connection.
        token: ResumeToken,
        /// How long the broker keeps their sessions for a dropped client.
        grace_secs: u32,
        /// Which run of the broker this is.
        epoch: Epoch,
        /// Limits to enforce before sending.
        limits: Limits,
        /// Sessions they still have (after a dropped connection); their
        /// unreceived messages follow as `message` frames.
        sessions: Vec<SessionState>,
    },
    /// The answer to a successful `resume`.
    Resumed {
        /// The new resume token; the old one is now spent.
        token: ResumeToken,
        /// Their current status.
        status: CounsellorStatus,
        /// Every session they have now, including any the client did not
        /// name; missed messages follow as `message` frames.
        sessions: Vec<SessionState>,
    },
    /// The counsellor's status or load changed.
    Status {
        /// Current status.
        status: CounsellorStatus,
        /// Sessions they take at once.
        capacity: u32,
        /// The most they may raise that to.
        max_capacity: u32,
        /// Sessions (and pending offers) they have now.
        active: u32,
        /// For `wrap_up`: seconds of wrap-up left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrap_up_secs: Option<u32>,
    },
    /// The topics they serve, at a glance. Sent when it changes, at most
    /// every couple of seconds.
    Queues {
        /// One entry per topic they serve.
        topics: Vec<QueueSummary>,
    },
    /// A session is offered: `accept` or `decline` within the time given.
    Offer {
        /// Who and what the session is.
        #[serde(flatten)]
        info: SessionInfo,
        /// Seconds left to answer.
        expires_in_secs: u32,
        /// For a transfer: the colleague handing it over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// For a transfer: whether the colleague stays (warm).
        #[serde(default, skip_serializing_if = "is_false")]
        warm: bool,
        /// For a transfer: the colleague's private note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// An offer went away unanswered.
    OfferWithdrawn {
        /// The session.
        session: SessionRef,
        /// Why.
        reason: OfferEnd,
    },
    /// A session is now the counsellor's: routed to them, or accepted.
    SessionAssigned {
        /// Who and what the session is.
        #[serde(flatten)]
        info: SessionInfo,
        /// For a transfer: the colleague it came from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// For a transfer: the colleague's private note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A transfer the counsellor asked for did not happen; the session
    /// stays theirs.
    TransferFailed {
        /// The session.
        session: SessionRef,
        /// The colleague asked.
        to: String,
        /// Why.
        reason: TransferFailure,
    },
    /// A colleague joined (warm transfer) or left a shared session.
    Participant {
        /// The session.
        session: SessionRef,
        /// The colleague's display name.
        counsellor: String,
        /// Whether they joined (`true`) or left.
        joined: bool,
    },
    /// A hand about a session went up or down (sent to everyone in it,
    /// including whoever raised or lowered it).
    Hand {
        /// The session.
        session: SessionRef,
        /// Whether it is up now.
        raised: bool,
        /// The display name of who raised or lowered it.
        by: String,
    },
    /// A supervisor started (`true`) or stopped watching a session. The
    /// help-seeker is not told.
    Observed {
        /// The session.
        session: SessionRef,
        /// The supervisor's display name.
        by: String,
        /// Whether they watch now.
        active: bool,
    },
    /// A supervisor's message for the counsellors in a session only; the
    /// help-seeker never sees it.
    Whisper {
        /// The session.
        session: SessionRef,
        /// The supervisor's display name.
        from: String,
        /// The text.
        text: ChatText,
        /// When it was sent (milliseconds since the Unix epoch).
        at: u64,
    },
    /// What a colleague in a shared session wrote to the help-seeker.
    Said {
        /// The session.
        session: SessionRef,
        /// The colleague's display name.
        from: String,
        /// The text.
        text: ChatText,
        /// When the broker accepted it (milliseconds since the Unix epoch).
        at: u64,
    },
    /// A chat message from a help-seeker.
    Message {
        /// The session.
        session: SessionRef,
        /// Its sequence number in the help-seeker-to-counsellor direction.
        seq: Seq,
        /// The text.
        text: ChatText,
        /// When the broker accepted it (milliseconds since the Unix epoch).
        at: u64,
    },
    /// The broker accepted the counsellor's `send` and will deliver it.
    Ack {
        /// The session.
        session: SessionRef,
        /// The client's id of the message.
        id: ClientMsgId,
        /// The sequence number it got.
        seq: Seq,
    },
    /// The help-seeker has received the counsellor's messages up to `up_to`.
    Delivered {
        /// The session.
        session: SessionRef,
        /// The highest `seq` received.
        up_to: Seq,
    },
    /// The help-seeker started or stopped typing.
    Typing {
        /// The session.
        session: SessionRef,
        /// Whether they are typing now.
        active: bool,
    },
    /// The help-seeker's connection dropped (`false`) or came back (`true`).
    Peer {
        /// The session.
        session: SessionRef,
        /// Whether the help-seeker is connected.
        connected: bool,
    },
    /// A session's recording changed: a write error stopped it.
    Transcript {
        /// The session.
        session: SessionRef,
        /// Its recording now.
        state: TranscriptState,
    },
    /// A session is over; its capacity is free again.
    SessionEnded {
        /// The session.
        session: SessionRef,
        /// Why.
        reason: EndReason,
    },
    /// A frame was refused. The socket stays open unless a close follows.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The session the error is about, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<SessionRef>,
        /// The client message id the error is about, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<ClientMsgId>,
        /// An English hint for developers; never shown to users.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The answer to `ping`.
    Pong,
}

impl ServerMessage {
    /// Every `type` value this enum produces.
    pub const TYPES: &'static [&'static str] = &[
        "welcome",
        "resumed",
        "status",
        "queues",
        "offer",
        "offer_withdrawn",
        "session_assigned",
        "transfer_failed",
        "participant",
        "hand",
        "observed",
        "whisper",
        "said",
        "message",
        "ack",
        "delivered",
        "typing",
        "peer",
        "transcript",
        "session_ended",
        "error",
        "pong",
    ];

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Resumed { .. } => "resumed",
            ServerMessage::Status { .. } => "status",
            ServerMessage::Queues { .. } => "queues",
            ServerMessage::Offer { .. } => "offer",
            ServerMessage::OfferWithdrawn { .. } => "offer_withdrawn",
            ServerMessage::SessionAssigned { .. } => "session_assigned",
            ServerMessage::TransferFailed { .. } => "transfer_failed",
            ServerMessage::Participant { .. } => "participant",
            ServerMessage::Hand { .. } => "hand",
            ServerMessage::Observed { .. } => "observed",
            ServerMessage::Whisper { .. } => "whisper",
            ServerMessage::Said { .. } => "said",
            ServerMessage::Message { .. } => "message",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Delivered { .. } => "delivered",
            ServerMessage::Typing { .. } => "typing",
            ServerMessage::Peer { .. } => "peer",
            ServerMessage::Transcript { .. } => "transcript",
            ServerMessage::SessionEnded { .. } => "session_ended",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong => "pong",
        }
    }
}
