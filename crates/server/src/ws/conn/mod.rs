//! One WebSocket's outbound side: a bounded queue, a close signal, and the
//! writer task that drains the queue into the socket.
//!
//! Anyone may hold a [`ConnHandle`] and push frames with
//! [`ConnHandle::send`], which never waits: when the queue is full the
//! client is not reading fast enough and is closed with
//! [`CloseCode::SlowConsumer`] (reconnectable; what it missed is in its
//! session's replay buffer). The writer takes everything queued at once,
//! feeds it and flushes once per wake-up, so a burst costs one syscall, not
//! one each.
//!
//! Bookkeeping frames (acks and delivery marks) go in with
//! [`ConnHandle::send_lazy`]: they wait up to `ack_delay` so they ride
//! along with the next frame that matters, as TCP delays its ACKs. In a
//! lively chat an ack leaves with the next message to the same socket
//! instead of in a write of its own; nothing waits longer than the delay.
//! A lazy frame does not wake the writer: the socket is listed on the
//! server's [`LazyClock`], which wakes the writer when the delay runs out
//! unless a frame that matters came first. So an ack costs a push, not a
//! wake-up of the writer task, and no socket keeps a timer of its own for
//! it (arming one that ends before the runtime's next timer costs a
//! syscall to wake the runtime's own thread).
//!
//! The queue is a short mutex around a `VecDeque` that allocates only when
//! frames arrive, and one waker: a quiet socket costs a few dozen bytes
//! here, and the writer drains a burst under one lock. A close is a flag
//! and two wakers (the socket's reader and writer), so checking for it on
//! every wake-up costs an atomic load. The [`Registry`] of open sockets
//! lets shutdown close them all.
//!
//! Here: [`ConnHandle`], what senders hold. `outbox.rs`: the queue and the
//! close signal they share with the writer. `lazy_clock.rs`: the one clock
//! for lazy frames. `writer.rs`: the writer task. `registry.rs`: the open
//! sockets.

mod lazy_clock;
mod outbox;
mod registry;
#[cfg(test)]
mod tests;
mod writer;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use haven_protocol::CloseCode;

pub(crate) use lazy_clock::LazyClock;
use outbox::Shared;
pub(crate) use registry::Registry;
pub(crate) use writer::{WriterSettings, run_writer};

/// What the writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One JSON text frame, to go out now.
    Frame(Utf8Bytes),
    /// A bookkeeping frame that may wait up to the ack delay for company.
    Lazy(Utf8Bytes),
    /// Close after everything queued before it.
    Close(CloseCode),
}

/// A cheap, cloneable handle to one socket's outbound queue.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    shared: Arc<Shared>,
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

impl ConnHandle {
    /// A handle to a new socket's queue, which holds at most `queue`
    /// frames; its lazy frames keep time by `clock`.
    pub(crate) fn new(queue: usize, clock: &Arc<LazyClock>) -> Self {
        Self {
            shared: Arc::new(Shared {
                id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                capacity: queue.max(1),
                outbox: Mutex::default(),
                code: OnceLock::new(),
                fired: AtomicBool::new(false),
                reader: AtomicWaker::new(),
                clock: clock.clone(),
            }),
        }
    }

    /// Unique per connection for the life of the process.
    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    /// Queues a frame. Returns `false` when the frame will not be sent (the
    /// socket is closing, or was just closed for being too slow).
    pub(crate) fn send(&self, frame: Utf8Bytes) -> bool {
        self.push(Outbound::Frame(frame))
    }

    /// Queues a bookkeeping frame (an ack, a delivery mark) that may wait
    /// up to the ack delay to share a write with the next frame.
    pub(crate) fn send_lazy(&self, frame: Utf8Bytes) -> bool {
        self.push(Outbound::Lazy(frame))
    }

    fn push(&self, out: Outbound) -> bool {
        let shared = &*self.shared;
        if shared.fired() {
            return false;
        }
        let lazy = matches!(out, Outbound::Lazy(_)) && !shared.clock.delay.is_zero();
        let mut list = None;
        let writer = {
            let mut outbox = shared.outbox();
            if outbox.gone {
                return false;
            }
            if outbox.queue.len() >= shared.capacity {
                drop(outbox);
                shared.fire(CloseCode::SlowConsumer);
                return false;
            }
            outbox.queue.push_back(out);
            if lazy {
                // Let the frame wait for company on the clock instead of
                // waking the writer, unless it has company already.
                if !outbox.urgent && outbox.lazy_due.is_none() {
                    let due = Instant::now() + shared.clock.delay;
                    outbox.lazy_due = Some(due);
                    list = Some(due);
                }
                None
            } else {
                outbox.urgent = true;
                outbox.writer.take()
            }
        };
        if let Some(due) = list {
            shared.clock.list(due, self.shared.clone());
        }
        if let Some(writer) = writer {
            writer.wake();
        }
        true
    }

    /// Closes after the frames already queued have gone out. The code is
    /// recorded at once, so [`ConnHandle::close_code`] tells that a close is
    /// on its way.
    pub(crate) fn close_after_queued(&self, code: CloseCode) {
        let _ = self.shared.code.set(code);
        if !self.push(Outbound::Close(code)) {
            self.close_now(code);
        }
    }

    /// Closes at once unless a close was already asked for: used when a
    /// socket's reader ends, so a queued farewell still goes out.
    pub(crate) fn finish(&self) {
        if self.close_code().is_none() {
            self.close_now(CloseCode::Normal);
        }
    }

    /// Closes at once, dropping whatever is still queued.
    pub(crate) fn close_now(&self, code: CloseCode) {
        self.shared.fire(code);
    }

    /// Resolves when [`ConnHandle::close_now`] was called. For the socket's
    /// reader (the writer waits through its queue).
    pub(crate) async fn closed(&self) {
        let shared = &*self.shared;
        poll_fn(|cx| {
            if shared.fired() {
                return Poll::Ready(());
            }
            shared.reader.register(cx.waker());
            // A close between the load and the registration must not be
            // missed.
            if shared.fired() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether [`ConnHandle::close_now`] was called: one atomic load.
    pub(crate) fn is_closing(&self) -> bool {
        self.shared.fired()
    }

    /// Whether a close was requested (now or after the queue), and with
    /// which code.
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        self.shared.code.get().copied()
    }

    /// Frames waiting for the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.shared.outbox().queue.len()
    }
}
