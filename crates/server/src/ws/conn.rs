//! One WebSocket's outbound side: a bounded queue, a close signal, and the
//! writer task that drains the queue into the socket.
//!
//! Anyone may hold a [`ConnHandle`] and push frames with
//! [`ConnHandle::send`], which never waits: when the queue is full the
//! client is not reading fast enough and is closed with
//! [`CloseCode::SlowConsumer`] (reconnectable; what it missed is in its
//! session's replay buffer). The writer feeds every frame that is ready and
//! flushes once per wake-up, so a burst costs one syscall, not one each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use haven_protocol::CloseCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most frames fed before a flush, so one busy connection cannot keep its
/// writer from flushing for long.
const MAX_BATCH: usize = 64;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One JSON text frame.
    Frame(Utf8Bytes),
    /// Close after everything queued before it.
    Close(CloseCode),
}

#[derive(Debug, Default)]
struct CloseSignal {
    fired: CancellationToken,
    code: OnceLock<CloseCode>,
}

/// A cheap, cloneable handle to one socket's outbound queue.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    id: u64,
    tx: mpsc::Sender<Outbound>,
    close: Arc<CloseSignal>,
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

impl ConnHandle {
    /// A handle and the receiving end for its writer.
    pub(crate) fn new(queue: usize) -> (Self, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(queue);
        let handle = Self {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            tx,
            close: Arc::new(CloseSignal::default()),
        };
        (handle, rx)
    }

    /// Unique per connection for the life of the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Queues a frame. Returns `false` when the frame will not be sent (the
    /// socket is closing, or was just closed for being too slow).
    pub(crate) fn send(&self, frame: Utf8Bytes) -> bool {
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close_now(CloseCode::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes after the frames already queued have gone out. The code is
    /// recorded at once, so [`ConnHandle::close_code`] tells that a close is
    /// on its way.
    pub(crate) fn close_after_queued(&self, code: CloseCode) {
        let _ = self.close.code.set(code);
        if self.tx.try_send(Outbound::Close(code)).is_err() {
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
        let _ = self.close.code.set(code);
        self.close.fired.cancel();
    }

    /// Resolves when [`ConnHandle::close_now`] was called.
    pub(crate) async fn closed(&self) {
        self.close.fired.cancelled().await;
    }

    /// Whether a close was requested (now or after the queue), and with
    /// which code.
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        self.close.code.get().copied()
    }
}

/// Drains `rx` into the socket until the queue closes or a close is asked
/// for. Pings every `ping_every` so idle connections and proxies stay
/// alive and dead peers are noticed.
pub(crate) async fn run_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    handle: ConnHandle,
    ping_every: Duration,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let close_code = loop {
        tokio::select! {
            biased;
            () = handle.closed() => break handle.close_code(),
            item = rx.recv() => {
                let mut next = item;
                let mut fed = 0;
                let mut close = None;
                while let Some(out) = next.take() {
                    match out {
                        Outbound::Frame(text) => {
                            if sink.feed(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Outbound::Close(code) => {
                            // Tell the reader too, so both halves end.
                            handle.close_now(code);
                            close = Some(code);
                            break;
                        }
                    }
                    fed += 1;
                    if fed < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if let Some(code) = close {
                    break Some(code);
                }
                // A flush can stall on a client that stopped reading; a close
                // request must still get through, so race them.
                tokio::select! {
                    biased;
                    () = handle.closed() => break handle.close_code(),
                    r = sink.flush() => if r.is_err() { return },
                }
                if rx.is_closed() && rx.is_empty() {
                    break None;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    };
    let frame = close_code.map(|code| CloseFrame {
        code: code.code(),
        reason: Utf8Bytes::from_static(code.reason()),
    });
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    })
    .await;
}
