//! WebSocket close codes and what a client should do about each.
//!
//! The range tells the client whether to reconnect, so a client that does
//! not know a specific code still does the right thing:
//!
//! | range | meaning |
//! |---|---|
//! | 1000 | done; do not reconnect |
//! | 1001, 1011–1013 | reconnect with backoff and resume |
//! | 1002, 1007–1009 | the client broke a rule; do not reconnect automatically |
//! | 4000–4499 | Haven: reconnect with backoff and resume |
//! | 4500–4999 | Haven: terminal; do not resume (start anew or log in) |
//!
//! (1008 is never sent today: a disallowed `Origin` is refused with HTTP 403
//! before any socket exists.)

/// What a client should do after the server closed its socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reconnect {
    /// Do not reconnect: the conversation is over or the client must change
    /// something first (log in again, fix a bug).
    No,
    /// Reconnect with exponential backoff and jitter, then `resume`.
    Resume,
}

impl Reconnect {
    /// Classifies any close code by its range, including codes this version
    /// of the protocol does not define.
    pub fn for_code(code: u16) -> Self {
        match code {
            1001 | 1011..=1013 | 4000..=4499 => Reconnect::Resume,
            _ => Reconnect::No,
        }
    }
}

macro_rules! close_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $reason:literal; )*) => {
        /// Every close code the Haven server sends.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum CloseCode {
            $( $(#[$doc])* $name, )*
        }

        impl CloseCode {
            /// Every code, in table order (for documentation and tests).
            pub const ALL: &'static [CloseCode] = &[$(CloseCode::$name,)*];

            /// The numeric code sent in the close frame.
            pub fn code(self) -> u16 {
                match self { $(CloseCode::$name => $code,)* }
            }

            /// The short reason sent in the close frame (ASCII, well under
            /// the 123-byte limit). Clients should act on the code, not this.
            pub fn reason(self) -> &'static str {
                match self { $(CloseCode::$name => $reason,)* }
            }

            /// Looks a numeric code up.
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(CloseCode::$name),)* _ => None }
            }
        }
    };
}

close_codes! {
    /// The conversation ended normally; nothing to resume.
    Normal = 1000, "ended";
    /// The server is shutting down or restarting. Reconnect and resume.
    GoingAway = 1001, "going away, reconnect";
    /// The WebSocket framing broke RFC 6455: an unmasked frame, a reserved
    /// bit or opcode, a fragmented or oversized control frame, a
    /// continuation with nothing to continue. Fix the client.
    ProtocolError = 1002, "protocol error";
    /// A text frame or a close reason was not valid UTF-8. Fix the client.
    InvalidPayload = 1007, "invalid utf-8";
    /// A frame or message was larger than the server's limit.
    MessageTooBig = 1009, "message too big";
    /// The server hit an internal error. Reconnect and resume.
    InternalError = 1011, "internal error";
    /// The server cannot take the connection right now. Reconnect later.
    TryAgainLater = 1013, "try again later";
    /// The client did not read fast enough and its outbound queue filled.
    /// Nothing is lost: reconnect and resume to receive the rest.
    SlowConsumer = 4000, "slow consumer";
    /// Nothing arrived from the client for too long (no pong, no frame).
    HeartbeatTimeout = 4001, "heartbeat timeout";
    /// The client kept sending faster than the rate limit after warnings.
    /// Back off, then reconnect and resume.
    RateLimited = 4002, "rate limited";
    /// The client did not send `hello` or `resume` in time.
    HelloTimeout = 4003, "no hello";
    /// The client sent something that cannot be part of this protocol
    /// (wrong first message, unsupported version). Fix the client.
    ProtocolViolation = 4500, "protocol violation";
    /// Authentication failed or expired. Log in again.
    Unauthorized = 4501, "unauthorized";
    /// The resume token is unknown, used or expired. Start anew.
    ResumeFailed = 4503, "resume failed";
    /// A newer connection took this one's place (a resume elsewhere, or the
    /// same counsellor connecting again). This socket must not reconnect.
    Replaced = 4504, "replaced by a newer connection";
    /// The service restarted (or stopped) and nothing could carry what this
    /// socket held over: its sessions ended (each party was told, with the
    /// reason `service_restarted`) and a counsellor's login with them.
    /// Start anew: a help-seeker with `hello`, staff by logging in.
    Restarted = 4505, "service restarted, start anew";
}

impl CloseCode {
    /// What a client should do after this close.
    pub fn reconnect(self) -> Reconnect {
        Reconnect::for_code(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &c in CloseCode::ALL {
            assert!(seen.insert(c.code()), "duplicate close code {}", c.code());
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
            assert!(c.reason().len() < 123 && c.reason().is_ascii());
        }
    }

    #[test]
    fn ranges_carry_reconnect_semantics() {
        assert_eq!(CloseCode::Normal.reconnect(), Reconnect::No);
        assert_eq!(CloseCode::GoingAway.reconnect(), Reconnect::Resume);
        assert_eq!(CloseCode::ProtocolError.reconnect(), Reconnect::No);
        assert_eq!(CloseCode::InvalidPayload.reconnect(), Reconnect::No);
        assert_eq!(CloseCode::SlowConsumer.reconnect(), Reconnect::Resume);
        assert_eq!(CloseCode::Replaced.reconnect(), Reconnect::No);
        assert_eq!(CloseCode::ResumeFailed.reconnect(), Reconnect::No);
        assert_eq!(CloseCode::Restarted.reconnect(), Reconnect::No);
        // Codes this version does not know are classified by range.
        assert_eq!(Reconnect::for_code(4321), Reconnect::Resume);
        assert_eq!(Reconnect::for_code(4999), Reconnect::No);
        for &c in CloseCode::ALL {
            let app = (4000..=4999).contains(&c.code());
            if app {
                assert_eq!(c.code() < 4500, c.reconnect() == Reconnect::Resume, "{c:?}");
            }
        }
    }
}
