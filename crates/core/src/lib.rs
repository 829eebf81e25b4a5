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
//! - [`router`]: the control plane. Which help-seekers wait in which order,
//!   which counsellor takes whom, who is connected, and what happens when a
//!   grace period runs out. One owner drives it; it never sees chat text.
//! - [`queue`]: the waiting line the router keeps (priority, then FIFO).
//! - [`conversation`]: the data plane of one session. Sequence numbers, acks,
//!   idempotent retries and the bounded replay buffer that makes resume
//!   lose nothing. Each session has its own, so chat never funnels through
//!   one global owner.
//! - [`ids`]: the newtype ids both use.

pub mod conversation;
pub mod ids;
pub mod queue;
pub mod router;

pub use conversation::{Accept, Conversation, ReplayLimits, Resume};
pub use ids::{CounsellorId, Party, SessionId, Side};
pub use queue::{Priority, Queue};
pub use router::{Effect, EndReason, Router, RouterConfig, Status};
