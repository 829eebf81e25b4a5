//! Checks one stream of numbered messages (one direction of one session)
//! for gaps, duplicates and reordering.
//!
//! Numbers are expected as 0, 1, 2, ... A jump ahead leaves the skipped
//! numbers *missing*; one that turns up later was reordered, and whatever
//! is still missing at the end was lost. A number seen twice is a
//! duplicate. The same check runs on the load generator's own counters
//! (inside the payload) and on the server's `seq`s.

use std::collections::BTreeSet;

/// Skipped numbers remembered at most; a bigger jump counts the rest as
/// lost at once, so a wild number cannot exhaust memory.
const MAX_MISSING: u64 = 65_536;

/// What one stream looked like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct numbers received.
    pub received: u64,
    /// Numbers received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Numbers that arrived after a later one.
    pub reordered: u64,
    /// Numbers skipped and never seen (so far).
    pub missing: u64,
}

/// What one number was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Seen for the first time (in order, after a gap, or late).
    New,
    /// Seen before.
    Duplicate,
}

/// The state of one stream.
#[derive(Debug)]
pub struct Order {
    next: u64,
    missing: BTreeSet<u64>,
    dropped: u64,
    tally: Tally,
}

impl Order {
    /// A stream expecting `first` next.
    pub fn starting_at(first: u64) -> Self {
        Self {
            next: first,
            missing: BTreeSet::new(),
            dropped: 0,
            tally: Tally::default(),
        }
    }

    /// Records number `n`.
    pub fn observe(&mut self, n: u64) -> Outcome {
        if n >= self.next {
            let skipped = n - self.next;
            if skipped > MAX_MISSING {
                self.dropped += skipped;
            } else {
                self.missing.extend(self.next..n);
            }
            self.next = n.saturating_add(1);
            self.tally.received += 1;
            Outcome::New
        } else if self.missing.remove(&n) {
            self.tally.reordered += 1;
            self.tally.received += 1;
            Outcome::New
        } else {
            self.tally.duplicated += 1;
            Outcome::Duplicate
        }
    }

    /// The next number expected in order.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The stream's counts so far.
    pub fn tally(&self) -> Tally {
        Tally {
            missing: self.missing.len() as u64 + self.dropped,
            ..self.tally
        }
    }
}

impl Tally {
    /// Adds another stream's counts.
    pub fn add(&mut self, other: Tally) {
        self.received += other.received;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.missing += other.missing;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: u64, ns: &[u64]) -> Tally {
        let mut o = Order::starting_at(first);
        for &n in ns {
            let _ = o.observe(n);
        }
        o.tally()
    }

    #[test]
    fn in_order_is_clean() {
        assert_eq!(
            run(0, &[0, 1, 2, 3]),
            Tally {
                received: 4,
                ..Tally::default()
            }
        );
    }

    #[test]
    fn gaps_duplicates_and_reordering_are_told_apart() {
        // 2 is late, 4 never comes, 1 comes twice.
        let t = run(0, &[0, 1, 1, 3, 2, 5]);
        assert_eq!(
            t,
            Tally {
                received: 5,
                duplicated: 1,
                reordered: 1,
                missing: 1,
            }
        );
        // A late number that was already late once is a duplicate.
        assert_eq!(run(1, &[2, 1, 1]).duplicated, 1);
        // Starting above `first` leaves the numbers before it missing.
        assert_eq!(run(1, &[3]).missing, 2);
    }

    #[test]
    fn a_wild_jump_is_counted_without_remembering_every_number() {
        let mut o = Order::starting_at(0);
        assert_eq!(o.observe(u64::MAX / 2), Outcome::New);
        assert_eq!(o.observe(u64::MAX / 2), Outcome::Duplicate);
        assert_eq!(o.tally().missing, u64::MAX / 2);
        assert!(o.missing.is_empty());
    }
}
