//! A waiting line, ordered by [`Key`].
//!
//! A key is a *virtual arrival time* and an arrival number. A help-seeker
//! who arrives normally is keyed by the moment they arrived. Priority is a
//! head start: an urgent help-seeker is keyed as if they had arrived
//! `triage_boost` earlier, and one put back after losing their counsellor
//! as if they had arrived long before anyone else (keeping their original
//! order among themselves). The order is therefore fixed on entry, costs
//! O(log n) to keep, is first come first served within a priority, and
//! ages by itself: whoever has waited longer than an urgent head start is
//! served before an urgent newcomer, so nobody starves.

use std::collections::BTreeMap;

use crate::ids::SessionId;

/// A place in line: smaller is served first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Key {
    /// Virtual arrival time, in milliseconds since the router started
    /// (negative for large head starts).
    pub virtual_ms: i64,
    /// Arrival number, unique and increasing; breaks ties first come first
    /// served.
    pub arrival: u64,
}

/// An ordered line of sessions.
#[derive(Debug, Default)]
pub struct Line {
    order: BTreeMap<Key, SessionId>,
}

impl Line {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session at `key` (keys are unique).
    pub fn insert(&mut self, key: Key, session: SessionId) {
        self.order.insert(key, session);
    }

    /// Removes the session at `key`; returns whether it was there.
    pub fn remove(&mut self, key: Key) -> bool {
        self.order.remove(&key).is_some()
    }

    /// The first in line.
    pub fn first(&self) -> Option<(Key, SessionId)> {
        self.order.first_key_value().map(|(k, s)| (*k, *s))
    }

    /// Everyone in serving order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, SessionId)> + '_ {
        self.order.iter().map(|(k, s)| (*k, *s))
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The 1-based position of `key`. Counts from whichever end is nearer,
    /// so it costs O(1) at the tail, where ordinary arrivals go, and stays
    /// small near the head, where priority arrivals go. O(n) at worst; see
    /// [`Line::position_within`] for a bounded version.
    pub fn position(&self, key: Key) -> u32 {
        let behind = self.order.range(key..).count();
        let total = self.order.len();
        let ahead = if behind * 2 <= total {
            total.saturating_sub(behind)
        } else {
            self.order.range(..key).count()
        };
        u32::try_from(ahead + 1).unwrap_or(u32::MAX)
    }

    /// The 1-based position of `key` if it can be found by stepping at most
    /// `steps` entries from either end; `None` otherwise.
    pub fn position_within(&self, key: Key, steps: usize) -> Option<u32> {
        let total = self.order.len();
        let behind = self.order.range(key..).take(steps + 1).count();
        let ahead = if behind <= steps {
            total.saturating_sub(behind)
        } else {
            let ahead = self.order.range(..key).take(steps + 1).count();
            if ahead > steps {
                return None;
            }
            ahead
        };
        Some(u32::try_from(ahead + 1).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(virtual_ms: i64, arrival: u64) -> Key {
        Key {
            virtual_ms,
            arrival,
        }
    }

    #[test]
    fn orders_by_virtual_time_then_arrival() {
        let mut line = Line::new();
        line.insert(key(1000, 0), SessionId(1));
        line.insert(key(1000, 1), SessionId(2));
        line.insert(key(400, 2), SessionId(3));
        line.insert(key(-1_000_000, 3), SessionId(4));
        let order: Vec<_> = line.iter().map(|(_, s)| s).collect();
        assert_eq!(
            order,
            [SessionId(4), SessionId(3), SessionId(1), SessionId(2)]
        );
        assert_eq!(line.position(key(1000, 1)), 4);
        assert_eq!(line.position(key(-1_000_000, 3)), 1);
        assert_eq!(line.position(key(400, 2)), 2);
        assert!(line.remove(key(400, 2)));
        assert!(!line.remove(key(400, 2)));
        assert_eq!(line.position(key(1000, 1)), 3);
        assert_eq!(line.first(), Some((key(-1_000_000, 3), SessionId(4))));
    }

    #[test]
    fn bounded_positions_agree_or_give_up() {
        let mut line = Line::new();
        for i in 0..100 {
            line.insert(
                key(i, u64::try_from(i).unwrap()),
                SessionId(u128::try_from(i).unwrap()),
            );
        }
        for i in [0, 3, 50, 96, 99] {
            let k = key(i, u64::try_from(i).unwrap());
            let exact = line.position(k);
            assert_eq!(line.position_within(k, 100), Some(exact));
            let near_an_end = !(5..=94).contains(&i);
            assert_eq!(line.position_within(k, 5).is_some(), near_an_end, "{i}");
            if let Some(p) = line.position_within(k, 5) {
                assert_eq!(p, exact);
            }
        }
    }
}
