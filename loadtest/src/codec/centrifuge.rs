//! Centrifuge's JSON protocol (the library under Centrifugo, version
//! 0.15). Each side subscribes to its own channel (`s<id>:a`, `s<id>:b`)
//! and publishes into the other's.
//!
//! Commands are `{"id":N,"method":M,"params":{...}}` (method 0, connect, is
//! left out); replies carry the command's `id`; pushes have no `id` and
//! carry `{"channel":...,"data":{"data":<published>}}`. One frame may hold
//! several replies, one per line.

use serde_json::Value;

use super::{Codec, Event, Key, single};

const CONNECT_ID: u64 = 1;
const SUBSCRIBE_ID: u64 = 2;

/// One side of a Centrifuge session.
#[derive(Debug)]
pub struct Centrifuge {
    own: String,
    peer: String,
    next_id: u64,
}

impl Centrifuge {
    /// Side `a` (`first`) or `b` of session `session`.
    pub fn new(session: u64, first: bool) -> Self {
        let (own, peer) = if first { ('a', 'b') } else { ('b', 'a') };
        Self {
            own: format!("s{session}:{own}"),
            peer: format!("s{session}:{peer}"),
            next_id: SUBSCRIBE_ID + 1,
        }
    }
}

impl Codec for Centrifuge {
    fn path(&self) -> String {
        "/connection/websocket".to_owned()
    }

    fn greet(&mut self, out: &mut Vec<String>) -> bool {
        out.push(format!(r#"{{"id":{CONNECT_ID},"params":{{}}}}"#));
        false
    }

    fn chat(&mut self, _key: &Key, _n: u64, text: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        format!(
            r#"{{"id":{id},"method":3,"params":{{"channel":"{}","data":"{text}"}}}}"#,
            self.peer
        )
    }

    fn acks(&self) -> bool {
        true
    }

    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        for line in frame.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(reply) = serde_json::from_str::<Value>(line) else {
                out.push(Event::Refused("undecodable frame".to_owned()));
                continue;
            };
            if let Some(error) = reply.get("error") {
                out.push(Event::Refused(format!("centrifuge error {error}")));
                continue;
            }
            match reply.get("id").and_then(Value::as_u64) {
                Some(CONNECT_ID) => out.push(Event::Reply(format!(
                    r#"{{"id":{SUBSCRIBE_ID},"method":1,"params":{{"channel":"{}"}}}}"#,
                    self.own
                ))),
                Some(SUBSCRIBE_ID) => out.push(Event::Matched(single())),
                Some(_) => out.push(Event::Accepted),
                None => {
                    let push = &reply["result"];
                    // Only publications (type 0, left out) carry chat.
                    if push.get("type").is_some() {
                        continue;
                    }
                    if let Some(text) = push["data"]["data"].as_str() {
                        out.push(Event::Chat {
                            key: single(),
                            text: text.to_owned(),
                            seq: None,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_subscribes_and_reads_batched_pushes() {
        let mut c = Centrifuge::new(3, true);
        let mut out = Vec::new();
        assert!(!c.greet(&mut out));
        assert_eq!(out, [r#"{"id":1,"params":{}}"#]);
        let mut ev = Vec::new();
        c.decode(
            r#"{"id":1,"result":{"client":"x","version":"0.15"}}"#,
            &mut ev,
        );
        c.decode(
            "{\"id\":2,\"result\":{}}\n{\"result\":{\"channel\":\"s3:a\",\"data\":{\"data\":\"0.1.x\"}}}",
            &mut ev,
        );
        c.decode(r#"{"id":3,"result":{}}"#, &mut ev);
        assert_eq!(
            ev,
            [
                Event::Reply(r#"{"id":2,"method":1,"params":{"channel":"s3:a"}}"#.into()),
                Event::Matched(single()),
                Event::Chat {
                    key: single(),
                    text: "0.1.x".into(),
                    seq: None
                },
                Event::Accepted,
            ]
        );
        assert_eq!(
            c.chat(&single(), 0, "0.1.x"),
            r#"{"id":3,"method":3,"params":{"channel":"s3:b","data":"0.1.x"}}"#
        );
    }
}
