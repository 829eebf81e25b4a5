//! The counsellor's socket: authenticated `hello` or `resume` first, then
//! any number of sessions, each message naming its session.
//!
//! Every message is authorised against the session's current counsellor
//! (in the cell), not just the socket, and the socket closes the moment its
//! login ends (logout, expiry, idleness, revocation).

use axum::extract::ws::{Utf8Bytes, WebSocket};
use haven_core::{LangId, Profile, Refusal, SessionId, Side, Status, TopicId};
use haven_protocol::common::{AuthToken, SessionRef};
use haven_protocol::counsellor::{ClientMessage, CounsellorStatus};
use haven_protocol::{CloseCode, ErrorCode, PROTOCOL_VERSION, decode_counsellor};

use super::conn::ConnHandle;
use super::frames::counsellor_error;
use super::reader::{Reader, Role};
use super::validate;
use super::{Admission, Socket, refuse};
use crate::app::AppState;
use crate::broker::{CounsellorLogin, ResumeTarget, SessionCell, TransferTarget};

const PONG: &str = r#"{"type":"pong"}"#;

/// Runs one counsellor socket to its end.
pub(super) async fn run(
    state: AppState,
    socket: WebSocket,
    admission: Admission,
    cookie_token: Option<String>,
) {
    let mut socket = Socket::open(&state, socket, Role::Counsellor, admission);
    // The socket's task waits here for most of its life, so it is kept
    // small: everything that awaits the router is boxed and lives only
    // while it runs.
    let mut login = None;
    if let Some(text) = socket.reader.next(false).await {
        login = Box::pin(greet(&state, &socket.conn, &text, cookie_token.as_deref())).await;
    }
    if let Some(me) = &login {
        // The login's end (logout, expiry, idleness, revocation) closes
        // the socket at once. A small task waits for it, so the loop below
        // reads frames as it always did, with nothing more per frame.
        let watcher = {
            let (conn, ended) = (socket.conn.clone(), me.login.ended.clone());
            tokio::spawn(async move {
                ended.cancelled().await;
                refuse(
                    &conn,
                    Role::Counsellor,
                    ErrorCode::Unauthorized,
                    "login ended",
                    CloseCode::Unauthorized,
                );
            })
        };
        while let Some(text) = socket.reader.next(true).await {
            if let Some(msg) = handle(&state, &socket.conn, &mut socket.reader, me, &text) {
                Box::pin(control(&state, &socket.conn, me, msg)).await;
            }
        }
        watcher.abort();
    }
    let conn_id = socket.conn.id();
    Box::pin(socket.close(async {
        if let Some(me) = login {
            state.broker.counsellor_gone(me.id, conn_id).await;
        }
    }))
    .await;
}

/// Resolves a login token (from the message or the cookie) to an account
/// and its routing profile.
fn authenticate(
    state: &AppState,
    token: Option<&AuthToken>,
    cookie: Option<&str>,
) -> Option<CounsellorLogin> {
    let token = token.map(|t| t.0.as_str()).or(cookie)?;
    let (_, login) = state.logins.validate(token)?;
    // A login that must first change its password or set up a second
    // factor takes no chats.
    if login.stage != crate::auth::Stage::Full {
        return None;
    }
    let account = state.accounts.get_by_id(login.account).ok()??;
    if account.epoch != login.epoch {
        return None;
    }
    let plan = state.broker.plan();
    let session = &state.config.session;
    let capacity = account.capacity.unwrap_or(session.default_capacity);
    let max_capacity = account
        .max_capacity
        .unwrap_or(session.default_max_capacity)
        .max(capacity);
    // Skills name topics and languages; unknown names (from an older
    // configuration) are ignored, absent lists mean all.
    let topics = match &account.topics {
        Some(names) => names.iter().filter_map(|n| plan.topic(n)).collect(),
        None => (0..plan.topics.len())
            .filter_map(|t| u16::try_from(t).ok().map(TopicId))
            .collect(),
    };
    let languages = match &account.languages {
        Some(tags) => tags.iter().filter_map(|t| plan.language(t)).collect(),
        None => (0..plan.languages.len())
            .filter_map(|l| u16::try_from(l).ok().map(LangId))
            .collect(),
    };
    Some(CounsellorLogin {
        id: account.counsellor_id(),
        name: account.name,
        display_name: account.display_name,
        profile: Profile {
            topics,
            languages,
            capacity,
            max_capacity,
        },
        login,
    })
}

