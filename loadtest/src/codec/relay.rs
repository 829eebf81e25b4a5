//! A pair relay (`/s/<id>/a`, `/s/<id>/b`): the chat text is the frame.
//! The bare relay, Node `ws` and uWebSockets.js peers speak this.

use super::{Codec, Event, Key, single};

/// One side of a relayed session.
#[derive(Debug)]
pub struct Relay {
    session: u64,
    side: char,
}

impl Relay {
    /// Side `a` (`first`) or `b` of session `session`.
    pub fn new(session: u64, first: bool) -> Self {
        Self {
            session,
            side: if first { 'a' } else { 'b' },
        }
    }
}

impl Codec for Relay {
    fn path(&self) -> String {
        format!("/s/{}/{}", self.session, self.side)
    }

    fn greet(&mut self, _out: &mut Vec<String>) -> bool {
        true
    }

    fn chat(&mut self, _key: &Key, _n: u64, text: &str) -> String {
        text.to_owned()
    }

    fn acks(&self) -> bool {
        false
    }

    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        out.push(Event::Chat {
            key: single(),
            text: frame.to_owned(),
            seq: None,
        });
    }
}
