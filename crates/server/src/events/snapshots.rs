//! This node's own snapshot and queue history: kept here for this node's
//! dashboards and `/metrics` (and, with Redis, for when it cannot be
//! reached), and written off the router actor by a thread of its own.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use haven_protocol::events::Snapshot;

use super::Events;

/// Finishes a snapshot the actor took (see [`Events::snapshot`]).
pub(super) type TakeSnapshot = Box<dyn FnOnce() -> Snapshot + Send>;

/// The node's latest snapshot and history.
#[derive(Debug, Default)]
pub(super) struct Local {
    /// This node's latest snapshot, and the same as JSON.
    latest: Mutex<Option<(Arc<Snapshot>, Arc<str>)>>,
    /// Hands snapshots to the thread that writes them as JSON; `None` when
    /// that thread could not start.
    writer: OnceLock<Option<SyncSender<TakeSnapshot>>>,
    /// This node's latest history, as JSON.
    history: Mutex<Option<Arc<str>>>,
}

impl Local {
    /// The snapshot writer, started on first use by `events`.
    pub(super) fn writer(&self, events: &Arc<Events>) -> Option<&SyncSender<TakeSnapshot>> {
        self.writer
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<TakeSnapshot>(1);
                let events = Arc::downgrade(events);
                let started = std::thread::Builder::new()
                    .name("haven-snapshots".to_owned())
                    .spawn(move || write_snapshots(&rx, &events));
                started.ok().map(|_| tx)
            })
            .as_ref()
    }

    pub(super) fn set_latest(&self, snapshot: Arc<Snapshot>, json: Arc<str>) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some((snapshot, json));
    }

    pub(super) fn latest(&self) -> Option<(Arc<Snapshot>, Arc<str>)> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_history(&self, json: Arc<str>) {
        *self.history.lock().unwrap_or_else(|p| p.into_inner()) = Some(json);
    }

    pub(super) fn history(&self) -> Option<Arc<str>> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The snapshot writer's thread: takes each snapshot handed over while it
/// was free, until the bus is gone. Lowers its own priority first (on
/// Linux a thread's nice value is its own), so writing a large snapshot
/// never takes the core from the sockets.
fn write_snapshots(rx: &Receiver<TakeSnapshot>, events: &Weak<Events>) {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    while let Ok(take) = rx.recv() {
        let Some(events) = events.upgrade() else {
            return;
        };
        events.write_snapshot(take());
    }
}
