//! One session's rules: where it is in its life, which counsellors are in
//! it, what each party may do now, and the [`Conversation`] between them.
//!
//! The router decides *that* a counsellor takes a session, hands it on or
//! leaves it, and *when* it ends; a [`Session`] is what those decisions do
//! to the session itself, and what decides every frame a party sends:
//! whether a message, a typing indicator or a delivery mark is allowed,
//! and what a counsellor who joins receives of what was said before.
//! The server keeps one per session next to its sockets, and the seeded
//! simulation drives the same code, so what it checks is what ships.
//!
//! `P` is what is stored per message (see [`Conversation`]); `M` is what the
//! shell keeps per counsellor in the session (a socket and a name, say).

use crate::conversation::{Accept, Conversation, ConversationExport, ReplayLimits, Resume, Seq};
use crate::ids::{CounsellorId, Side};

/// Where a session is in its life.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In the queue. The help-seeker may already write; whoever takes the
    /// session receives it.
    Waiting,
    /// With one or more counsellors.
    Assigned,
    /// Over; nothing more is accepted from anyone.
    Ended,
}

/// A counsellor in a session.
#[derive(Clone, Debug)]
pub struct Member<M> {
    /// Who.
    pub id: CounsellorId,
    /// What the shell keeps for them.
    pub link: M,
}

/// Why something a party sent was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The session is not in a phase that allows it.
    WrongState,
    /// The sender is not in this session.
    NotYours,
    /// The receiver has too much unconfirmed; retry later.
    BacklogFull,
}

/// A counsellor joining a session.
#[derive(Debug)]
pub struct Joined<'a, P> {
    /// Whether they were not in it before.
    pub new: bool,
    /// What to send them: what the help-seeker said that no counsellor
    /// confirmed yet (written while waiting, or not yet read by the
    /// colleague handing over), in order.
    pub backlog: Vec<&'a P>,
}

/// A session as plain data: enough for another process to carry it on
/// ([`Session::restore`]).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionExport<P> {
    /// Where it is in its life.
    pub phase: Phase,
    /// Its counsellors, longest first.
    pub members: Vec<CounsellorId>,
    /// What was said and where each side is.
    pub conversation: ConversationExport<P>,
}

/// One session.
#[derive(Debug)]
pub struct Session<P, M> {
    conv: Conversation<P>,
    phase: Phase,
    /// The counsellors in it, longest first. Invariant: non-empty exactly
    /// while `phase == Assigned`.
    members: Vec<Member<M>>,
}

impl<P, M> Session<P, M> {
    /// A session just queued, with nothing said yet.
    pub fn new(limits: ReplayLimits) -> Self {
        Self {
            conv: Conversation::new(limits),
            phase: Phase::Waiting,
            members: Vec::new(),
        }
    }

    /// The session as plain data, each stored message mapped by `payload`
    /// (to seal it, say). What the shell keeps per counsellor stays out.
    pub fn export<Q>(&self, payload: impl FnMut(&P) -> Q) -> SessionExport<Q> {
        SessionExport {
            phase: self.phase,
            members: self.members.iter().map(|m| m.id).collect(),
            conversation: self.conv.export(payload),
        }
    }

    /// A session carried on from `export`, under `limits`, with `link`
    /// giving what the shell keeps for each counsellor in it.
    pub fn restore(
        limits: ReplayLimits,
        export: SessionExport<P>,
        mut link: impl FnMut(CounsellorId) -> M,
    ) -> Self {
        Self {
            conv: Conversation::restore(limits, export.conversation),
            phase: export.phase,
            members: export
                .members
                .into_iter()
                .map(|id| Member { id, link: link(id) })
                .collect(),
        }
    }

    /// Where it is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The conversation, to read its marks.
    pub fn conversation(&self) -> &Conversation<P> {
        &self.conv
    }

    /// The counsellors in the session, longest first.
    pub fn members(&self) -> &[Member<M>] {
        &self.members
    }

    /// The counsellors in the session, to update what the shell keeps.
    pub fn members_mut(&mut self) -> &mut [Member<M>] {
        &mut self.members
    }

    /// One counsellor in the session.
    pub fn member(&self, id: CounsellorId) -> Option<&Member<M>> {
        self.members.iter().find(|m| m.id == id)
    }

    /// One counsellor in the session, to update what the shell keeps.
    pub fn member_mut(&mut self, id: CounsellorId) -> Option<&mut Member<M>> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Whether `side` (for counsellors: `counsellor`) may act on the
    /// session now: send typing, confirm what it received. A help-seeker
    /// may until the end, waiting or not; a counsellor only while in it.
    pub fn may_act(&self, side: Side, counsellor: Option<CounsellorId>) -> bool {
        match side {
            Side::Seeker => self.phase != Phase::Ended,
            Side::Counsellor => {
                self.phase == Phase::Assigned
                    && counsellor.is_some_and(|me| self.member(me).is_some())
            }
        }
    }

