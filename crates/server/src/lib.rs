//! Haven's server: the async shell around `haven-core`.
//!
//! It owns the IO: sockets, timers, files and signals. The decisions live
//! in `haven-core`; the wire format lives in `haven-protocol`.
//!
//! # Layout
//!
//! - [`config`]: layered configuration (defaults, TOML, `HAVEN_*`).
//! - `app`: shared state, HTTP routes and the accept loop with its
//!   shutdown sequence ([`Server`]).
//! - `ws`: the two WebSocket endpoints: admission, the per-socket reader
//!   and writer tasks, and each role's message loop.
//! - `broker`: the router actor (control plane) and the per-session cells
//!   (data plane, the chat hot path).
//! - `api`: health, readiness and the login API.
//! - [`accounts`], `auth`: counsellor accounts on disk and live logins.
//! - `blocks`: cool-downs for abusive help-seekers, on keyed hashes.
//! - `limits`: the global connection cap and per-source limits keyed by
//!   rotating hashes.
//! - `tokens`: random tokens and ids.
//! - `private`: folders and files only the server's user may open.
//! - `transcripts`: the encrypted transcript writers, recovery after a
//!   crash, and retention.
//! - [`telemetry`]: log setup.

pub mod accounts;
mod api;
mod app;
mod assets;
mod auth;
mod blocks;
mod broker;
mod cluster;
pub mod config;
mod events;
mod limits;
mod metrics;
pub mod private;
mod supervisor;
pub mod telemetry;
mod tokens;
mod transcripts;
mod ws;

pub use app::{Server, StartError, TranscriptKeys};