async fn greet(
    state: &AppState,
    conn: &ConnHandle,
    text: &Utf8Bytes,
    cookie: Option<&str>,
) -> Option<CounsellorLogin> {
    let msg = match decode_counsellor(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            refuse(
                conn,
                Role::Counsellor,
                e.code,
                &e.detail,
                CloseCode::ProtocolViolation,
            );
            return None;
        }
    };
    match msg {
        ClientMessage::Hello { protocol, token } => {
            if protocol != PROTOCOL_VERSION {
                refuse(
                    conn,
                    Role::Counsellor,
                    ErrorCode::UnsupportedProtocol,
                    "this server speaks protocol 1",
                    CloseCode::ProtocolViolation,
                );
                return None;
            }
            let Some(login) = authenticate(state, token.as_ref(), cookie) else {
                refuse(
                    conn,
                    Role::Counsellor,
                    ErrorCode::Unauthorized,
                    "log in first",
                    CloseCode::Unauthorized,
                );
                return None;
            };
            // Attaching without a resume token cannot fail.
            state
                .broker
                .counsellor_attach(login.clone(), conn, None)
                .await
                .ok()?;
            Some(login)
        }
        ClientMessage::Resume {
            token,
            auth,
            sessions,
        } => {
            let Some(login) = authenticate(state, auth.as_ref(), cookie) else {
                refuse(
                    conn,
                    Role::Counsellor,
                    ErrorCode::Unauthorized,
                    "log in first",
                    CloseCode::Unauthorized,
                );
                return None;
            };
            // Only this counsellor's own token, on this endpoint, is
            // spent; anyone else's is left good for its owner.
            let ok = match state.broker.resume_target(&token.0) {
                Some((used, ResumeTarget::Counsellor(id))) if id == login.id => state
                    .broker
                    .counsellor_attach(login.clone(), conn, Some((used, sessions)))
                    .await
                    .is_ok(),
                _ => false,
            };
            if !ok {
                refuse(
                    conn,
                    Role::Counsellor,
                    ErrorCode::ResumeFailed,
                    "unknown, used or expired token; send hello instead",
                    CloseCode::ResumeFailed,
                );
                return None;
            }
            Some(login)
        }
        _ => {
            refuse(
                conn,
                Role::Counsellor,
                ErrorCode::WrongState,
                "send hello or resume first",
                CloseCode::ProtocolViolation,
            );
            None
        }
    }
}

/// Finds one of this counsellor's sessions, or answers with an error.
fn session_of(
    state: &AppState,
    conn: &ConnHandle,
    session: &SessionRef,
) -> Option<std::sync::Arc<SessionCell>> {
    let cell = SessionId::parse(&session.0).and_then(|id| state.broker.session(id));
    if cell.is_none() {
        not_yours(conn, session.clone());
    }
    cell
}

fn not_yours(conn: &ConnHandle, session: SessionRef) {
    conn.send(counsellor_error(
        ErrorCode::UnknownSession,
        Some(session),
        None,
        Some("not one of your sessions".to_owned()),
    ));
}

