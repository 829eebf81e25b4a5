//! The queue, the lazy clock and the writer's waits, driven by hand.

use std::sync::atomic::AtomicUsize;

use futures_util::task::{ArcWake, waker};

use std::collections::VecDeque;
use std::task::{Context, Waker};
use std::time::Duration;

use super::outbox::Taken;
use super::writer::WriterGone;
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
