//! Messages on `/ws/seeker`, the help-seeker's socket.
//!
//! A help-seeker's first frame is `hello` (a new session) or `resume` (a
//! dropped connection coming back). Everything after that belongs to that
//! one session. See `docs/protocol.md` for the full flow.

use serde::{Deserialize, Serialize};

use crate::common::{
    Alternative, ChatText, ClientMsgId, EndReason, Epoch, Limits, ResumeToken, Seq, SessionRef,
    is_false,
};
use crate::error::ErrorCode;

/// What a help-seeker's client sends.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start a new session and join the queue.
    Hello {
        /// The protocol version the client speaks.
        protocol: u32,
        /// An optional nickname shown to the counsellor (never a real name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<String>,
        /// The topic (queue) to join; the default topic when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// The language to chat in (BCP 47, e.g. `nl-BE`); served by a
        /// counsellor who speaks it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// The triage answer: `true` when the help-seeker says they need
        /// help urgently (e.g. they are in danger now). Raises their place
        /// in the queue.
        #[serde(default, skip_serializing_if = "is_false")]
        urgent: bool,
        /// A return code from an earlier session, to be routed to the same
        /// counsellor when they are available.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_code: Option<String>,
        /// The help-seeker's answer when the topic asks whether the chat may
        /// be recorded: `true` allows it. Absent means no.
        #[serde(default, skip_serializing_if = "is_false")]
        transcript_consent: bool,
    },
    /// Come back to a session after the connection dropped.
    Resume {
        /// The token from the last `welcome` or `resumed`.
        token: ResumeToken,
        /// The highest `seq` of a `message` the client has received.
        last_seq: Seq,
    },
    /// Send a chat message to the counsellor.
    Send {
        /// The client's id for this message; retries reuse it.
        id: ClientMsgId,
        /// The text.
        text: ChatText,
        /// Also confirms messages up to this `seq`, as a `received`
        /// would: a client that answers takes its confirmation along
        /// instead of sending it in a frame of its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<Seq>,
    },
    /// The help-seeker started or stopped typing.
    Typing {
        /// Whether they are typing now.
        active: bool,
    },
    /// The client has received every `message` up to and including `up_to`.
    /// Lets the broker free its replay buffer and tell the counsellor.
    Received {
        /// The highest contiguous `seq` received.
        up_to: Seq,
    },
    /// End the session (or leave the queue).
    End,
    /// Application-level keepalive; answered with `pong`.
    Ping,
}

impl ClientMessage {
    /// Every `type` value this enum accepts.
    pub const TYPES: &'static [&'static str] = &[
        "hello", "resume", "send", "typing", "received", "end", "ping",
    ];

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Send { .. } => "send",
            ClientMessage::Typing { .. } => "typing",
            ClientMessage::Received { .. } => "received",
            ClientMessage::End => "end",
            ClientMessage::Ping => "ping",
        }
    }
}