/// Handles a frame. Chat frames are dealt with at once; what needs the
/// router is returned, for [`control`].
fn handle(
    state: &AppState,
    conn: &ConnHandle,
    reader: &mut Reader,
    me: &CounsellorLogin,
    text: &Utf8Bytes,
) -> Option<ClientMessage> {
    let msg = match decode_counsellor(text.as_str()) {
        Ok(msg) => msg,
        Err(e) => {
            conn.send(counsellor_error(e.code, None, None, Some(e.detail)));
            return None;
        }
    };
    // What the counsellor does keeps their login from ending as idle;
    // what their console sends by itself (pings, receipts) does not.
    if !matches!(msg, ClientMessage::Ping | ClientMessage::Received { .. }) {
        state.logins.touch(&me.login, reader.last_heard());
    }
    match msg {
        ClientMessage::Send {
            session,
            id,
            text,
            received,
        } => {
            // The confirmation stands on its own, whatever becomes of the
            // message it came with.
            let confirmed = match received {
                Some(up_to) => {
                    let cell = session_of(state, conn, &session)?;
                    if !cell.confirm(Side::Counsellor, Some(me.id), up_to) {
                        not_yours(conn, session);
                        return None;
                    }
                    Some(cell)
                }
                None => None,
            };
            let checked = validate::id(&id)
                .and_then(|()| validate::text(&text, state.config.session.max_chars));
            if let Err(code) = checked {
                conn.send(counsellor_error(code, Some(session), Some(id), None));
                return None;
            }
            if !reader.admit_message() {
                conn.send(counsellor_error(
                    ErrorCode::RateLimited,
                    Some(session),
                    Some(id),
                    Some("slow down: message not accepted, retry later".to_owned()),
                ));
                return None;
            }
            let cell = match confirmed {
                Some(cell) => cell,
                None => session_of(state, conn, &session)?,
            };
            match cell.counsellor_send(me.id, &id, text, conn) {
                Ok(()) => {}
                Err(refused) => {
                    conn.send(counsellor_error(
                        refused.code(),
                        Some(session),
                        Some(id),
                        None,
                    ));
                }
            }
        }
        ClientMessage::Typing { session, active } => {
            let cell = session_of(state, conn, &session)?;
            if !cell.typing(Side::Counsellor, Some(me.id), active) {
                not_yours(conn, session);
            }
        }
        ClientMessage::Received { session, up_to } => {
            let cell = session_of(state, conn, &session)?;
            if !cell.confirm(Side::Counsellor, Some(me.id), up_to) {
                not_yours(conn, session);
            }
        }
        ClientMessage::Ping => {
            conn.send(Utf8Bytes::from_static(PONG));
        }
        ClientMessage::Hello { .. } | ClientMessage::Resume { .. } => {
            conn.send(counsellor_error(
                ErrorCode::WrongState,
                None,
                None,
                Some("this socket is already greeted".to_owned()),
            ));
        }
        other => return Some(other),
    }
    None
}

/// The frames that need the router: status, capacity, offers, transfers,
/// ending sessions.
async fn control(state: &AppState, conn: &ConnHandle, me: &CounsellorLogin, msg: ClientMessage) {
    match msg {
        ClientMessage::End { session, block } => {
            let Some(cell) = session_of(state, conn, &session) else {
                return;
            };
            let abuse = &state.config.abuse;
            if let Some(b) = &block
                && !(abuse.block_hours.contains(&b.hours)
                    && abuse.block_reasons.contains(&b.reason))
            {
                conn.send(counsellor_error(
                    ErrorCode::InvalidMessage,
                    Some(session),
                    None,
                    Some("block: hours and reason must be among the helpline's".to_owned()),
                ));
                return;
            }
            // Where the help-seeker came from, taken before the session
            // (and its memory of it) ends.
            let sources = cell.lock().sources.clone();
            if state.broker.counsellor_end(me.id, cell.id).await.is_err() {
                not_yours(conn, session);
                return;
            }
            if let Some(b) = block {
                let now = crate::broker::session::now_ms();
                let until = now + u64::from(b.hours) * 3_600_000;
                let info =
                    state
                        .blocks
                        .add(sources, &me.name, &b.reason, &cell.info.topic, now, until);
                tracing::info!(counsellor = me.id.0, hours = b.hours, "help-seeker blocked");
                let detail = format!("{} {}h", b.reason, b.hours);
                state
                    .audit
                    .record(
                        crate::supervisor::audit::Entry::new(
                            &me.name,
                            crate::supervisor::audit::Action::Blocked,
                        )
                        .session(&cell.wire.0)
                        .target(&info.id)
                        .detail(&detail),
                    )
                    .await;
            }
        }
        ClientMessage::RaiseHand { session, raised } => {
            let Some(cell) = session_of(state, conn, &session) else {
                return;
            };
            if state
                .broker
                .raise_hand(me.id, cell.id, raised)
                .await
                .is_err()
            {
                not_yours(conn, session);
            }
        }
        ClientMessage::SetCapacity { capacity } => state.broker.set_capacity(me.id, capacity).await,
        ClientMessage::Ready => state.broker.ready(me.id).await,
        ClientMessage::Accept { session } => answer(state, conn, me, session, true).await,
        ClientMessage::Decline { session } => answer(state, conn, me, session, false).await,
        ClientMessage::Transfer {
            session,
            to_counsellor,
            to_topic,
            warm,
            note,
        } => {
            transfer(
                state,
                conn,
                me,
                session,
                to_counsellor,
                to_topic,
                warm,
                note,
            )
            .await;
        }
        ClientMessage::SetStatus { status } => {
            let status = match status {
                CounsellorStatus::Available => Status::Available,
                CounsellorStatus::Away => Status::Away,
                CounsellorStatus::WrapUp => {
                    conn.send(counsellor_error(
                        ErrorCode::InvalidMessage,
                        None,
                        None,
                        Some("status is available or away; end wrap-up with ready".to_owned()),
                    ));
                    return;
                }
            };
            state.broker.set_status(me.id, status).await;
        }
        // Handled in `handle`.
        ClientMessage::Send { .. }
        | ClientMessage::Typing { .. }
        | ClientMessage::Received { .. }
        | ClientMessage::Ping
        | ClientMessage::Hello { .. }
        | ClientMessage::Resume { .. } => {}
    }
}

