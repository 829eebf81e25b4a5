//! Every open socket, for shutdown.

use std::sync::OnceLock;

use dashmap::DashMap;
use haven_protocol::CloseCode;

use super::ConnHandle;

/// Every open socket, so that shutdown can close them all.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: DashMap<u64, ConnHandle>,
    /// Set when shutdown closed every socket: the code new ones get too.
    closing: OnceLock<CloseCode>,
}

impl Registry {
    /// Adds a socket. One that arrives after [`Registry::close_all`] is
    /// closed at once.
    pub(crate) fn add(&self, conn: &ConnHandle) {
        self.open.insert(conn.id(), conn.clone());
        if let Some(&code) = self.closing.get() {
            conn.close_now(code);
        }
    }

    /// Removes a socket that has ended.
    pub(crate) fn remove(&self, conn: &ConnHandle) {
        self.open.remove(&conn.id());
    }

    /// Closes every socket, now and from now on, with `code`: each once
    /// what is already queued on it went out (a farewell such as a
    /// session's end), or at once when its queue is full.
    pub(crate) fn close_all(&self, code: CloseCode) {
        let _ = self.closing.set(code);
        for entry in &self.open {
            entry.value().close_after_queued(code);
        }
    }

    /// Closes the sockets open now with `code` (each after what is queued
    /// on it), and takes new ones as usual.
    pub(crate) fn close_open(&self, code: CloseCode) {
        for entry in &self.open {
            entry.value().close_after_queued(code);
        }
    }

    /// Sockets open now.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}
