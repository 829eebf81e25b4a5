//! The waiting line: highest priority first, first come first served within
//! a priority.
//!
//! Order within a priority is by arrival number: the caller numbers
//! help-seekers once, when they first arrive. A help-seeker who is put back
//! (their counsellor's connection was lost) keeps that number and gets
//! [`Priority::Requeued`], which puts them ahead of everyone who has not
//! been served yet, in their original order.

use std::collections::{BTreeMap, HashMap};

use crate::ids::SessionId;

/// How urgently a waiting help-seeker is served. Higher goes first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Priority {
    /// An ordinary arrival.
    Normal,
    /// Put back after their counsellor was lost: served before anyone new.
    Requeued,
}

/// Orders the line. Derived `Ord` compares fields top to bottom: priority
/// (inverted, so higher sorts first), then arrival number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Key {
    rank: std::cmp::Reverse<Priority>,
    arrival: u64,
}

/// The waiting line.
#[derive(Debug, Default)]
pub struct Queue {
    order: BTreeMap<Key, SessionId>,
    /// Invariant: exactly the sessions in `order`, each with its key.
    keys: HashMap<SessionId, Key>,
}

impl Queue {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session with its arrival number (unique, increasing with
    /// time). A session already in the line keeps its place and this
    /// returns `false`.
    pub fn push(&mut self, session: SessionId, priority: Priority, arrival: u64) -> bool {
        if self.keys.contains_key(&session) {
            return false;
        }
        let key = Key {
            rank: std::cmp::Reverse(priority),
            arrival,
        };
        self.order.insert(key, session);
        self.keys.insert(session, key);
        true
    }

    /// Removes a session; returns whether it was waiting.
    pub fn remove(&mut self, session: SessionId) -> bool {
        match self.keys.remove(&session) {
            Some(key) => self.order.remove(&key).is_some(),
            None => false,
        }
    }

    /// The session served next, without removing it.
    pub fn peek(&self) -> Option<SessionId> {
        self.order.values().next().copied()
    }

    /// Removes and returns the session served next.
    pub fn pop(&mut self) -> Option<SessionId> {
        let (_, session) = self.order.pop_first()?;
        self.keys.remove(&session);
        Some(session)
    }

    /// Whether the session is waiting.
    pub fn contains(&self, session: SessionId) -> bool {
        self.keys.contains_key(&session)
    }

    /// The priority a waiting session has.
    pub fn priority(&self, session: SessionId) -> Option<Priority> {
        self.keys.get(&session).map(|k| k.rank.0)
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The waiting sessions in serving order, first is position 1.
    pub fn iter(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.order.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_within_priority_and_requeued_first() {
        let mut q = Queue::new();
        q.push(SessionId(1), Priority::Normal, 10);
        q.push(SessionId(2), Priority::Normal, 11);
        q.push(SessionId(3), Priority::Requeued, 9);
        q.push(SessionId(4), Priority::Requeued, 1);
        assert!(!q.push(SessionId(1), Priority::Requeued, 0));
        let order: Vec<_> = q.iter().collect();
        assert_eq!(
            order,
            [SessionId(4), SessionId(3), SessionId(1), SessionId(2)]
        );
        assert!(q.remove(SessionId(3)));
        assert!(!q.remove(SessionId(3)));
        assert_eq!(q.pop(), Some(SessionId(4)));
        assert_eq!(q.pop(), Some(SessionId(1)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.priority(SessionId(2)), Some(Priority::Normal));
    }
}
