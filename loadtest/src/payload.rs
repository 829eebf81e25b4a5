//! The chat text the load generator sends: a per-session counter, the time
//! the message was *due* on the open-loop schedule and the time it actually
//! went out, padded to the requested size.
//!
//! The round trip is timed from the actual send, so the timer's millisecond
//! granularity does not pose as server latency. How late each send was
//! (actual minus due) is reported on its own: a generator that falls behind
//! shows up there instead of silently thinning the load (no coordinated
//! omission hides behind it).

use std::fmt::Write as _;

/// What a payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The sender's counter in its session, from 0.
    pub n: u64,
    /// When it was due, in microseconds since the run's start.
    pub due_us: u64,
    /// When it went out, in microseconds since the run's start.
    pub sent_us: u64,
}

impl Payload {
    /// Writes `n.due.sent.` in hex, padded with `x` to `size` bytes, into
    /// `out`.
    pub fn encode(self, size: usize, out: &mut String) {
        out.clear();
        let _ = write!(out, "{:x}.{:x}.{:x}.", self.n, self.due_us, self.sent_us);
        while out.len() < size {
            out.push('x');
        }
    }

    /// Reads a payload back; `None` for anything the generator did not
    /// write.
    pub fn decode(text: &str) -> Option<Payload> {
        let mut parts = text.splitn(4, '.');
        let mut field = || u64::from_str_radix(parts.next()?, 16).ok();
        let n = field()?;
        let due_us = field()?;
        let sent_us = field()?;
        parts.next()?;
        Some(Payload { n, due_us, sent_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_requested_size() {
        let mut s = String::new();
        let p = Payload {
            n: 41,
            due_us: 1_234_567,
            sent_us: 1_234_999,
        };
        p.encode(100, &mut s);
        assert_eq!(s.len(), 100);
        assert_eq!(Payload::decode(&s), Some(p));
        // Shorter than the header: the header is never cut.
        p.encode(4, &mut s);
        assert_eq!(Payload::decode(&s), Some(p));
        assert_eq!(Payload::decode("hello"), None);
        assert_eq!(Payload::decode("zz.1.2."), None);
        assert_eq!(Payload::decode("1.2."), None);
    }
}