    /// Whether someone who joined from outside (a supervisor) may act:
    /// only while counsellors are in the session.
    pub fn open_to_guests(&self) -> bool {
        self.phase == Phase::Assigned
    }

    /// A counsellor takes the session (an assignment or a transfer);
    /// `None` once it has ended. One already in it keeps the `link` they
    /// had.
    pub fn join(&mut self, id: CounsellorId, link: M) -> Option<Joined<'_, P>> {
        if self.phase == Phase::Ended {
            return None;
        }
        self.phase = Phase::Assigned;
        let new = self.member(id).is_none();
        if new {
            self.members.push(Member { id, link });
        }
        Some(Joined {
            new,
            backlog: self.conv.resume(Side::Counsellor, 0).replay,
        })
    }

    /// A counsellor the router has in the session comes back (a resume),
    /// with a new `link`. They are added if the session does not list
    /// them. Returns their entry, or `None` once the session has ended.
    pub fn reattach(&mut self, id: CounsellorId, link: M) -> Option<&mut Member<M>> {
        if self.phase == Phase::Ended {
            return None;
        }
        self.phase = Phase::Assigned;
        match self.members.iter().position(|m| m.id == id) {
            Some(i) => self.members[i].link = link,
            None => self.members.push(Member { id, link }),
        }
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// A counsellor leaves (handed on, or revoked). Returns their entry if
    /// they were in it. The session stays `Assigned` while anyone is left;
    /// the router requeues or ends it otherwise.
    pub fn leave(&mut self, id: CounsellorId) -> Option<Member<M>> {
        let i = self.members.iter().position(|m| m.id == id)?;
        Some(self.members.remove(i))
    }

    /// Back in the queue: every counsellor is out. Returns who was in it.
    pub fn requeue(&mut self) -> Vec<Member<M>> {
        if self.phase != Phase::Assigned {
            return Vec::new();
        }
        self.phase = Phase::Waiting;
        std::mem::take(&mut self.members)
    }

    /// Over. Returns who was still in it.
    pub fn end(&mut self) -> Vec<Member<M>> {
        self.phase = Phase::Ended;
        std::mem::take(&mut self.members)
    }

    /// A help-seeker's message (see [`Conversation::accept`]).
    pub fn seeker_says(
        &mut self,
        id: &str,
        weight: usize,
        make: impl FnOnce(Seq) -> P,
    ) -> Result<Accept<'_, P>, Refused> {
        if self.phase == Phase::Ended {
            return Err(Refused::WrongState);
        }
        admitted(self.conv.accept(Side::Seeker, id, weight, make))
    }

    /// A message from counsellor `from` to the help-seeker. Ids are the
    /// sender's own: two counsellors in a session (together, or one after
    /// the other) may pick the same one, so each counsellor's are kept
    /// apart.
    pub fn counsellor_says(
        &mut self,
        from: CounsellorId,
        id: &str,
        weight: usize,
        make: impl FnOnce(Seq) -> P,
    ) -> Result<Accept<'_, P>, Refused> {
        if self.phase == Phase::Ended {
            return Err(Refused::WrongState);
        }
        if self.member(from).is_none() {
            return Err(Refused::NotYours);
        }
        let mut key = String::with_capacity(21 + id.len());
        key.push_str(itoa::Buffer::new().format(from.0));
        key.push('/');
        key.push_str(id);
        admitted(self.conv.accept(Side::Counsellor, &key, weight, make))
    }

    /// A message to the help-seeker from someone who joined from outside,
    /// deduplicated under `key` (which must not collide with a counsellor's,
    /// see [`Session::counsellor_says`]).
    pub fn guest_says(
        &mut self,
        key: &str,
        weight: usize,
        make: impl FnOnce(Seq) -> P,
    ) -> Result<Accept<'_, P>, Refused> {
        if !self.open_to_guests() {
            return Err(Refused::WrongState);
        }
        admitted(self.conv.accept(Side::Counsellor, key, weight, make))
    }

    /// `by` confirms it received everything up to `up_to`. The new mark to
    /// report to the other side as delivered, when it moved.
    pub fn confirm(
        &mut self,
        by: Side,
        counsellor: Option<CounsellorId>,
        up_to: Seq,
    ) -> Result<Option<Seq>, Refused> {
        if !self.may_act(by, counsellor) {
            return Err(Refused::WrongState);
        }
        Ok(self.conv.confirm(by, up_to))
    }

    /// `to` reconnects having seen everything up to `last_seen`: what to
    /// send it again, or `None` once the session has ended.
    pub fn resume(&mut self, to: Side, last_seen: Seq) -> Option<Resume<'_, P>> {
        if self.phase == Phase::Ended {
            return None;
        }
        Some(self.conv.resume(to, last_seen))
    }
}

