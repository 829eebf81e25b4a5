//! Supervisors in a session: watching it silently, whispering to its
//! counsellors, and joining it visibly. All of it goes through the
//! session's cell, beside the chat, never through the router actor.
//!
//! A watching supervisor gets the session's messages from the moment they
//! start watching, as JSON items on a bounded channel; one who cannot keep
//! up is dropped (their stream ends) rather than slowing the chat down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use haven_protocol::common::{ChatText, ClientMsgId};
use haven_protocol::{counsellor, seeker};
use haven_transcript::{Body, Kind, Role};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::session::{CellState, SendRefused, SessionCell, Speaker, now_ms};
use crate::ws::frames::{encode_counsellor, encode_seeker};

/// Items buffered for one watching supervisor.
const OBSERVER_BUFFER: usize = 256;

static NEXT_OBSERVER: AtomicU64 = AtomicU64::new(1);

/// A supervisor watching a session.
#[derive(Debug)]
pub(crate) struct Observer {
    id: u64,
    tx: mpsc::Sender<Arc<str>>,
}

/// A supervisor who joined a session visibly.
#[derive(Debug, Clone)]
pub(crate) struct Guest {
    account: Arc<str>,
    display: Arc<str>,
}

/// What a watching supervisor sees of one message: who (`None` for the
/// help-seeker), the text, when.
pub(crate) fn said(from: Option<&str>, text: &ChatText, at: u64) -> Arc<str> {
    item(&json!({
        "type": "message",
        "from": from.map_or(json!({"seeker": true}), |name| json!({"counsellor": name})),
        "text": text.0,
        "at": at,
    }))
}

fn item(value: &serde_json::Value) -> Arc<str> {
    Arc::from(value.to_string())
}

impl CellState {
    /// Gives an item to every watcher; drops those who cannot keep up or
    /// went away.
    pub(crate) fn tell_observers(&mut self, item: &Arc<str>) {
        self.observers
            .retain(|o| o.tx.try_send(item.clone()).is_ok());
    }
}

/// A watch on a session; ends the watch when dropped.
#[derive(Debug)]
pub(crate) struct Watch {
    cell: Arc<SessionCell>,
    id: u64,
    by: Arc<str>,
    /// The session's items.
    pub(crate) rx: mpsc::Receiver<Arc<str>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut st = self.cell.lock();
        let before = st.observers.len();
        st.observers.retain(|o| o.id != self.id);
        if st.session.open_to_guests() && st.observers.len() < before {
            st.to_counsellors(&encode_counsellor(&counsellor::ServerMessage::Observed {
                session: self.cell.wire.clone(),
                by: self.by.to_string(),
                active: false,
            }));
        }
    }
}

impl SessionCell {
    /// Starts watching a session with a counsellor. The counsellors are
    /// told; the help-seeker is not.
    pub(crate) fn observe(self: &Arc<Self>, by: &str) -> Option<Watch> {
        let mut st = self.lock();
        if !st.session.open_to_guests() {
            return None;
        }
        let (tx, rx) = mpsc::channel(OBSERVER_BUFFER);
        let id = NEXT_OBSERVER.fetch_add(1, Ordering::Relaxed);
        // Who is in it, so the watcher knows whom they are watching.
        let members: Vec<String> = st
            .members()
            .iter()
            .map(|m| m.link.name.to_string())
            .collect();
        let _ = tx.try_send(item(&json!({
            "type": "watching",
            "session": self.wire.0,
            "topic": self.info.topic,
            "counsellors": members,
            "urgent": self.info.urgent,
        })));
        st.observers.push(Observer { id, tx });
        st.to_counsellors(&encode_counsellor(&counsellor::ServerMessage::Observed {
            session: self.wire.clone(),
            by: by.to_owned(),
            active: true,
        }));
        drop(st);
        Some(Watch {
            cell: self.clone(),
            id,
            by: Arc::from(by),
            rx,
        })
    }

