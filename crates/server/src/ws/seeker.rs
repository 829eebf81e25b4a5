//! The help-seeker's socket: `hello` or `resume` first, then one session.

use std::sync::Arc;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use haven_core::{Side, TopicId};
use haven_protocol::seeker::{self, ClientMessage, Unavailability};
use haven_protocol::{CloseCode, ErrorCode, PROTOCOL_VERSION, decode_seeker};

use super::conn::ConnHandle;
use super::frames::{encode_seeker, seeker_error};
use super::reader::{Reader, Role};
use super::validate;
use super::{Admission, Socket, refuse};
use crate::app::AppState;
use crate::broker::{
    HelloRefused, HelloRequest, ResumeTarget, SeekerInfo, SessionCell, parse_return_code,
};
use crate::limits::SourceTag;

const PONG: &str = r#"{"type":"pong"}"#;

/// Runs one help-seeker socket to its end.
pub(super) async fn run(state: AppState, socket: WebSocket, admission: Admission) {
    let mut socket = Socket::open(&state, socket, Role::Seeker, admission);
    let mut cell: Option<Arc<SessionCell>> = None;
    // The socket's task waits here for most of its life, so it is kept
    // small: everything that awaits the router is boxed and lives only
    // while it runs.
    while let Some(text) = socket.reader.next(cell.is_some()).await {
        match &cell {
            None => {
                let blocked = socket.blocked_until();
                cell = Box::pin(greet(&state, &socket.conn, &text, socket.source(), blocked)).await;
                if cell.is_none() {
                    break;
                }
            }
            Some(c) => {
                if handle(&state, &socket.conn, &mut socket.reader, c, &text) {
                    Box::pin(state.broker.seeker_end(c.id)).await;
                }
            }
        }
    }
    let conn_id = socket.conn.id();
    Box::pin(socket.close(async {
        if let Some(cell) = cell {
            state.broker.seeker_gone(cell.id, conn_id).await;
        }
    }))
    .await;
}

/// The first frame must be `hello` or `resume`.
async fn greet(
    state: &AppState,
    conn: &ConnHandle,
    text: &Utf8Bytes,
    source: SourceTag,
    blocked_until: Option<u64>,
) -> Option<Arc<SessionCell>> {
    let msg = match decode_seeker(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            refuse(
                conn,
                Role::Seeker,
                e.code,
                &e.detail,
                CloseCode::ProtocolViolation,
            );
            return None;
        }
    };
    match msg {
        hello @ ClientMessage::Hello { .. } => {
            let ClientMessage::Hello { protocol, .. } = hello else {
                unreachable!("matched above")
            };
            if protocol != PROTOCOL_VERSION {
                refuse(
                    conn,
                    Role::Seeker,
                    ErrorCode::UnsupportedProtocol,
                    "this server speaks protocol 1",
                    CloseCode::ProtocolViolation,
                );
                return None;
            }
            let request = match hello_request(state, hello, source) {
                Ok(request) => request,
                Err(Refused::Invalid(why)) => {
                    refuse(
                        conn,
                        Role::Seeker,
                        ErrorCode::InvalidMessage,
                        why,
                        CloseCode::ProtocolViolation,
                    );
                    return None;
                }
                Err(Refused::Unavailable(reason)) => {
                    let refused = HelloRefused {
                        reason,
                        opens_at: None,
                        message: None,
                    };
                    unavailable(state, conn, None, refused);
                    return None;
                }
            };
            // A cool-down on this source: a kind answer, with when it
            // lapses and where else to turn, never a technical error.
            if let Some(until) = blocked_until {
                let refused = HelloRefused {
                    reason: Unavailability::Blocked,
                    opens_at: Some(until),
                    message: None,
                };
                unavailable(state, conn, Some(request.topic), refused);
                return None;
            }
            if state.draining.load(std::sync::atomic::Ordering::Acquire) {
                refuse(
                    conn,
                    Role::Seeker,
                    ErrorCode::Unavailable,
                    "shutting down",
                    CloseCode::TryAgainLater,
                );
                return None;
            }
            let topic = request.topic;
            let mut request = request;
            if let (Some(code), Some(kept)) = (request.return_code, state.broker.kept()) {
                request.returning_to = kept.take(code).await;
            }
            match state.broker.seeker_hello(request, conn).await {
                Ok(cell) => Some(cell),
                Err(refused) => {
                    unavailable(state, conn, Some(topic), refused);
                    None
                }
            }
        }
        ClientMessage::Resume { token, last_seq } => {
            // A counsellor's token on this endpoint is refused without
            // being spent.
            let resumed = match state.broker.resume_target(&token.0) {
                Some((used, ResumeTarget::Seeker(session))) => state
                    .broker
                    .seeker_resume(session, used, last_seq, conn, source)
                    .await
                    .ok(),
                _ => None,
            };
            if resumed.is_none() {
                refuse(
                    conn,
                    Role::Seeker,
                    ErrorCode::ResumeFailed,
                    "unknown, used or expired token; start a new session",
                    CloseCode::ResumeFailed,
                );
            }
            resumed
        }
        _ => {
            refuse(
                conn,
                Role::Seeker,
                ErrorCode::WrongState,
                "send hello or resume first",
                CloseCode::ProtocolViolation,
            );
            None
        }
    }
}

