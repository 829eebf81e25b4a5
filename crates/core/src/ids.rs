//! Identifiers shared by the router and the conversations.

use std::fmt;

/// One session: a help-seeker's conversation from queue entry to end.
///
/// The shell makes these from 128 random bits; nothing about the
/// help-seeker goes into them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u128);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl SessionId {
    /// Parses the 32-hex-digit form that [`fmt::Display`] writes.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(SessionId)
    }
}

/// A counsellor account, as numbered by the shell.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CounsellorId(pub u64);

/// A topic (queue), numbered by its place in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TopicId(pub u16);

/// A language, numbered by its place in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LangId(pub u16);

/// The two ends of a conversation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Side {
    /// The help-seeker.
    Seeker,
    /// The counsellor.
    Counsellor,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Seeker => Side::Counsellor,
            Side::Counsellor => Side::Seeker,
        }
    }
}

/// Someone whose connection the router tracks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Party {
    /// The help-seeker of a session.
    Seeker(SessionId),
    /// A counsellor.
    Counsellor(CounsellorId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_display_round_trips() {
        for v in [
            0u128,
            1,
            u128::MAX,
            0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        ] {
            let id = SessionId(v);
            assert_eq!(SessionId::parse(&id.to_string()), Some(id));
        }
        assert_eq!(SessionId::parse("xyz"), None);
        assert_eq!(SessionId::parse(&"g".repeat(32)), None);
        assert_eq!(SessionId::parse(&"+".repeat(32)), None);
    }
}
