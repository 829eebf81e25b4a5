//! The data plane of one session: sequence numbers, acks, idempotent retries
//! and the bounded replay buffer behind resume.
//!
//! Each direction (help-seeker to counsellor, counsellor to help-seeker) is a
//! [`Stream`]. A message the broker *accepts* gets the next sequence number
//! and stays in the stream's replay buffer until the receiving client
//! confirms it (`received`). Because nothing leaves the buffer unconfirmed,
//! a receiver that resumes with the last `seq` it saw always gets every
//! later message, exactly once and in order.
//!
//! The buffer is bounded by [`ReplayLimits`]. When it is full the broker
//! refuses new messages ([`Accept::BacklogFull`]) instead of dropping old
//! ones: the sender is told, nothing it was acked for is ever lost, and it
//! retries with the same id later. A gap can therefore only appear when a
//! client resumes from *before* what it already confirmed (it lost its own
//! state); [`Resume::recovered`] then says so.
//!
//! `P` is whatever the shell stores per message, typically the encoded frame
//! for the receiver, so a replay costs no re-encoding.

use std::collections::{HashMap, VecDeque};

use compact_str::CompactString;

use crate::ids::Side;

/// A per-direction sequence number; the first message is 1, 0 is "none".
pub type Seq = u64;

/// Bounds on what one stream keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Most unconfirmed messages kept per direction.
    pub max_entries: usize,
    /// Most unconfirmed payload bytes kept per direction.
    pub max_bytes: usize,
    /// How many recent client message ids each direction remembers for
    /// idempotent retries.
    pub max_ids: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            max_entries: 256,
            max_bytes: 256 * 1024,
            max_ids: 256,
        }
    }
}

/// The result of offering a message to a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept<'a, P> {
    /// Accepted with a new sequence number; deliver `payload` to the peer if
    /// it is connected, and ack the sender.
    New {
        /// The message's sequence number.
        seq: Seq,
        /// The stored payload.
        payload: &'a P,
    },
    /// A retry of a message already accepted: ack it again with its original
    /// `seq` and deliver nothing.
    Duplicate {
        /// The original sequence number.
        seq: Seq,
    },
    /// The receiver has too much unconfirmed; the message was not accepted.
    BacklogFull,
}

/// What a resuming receiver gets.
#[derive(Debug)]
pub struct Resume<'a, P> {
    /// `true` when `replay` holds every message after the client's
    /// `last_seq`; `false` when some were already confirmed and dropped.
    pub recovered: bool,
    /// The highest sequence number in this direction so far.
    pub last_seq: Seq,
    /// The messages to send again, in order.
    pub replay: Vec<&'a P>,
}

#[derive(Debug)]
struct Entry<P> {
    seq: Seq,
    weight: usize,
    payload: P,
}

/// One direction of a conversation.
#[derive(Debug)]
struct Stream<P> {
    /// Highest sequence number accepted.
    last_seq: Seq,
    /// Highest sequence number the receiver confirmed.
    confirmed: Seq,
    /// Invariant: holds exactly the seqs `confirmed + 1 ..= last_seq`, in
    /// order, so resuming from any `seq >= confirmed` loses nothing.
    replay: VecDeque<Entry<P>>,
    /// Sum of the weights in `replay`.
    bytes: usize,
    /// Recently accepted client ids and their seqs. Looked up for every
    /// message, so hashed with foldhash (randomly seeded, and never more
    /// than `max_ids` entries) rather than SipHash. Ids of up to 24 bytes
    /// (all that clients use in practice) are held inline, so remembering
    /// one allocates nothing.
    ids: HashMap<CompactString, Seq, foldhash::fast::RandomState>,
    /// The same ids, oldest first, for eviction.
    id_order: VecDeque<CompactString>,
}

impl<P> Stream<P> {
    fn new() -> Self {
        Self {
            last_seq: 0,
            confirmed: 0,
            replay: VecDeque::new(),
            bytes: 0,
            ids: HashMap::default(),
            id_order: VecDeque::new(),
        }
    }

