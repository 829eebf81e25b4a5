//! Test support for Haven: start the real server on port 0 and talk to it
//! over real sockets with typed clients.
//!
//! ```no_run
//! # async fn demo() {
//! use haven_testkit::TestServer;
//! let server = TestServer::start().await;
//! let mut seeker = server.seeker().await;
//! let welcome = seeker.hello(Some("Sam")).await;
//! # }
//! ```
//!
//! Nothing is mocked: [`TestServer`] runs `haven_server::Server` in the
//! test's runtime with a temporary data directory, and the clients are
//! tokio-tungstenite WebSockets over loopback TCP.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // Test support panics on purpose.

mod client;
mod http;
mod redis;
mod server;
mod totp;

pub use client::{Client, CounsellorClient, Event, SeekerClient, WAIT, Ws, WsError};
pub use http::{HttpResponse, SseStream, request};
pub use redis::RedisServer;
pub use server::{CONTROL_KEY, METRICS_TOKEN, TestServer, test_config};
pub use totp::totp_code;