/// Longest transfer note, in characters.
const MAX_NOTE: usize = 2000;

async fn answer(
    state: &AppState,
    conn: &ConnHandle,
    me: &CounsellorLogin,
    session: SessionRef,
    accept: bool,
) {
    let Some(cell) = session_of(state, conn, &session) else {
        return;
    };
    if state.broker.answer(me.id, cell.id, accept).await.is_err() {
        conn.send(counsellor_error(
            ErrorCode::NoOffer,
            Some(session),
            None,
            Some("no such offer: it timed out or was withdrawn".to_owned()),
        ));
    }
}

#[allow(clippy::too_many_arguments)] // One message's fields, checked here.
async fn transfer(
    state: &AppState,
    conn: &ConnHandle,
    me: &CounsellorLogin,
    session: SessionRef,
    to_counsellor: Option<String>,
    to_topic: Option<String>,
    warm: bool,
    note: Option<String>,
) {
    let fail = |code: ErrorCode, detail: &str| {
        conn.send(counsellor_error(
            code,
            Some(session.clone()),
            None,
            Some(detail.to_owned()),
        ));
    };
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return fail(
            ErrorCode::InvalidMessage,
            "the note may be at most 2000 characters",
        );
    }
    let target = match (to_counsellor, to_topic) {
        (Some(name), None) => match state.accounts.get(&name).ok().flatten() {
            Some(account) => TransferTarget::Counsellor(account.counsellor_id()),
            None => return fail(ErrorCode::TransferTargetUnavailable, "no such colleague"),
        },
        (None, Some(topic)) => match state.broker.plan().topic(&topic) {
            Some(t) => TransferTarget::Topic(t),
            None => return fail(ErrorCode::UnknownTopic, "no such topic"),
        },
        _ => {
            return fail(
                ErrorCode::InvalidMessage,
                "give exactly one of to_counsellor and to_topic",
            );
        }
    };
    let Some(cell) = session_of(state, conn, &session) else {
        return;
    };
    let note = note.filter(|n| !n.trim().is_empty());
    match state
        .broker
        .transfer(me.id, cell.id, target, warm, note)
        .await
    {
        Ok(()) => {}
        Err(Refusal::TransferPending) => fail(
            ErrorCode::TransferPending,
            "a transfer is already waiting for an answer",
        ),
        Err(Refusal::Unavailable) => fail(
            ErrorCode::TransferTargetUnavailable,
            "that colleague is offline, in the session already, or you",
        ),
        Err(Refusal::UnknownTopic) => fail(ErrorCode::UnknownTopic, "no such topic"),
        Err(_) => not_yours(conn, session.clone()),
    }
}
