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

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use dashmap::DashMap;
use futures_util::stream::SplitSink;
use futures_util::task::AtomicWaker;
use futures_util::{Sink as _, SinkExt as _};
use haven_protocol::CloseCode;

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

/// The queue between everyone who sends and the writer.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Outbound>,
    /// The writer, when it waits for frames or a close.
    writer: Option<Waker>,
    /// The writer has ended: nothing queued will be sent.
    gone: bool,
    /// When the oldest lazy frame queued must be sent. While it is set,
    /// the [`LazyClock`] has the socket listed under this deadline. Lazy
    /// frames queued behind a frame that matters are not listed: they go
    /// with it.
    lazy_due: Option<Instant>,
    /// The clock has woken the writer for those lazy frames.
    due_now: bool,
    /// Something other than lazy frames is queued.
    urgent: bool,
}

impl Outbox {
    /// Whether everything queued is lazy frames that the clock keeps time
    /// for. The writer leaves those where they are when it looks for
    /// another reason (a ping, or tokio-tungstenite waking it because the
    /// socket has something to read): taking an ack then would send it
    /// alone, before its delay gave it a chance of company.
    fn waits_for_clock(&self) -> bool {
        self.lazy_due.is_some() && !self.due_now && !self.urgent
    }
}

/// What a socket's handles share.
#[derive(Debug)]
struct Shared {
    id: u64,
    capacity: usize,
    outbox: Mutex<Outbox>,
    /// Why the socket closes, once it is known.
    code: OnceLock<CloseCode>,
    /// A close that drops what is queued was asked for.
    fired: AtomicBool,
    /// The reader, when it waits for a close.
    reader: AtomicWaker,
    clock: Arc<LazyClock>,
}

impl Shared {
    /// Poisoning cannot leave a queue half-changed, so a poisoned lock is
    /// taken over.
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fire(&self, code: CloseCode) {
        let _ = self.code.set(code);
        if !self.fired.swap(true, Ordering::AcqRel) {
            self.reader.wake();
            let writer = self.outbox().writer.take();
            if let Some(writer) = writer {
                writer.wake();
            }
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// The writer's wait: moves everything queued into `into` (which it
    /// keeps between wake-ups) once something in it must go now, or
    /// reports a close.
    fn poll_take(&self, cx: &mut Context<'_>, into: &mut VecDeque<Outbound>) -> Poll<Taken> {
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
    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
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
enum Taken {
    Frames,
    Closed,
}

/// The deadline for lazy frames (see the module notes). A socket is
/// listed, under its deadline, when such a frame finds neither a frame
/// that matters nor another lazy one waiting before it. Every delay is
/// the same, so the list is in deadline order: every tick, while anything
/// is listed, the clock takes the entries due before the next tick off its
/// front and wakes their writers, unless a frame that matters took the
/// lazy frames along in the meantime (the socket's deadline is then gone
/// or a later one). Each entry is looked at once.
#[derive(Debug)]
pub(crate) struct LazyClock {
    delay: Duration,
    tick: Duration,
    listed: Mutex<VecDeque<(Instant, Arc<Shared>)>>,
    work: tokio::sync::Notify,
}

impl LazyClock {
    /// A clock for lazy frames that may wait up to `delay`: it ticks ten
    /// times per delay (at most a thousand times a second) and wakes a
    /// writer in the last tenth of the delay, which sends the frames then
    /// when nothing took them along sooner. A zero delay sends them at
    /// once.
    pub(crate) fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            tick: (delay / 10).max(Duration::from_millis(1)),
            listed: Mutex::default(),
            work: tokio::sync::Notify::new(),
        })
    }

    fn listed(&self) -> MutexGuard<'_, VecDeque<(Instant, Arc<Shared>)>> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn list(&self, due: Instant, shared: Arc<Shared>) {
        let mut listed = self.listed();
        let first = listed.is_empty();
        listed.push_back((due, shared));
        drop(listed);
        if first {
            self.work.notify_one();
        }
    }