/// Why a hello cannot go ahead.
enum Refused {
    /// Malformed: a protocol violation.
    Invalid(&'static str),
    /// Well-formed, but there is no such topic or language.
    Unavailable(Unavailability),
}

/// Checks a `hello` and turns it into a request for the broker.
fn hello_request(
    state: &AppState,
    hello: ClientMessage,
    source: SourceTag,
) -> Result<HelloRequest, Refused> {
    let ClientMessage::Hello {
        nickname,
        topic,
        language,
        urgent,
        return_code,
        transcript_consent,
        ..
    } = hello
    else {
        return Err(Refused::Invalid("send hello or resume first"));
    };
    let topic = topic.as_deref();
    let plan = state.broker.plan();
    let nickname = validate::nickname(nickname).map_err(Refused::Invalid)?;
    // Any name the helpline does not have, whatever it looks like, is
    // answered the same way: `unavailable`, with the alternatives.
    let topic = match topic {
        None => plan.topic(&state.config.session.default_topic),
        Some(name) => plan.topic(name),
    }
    .ok_or(Refused::Unavailable(Unavailability::UnknownTopic))?;
    let topic_name = plan.topic_name(topic).to_owned();
    let language_tag = language;
    let language = match &language_tag {
        None => None,
        Some(tag) => Some(
            plan.language(tag)
                .ok_or(Refused::Unavailable(Unavailability::UnknownLanguage))?,
        ),
    };
    // The tag as asked (`nl-BE` for a Flemish help-seeker) when it is a
    // plain tag, else the language it is served in.
    let language_tag = match (language, &language_tag) {
        (Some(_), Some(asked)) if plain_tag(asked) => Some(asked.clone()),
        (Some(l), _) => Some(plan.language_tag(l).to_owned()),
        (None, _) => None,
    };
    let return_code = match return_code {
        None => None,
        Some(text) => Some(parse_return_code(&text).ok_or(Refused::Invalid(
            "return_code: eight characters like K7M2-Q9XD",
        ))?),
    };
    Ok(HelloRequest {
        info: SeekerInfo {
            nickname,
            topic: topic_name,
            language: language_tag,
            urgent,
            returning: false,
        },
        topic,
        language,
        return_code,
        returning_to: None,
        transcript_consent,
        source,
    })
}

/// A language tag as browsers send them: letters, digits, `-` and `_`, at
/// most 32 bytes.
fn plain_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 32
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Answers a hello with `unavailable` and the alternatives (of the topic
/// asked for, or else of the default topic), then closes.
fn unavailable(state: &AppState, conn: &ConnHandle, topic: Option<TopicId>, refused: HelloRefused) {
    let plan = state.broker.plan();
    let topic = topic
        .or_else(|| plan.topic(&state.config.session.default_topic))
        .and_then(|t| plan.topic_plan(t));
    conn.send(encode_seeker(&seeker::ServerMessage::Unavailable {
        reason: refused.reason,
        opens_at: refused.opens_at,
        message: refused.message,
        alternatives: topic.map(|t| t.alternatives.clone()).unwrap_or_default(),
    }));
    conn.close_after_queued(CloseCode::Normal);
}

/// Handles a frame. Returns whether the help-seeker asked to end the
/// session, which the caller takes to the router.
fn handle(
    state: &AppState,
    conn: &ConnHandle,
    reader: &mut Reader,
    cell: &SessionCell,
    text: &Utf8Bytes,
) -> bool {
    let msg = match decode_seeker(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            conn.send(seeker_error(e.code, None, Some(e.detail)));
            return false;
        }
    };
    match msg {
        ClientMessage::Send { id, text, received } => {
            // The confirmation stands on its own, whatever becomes of the
            // message it came with.
            if let Some(up_to) = received {
                cell.confirm(Side::Seeker, None, up_to);
            }
            let checked = validate::id(&id)
                .and_then(|()| validate::text(&text, state.config.session.max_chars));
            if let Err(code) = checked {
                conn.send(seeker_error(code, Some(id), None));
                return false;
            }
            if !reader.admit_message() {
                conn.send(seeker_error(
                    ErrorCode::RateLimited,
                    Some(id),
                    Some("slow down: message not accepted, retry later".to_owned()),
                ));
                return false;
            }
            match cell.seeker_send(&id, text, conn) {
                Ok(()) => {}
                Err(refused) => {
                    conn.send(seeker_error(refused.code(), Some(id), None));
                }
            }
        }
        ClientMessage::Typing { active } => {
            cell.typing(Side::Seeker, None, active);
        }
        ClientMessage::Received { up_to } => {
            cell.confirm(Side::Seeker, None, up_to);
        }
        ClientMessage::End => return true,
        ClientMessage::Ping => {
            conn.send(Utf8Bytes::from_static(PONG));
        }
        ClientMessage::Hello { .. } | ClientMessage::Resume { .. } => {
            conn.send(seeker_error(
                ErrorCode::WrongState,
                None,
                Some("this socket already has a session".to_owned()),
            ));
        }
    }
    false
}
