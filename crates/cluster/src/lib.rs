//! Haven on several nodes, with Redis holding what no node may lose.
//!
//! A node can die at any moment, so the state a conversation cannot do
//! without lives in Redis rather than in the node that happens to hold
//! the sockets: each direction's sequence numbers, the messages not yet
//! confirmed, and the ids that make retries idempotent
//! ([`conversation`]). Every change is one atomic script that applies the
//! same rules as [`haven_core::Conversation`] (a differential property
//! test runs both on the same random operations against a real Redis).
//!
//! One node at a time runs the router, under a [`lease`] whose epoch
//! fences every write it makes, so a leader that stalled past its lease
//! cannot act after a successor took over. Each of its steps is committed
//! with the router's changed state and the effects for the nodes in one
//! atomic script ([`routing`]), so the next leader restores the router
//! exactly where the last committed step left it.
//!
//! Redis never holds anything readable that a person wrote: a message is
//! sealed under its session's own key before it leaves the node, and a
//! client's message id is stored only as a keyed MAC ([`seal`]). The
//! session key itself is kept in Redis only wrapped under a key derived
//! from a client's resume token, which Redis never sees.

pub mod conversation;
pub mod lease;
pub mod routing;
pub mod seal;

pub use conversation::{Appended, Conversations, Resumed};
pub use lease::{FENCED, Grant, Lease, is_fenced};
pub use routing::{RouterStore, Stored};
pub use seal::{IdMac, SessionKey, TokenKeys};
