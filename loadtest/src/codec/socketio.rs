//! socket.io (Engine.IO 4) over its WebSocket transport. Each session is a
//! room: both sides `join` it, and the peer server relays `m` events to the
//! rest of the room.
//!
//! Frames: `0{...}` open → we send `40` (connect to `/`); `40{...}`
//! connected → we send `42["join","<room>"]`; `42["joined"]` → matched;
//! `42["m","<text>"]` is a chat message; `2` is a ping, answered `3`.

use super::{Codec, Event, Key, single};

/// One side of a socket.io session.
#[derive(Debug)]
pub struct SocketIo {
    room: u64,
}

impl SocketIo {
    /// A member of room `room`.
    pub fn new(room: u64) -> Self {
        Self { room }
    }
}

impl Codec for SocketIo {
    fn path(&self) -> String {
        "/socket.io/?EIO=4&transport=websocket".to_owned()
    }

    fn greet(&mut self, _out: &mut Vec<String>) -> bool {
        false
    }

    fn chat(&mut self, _key: &Key, _n: u64, text: &str) -> String {
        // Payloads are hex, dots and padding: nothing to escape.
        format!(r#"42["m","{text}"]"#)
    }

    fn acks(&self) -> bool {
        false
    }

    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        if frame == "2" {
            out.push(Event::Reply("3".to_owned()));
        } else if frame.starts_with("0{") {
            out.push(Event::Reply("40".to_owned()));
        } else if frame.starts_with("40") {
            out.push(Event::Reply(format!(r#"42["join","{}"]"#, self.room)));
        } else if frame == r#"42["joined"]"# {
            out.push(Event::Matched(single()));
        } else if let Some(text) = frame
            .strip_prefix(r#"42["m",""#)
            .and_then(|rest| rest.strip_suffix(r#""]"#))
        {
            out.push(Event::Chat {
                key: single(),
                text: text.to_owned(),
                seq: None,
            });
        } else {
            out.push(Event::Refused(format!(
                "unexpected socket.io frame {:?}",
                frame.chars().take(40).collect::<String>()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_engine_io_4() {
        let mut c = SocketIo::new(7);
        let mut ev = Vec::new();
        for f in [
            r#"0{"sid":"x","pingInterval":25000}"#,
            r#"40{"sid":"y"}"#,
            r#"42["joined"]"#,
            r#"42["m","0.1.xx"]"#,
            "2",
        ] {
            c.decode(f, &mut ev);
        }
        assert_eq!(
            ev,
            [
                Event::Reply("40".into()),
                Event::Reply(r#"42["join","7"]"#.into()),
                Event::Matched(single()),
                Event::Chat {
                    key: single(),
                    text: "0.1.xx".into(),
                    seq: None
                },
                Event::Reply("3".into()),
            ]
        );
        assert_eq!(c.chat(&single(), 0, "0.1.xx"), r#"42["m","0.1.xx"]"#);
    }
}
