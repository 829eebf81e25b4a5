//! The load generator's integration tests, in one binary: every scenario
//! against a real Haven, the loss checks against a relay that breaks them
//! on purpose, and the command line as a user runs it.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
// tungstenite's handshake callback signature, not ours.
#![allow(clippy::result_large_err)]

mod cli;
mod haven;
mod lossy;
