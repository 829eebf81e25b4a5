//! The chat text the load generator sends: a per-session counter and the
//! time the message was *due* (not when it actually went out), padded to
//! the requested size.
//!
//! Timing from the due time is what keeps the latency honest when the
//! generator falls behind: a late send shows up as latency instead of
//! silently thinning the load (no coordinated omission).

use std::fmt::Write as _;

/// What a payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The sender's counter in its session, from 0.
    pub n: u64,
    /// When it was due, in microseconds since the run's start.
    pub due_us: u64,
}

impl Payload {
    /// Writes `n.due.` in hex, padded with `x` to `size` bytes, into `out`.
    pub fn encode(self, size: usize, out: &mut String) {
        out.clear();
        let _ = write!(out, "{:x}.{:x}.", self.n, self.due_us);
        while out.len() < size {
            out.push('x');
        }
    }

    /// Reads a payload back; `None` for anything the generator did not
    /// write.
    pub fn decode(text: &str) -> Option<Payload> {
        let mut parts = text.splitn(3, '.');
        let n = u64::from_str_radix(parts.next()?, 16).ok()?;
        let due_us = u64::from_str_radix(parts.next()?, 16).ok()?;
        parts.next()?;
        Some(Payload { n, due_us })
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
        };
        p.encode(100, &mut s);
        assert_eq!(s.len(), 100);
        assert_eq!(Payload::decode(&s), Some(p));
        // Shorter than the header: the header is never cut.
        p.encode(4, &mut s);
        assert_eq!(Payload::decode(&s), Some(p));
        assert_eq!(Payload::decode("hello"), None);
        assert_eq!(Payload::decode("zz.1."), None);
    }
}
