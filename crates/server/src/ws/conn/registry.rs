//! Every open socket, for shutdown.

use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use haven_protocol::CloseCode;

use super::ConnHandle;

/// Every open socket, so that shutdown can close them all with 1001.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: DashMap<u64, ConnHandle>,
    closing: AtomicBool,
}

impl Registry {
    /// Adds a socket. One that arrives after [`Registry::close_all`] is
    /// closed at once.
    pub(crate) fn add(&self, conn: &ConnHandle) {
        self.open.insert(conn.id(), conn.clone());
        if self.closing.load(Ordering::SeqCst) {
            conn.close_now(CloseCode::GoingAway);
        }
    }

    /// Removes a socket that has ended.
    pub(crate) fn remove(&self, conn: &ConnHandle) {
        self.open.remove(&conn.id());
    }

    /// Closes every socket, now and from now on, with `code`.
    pub(crate) fn close_all(&self, code: CloseCode) {
        self.closing.store(true, Ordering::SeqCst);
        for entry in &self.open {
            entry.value().close_now(code);
        }
    }

    /// Sockets open now.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}
