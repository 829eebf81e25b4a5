//! Haven's own protocol, from `haven-protocol`: a help-seeker who says
//! hello and chats, and a counsellor bot that goes available, accepts
//! what it is offered and answers in every session it has.
//!
//! Both confirm what they received as docs/protocol.md §4 asks: along with
//! their next `send` (its `received` field) when they have something to
//! say, and otherwise with a cumulative `received` frame when the driver
//! asks (every `--confirm-every`).

use std::collections::{HashMap, VecDeque};

use haven_protocol::common::{AuthToken, ChatText, ClientMsgId, SessionRef};
use haven_protocol::counsellor::{self, CounsellorStatus};
use haven_protocol::{ErrorCode, PROTOCOL_VERSION, seeker};
use serde::Serialize;

use super::{Codec, Event, Key, single};

fn json<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// A help-seeker.
#[derive(Debug, Default)]
pub struct Seeker {
    topic: Option<String>,
    receipt: Receipt,
}

impl Seeker {
    /// One who asks for `topic` (the server's default when `None`).
    pub fn new(topic: Option<String>) -> Self {
        Self {
            topic,
            ..Self::default()
        }
    }
}

impl Codec for Seeker {
    fn path(&self) -> String {
        "/ws/seeker".to_owned()
    }

    fn greet(&mut self, out: &mut Vec<String>) -> bool {
        out.push(json(&seeker::ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            nickname: None,
            topic: self.topic.clone(),
            language: None,
            urgent: false,
            return_code: None,
            // Where a topic asks, the simulated help-seeker agrees: a run
            // against a recording topic measures recording.
            transcript_consent: true,
        }));
        false
    }

    fn chat(&mut self, _key: &Key, n: u64, text: &str) -> String {
        json(&seeker::ClientMessage::Send {
            id: ClientMsgId(n.to_string()),
            text: ChatText(text.to_owned()),
            received: self.receipt.take_along(),
        })
    }

    fn acks(&self) -> bool {
        true
    }

    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        use seeker::ServerMessage as M;
        let Ok(msg) = serde_json::from_str::<M>(frame) else {
            return out.push(Event::Refused("undecodable frame".to_owned()));
        };
        match msg {
            M::Assigned { .. } => out.push(Event::Matched(single())),
            M::Message { seq, text, .. } => {
                self.receipt.last_seq = self.receipt.last_seq.max(seq);
                out.push(Event::Chat {
                    key: single(),
                    text: text.0,
                    seq: Some(seq),
                });
            }
            M::Ack { .. } => out.push(Event::Accepted),
            M::Queued { .. } => out.push(Event::Position),
            M::Error { code, .. } => out.push(Event::Refused(code_name(code))),
            M::Unavailable { reason, .. } => {
                out.push(Event::Refused(format!("unavailable: {reason:?}")));
            }
            M::Ended { .. } => out.push(Event::Ended(single())),
            M::Welcome { .. }
            | M::Resumed { .. }
            | M::TopicStatus { .. }
            | M::CounsellorLeft { .. }
            | M::Delivered { .. }
            | M::Typing { .. }
            | M::Peer { .. }
            | M::Pong => {}
        }
    }

    fn confirm(&mut self, out: &mut Vec<String>) {
        if let Some(up_to) = self.receipt.tick() {
            out.push(json(&seeker::ClientMessage::Received { up_to }));
        }
    }

    fn end(&mut self, _key: &Key, out: &mut Vec<String>) {
        out.push(json(&seeker::ClientMessage::End));
    }
}

/// What one session has received and confirmed. A confirmation falls due
/// at a tick of the driver's `--confirm-every` clock; it goes along with
/// the next `send`, or in a `received` frame of its own at the next tick
/// when nothing was sent in between.
#[derive(Debug, Default)]
struct Receipt {
    last_seq: u64,
    confirmed: u64,
    due: bool,
}

impl Receipt {
    fn confirm(&mut self) -> Option<u64> {
        self.due = false;
        (self.last_seq > self.confirmed).then(|| {
            self.confirmed = self.last_seq;
            self.last_seq
        })
    }

    /// For a `send`: the confirmation, when one is due.
    fn take_along(&mut self) -> Option<u64> {
        if self.due { self.confirm() } else { None }
    }

