//! Integration tests of the Haven server over real sockets, in one binary.
//!
//! Each test starts its own server on port 0 (see `haven-testkit`) and
//! drives it with real WebSocket and HTTP clients.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod abuse;
mod assets;
mod bad_input;
mod chat;
mod cluster;
mod console;
mod crash;
mod events;
mod failover;
mod frames;
mod hand;
mod logins;
mod metrics;
mod mutation;
mod nodes;
mod process;
mod recording;
mod recovery;
mod resume;
mod routing;
mod second_factor;
mod security;
mod shutdown;
mod sources;
mod supervision;
mod support;
mod transcripts;
mod waiting_room;
mod write_only;
