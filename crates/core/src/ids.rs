//! Identifiers shared by the router and the conversations.

use std::fmt;

/// One session: a help-seeker's conversation from queue entry to end.
///
/// The shell makes these from 128 random bits; nothing about the
/// help-seeker goes into them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// Every counsellor frame names its session, so this is one pass with
    /// no general-radix machinery.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        s.bytes()
            .try_fold(0u128, |n, b| {
                let digit = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    b'A'..=b'F' => b - b'A' + 10,
                    _ => return None,
                };
                Some(n << 4 | u128::from(digit))
            })
            .map(SessionId)
    }
}

/// A counsellor account, as numbered by the shell.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CounsellorId(pub u64);

/// A topic (queue), numbered by its place in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TopicId(pub u16);

/// A language, numbered by its place in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
        assert_eq!(
            SessionId::parse("0123456789ABCDEFabcdef0123456789"),
            Some(SessionId(0x0123_4567_89ab_cdef_abcd_ef01_2345_6789))
        );
        assert_eq!(SessionId::parse("xyz"), None);
        assert_eq!(SessionId::parse(&"f".repeat(33)), None);
        assert_eq!(SessionId::parse(&format!("{}é", "0".repeat(30))), None);
        assert_eq!(SessionId::parse(&"g".repeat(32)), None);
        assert_eq!(SessionId::parse(&"+".repeat(32)), None);
    }

    proptest::proptest! {
        #[test]
        fn session_ids_parse_as_hexadecimal_numbers_do(
            s in proptest::prop_oneof!["[0-9a-fA-F]{32}", "[0-9a-fA-F+ g-]{30,34}"],
        ) {
            let expected = (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u128::from_str_radix(&s, 16).ok())
                .flatten()
                .map(SessionId);
            proptest::prop_assert_eq!(SessionId::parse(&s), expected);
        }
    }
}