    fn accept(
        &mut self,
        limits: &ReplayLimits,
        id: &str,
        weight: usize,
        make: impl FnOnce(Seq) -> P,
    ) -> Accept<'_, P> {
        if let Some(&seq) = self.ids.get(id) {
            return Accept::Duplicate { seq };
        }
        if self.replay.len() >= limits.max_entries
            || (!self.replay.is_empty() && self.bytes + weight > limits.max_bytes)
        {
            return Accept::BacklogFull;
        }
        let seq = self.last_seq + 1;
        self.last_seq = seq;
        self.remember(limits, id, seq);
        self.bytes += weight;
        self.replay.push_back(Entry {
            seq,
            weight,
            payload: make(seq),
        });
        match self.replay.back() {
            Some(entry) => Accept::New {
                seq,
                payload: &entry.payload,
            },
            // Unreachable: an entry was pushed just above.
            None => Accept::BacklogFull,
        }
    }

    fn remember(&mut self, limits: &ReplayLimits, id: &str, seq: Seq) {
        let id = CompactString::from(id);
        self.ids.insert(id.clone(), seq);
        self.id_order.push_back(id);
        while self.id_order.len() > limits.max_ids {
            if let Some(old) = self.id_order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Records that the receiver has everything up to `up_to`. Returns the
    /// new confirmed mark when it moved.
    fn confirm(&mut self, up_to: Seq) -> Option<Seq> {
        let up_to = up_to.min(self.last_seq);
        if up_to <= self.confirmed {
            return None;
        }
        self.confirmed = up_to;
        while self.replay.front().is_some_and(|e| e.seq <= up_to) {
            if let Some(e) = self.replay.pop_front() {
                self.bytes -= e.weight;
            }
        }
        Some(up_to)
    }

    fn resume(&mut self, last_seen: Seq) -> Resume<'_, P> {
        let last_seen = last_seen.min(self.last_seq);
        self.confirm(last_seen);
        Resume {
            recovered: last_seen >= self.confirmed,
            last_seq: self.last_seq,
            replay: self.replay.iter().map(|e| &e.payload).collect(),
        }
    }
}

/// One direction of a conversation as plain data: enough for another
/// process to carry it on ([`Conversation::restore`]).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamExport<P> {
    /// Highest sequence number accepted.
    pub last_seq: Seq,
    /// Highest sequence number the receiver confirmed.
    pub confirmed: Seq,
    /// The messages not yet confirmed, in order: seq, weight, payload.
    pub unconfirmed: Vec<(Seq, usize, P)>,
    /// The client ids remembered for retries, oldest first, with seqs.
    pub ids: Vec<(String, Seq)>,
}

/// Both directions of a conversation as plain data.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationExport<P> {
    /// Counsellor to help-seeker.
    pub to_seeker: StreamExport<P>,
    /// Help-seeker to counsellor.
    pub to_counsellor: StreamExport<P>,
}

impl<P> Stream<P> {
    fn export<Q>(&self, payload: &mut impl FnMut(&P) -> Q) -> StreamExport<Q> {
        StreamExport {
            last_seq: self.last_seq,
            confirmed: self.confirmed,
            unconfirmed: self
                .replay
                .iter()
                .map(|e| (e.seq, e.weight, payload(&e.payload)))
                .collect(),
            ids: self
                .id_order
                .iter()
                .filter_map(|id| self.ids.get(id).map(|&seq| (id.to_string(), seq)))
                .collect(),
        }
    }

    fn restore(export: StreamExport<P>) -> Self {
        let mut stream = Self::new();
        stream.last_seq = export.last_seq;
        stream.confirmed = export.confirmed;
        for (seq, weight, payload) in export.unconfirmed {
            stream.bytes += weight;
            stream.replay.push_back(Entry {
                seq,
                weight,
                payload,
            });
        }
        for (id, seq) in export.ids {
            let id = CompactString::from(id);
            stream.ids.insert(id.clone(), seq);
            stream.id_order.push_back(id);
        }
        stream
    }
}

/// Both directions of one session.
#[derive(Debug)]
pub struct Conversation<P> {
    limits: ReplayLimits,
    /// Counsellor to help-seeker.
    to_seeker: Stream<P>,
    /// Help-seeker to counsellor.
    to_counsellor: Stream<P>,
}

impl<P> Conversation<P> {
    /// A conversation with nothing said yet.
    pub fn new(limits: ReplayLimits) -> Self {
        Self {
            limits,
            to_seeker: Stream::new(),
            to_counsellor: Stream::new(),
        }
    }

    fn toward(&mut self, receiver: Side) -> &mut Stream<P> {
        match receiver {
            Side::Seeker => &mut self.to_seeker,
            Side::Counsellor => &mut self.to_counsellor,
        }
    }

    fn toward_ref(&self, receiver: Side) -> &Stream<P> {
        match receiver {
            Side::Seeker => &self.to_seeker,
            Side::Counsellor => &self.to_counsellor,
        }
    }