    /// At a tick: a confirmation to send on its own, when the one due since
    /// the last tick found no `send` to go with.
    fn tick(&mut self) -> Option<u64> {
        if self.due {
            self.confirm()
        } else {
            self.due = self.last_seq > self.confirmed;
            None
        }
    }
}

/// Ended sessions a bot remembers, to recognise frames that crossed the
/// end on the wire.
const REMEMBER_ENDED: usize = 256;

/// A counsellor bot.
#[derive(Debug)]
pub struct Counsellor {
    token: String,
    sessions: HashMap<Key, Receipt>,
    /// The sessions that ended most recently, oldest first.
    ended: VecDeque<Key>,
}

impl Counsellor {
    /// A bot logged in with `token`.
    pub fn new(token: String) -> Self {
        Self {
            token,
            sessions: HashMap::new(),
            ended: VecDeque::new(),
        }
    }
}

impl Codec for Counsellor {
    fn path(&self) -> String {
        "/ws/counsellor".to_owned()
    }

    fn greet(&mut self, out: &mut Vec<String>) -> bool {
        out.push(json(&counsellor::ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            token: Some(AuthToken(self.token.clone())),
        }));
        false
    }

    fn chat(&mut self, key: &Key, n: u64, text: &str) -> String {
        json(&counsellor::ClientMessage::Send {
            session: SessionRef(key.to_string()),
            id: ClientMsgId(n.to_string()),
            text: ChatText(text.to_owned()),
            received: self.sessions.get_mut(key).and_then(Receipt::take_along),
        })
    }

    fn acks(&self) -> bool {
        true
    }

    fn decode(&mut self, frame: &str, out: &mut Vec<Event>) {
        use counsellor::ServerMessage as M;
        let Ok(msg) = serde_json::from_str::<M>(frame) else {
            return out.push(Event::Refused("undecodable frame".to_owned()));
        };
        match msg {
            M::Welcome { .. } => {
                out.push(Event::Reply(json(&counsellor::ClientMessage::SetStatus {
                    status: CounsellorStatus::Available,
                })));
            }
            M::Status { status, .. } => {
                if status == CounsellorStatus::Available {
                    out.push(Event::Available);
                }
            }
            M::Offer { info, .. } => {
                out.push(Event::Reply(json(&counsellor::ClientMessage::Accept {
                    session: info.session,
                })));
            }
            M::SessionAssigned { info, .. } => {
                let key = Key::from(info.session.0);
                self.sessions.insert(key.clone(), Receipt::default());
                out.push(Event::Matched(key));
            }
            M::Message {
                session, seq, text, ..
            } => {
                let key = Key::from(session.0);
                let receipt = self.sessions.entry(key.clone()).or_default();
                receipt.last_seq = receipt.last_seq.max(seq);
                out.push(Event::Chat {
                    key,
                    text: text.0,
                    seq: Some(seq),
                });
            }
            M::Ack { .. } => out.push(Event::Accepted),
            // The broker could not write a transcript: the run is not clean.
            M::Transcript { .. } => out.push(Event::Refused("transcript_stopped".to_owned())),
            // A help-seeker who ends a session races the bot's echo or
            // `received` for it: the server refuses what arrives after the
            // end, which is the protocol working, not an error of the run.
            M::Error {
                code: ErrorCode::UnknownSession,
                session: Some(session),
                ..
            } if self.ended.iter().any(|k| **k == *session.0.as_str()) => {}
            M::Error { code, .. } => out.push(Event::Refused(code_name(code))),
            M::SessionEnded { session, .. } => {
                let key = Key::from(session.0);
                self.sessions.remove(&key);
                if self.ended.len() == REMEMBER_ENDED {
                    self.ended.pop_front();
                }
                self.ended.push_back(key.clone());
                out.push(Event::Ended(key));
            }
            M::Resumed { .. }
            | M::Queues { .. }
            | M::OfferWithdrawn { .. }
            | M::TransferFailed { .. }
            | M::Participant { .. }
            | M::Hand { .. }
            | M::Observed { .. }
            | M::Whisper { .. }
            | M::Said { .. }
            | M::Delivered { .. }
            | M::Typing { .. }
            | M::Peer { .. }
            | M::Pong => {}
        }
    }

    fn confirm(&mut self, out: &mut Vec<String>) {
        for (key, receipt) in &mut self.sessions {
            if let Some(up_to) = receipt.tick() {
                out.push(json(&counsellor::ClientMessage::Received {
                    session: SessionRef(key.to_string()),
                    up_to,
                }));
            }
        }
    }

    fn end(&mut self, key: &Key, out: &mut Vec<String>) {
        out.push(json(&counsellor::ClientMessage::End {
            session: SessionRef(key.to_string()),
            block: None,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeker_confirms_only_what_is_new() {
        let mut s = Seeker::new(None);
        let mut ev = Vec::new();
        s.decode(
            r#"{"type":"message","seq":3,"text":"0.1.","at":1,"from":"Anna"}"#,
            &mut ev,
        );
        assert_eq!(
            ev,
            [Event::Chat {
                key: single(),
                text: "0.1.".into(),
                seq: Some(3)
            }]
        );
        // Due at the first tick; sent alone at the second, nothing having
        // been sent in between.
        let mut out = Vec::new();
        s.confirm(&mut out);
        assert!(out.is_empty());
        s.confirm(&mut out);
        assert_eq!(out, [r#"{"type":"received","up_to":3}"#]);
        out.clear();
        s.confirm(&mut out);
        s.confirm(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_send_takes_the_confirmation_along_once() {
        let mut s = Seeker::new(None);
        let mut ev = Vec::new();
        s.decode(
            r#"{"type":"message","seq":2,"text":"x","at":1,"from":"Anna"}"#,
            &mut ev,
        );
        let key = single();
        // Not due yet: the send goes without it.
        assert_eq!(
            s.chat(&key, 6, "hi"),
            r#"{"type":"send","id":"6","text":"hi"}"#
        );
        let mut out = Vec::new();
        s.confirm(&mut out);
        assert!(out.is_empty());
        assert_eq!(
            s.chat(&key, 7, "hi"),
            r#"{"type":"send","id":"7","text":"hi","received":2}"#
        );
        assert_eq!(
            s.chat(&key, 8, "hi"),
            r#"{"type":"send","id":"8","text":"hi"}"#
        );
        s.confirm(&mut out);
        s.confirm(&mut out);
        assert!(out.is_empty(), "already confirmed by the send: {out:?}");

        let mut c = Counsellor::new("t".into());
        let key = Key::from("abc");
        c.decode(
            r#"{"type":"message","session":"abc","seq":5,"text":"x","at":1}"#,
            &mut ev,
        );
        c.confirm(&mut out);
        assert_eq!(
            c.chat(&key, 1, "yo"),
            r#"{"type":"send","session":"abc","id":"1","text":"yo","received":5}"#
        );
        c.confirm(&mut out);
        c.confirm(&mut out);
        assert!(out.is_empty(), "already confirmed by the send: {out:?}");
    }

    #[test]
    fn a_bot_goes_available_accepts_offers_and_names_errors() {
        let mut c = Counsellor::new("t".into());
        let mut ev = Vec::new();
        c.decode(
            r#"{"type":"error","code":"peer_backlog_full","id":"4"}"#,
            &mut ev,
        );
        c.decode("not json", &mut ev);
        assert_eq!(
            ev,
            [
                Event::Refused("peer_backlog_full".into()),
                Event::Refused("undecodable frame".into())
            ]
        );
        let mut out = Vec::new();
        c.end(&Key::from("abc"), &mut out);
        assert_eq!(out, [r#"{"type":"end","session":"abc"}"#]);
    }

    #[test]
    fn a_refusal_that_crossed_the_end_is_not_an_error_but_others_are() {
        let mut c = Counsellor::new("t".into());
        let mut ev = Vec::new();
        let unknown =
            |s: &str| format!(r#"{{"type":"error","code":"unknown_session","session":"{s}"}}"#);
        c.decode(&unknown("s1"), &mut ev);
        c.decode(
            r#"{"type":"session_ended","session":"s1","reason":"seeker_ended"}"#,
            &mut ev,
        );
        c.decode(&unknown("s1"), &mut ev);
        c.decode(&unknown("s2"), &mut ev);
        assert_eq!(
            ev,
            [
                Event::Refused("unknown_session".into()),
                Event::Ended(Key::from("s1")),
                Event::Refused("unknown_session".into()),
            ]
        );
    }
}
