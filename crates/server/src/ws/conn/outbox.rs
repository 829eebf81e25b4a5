//! The queue between a socket's senders and its writer, and the close
//! signal they share (see `conn`'s notes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use haven_protocol::CloseCode;

use super::{LazyClock, Outbound};

/// The queue between everyone who sends and the writer.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) queue: VecDeque<Outbound>,
    /// The writer, when it waits for frames or a close.
    pub(super) writer: Option<Waker>,
    /// The writer has ended: nothing queued will be sent.
    pub(super) gone: bool,
    /// When the oldest lazy frame queued must be sent. While it is set,
    /// the [`LazyClock`] has the socket listed under this deadline. Lazy
    /// frames queued behind a frame that matters are not listed: they go
    /// with it.
    pub(super) lazy_due: Option<Instant>,
    /// The clock has woken the writer for those lazy frames.
    pub(super) due_now: bool,
    /// Something other than lazy frames is queued.
    pub(super) urgent: bool,
}

impl Outbox {
    /// Whether everything queued is lazy frames that the clock keeps time
    /// for. The writer leaves those where they are when it looks for
    /// another reason (a ping, or tokio-tungstenite waking it because the
    /// socket has something to read): taking an ack then would send it
    /// alone, before its delay gave it a chance of company.
    pub(super) fn waits_for_clock(&self) -> bool {
        self.lazy_due.is_some() && !self.due_now && !self.urgent
    }
}

/// What a socket's handles share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) id: u64,
    pub(super) capacity: usize,
    pub(super) outbox: Mutex<Outbox>,
    /// Why the socket closes, once it is known.
    pub(super) code: OnceLock<CloseCode>,
    /// A close that drops what is queued was asked for.
    pub(super) fired: AtomicBool,
    /// The reader, when it waits for a close.
    pub(super) reader: AtomicWaker,
    pub(super) clock: Arc<LazyClock>,
}

impl Shared {
    /// Poisoning cannot leave a queue half-changed, so a poisoned lock is
    /// taken over.
    pub(super) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn fire(&self, code: CloseCode) {
        let _ = self.code.set(code);
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.reader.wake();
            let writer = self.outbox().writer.take();
            if let Some(writer) = writer {
                writer.wake();
            }
        }
    }

    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// The writer's wait: moves everything queued into `into` (which it
    /// keeps between wake-ups) once something in it must go now, or
    /// reports a close.
    pub(super) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<Outbound>,
    ) -> Poll<Taken> {
        if self.fired() {
            return Poll::Ready(Taken::Closed);
        }
        let mut outbox = self.outbox();
        if outbox.queue.is_empty() || outbox.waits_for_clock() {
            register(&mut outbox.writer, cx.waker());
            drop(outbox);
            // A close between the first check and the registration found
            // no waker to wake.
            return if self.fired() {
                Poll::Ready(Taken::Closed)
            } else {
                Poll::Pending
            };
        }
        if into.is_empty() {
            std::mem::swap(&mut outbox.queue, into);
        } else {
            into.append(&mut outbox.queue);
        }
        outbox.urgent = false;
        outbox.due_now = false;
        outbox.lazy_due = None;
        Poll::Ready(Taken::Frames)
    }

    /// The writer's wait for a close alone (while a flush is stuck).
    pub(super) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired() {
            return Poll::Ready(());
        }
        register(&mut self.outbox().writer, cx.waker());
        if self.fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// What the writer's wait found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Taken {
    Frames,
    Closed,
}
