//! `haven-loadtest`: drives Haven (or a peer server) with many real
//! clients speaking the real protocol, and reports latency, throughput,
//! loss and what the server spent.
//!
//! - [`scenario`] runs a workload end to end; [`driver`] holds the two
//!   per-socket loops every workload uses; [`codec`] frames them for each
//!   target (Haven, a pair relay, socket.io, Centrifuge).
//! - [`payload`] and [`order`] make loss, duplication and reordering
//!   visible; [`stats`] and [`report`] sum a run up.
//! - [`spawn`] starts a fresh `haven` for a run; [`bench`] turns result
//!   lines into the benchmark page.
//!
//! See loadtest/README.md for how to run it and what each number means.

pub mod bench;
pub mod cli;
pub mod codec;
pub mod driver;
pub mod http;
pub mod net;
pub mod order;
pub mod payload;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod spawn;
pub mod stats;
pub mod sysinfo;