/// A conversation's answer as the session's: a full backlog is a refusal.
fn admitted<P>(accepted: Accept<'_, P>) -> Result<Accept<'_, P>, Refused> {
    match accepted {
        Accept::BacklogFull => Err(Refused::BacklogFull),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = Session<String, &'static str>;

    fn session() -> S {
        Session::new(ReplayLimits::default())
    }

    fn seq(r: Result<Accept<'_, String>, Refused>) -> Result<Seq, Refused> {
        r.map(|a| match a {
            Accept::New { seq, .. } | Accept::Duplicate { seq } => seq,
            Accept::BacklogFull => unreachable!(),
        })
    }

    const ANNA: CounsellorId = CounsellorId(1);
    const BRAM: CounsellorId = CounsellorId(2);

    #[test]
    fn a_help_seeker_may_write_while_waiting_and_the_first_counsellor_gets_it() {
        let mut s = session();
        assert_eq!(seq(s.seeker_says("a", 2, |_| "hi".into())), Ok(1));
        assert_eq!(
            seq(s.counsellor_says(ANNA, "x", 2, |_| "no".into())),
            Err(Refused::NotYours)
        );
        assert!(!s.may_act(Side::Counsellor, Some(ANNA)));
        let joined = s.join(ANNA, "anna").unwrap();
        assert!(joined.new);
        assert_eq!(joined.backlog, ["hi"]);
        assert!(!s.join(ANNA, "anna").unwrap().new);
        assert_eq!(s.phase(), Phase::Assigned);
        assert!(s.may_act(Side::Counsellor, Some(ANNA)));
        assert!(!s.may_act(Side::Counsellor, Some(BRAM)));
        assert!(!s.may_act(Side::Counsellor, None));
    }

    #[test]
    fn a_colleague_taking_over_gets_what_was_not_yet_read() {
        let mut s = session();
        let _ = s.join(ANNA, "anna");
        for id in ["a", "b", "c"] {
            seq(s.seeker_says(id, 1, |_| id.into())).unwrap();
        }
        assert_eq!(s.confirm(Side::Counsellor, Some(ANNA), 2), Ok(Some(2)));
        assert_eq!(s.join(BRAM, "bram").unwrap().backlog, ["c"]);
        assert_eq!(s.leave(ANNA).map(|m| m.link), Some("anna"));
        assert_eq!(s.phase(), Phase::Assigned);
        assert!(!s.may_act(Side::Counsellor, Some(ANNA)));
    }

    #[test]
    fn counsellors_ids_are_their_own() {
        let mut s = session();
        let _ = s.join(ANNA, "anna");
        let _ = s.join(BRAM, "bram");
        assert_eq!(seq(s.counsellor_says(ANNA, "1", 1, |_| "a".into())), Ok(1));
        assert_eq!(seq(s.counsellor_says(BRAM, "1", 1, |_| "b".into())), Ok(2));
        assert_eq!(seq(s.counsellor_says(ANNA, "1", 1, |_| "a".into())), Ok(1));
        // A guest's key space is the shell's to keep apart.
        assert_eq!(seq(s.guest_says("s:coco/1", 1, |_| "c".into())), Ok(3));
    }

    #[test]
    fn requeued_nobody_is_in_it_and_ended_nothing_is_accepted() {
        let mut s = session();
        let _ = s.join(ANNA, "anna");
        assert_eq!(s.requeue().len(), 1);
        assert_eq!(s.phase(), Phase::Waiting);
        assert!(s.requeue().is_empty());
        assert_eq!(
            seq(s.guest_says("g", 1, |_| "x".into())),
            Err(Refused::WrongState)
        );
        assert_eq!(seq(s.seeker_says("a", 1, |_| "x".into())), Ok(1));
        let _ = s.join(BRAM, "bram");
        assert_eq!(s.end().len(), 1);
        assert_eq!(
            seq(s.seeker_says("b", 1, |_| "x".into())),
            Err(Refused::WrongState)
        );
        assert_eq!(s.confirm(Side::Seeker, None, 1), Err(Refused::WrongState));
        assert!(s.join(ANNA, "anna").is_none());
        assert!(s.reattach(ANNA, "anna").is_none());
        assert!(s.resume(Side::Seeker, 0).is_none());
    }

    #[test]
    fn a_full_backlog_is_a_refusal() {
        let mut s: S = Session::new(ReplayLimits {
            max_entries: 1,
            ..ReplayLimits::default()
        });
        seq(s.seeker_says("a", 1, |_| "x".into())).unwrap();
        assert_eq!(
            seq(s.seeker_says("b", 1, |_| "x".into())),
            Err(Refused::BacklogFull)
        );
    }
}
