//! One WebSocket's outbound side: a bounded queue, a close signal, and the
//! writer task that drains the queue into the socket.
//!
//! Anyone may hold a [`ConnHandle`] and push frames with
//! [`ConnHandle::send`], which never waits: when the queue is full the
//! client is not reading fast enough and is closed with
//! [`CloseCode::SlowConsumer`] (reconnectable; what it missed is in its
//! session's replay buffer). The writer feeds every frame that is ready and
//! flushes once per wake-up, so a burst costs one syscall, not one each.
//!
//! Bookkeeping frames (acks and delivery marks) go in with
//! [`ConnHandle::send_lazy`]: the writer holds them for up to `ack_delay`
//! so they ride along with the next frame that matters, as TCP delays its
//! ACKs. In a lively chat an ack leaves with the next message to the same
//! socket instead of in a write of its own; nothing waits longer than the
//! delay.
//!
//! A close is a flag and two wakers (the socket's reader and writer), so
//! checking for it on every wake-up costs an atomic load, not a lock. The
//! [`Registry`] of open sockets lets shutdown close them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use dashmap::DashMap;
use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use futures_util::task::AtomicWaker;
use haven_protocol::CloseCode;
use tokio::sync::mpsc;

/// Most frames fed before a flush, so one busy connection cannot keep its
/// writer from flushing for long.
const MAX_BATCH: usize = 64;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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

/// A socket's close: why, whether it fired, and who to wake.
#[derive(Debug, Default)]
pub(crate) struct CloseSignal {
    code: OnceLock<CloseCode>,
    fired: AtomicBool,
    /// The reader's and the writer's wakers, by [`Half`].
    wakers: [AtomicWaker; 2],
}

impl CloseSignal {
    fn fire(&self, code: CloseCode) {
        let _ = self.code.set(code);
        if !self.fired.swap(true, Ordering::AcqRel) {
            for waker in &self.wakers {
                waker.wake();
            }
        }
    }
}

/// Which of a socket's two tasks waits for its close.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Half {
    Reader = 0,
    Writer = 1,
}

/// Resolves once the socket is told to close.
#[derive(Debug)]
pub(crate) struct Closed<'a> {
    signal: &'a CloseSignal,
    half: Half,
}

impl Future for Closed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.signal.wakers[self.half as usize].register(cx.waker());
        // A close between the load and the registration must not be missed.
        if self.signal.fired.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Every open socket, so that shutdown can close them all with 1001.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: DashMap<u64, Arc<CloseSignal>>,
    closing: AtomicBool,
}

impl Registry {
    /// Adds a socket. One that arrives after [`Registry::close_all`] is
    /// closed at once.
    pub(crate) fn add(&self, conn: &ConnHandle) {
        self.open.insert(conn.id, conn.close.clone());
        if self.closing.load(Ordering::SeqCst) {
            conn.close_now(CloseCode::GoingAway);
        }
    }

    /// Removes a socket that has ended.
    pub(crate) fn remove(&self, conn: &ConnHandle) {
        self.open.remove(&conn.id);
    }

    /// Closes every socket, now and from now on, with `code`.
    pub(crate) fn close_all(&self, code: CloseCode) {
        self.closing.store(true, Ordering::SeqCst);
        for entry in &self.open {
            entry.value().fire(code);
        }
    }

    /// Sockets open now.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
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
        self.push(Outbound::Frame(frame))
    }

    /// Queues a bookkeeping frame (an ack, a delivery mark) that may wait
    /// up to the ack delay to share a write with the next frame.
    pub(crate) fn send_lazy(&self, frame: Utf8Bytes) -> bool {
        self.push(Outbound::Lazy(frame))
    }

    fn push(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
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
        self.close.fire(code);
    }

    /// Resolves when [`ConnHandle::close_now`] was called; `half` says
    /// which of the socket's tasks waits.
    pub(crate) fn closed(&self, half: Half) -> Closed<'_> {
        Closed {
            signal: &self.close,
            half,
        }
    }

    /// Whether a close was requested (now or after the queue), and with
    /// which code.
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        self.close.code.get().copied()
    }
}