/// What the broker sends to a help-seeker.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`: the session exists.
    Welcome {
        /// The protocol version the server speaks.
        protocol: u32,
        /// The new session's id.
        session: SessionRef,
        /// Keep this to `resume` after a dropped connection.
        token: ResumeToken,
        /// How long the broker keeps the session for a dropped client.
        grace_secs: u32,
        /// Which run of the broker holds the session.
        epoch: Epoch,
        /// Limits to enforce before sending.
        limits: Limits,
        /// The topic the session is in.
        topic: String,
        /// Where else to turn; show them while waiting.
        alternatives: Vec<Alternative>,
        /// Whether this chat is recorded in an encrypted transcript.
        #[serde(default, skip_serializing_if = "is_false")]
        transcript: bool,
    },
    /// The answer to `hello` when no session can start now. The server
    /// closes the socket (1000) after it.
    Unavailable {
        /// Why.
        reason: Unavailability,
        /// When the topic opens next (milliseconds since the Unix epoch),
        /// for `closed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        opens_at: Option<u64>,
        /// The coordinator's message, for `paused`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Where else to turn.
        alternatives: Vec<Alternative>,
    },
    /// The answer to a successful `resume`.
    Resumed {
        /// The new resume token; the old one is now spent.
        token: ResumeToken,
        /// `true` when every message after the client's `last_seq` follows
        /// in this resume. `false` means some could not be replayed: the
        /// client should say that earlier messages are missing.
        recovered: bool,
        /// The highest `seq` the broker sent in this direction so far.
        last_seq: Seq,
        /// The highest `seq` of the client's own messages the counsellor
        /// has received.
        delivered: Seq,
    },
    /// The help-seeker is waiting in the queue. Sent on entry and again
    /// whenever the position changes.
    Queued {
        /// 1 means "next".
        position: u32,
        /// The estimated wait in seconds (whole minutes), when it can be
        /// estimated; absent when nobody is staffed. Show it as "about".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_secs: Option<u32>,
        /// `true` when the help-seeker was put back at the front of the
        /// queue (their counsellor's connection was lost, or they were
        /// transferred to another topic).
        #[serde(default, skip_serializing_if = "is_false")]
        requeued: bool,
    },
    /// The topic's state changed while waiting: it closes soon, it closed,
    /// or a coordinator paused or resumed it. The help-seeker keeps their
    /// place.
    TopicStatus {
        /// The new state.
        state: TopicState,
        /// For `closing`, when it closes; for `closed`, when it opens next
        /// (milliseconds since the Unix epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<u64>,
        /// For `paused`, the coordinator's message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A counsellor has joined the session (the first, or one taking
    /// over by transfer); chat can go on.
    Assigned {
        /// The name the counsellor shows to help-seekers.
        counsellor: String,
    },
    /// A counsellor left the session; another carries on (or, after
    /// `queued` with `requeued`, the help-seeker waits for the next one).
    CounsellorLeft {
        /// The name they showed.
        counsellor: String,
    },
    /// A chat message from a counsellor.
    Message {
        /// Its sequence number in the counsellor-to-help-seeker direction.
        seq: Seq,
        /// The text.
        text: ChatText,
        /// When the broker accepted it (milliseconds since the Unix epoch).
        at: u64,
        /// The name of the counsellor who wrote it.
        from: String,
    },
    /// The broker accepted the help-seeker's `send` and will deliver it.
    Ack {
        /// The client's id of the message.
        id: ClientMsgId,
        /// The sequence number it got.
        seq: Seq,
    },
    /// The counsellor has received the help-seeker's messages up to `up_to`.
    Delivered {
        /// The highest `seq` received.
        up_to: Seq,
    },
    /// The counsellor started or stopped typing.
    Typing {
        /// Whether they are typing now.
        active: bool,
    },
    /// The counsellor's connection dropped (`false`) or came back (`true`).
    Peer {
        /// Whether the counsellor is connected.
        connected: bool,
    },
    /// The session is over. The server closes the socket after this.
    Ended {
        /// Why.
        reason: EndReason,
        /// A code to give in a later `hello` (as `return_code`) to be
        /// routed to the same counsellor. Nothing else links the sessions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_code: Option<String>,
    },
    /// A frame was refused. The socket stays open unless a close follows.
    Error {
        /// What went wrong.
        code: ErrorCode,
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
        "unavailable",
        "resumed",
        "queued",
        "topic_status",
        "assigned",
        "counsellor_left",
        "message",
        "ack",
        "delivered",
        "typing",
        "peer",
        "ended",
        "error",
        "pong",
    ];

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Unavailable { .. } => "unavailable",
            ServerMessage::Resumed { .. } => "resumed",
            ServerMessage::Queued { .. } => "queued",
            ServerMessage::TopicStatus { .. } => "topic_status",
            ServerMessage::Assigned { .. } => "assigned",
            ServerMessage::CounsellorLeft { .. } => "counsellor_left",
            ServerMessage::Message { .. } => "message",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Delivered { .. } => "delivered",
            ServerMessage::Typing { .. } => "typing",
            ServerMessage::Peer { .. } => "peer",
            ServerMessage::Ended { .. } => "ended",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong => "pong",
        }
    }
}

/// Why a session cannot start now.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailability {
    /// Outside the topic's opening hours.
    Closed,
    /// A coordinator paused the topic.
    Paused,
    /// The queue is full; try again later.
    Full,
    /// The topic does not exist.
    UnknownTopic,
    /// The language is not one the helpline offers.
    UnknownLanguage,
    /// A counsellor ended an abusive chat from this connection with a
    /// cool-down; `opens_at` says when it lapses. The alternatives are
    /// still there for someone in need.
    Blocked,
}

/// A topic's state, as told to those waiting in it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicState {
    /// Open as usual (after a pause, or when a closing was lifted).
    Open,
    /// Closes soon; those waiting may not be reached.
    Closing,
    /// Closed; those still waiting are served while counsellors remain.
    Closed,
    /// Paused by a coordinator; those waiting keep their place.
    Paused,
}