    /// Offers a message from `from` with the client's id. `weight` is its
    /// size in bytes for the buffer bound; `make` builds the stored payload
    /// once its sequence number is known.
    pub fn accept(
        &mut self,
        from: Side,
        id: &str,
        weight: usize,
        make: impl FnOnce(Seq) -> P,
    ) -> Accept<'_, P> {
        let limits = self.limits;
        self.toward(from.peer()).accept(&limits, id, weight, make)
    }

    /// `by` says it has received everything up to `up_to`. Returns the new
    /// mark to report to the other side as delivered, when it moved.
    pub fn confirm(&mut self, by: Side, up_to: Seq) -> Option<Seq> {
        self.toward(by).confirm(up_to)
    }

    /// `to` reconnects having seen everything up to `last_seen`: what to
    /// send it again. Also confirms up to `last_seen`.
    pub fn resume(&mut self, to: Side, last_seen: Seq) -> Resume<'_, P> {
        self.toward(to).resume(last_seen)
    }

    /// The conversation as plain data, each payload mapped by `payload`
    /// (to seal it, say).
    pub fn export<Q>(&self, mut payload: impl FnMut(&P) -> Q) -> ConversationExport<Q> {
        ConversationExport {
            to_seeker: self.to_seeker.export(&mut payload),
            to_counsellor: self.to_counsellor.export(&mut payload),
        }
    }

    /// A conversation carried on from `export`, under `limits`.
    pub fn restore(limits: ReplayLimits, export: ConversationExport<P>) -> Self {
        Self {
            limits,
            to_seeker: Stream::restore(export.to_seeker),
            to_counsellor: Stream::restore(export.to_counsellor),
        }
    }

    /// The highest sequence number sent toward `to`.
    pub fn last_seq(&self, to: Side) -> Seq {
        self.toward_ref(to).last_seq
    }

    /// The highest sequence number of `from`'s messages that the other
    /// side confirmed.
    pub fn delivered(&self, from: Side) -> Seq {
        self.toward_ref(from.peer()).confirmed
    }

    /// How many of `from`'s messages wait for the other side's confirmation.
    pub fn backlog(&self, from: Side) -> usize {
        self.toward_ref(from.peer()).replay.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation<String> {
        Conversation::new(ReplayLimits {
            max_entries: 4,
            max_bytes: 100,
            max_ids: 8,
        })
    }

    fn send(c: &mut Conversation<String>, from: Side, id: &str, text: &str) -> Option<Seq> {
        match c.accept(from, id, text.len(), |_| text.to_owned()) {
            Accept::New { seq, .. } | Accept::Duplicate { seq } => Some(seq),
            Accept::BacklogFull => None,
        }
    }

    #[test]
    fn sequences_are_per_direction() {
        let mut c = conv();
        assert_eq!(send(&mut c, Side::Seeker, "a", "hi"), Some(1));
        assert_eq!(send(&mut c, Side::Seeker, "b", "there"), Some(2));
        assert_eq!(send(&mut c, Side::Counsellor, "a", "hello"), Some(1));
        assert_eq!(c.last_seq(Side::Counsellor), 2);
        assert_eq!(c.last_seq(Side::Seeker), 1);
    }

    #[test]
    fn retries_are_idempotent() {
        let mut c = conv();
        assert!(matches!(
            c.accept(Side::Seeker, "a", 2, |_| "hi".into()),
            Accept::New { seq: 1, .. }
        ));
        assert_eq!(
            c.accept(Side::Seeker, "a", 2, |_| "hi".into()),
            Accept::Duplicate { seq: 1 }
        );
        assert_eq!(c.backlog(Side::Seeker), 1);
    }

    #[test]
    fn full_backlog_refuses_instead_of_dropping() {
        let mut c = conv();
        for i in 0..4 {
            assert!(send(&mut c, Side::Counsellor, &i.to_string(), "x").is_some());
        }
        assert_eq!(send(&mut c, Side::Counsellor, "late", "x"), None);
        // A refused message was not remembered: its retry can succeed.
        assert_eq!(c.confirm(Side::Seeker, 2), Some(2));
        assert_eq!(send(&mut c, Side::Counsellor, "late", "x"), Some(5));
        let r = c.resume(Side::Seeker, 2);
        assert!(r.recovered);
        assert_eq!(r.replay, ["x", "x", "x"]);
    }

    #[test]
    fn byte_bound_applies_but_one_message_always_fits() {
        let mut c = conv();
        let big = "y".repeat(150);
        assert!(send(&mut c, Side::Seeker, "1", &big).is_some());
        assert_eq!(send(&mut c, Side::Seeker, "2", "z"), None);
        c.confirm(Side::Counsellor, 1);
        assert!(send(&mut c, Side::Seeker, "2", "z").is_some());
    }

    #[test]
    fn resume_replays_exactly_the_unseen_and_flags_gaps() {
        let mut c = conv();
        for id in ["a", "b", "c"] {
            send(&mut c, Side::Seeker, id, id);
        }
        assert_eq!(c.confirm(Side::Counsellor, 1), Some(1));
        assert_eq!(c.confirm(Side::Counsellor, 1), None);
        assert_eq!(c.delivered(Side::Seeker), 1);
        let r = c.resume(Side::Counsellor, 2);
        assert!(r.recovered);
        assert_eq!(r.replay, ["c"]);
        // A client that forgot what it confirmed is told about the gap.
        let r = c.resume(Side::Counsellor, 0);
        assert!(!r.recovered);
        assert_eq!(r.replay, ["c"]);
        // Claims beyond what exists are clamped.
        let r = c.resume(Side::Counsellor, 99);
        assert!(r.recovered);
        assert!(r.replay.is_empty());
        assert_eq!(r.last_seq, 3);
    }

    #[test]
    fn id_memory_is_bounded() {
        let mut c = conv();
        for i in 0..20 {
            send(&mut c, Side::Seeker, &format!("id{i}"), "m");
            c.confirm(Side::Counsellor, u64::MAX);
        }
        assert!(c.to_counsellor.ids.len() <= 8);
        assert_eq!(c.to_counsellor.ids.len(), c.to_counsellor.id_order.len());
    }
}
