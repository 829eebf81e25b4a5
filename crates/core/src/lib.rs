//! Haven's broker core: the queue, the routing and the session state
//! machines, with no IO at all.
//!
//! Nothing here reads a clock, opens a socket or spawns a task. Time comes
//! in as a `now: Instant` argument and decisions come out as values (effects
//! and outcomes) that the async shell in `haven-server` carries out. That
//! makes every rule here testable by deterministic simulation and property
//! tests (`tests/`), in the manner of `quinn-proto`.
//!
//! # Layout
//!
//! - [`router`]: the control plane. Topics, skills, priorities, offers,
//!   wrap-up, transfers, return codes, grace periods, positions and wait
//!   estimates. One owner drives it; it never sees chat text.
//! - [`queue`]: the ordered lines the router keeps.
//! - [`hours`]: opening hours per topic, evaluated in a time zone.
//! - [`conversation`]: the data plane of one session. Sequence numbers, acks,
//!   idempotent retries and the bounded replay buffer that makes resume
//!   lose nothing. Each session has its own, so chat never funnels through
//!   one global owner.
//! - [`session`]: one session's rules around its conversation: its phase,
//!   who is in it, what each party may do, and what a counsellor who joins
//!   receives.
//! - [`resume`]: which resume tokens bring a party back.
//! - [`supervision`]: today's figures per topic and the alerts, decided
//!   once from the router's events.
//! - [`ids`]: the newtype ids they share.

pub mod conversation;
pub mod hours;
pub mod ids;
pub mod queue;
pub mod resume;
pub mod router;
pub mod session;
pub mod supervision;

pub use conversation::{
    Accept, Conversation, ConversationExport, ReplayLimits, Resume, StreamExport,
};
pub use ids::{CounsellorId, LangId, Party, SessionId, Side, TopicId};
pub use resume::ResumeSlot;
pub use router::{
    Activity, Arrival, Assignment, CounsellorOverview, CounsellorView, Effect, EndReason, Event,
    Gate, Notice, Profile, Refusal, Router, RouterConfig, SessionOverview, Stage, Status,
    TopicRules, TopicSummary, Transfer,
};
pub use session::{Joined, Member, Phase, Refused, Session, SessionExport};
