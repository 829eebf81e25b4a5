//! The writer task: drains a socket's queue into the socket, a batch per
//! flush, pings a quiet client, and sends the close frame at the end.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{Sink as _, SinkExt as _};
use haven_protocol::CloseCode;

use super::outbox::{Shared, Taken};
use super::{ConnHandle, Outbound};

/// Most frames fed before a flush, so one busy connection cannot keep its
/// writer from flushing for long.
const MAX_BATCH: usize = 64;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Marks the queue as abandoned when the writer ends, however it ends, and
/// frees what is still in it.
pub(super) struct WriterGone<'a>(pub(super) &'a Shared);

impl Drop for WriterGone<'_> {
    fn drop(&mut self) {
        let mut outbox = self.0.outbox();
        outbox.gone = true;
        outbox.writer = None;
        outbox.lazy_due = None;
        outbox.queue = VecDeque::new();
    }
}

/// How the writer behaves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterSettings {
    /// How often to ping an otherwise quiet client.
    pub(crate) ping_every: Duration,
}

/// Drains the socket's queue into the socket until a close is asked for.
/// Pings every `ping_every` so idle connections and proxies stay alive and
/// dead peers are noticed.
pub(crate) async fn run_writer(
    mut sink: SplitSink<WebSocket, Message>,
    handle: ConnHandle,
    settings: WriterSettings,
) {
    let shared = &*handle.shared;
    let _gone = WriterGone(shared);
    let every = settings.ping_every;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What was taken from the queue and not yet fed; kept between wake-ups
    // so its allocation is reused.
    let mut ready = VecDeque::new();
    let close_code = loop {
        if ready.is_empty() {
            tokio::select! {
                biased;
                taken = poll_fn(|cx| shared.poll_take(cx, &mut ready)) => {
                    if taken == Taken::Closed {
                        break handle.close_code();
                    }
                }
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        match feed(&mut sink, &mut ready).await {
            Fed::Frames => {}
            Fed::Close(code) => {
                // Tell the reader too, so both halves end.
                handle.close_now(code);
                break Some(code);
            }
            Fed::Failed => return,
        }
        // A flush can stall on a client that stopped reading; a close
        // request must still get through, so race them.
        tokio::select! {
            biased;
            () = poll_fn(|cx| shared.poll_closed(cx)) => break handle.close_code(),
            r = sink.flush() => if r.is_err() { return },
        }
        forget_waker(&mut sink);
        // After a burst (a replay, a slow client catching up), give the
        // memory back: the queue and `ready` trade allocations, so this
        // shrinks both over the next wake-ups.
        if ready.is_empty() && ready.capacity() > MAX_BATCH {
            ready = VecDeque::new();
        }
    };
    drop(ready);
    let frame = close_code.map(|code| CloseFrame {
        code: code.code(),
        reason: Utf8Bytes::from_static(code.reason()),
    });
    // Boxed: it runs once, at the end, and would otherwise enlarge the
    // task for the socket's whole life.
    let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    }))
    .await;
}

/// tokio-tungstenite keeps the waker of the last task that wrote and wakes
/// it whenever the socket becomes readable, which here is once per
/// incoming message: a wake-up of the writer for nothing. Flushing again,
/// with nothing left to flush and a waker that does nothing, puts that
/// waker in its place. The next write registers the writer again before
/// it could have to wait.
fn forget_waker(sink: &mut SplitSink<WebSocket, Message>) {
    let _ = Pin::new(sink).poll_flush(&mut Context::from_waker(Waker::noop()));
}

/// What feeding a batch came to.
#[derive(Debug)]
enum Fed {
    /// Frames to flush (the rest of a long queue waits in `ready`).
    Frames,
    /// A close was asked for after the frames fed.
    Close(CloseCode),
    /// The socket failed.
    Failed,
}

/// Feeds what is `ready` (up to [`MAX_BATCH`] frames) without flushing.
/// Stops at a close, dropping what follows it.
async fn feed(sink: &mut SplitSink<WebSocket, Message>, ready: &mut VecDeque<Outbound>) -> Fed {
    let mut fed = 0;
    while let Some(out) = ready.pop_front() {
        let text = match out {
            Outbound::Frame(text) | Outbound::Lazy(text) => text,
            Outbound::Close(code) => {
                ready.clear();
                return Fed::Close(code);
            }
        };
        if sink.feed(Message::Text(text)).await.is_err() {
            return Fed::Failed;
        }
        fed += 1;
        if fed >= MAX_BATCH {
            // A full batch goes out now; the rest of what is ready follows
            // in the next.
            break;
        }
    }
    Fed::Frames
}
