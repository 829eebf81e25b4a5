//! How each target server frames the same workload. A codec turns the
//! load generator's intentions (greet, send this payload, confirm, end)
//! into frames, and incoming frames into [`Event`]s; the per-socket loops
//! in `driver.rs` are the same for every target.

use std::sync::Arc;

pub mod centrifuge;
pub mod haven;
pub mod relay;
pub mod socketio;

/// A session as a codec names it on its socket ("" where a socket has
/// only one).
pub type Key = Arc<str>;

/// What an incoming frame meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A session is ready for chat (assigned, joined, subscribed).
    Matched(Key),
    /// A chat payload arrived in a session, with the server's sequence
    /// number where the protocol has one.
    Chat {
        /// The session.
        key: Key,
        /// The chat text.
        text: String,
        /// The server's `seq`.
        seq: Option<u64>,
    },
    /// The server accepted one of this socket's chat messages.
    Accepted,
    /// The server refused a message or reported an error (its code).
    Refused(String),
    /// A session ended.
    Ended(Key),
    /// A counsellor bot is available for sessions.
    Available,
    /// A queue position update.
    Position,
    /// A frame to send back at once (pong, accept, join, ...).
    Reply(String),
}

/// One socket's framing.
pub trait Codec: Send + 'static {
    /// The path to open.
    fn path(&self) -> String;
    /// Frames to send first. Returns whether the socket is matched right
    /// away (a pair relay needs no greeting).
    fn greet(&mut self, out: &mut Vec<String>) -> bool;
    /// The frame for chat message number `n` (from 0) in session `key`.
    fn chat(&mut self, key: &Key, n: u64, text: &str) -> String;
    /// Whether the server acknowledges chat messages with
    /// [`Event::Accepted`].
    fn acks(&self) -> bool;
    /// What an incoming text frame means.
    fn decode(&mut self, frame: &str, out: &mut Vec<Event>);
    /// Frames confirming what arrived since the last call.
    fn confirm(&mut self, _out: &mut Vec<String>) {}
    /// Frames that end session `key` politely.
    fn end(&mut self, _key: &Key, _out: &mut Vec<String>) {}
}

/// The key of a socket's only session.
pub fn single() -> Key {
    Key::from("")
}

impl<C: Codec + ?Sized> Codec for Box<C> {
    fn path(&self) -> String {
        (**self).path()
    }
    fn greet(&mut self, out: &mut Vec<String>) -> bool {
        (**self).greet(out)
    }
    fn chat(&mut self, key: &Key, n: u64, text: &str) -> String {
        (**self).chat(key, n, text)
    }
    fn acks(&self) -> bool {
        (**self).acks()
    }
    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        (**self).decode(frame, out);
    }
    fn confirm(&mut self, out: &mut Vec<String>) {
        (**self).confirm(out);
    }
    fn end(&mut self, key: &Key, out: &mut Vec<String>) {
        (**self).end(key, out);
    }
}

/// Both sides of session `session` for a pair target (everything but
/// Haven, whose sessions are paired by its router).
pub fn pair(target: crate::cli::Target, session: u64) -> Option<(Box<dyn Codec>, Box<dyn Codec>)> {
    use crate::cli::Target;
    Some(match target {
        Target::Haven => return None,
        Target::Relay => (
            Box::new(relay::Relay::new(session, true)),
            Box::new(relay::Relay::new(session, false)),
        ),
        Target::Socketio => (
            Box::new(socketio::SocketIo::new(session)),
            Box::new(socketio::SocketIo::new(session)),
        ),
        Target::Centrifuge => (
            Box::new(centrifuge::Centrifuge::new(session, true)),
            Box::new(centrifuge::Centrifuge::new(session, false)),
        ),
    })
}
