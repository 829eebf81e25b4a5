//! A session exported and restored (as a node handing its sessions to
//! another would) carries on exactly as the original: the same answers to
//! every message, confirmation, resume, join and leave, whatever happened
//! before.

use haven_core::conversation::Seq;
use haven_core::{Accept, CounsellorId, Refused, ReplayLimits, Session, Side};
use proptest::prelude::*;

const LIMITS: ReplayLimits = ReplayLimits {
    max_entries: 5,
    max_bytes: 120,
    max_ids: 4,
};

#[derive(Clone, Debug)]
enum Op {
    SeekerSays(u8, usize),
    CounsellorSays(u64, u8, usize),
    GuestSays(u8, usize),
    Confirm(Side, Option<u64>, Seq),
    Resume(Side, Seq),
    Join(u64),
    Leave(u64),
    Requeue,
    End,
    Move,
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Seeker), Just(Side::Counsellor)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..6u8, 1..50usize).prop_map(|(id, w)| Op::SeekerSays(id, w)),
        5 => (1..4u64, 0..6u8, 1..50usize).prop_map(|(c, id, w)| Op::CounsellorSays(c, id, w)),
        1 => (0..6u8, 1..50usize).prop_map(|(id, w)| Op::GuestSays(id, w)),
        3 => (side(), prop::option::of(1..4u64), 0..12u64).prop_map(|(s, c, up)| Op::Confirm(s, c, up)),
        2 => (side(), 0..12u64).prop_map(|(s, seen)| Op::Resume(s, seen)),
        2 => (1..4u64).prop_map(Op::Join),
        1 => (1..4u64).prop_map(Op::Leave),
        1 => Just(Op::Requeue),
        1 => Just(Op::End),
        2 => Just(Op::Move),
    ]
}

type S = Session<String, u64>;

fn accepted(r: Result<Accept<'_, String>, Refused>) -> Result<(Seq, Option<String>), Refused> {
    r.map(|a| match a {
        Accept::New { seq, payload } => (seq, Some(payload.clone())),
        Accept::Duplicate { seq } => (seq, None),
        Accept::BacklogFull => unreachable!("a full backlog is a refusal"),
    })
}

/// What one operation answers, in a form both sessions can be compared by.
fn apply(s: &mut S, op: &Op, n: usize) -> String {
    let text = format!("m{n}");
    match *op {
        Op::SeekerSays(id, w) => format!(
            "{:?}",
            accepted(s.seeker_says(&id.to_string(), w, |_| text))
        ),
        Op::CounsellorSays(c, id, w) => format!(
            "{:?}",
            accepted(s.counsellor_says(CounsellorId(c), &id.to_string(), w, |_| text))
        ),
        Op::GuestSays(id, w) => format!(
            "{:?}",
            accepted(s.guest_says(&format!("guest/{id}"), w, |_| text))
        ),
        Op::Confirm(side, c, up) => format!("{:?}", s.confirm(side, c.map(CounsellorId), up)),
        Op::Resume(side, seen) => format!(
            "{:?}",
            s.resume(side, seen).map(|r| (
                r.recovered,
                r.last_seq,
                r.replay.into_iter().cloned().collect::<Vec<_>>()
            ))
        ),
        Op::Join(c) => format!(
            "{:?}",
            s.join(CounsellorId(c), c)
                .map(|j| (j.new, j.backlog.into_iter().cloned().collect::<Vec<_>>()))
        ),
        Op::Leave(c) => format!("{:?}", s.leave(CounsellorId(c)).map(|m| m.id)),
        Op::Requeue => format!("{:?}", s.requeue().iter().map(|m| m.id).collect::<Vec<_>>()),
        Op::End => format!("{:?}", s.end().iter().map(|m| m.id).collect::<Vec<_>>()),
        Op::Move => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, ..ProptestConfig::default() })]

    #[test]
    fn a_moved_session_answers_exactly_as_the_original(ops in prop::collection::vec(op(), 1..80)) {
        let mut original: S = Session::new(LIMITS);
        let mut moved: S = Session::new(LIMITS);
        for (n, op) in ops.iter().enumerate() {
            if let Op::Move = op {
                // Out as plain data (sealed, in real life) and back.
                let export = moved.export(|p| p.clone().into_bytes());
                let back = export.conversation.to_seeker.unconfirmed.len()
                    + export.conversation.to_counsellor.unconfirmed.len();
                let restored = Session::restore(LIMITS, haven_core::SessionExport {
                    phase: export.phase,
                    members: export.members.clone(),
                    conversation: haven_core::ConversationExport {
                        to_seeker: reopen(export.conversation.to_seeker),
                        to_counsellor: reopen(export.conversation.to_counsellor),
                    },
                }, |id| id.0);
                prop_assert_eq!(
                    restored.conversation().backlog(Side::Seeker) + restored.conversation().backlog(Side::Counsellor),
                    back
                );
                moved = restored;
                continue;
            }
            let want = apply(&mut original, op, n);
            let got = apply(&mut moved, op, n);
            prop_assert_eq!(got, want, "op {} {:?}", n, op);
            prop_assert_eq!(moved.phase(), original.phase());
            prop_assert_eq!(
                moved.members().iter().map(|m| (m.id, m.link)).collect::<Vec<_>>(),
                original.members().iter().map(|m| (m.id, m.link)).collect::<Vec<_>>()
            );
        }
    }
}

fn reopen(s: haven_core::StreamExport<Vec<u8>>) -> haven_core::StreamExport<String> {
    haven_core::StreamExport {
        last_seq: s.last_seq,
        confirmed: s.confirmed,
        unconfirmed: s
            .unconfirmed
            .into_iter()
            .map(|(seq, w, p)| (seq, w, String::from_utf8(p).unwrap()))
            .collect(),
        ids: s.ids,
    }
}