/// How the writer behaves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterSettings {
    /// How often to ping an otherwise quiet client.
    pub(crate) ping_every: Duration,
    /// How long a bookkeeping frame may wait for company.
    pub(crate) ack_delay: Duration,
}

/// Frames fed since the last flush.
#[derive(Debug, Default)]
struct Batch {
    fed: usize,
    /// Something in it must go out now.
    urgent: bool,
    /// The batch must go out by then: the ack delay after its first
    /// bookkeeping frame.
    due: Option<Instant>,
    /// A close was asked for after it.
    close: Option<CloseCode>,
}

/// Drains `rx` into the socket until the queue closes or a close is asked
/// for. Pings every `ping_every` so idle connections and proxies stay
/// alive and dead peers are noticed.
pub(crate) async fn run_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    handle: ConnHandle,
    settings: WriterSettings,
) {
    let every = settings.ping_every;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let closed = handle.closed(Half::Writer);
    tokio::pin!(closed);
    let close_code = 'run: loop {
        tokio::select! {
            biased;
            () = &mut closed => break handle.close_code(),
            item = rx.recv() => {
                let mut batch = Batch::default();
                let mut next = item;
                // Registered with the timer only if polled, that is, only
                // when the batch is bookkeeping alone.
                let company = tokio::time::sleep(Duration::ZERO);
                tokio::pin!(company);
                let mut armed_for = None;
                loop {
                    if !feed(&mut sink, &mut rx, &mut batch, &settings, next.take()).await {
                        return;
                    }
                    let due = match batch.due {
                        Some(due) if !batch.urgent && batch.close.is_none() => due,
                        _ => break,
                    };
                    if armed_for != Some(due) {
                        company.as_mut().reset(due.into());
                        armed_for = Some(due);
                    }
                    // Only bookkeeping so far: give a frame that matters a
                    // moment to come along and share the write.
                    tokio::select! {
                        biased;
                        () = &mut closed => break 'run handle.close_code(),
                        () = &mut company => break,
                        item = rx.recv() => next = item,
                    }
                    if next.is_none() {
                        break;
                    }
                }
                if let Some(code) = batch.close {
                    // Tell the reader too, so both halves end.
                    handle.close_now(code);
                    break Some(code);
                }
                // A flush can stall on a client that stopped reading; a close
                // request must still get through, so race them.
                tokio::select! {
                    biased;
                    () = &mut closed => break handle.close_code(),
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
    // Boxed: it runs once, at the end, and would otherwise enlarge the
    // task for the socket's whole life.
    let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    }))
    .await;
}

/// Feeds `first` and whatever else is queued (up to [`MAX_BATCH`] frames
/// per batch) without flushing. Stops at a close. False when the socket
/// failed.
async fn feed(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::Receiver<Outbound>,
    batch: &mut Batch,
    settings: &WriterSettings,
    first: Option<Outbound>,
) -> bool {
    let mut next = first;
    while let Some(out) = next.take() {
        let text = match out {
            Outbound::Frame(text) => {
                batch.urgent = true;
                text
            }
            Outbound::Lazy(text) => {
                if settings.ack_delay.is_zero() {
                    batch.urgent = true;
                } else if batch.due.is_none() {
                    batch.due = Some(Instant::now() + settings.ack_delay);
                }
                text
            }
            Outbound::Close(code) => {
                batch.close = Some(code);
                return true;
            }
        };
        if sink.feed(Message::Text(text)).await.is_err() {
            return false;
        }
        batch.fed += 1;
        if batch.fed < MAX_BATCH {
            next = rx.try_recv().ok();
        } else {
            // A full batch goes out now, whatever it holds.
            batch.urgent = true;
        }
    }
    true
}