    /// Wakes the writers whose lazy frames are due before the next tick.
    fn sweep(&self, now: Instant) {
        let horizon = now + self.tick;
        let mut due = Vec::new();
        {
            let mut listed = self.listed();
            while listed.front().is_some_and(|(due, _)| *due <= horizon) {
                due.extend(listed.pop_front());
            }
        }
        let mut wake = Vec::new();
        for (due, shared) in due {
            let mut outbox = shared.outbox();
            // Otherwise a frame that matters took them along.
            if outbox.lazy_due == Some(due) {
                // The writer takes the deadline along with the frames and
                // sends them by it.
                outbox.due_now = true;
                wake.extend(outbox.writer.take());
            }
        }
        for writer in wake {
            writer.wake();
        }
    }

    /// Ticks while anything is listed, until `stop` fires. Then lets go
    /// of the listed sockets (each of which holds the clock).
    pub(crate) async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            if self.listed().is_empty() {
                tokio::select! {
                    () = self.work.notified() => {}
                    () = stop.cancelled() => break,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.tick) => {}
                () = stop.cancelled() => break,
            }
            self.sweep(Instant::now());
        }
        self.listed().clear();
    }
}

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

/// Marks the queue as abandoned when the writer ends, however it ends, and
/// frees what is still in it.
struct WriterGone<'a>(&'a Shared);

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::task::{ArcWake, waker};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl ArcWake for Count {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    const DELAY: Duration = Duration::from_millis(250);

    fn handle(queue: usize) -> ConnHandle {
        ConnHandle::new(queue, &LazyClock::new(DELAY))
    }

    fn frame(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    fn texts(ready: &VecDeque<Outbound>) -> Vec<String> {
        ready
            .iter()
            .map(|o| match o {
                Outbound::Frame(t) | Outbound::Lazy(t) => t.to_string(),
                Outbound::Close(c) => format!("close {}", c.code()),
            })
            .collect()
    }

    #[test]
    fn the_writer_takes_everything_queued_in_order_and_is_woken_once_per_wait() {
        let conn = handle(8);
        let count = Arc::new(Count::default());
        let w = waker(count.clone());
        let mut cx = Context::from_waker(&w);
        let mut ready = VecDeque::new();
        assert_eq!(conn.shared.poll_take(&mut cx, &mut ready), Poll::Pending);
        assert!(conn.send(frame("a")));
        assert!(conn.send_lazy(frame("b")));
        assert!(conn.send(frame("c")));
        // The first push took the waker; the others found none to wake.
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            conn.shared.poll_take(&mut cx, &mut ready),
            Poll::Ready(Taken::Frames)
        );
        assert_eq!(texts(&ready), ["a", "b", "c"]);
        assert_eq!(conn.queued(), 0);
    }

    #[test]
    fn a_full_queue_closes_the_socket_as_a_slow_consumer_and_refuses_more() {
        let conn = handle(2);
        assert!(conn.send(frame("1")));
        assert!(conn.send(frame("2")));
        assert!(!conn.send(frame("3")));
        assert_eq!(conn.close_code(), Some(CloseCode::SlowConsumer));
        assert!(!conn.send(frame("4")));
        let w = futures_util::task::noop_waker();
        let mut ready = VecDeque::new();
        assert_eq!(
            conn.shared
                .poll_take(&mut Context::from_waker(&w), &mut ready),
            Poll::Ready(Taken::Closed)
        );
    }

    #[test]
    fn a_close_wakes_a_waiting_writer_and_nothing_is_queued_once_it_is_gone() {
        let conn = handle(8);
        let count = Arc::new(Count::default());
        let w = waker(count.clone());
        let mut cx = Context::from_waker(&w);
        assert_eq!(conn.shared.poll_closed(&mut cx), Poll::Pending);
        conn.close_now(CloseCode::GoingAway);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(conn.shared.poll_closed(&mut cx), Poll::Ready(()));
        drop(WriterGone(&conn.shared));
        let fresh = handle(8);
        drop(WriterGone(&fresh.shared));
        assert!(!fresh.send(frame("late")));
        assert_eq!(fresh.queued(), 0);
    }

    #[test]
    fn a_close_after_the_queue_follows_what_was_queued() {
        let conn = handle(4);
        assert!(conn.send(frame("bye")));
        conn.close_after_queued(CloseCode::Normal);
        assert_eq!(conn.close_code(), Some(CloseCode::Normal));
        let w = futures_util::task::noop_waker();
        let mut ready = VecDeque::new();
        assert_eq!(
            conn.shared
                .poll_take(&mut Context::from_waker(&w), &mut ready),
            Poll::Ready(Taken::Frames)
        );
        assert_eq!(texts(&ready), ["bye", "close 1000"]);
    }

    /// A socket on a clock of its own whose writer waits, with a waker
    /// that counts its wake-ups.
    struct Idle {
        clock: Arc<LazyClock>,
        conn: ConnHandle,
        count: Arc<Count>,
        waker: Waker,
    }

    impl Idle {
        fn new(delay: Duration) -> Self {
            let clock = LazyClock::new(delay);
            let conn = ConnHandle::new(8, &clock);
            let count = Arc::new(Count::default());
            let idle = Self {
                waker: waker(count.clone()),
                clock,
                conn,
                count,
            };
            assert_eq!(idle.take(&mut VecDeque::new()), Poll::Pending);
            idle
        }

        fn take(&self, ready: &mut VecDeque<Outbound>) -> Poll<Taken> {
            let mut cx = Context::from_waker(&self.waker);
            self.conn.shared.poll_take(&mut cx, ready)
        }

        fn wakes(&self) -> usize {
            self.count.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn a_lazy_frame_does_not_wake_an_idle_writer_until_the_clock_says_it_is_due() {
        let idle = &Idle::new(DELAY);
        let mut ready = VecDeque::new();
        let queued = Instant::now();
        assert!(idle.conn.send_lazy(frame("ack 1")));
        assert!(idle.conn.send_lazy(frame("ack 2")));
        assert_eq!(idle.wakes(), 0);
        // Listed once, however many lazy frames wait.
        assert_eq!(idle.clock.listed().len(), 1);
        idle.clock.sweep(queued);
        assert_eq!(idle.wakes(), 0, "not due yet");
        assert_eq!(idle.clock.listed().len(), 1);
        // Due within the next tick: woken, and forgotten.
        idle.clock.sweep(queued + DELAY - idle.clock.tick / 2);
        assert_eq!(idle.wakes(), 1);
        assert!(idle.clock.listed().is_empty());
        assert_eq!(idle.take(&mut ready), Poll::Ready(Taken::Frames));
        assert_eq!(texts(&ready), ["ack 1", "ack 2"]);
        // Taken, so the next lazy frame waits its own delay.
        ready.clear();
        assert!(idle.conn.send_lazy(frame("ack 3")));
        assert_eq!(idle.clock.listed().len(), 1);
        assert_eq!(idle.take(&mut ready), Poll::Pending);
    }

    #[test]
    fn a_writer_that_looks_for_another_reason_leaves_lazy_frames_to_the_clock() {
        let idle = &Idle::new(DELAY);
        let mut ready = VecDeque::new();
        let queued = Instant::now();
        assert!(idle.conn.send_lazy(frame("ack")));
        // Polled again before the clock says so (the socket had something
        // to read): the ack stays queued and the writer waits on.
        assert_eq!(idle.take(&mut ready), Poll::Pending);
        idle.clock.sweep(queued);
        assert_eq!(idle.take(&mut ready), Poll::Pending);
        assert!(ready.is_empty());
        assert_eq!(idle.conn.queued(), 1);
        assert_eq!(idle.wakes(), 0);
        // The clock's turn: woken once, and the ack is taken.
        idle.clock.sweep(queued + DELAY);
        assert_eq!(idle.wakes(), 1);
        assert_eq!(idle.take(&mut ready), Poll::Ready(Taken::Frames));
        assert_eq!(texts(&ready), ["ack"]);
    }

    #[test]
    fn a_lazy_frame_queued_while_the_writer_is_busy_waits_on_the_clock_too() {
        let clock = LazyClock::new(DELAY);
        let conn = ConnHandle::new(8, &clock);
        let w = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&w);
        let mut ready = VecDeque::new();
        // No writer waits (it is feeding or flushing).
        let queued = Instant::now();
        assert!(conn.send_lazy(frame("ack")));
        assert_eq!(clock.listed().len(), 1);
        // Its next look leaves the ack for the clock.
        assert_eq!(conn.shared.poll_take(&mut cx, &mut ready), Poll::Pending);
        assert_eq!(conn.queued(), 1);
        clock.sweep(queued + DELAY);
        assert_eq!(
            conn.shared.poll_take(&mut cx, &mut ready),
            Poll::Ready(Taken::Frames)
        );
        assert_eq!(texts(&ready), ["ack"]);
    }

    #[test]
    fn a_frame_that_matters_wakes_the_writer_and_takes_the_waiting_lazy_one_along() {
        let idle = &Idle::new(DELAY);
        let mut ready = VecDeque::new();
        assert!(idle.conn.send_lazy(frame("ack")));
        assert!(idle.conn.send(frame("message")));
        assert_eq!(idle.wakes(), 1);
        // Behind a frame that matters, a lazy frame is not listed: it goes
        // with it.
        assert!(idle.conn.send_lazy(frame("mark")));
        assert_eq!(idle.clock.listed().len(), 1);
        assert_eq!(idle.take(&mut ready), Poll::Ready(Taken::Frames));
        assert_eq!(texts(&ready), ["ack", "message", "mark"]);
        // Nothing is left waiting: the next sweep drops the socket's entry
        // and wakes nobody, and a later lazy frame lists it again.
        idle.clock.sweep(Instant::now() + 2 * DELAY);
        assert!(idle.clock.listed().is_empty());
        assert_eq!(idle.wakes(), 1);
        assert_eq!(idle.take(&mut VecDeque::new()), Poll::Pending);
        assert!(idle.conn.send_lazy(frame("ack 2")));
        assert_eq!(idle.clock.listed().len(), 1);
    }

    #[test]
    fn with_no_delay_a_lazy_frame_wakes_the_writer_at_once() {
        let idle = &Idle::new(Duration::ZERO);
        assert!(idle.conn.send_lazy(frame("ack")));
        assert_eq!(idle.wakes(), 1);
        assert!(idle.clock.listed().is_empty());
    }

    #[tokio::test]
    async fn the_clock_wakes_a_writer_whose_lazy_frame_nothing_took_along() {
        let clock = LazyClock::new(Duration::from_millis(20));
        let stop = tokio_util::sync::CancellationToken::new();
        let ticking = tokio::spawn(clock.clone().run(stop.clone()));
        let conn = ConnHandle::new(8, &clock);
        let mut ready = VecDeque::new();
        let started = Instant::now();
        let mut first = true;
        let taken = poll_fn(|cx| {
            let taken = conn.shared.poll_take(cx, &mut ready);
            if first {
                first = false;
                assert!(conn.send_lazy(frame("ack")));
            }
            taken
        });
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), taken).await,
            Ok(Taken::Frames)
        );
        assert_eq!(texts(&ready), ["ack"]);
        assert!(
            started.elapsed() >= Duration::from_millis(15),
            "{:?}",
            started.elapsed()
        );
        stop.cancel();
        ticking.await.expect("the clock stops");
    }
}