    /// A message for the session's counsellors only. Returns whether the
    /// session has counsellors to receive it.
    pub(crate) fn whisper(&self, by: &str, text: &ChatText) -> bool {
        let mut st = self.lock();
        if !st.session.open_to_guests() {
            return false;
        }
        let at = now_ms();
        st.to_counsellors(&encode_counsellor(&counsellor::ServerMessage::Whisper {
            session: self.wire.clone(),
            from: by.to_owned(),
            text: text.clone(),
            at,
        }));
        st.tell_observers(&item(&json!({
            "type": "whisper", "from": by, "text": text.0, "at": at,
        })));
        true
    }

    /// A supervisor joins visibly: the help-seeker and the counsellors are
    /// told, and the supervisor may then write to the help-seeker.
    pub(crate) fn join(&self, account: &str, display: &str) -> bool {
        let mut st = self.lock();
        if !st.session.open_to_guests() {
            return false;
        }
        if st.guests.iter().any(|g| g.account.as_ref() == account) {
            return true;
        }
        st.guests.push(Guest {
            account: Arc::from(account),
            display: Arc::from(display),
        });
        if let Some(conn) = &st.seeker {
            conn.send(encode_seeker(&seeker::ServerMessage::Assigned {
                counsellor: display.to_owned(),
            }));
        }
        st.to_counsellors(&encode_counsellor(
            &counsellor::ServerMessage::Participant {
                session: self.wire.clone(),
                counsellor: display.to_owned(),
                joined: true,
            },
        ));
        st.tell_observers(&item(&json!({"type": "joined", "by": display})));
        st.record(Kind::Join, supervisor(display));
        true
    }

    /// A supervisor who joined leaves again.
    pub(crate) fn leave(&self, account: &str) -> bool {
        let mut st = self.lock();
        let Some(i) = st.guests.iter().position(|g| g.account.as_ref() == account) else {
            return false;
        };
        let guest = st.guests.remove(i);
        if st.session.open_to_guests() {
            if let Some(conn) = &st.seeker {
                conn.send(encode_seeker(&seeker::ServerMessage::CounsellorLeft {
                    counsellor: guest.display.to_string(),
                }));
            }
            st.to_counsellors(&encode_counsellor(
                &counsellor::ServerMessage::Participant {
                    session: self.wire.clone(),
                    counsellor: guest.display.to_string(),
                    joined: false,
                },
            ));
            st.tell_observers(&item(
                &json!({"type": "left", "by": guest.display.as_ref()}),
            ));
            st.record(Kind::Leave, supervisor(&guest.display));
        }
        true
    }

    /// A joined supervisor writes to the help-seeker, with the same
    /// guarantees as a counsellor's message: the `seq` that arrives on the
    /// returned channel means the broker has it (in a recorded session:
    /// its record is durable), and a retry with the same id is not sent
    /// twice.
    pub(crate) fn guest_send(
        &self,
        account: &str,
        id: &ClientMsgId,
        text: ChatText,
    ) -> Result<oneshot::Receiver<u64>, SendRefused> {
        let mut guard = self.lock();
        let st: &mut CellState = &mut guard;
        if !st.session.open_to_guests() {
            return Err(SendRefused::WrongState);
        }
        let Some(guest) = st
            .guests
            .iter()
            .find(|g| g.account.as_ref() == account)
            .cloned()
        else {
            return Err(SendRefused::NotYours);
        };
        let key = format!("s:{account}/{}", id.0);
        let (tx, rx) = oneshot::channel();
        self.relay_to_seeker(
            st,
            Speaker::Guest(&key),
            (Role::Supervisor, &guest.display),
            text,
            move |seq, _| {
                let _ = tx.send(seq);
            },
        )?;
        Ok(rx)
    }
}

/// A supervisor, as a transcript records them joining or leaving.
fn supervisor(display: &str) -> Body {
    Body {
        role: Some(Role::Supervisor),
        from: Some(display.to_owned()),
        ..Body::default()
    }
}
