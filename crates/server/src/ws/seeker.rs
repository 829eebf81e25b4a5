//! The help-seeker's socket: `hello` or `resume` first, then one session.

use std::sync::Arc;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use haven_core::Side;
use haven_protocol::seeker::ClientMessage;
use haven_protocol::{CloseCode, ErrorCode, PROTOCOL_VERSION, decode_seeker};

use super::conn::ConnHandle;
use super::frames::seeker_error;
use super::reader::{Reader, Role};
use super::validate;
use super::{Admission, Socket, refuse};
use crate::app::AppState;
use crate::broker::{ResumeTarget, SeekerInfo, SessionCell};

const PONG: &str = r#"{"type":"pong"}"#;

/// Runs one help-seeker socket to its end.
pub(super) async fn run(state: AppState, socket: WebSocket, admission: Admission) {
    let mut socket = Socket::open(&state, socket, Role::Seeker, admission);
    let mut cell: Option<Arc<SessionCell>> = None;
    while let Some(text) = socket.reader.next(cell.is_some()).await {
        match &cell {
            None => {
                cell = greet(&state, &socket.conn, &text).await;
                if cell.is_none() {
                    break;
                }
            }
            Some(c) => handle(&state, &socket.conn, &mut socket.reader, c, &text).await,
        }
    }
    let conn_id = socket.conn.id();
    socket
        .close(async {
            if let Some(cell) = cell {
                state.broker.seeker_gone(cell.id, conn_id).await;
            }
        })
        .await;
}

/// The first frame must be `hello` or `resume`.
async fn greet(state: &AppState, conn: &ConnHandle, text: &Utf8Bytes) -> Option<Arc<SessionCell>> {
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
        ClientMessage::Hello {
            protocol,
            nickname,
            topic,
            language,
        } => {
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
            let info = match hello_info(state, nickname, topic, language) {
                Ok(info) => info,
                Err(why) => {
                    refuse(
                        conn,
                        Role::Seeker,
                        ErrorCode::InvalidMessage,
                        why,
                        CloseCode::ProtocolViolation,
                    );
                    return None;
                }
            };
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
            Some(state.broker.seeker_hello(info, conn).await)
        }
        ClientMessage::Resume { token, last_seq } => {
            let resumed = match state.broker.take_resume(&token.0) {
                Some(ResumeTarget::Seeker(session)) => state
                    .broker
                    .seeker_resume(session, last_seq, conn)
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

fn hello_info(
    state: &AppState,
    nickname: Option<String>,
    topic: Option<String>,
    language: Option<String>,
) -> Result<SeekerInfo, &'static str> {
    Ok(SeekerInfo {
        nickname: validate::nickname(nickname)?,
        topic: validate::tag(topic, "topic: letters, digits, '-' or '_', at most 32")?
            .unwrap_or_else(|| state.config.session.default_topic.clone()),
        language: validate::tag(language, "language: a tag such as nl-BE")?,
    })
}

async fn handle(
    state: &AppState,
    conn: &ConnHandle,
    reader: &mut Reader,
    cell: &SessionCell,
    text: &Utf8Bytes,
) {
    let msg = match decode_seeker(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            conn.send(seeker_error(e.code, None, Some(e.detail)));
            return;
        }
    };
    match msg {
        ClientMessage::Send { id, text } => {
            let checked = validate::id(&id)
                .and_then(|()| validate::text(&text, state.config.session.max_chars));
            if let Err(code) = checked {
                conn.send(seeker_error(code, Some(id), None));
                return;
            }
            if !reader.admit_message() {
                conn.send(seeker_error(
                    ErrorCode::RateLimited,
                    Some(id),
                    Some("slow down: message not accepted, retry later".to_owned()),
                ));
                return;
            }
            match cell.seeker_send(id.clone(), text) {
                Ok(ack) => {
                    conn.send(ack);
                }
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
        ClientMessage::End => state.broker.seeker_end(cell.id).await,
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
}
