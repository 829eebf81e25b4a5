//! The two per-socket loops every scenario runs, whatever the target:
//!
//! - the **initiator** (a help-seeker, or side `a` of a pair) greets, waits
//!   to be matched, then sends numbered, timestamped payloads on an
//!   open-loop schedule and times each echo;
//! - the **responder** (a counsellor bot, or side `b`) echoes every new
//!   payload in whichever of its sessions it arrives, renumbered in its
//!   own stream and keeping the original's timestamps.
//!
//! Both check each stream's order (payload counters, and the server's
//! `seq`s where it has them) and record into the shared [`Stats`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::codec::{Codec, Event, Key};
use crate::net::Ws;
use crate::order::{Order, Outcome};
use crate::payload::Payload;
use crate::stats::Stats;

/// Where the run is. Every client task watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting and matching.
    Ramp,
    /// Sending; schedules started at this many µs into the run.
    Run {
        /// The run clock when sending began.
        start_us: u64,
    },
    /// Sending stopped; what is in flight still arrives.
    Stop,
    /// Everyone ends their sessions and leaves.
    Done,
}

/// When an initiator starts sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// When the run says so, all sessions together (phase-shifted).
    Together,
    /// As soon as this session is matched.
    OnMatch,
}

/// What one initiator does.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The session's number (for histogram shards).
    pub idx: usize,
    /// When to start.
    pub start: Start,
    /// Time between messages; `None` sends nothing (idle).
    pub interval: Option<Duration>,
    /// Offset of this session's schedule within one interval, so sessions
    /// do not all send at the same instant.
    pub offset: Duration,
    /// Messages to send before ending the session; `None`: until the run
    /// stops.
    pub limit: Option<u64>,
    /// Payload size in bytes.
    pub size: usize,
    /// How often to confirm receipt (`None`: the protocol has no receipts).
    pub confirm_every: Option<Duration>,
    /// A churn session (its match time goes to its own histogram).
    pub churn: bool,
}

/// What arrived on a socket.
enum Incoming {
    Text(String),
    Closed(Option<u16>),
    Failed(String),
}

/// A socket with frame-batching sends.
struct Link {
    ws: Ws,
}

impl Link {
    /// Sends everything in `frames` with one flush. False on failure.
    async fn send(&mut self, frames: &mut Vec<String>) -> bool {
        if frames.is_empty() {
            return true;
        }
        for frame in frames.drain(..) {
            if self.ws.feed(Message::text(frame)).await.is_err() {
                return false;
            }
        }
        self.ws.flush().await.is_ok()
    }

    async fn recv(&mut self) -> Incoming {
        loop {
            return match self.ws.next().await {
                Some(Ok(Message::Text(text))) => Incoming::Text(text.as_str().to_owned()),
                Some(Ok(Message::Close(frame))) => {
                    Incoming::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(Message::Binary(_))) => Incoming::Failed("binary frame".to_owned()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => Incoming::Failed(format!("socket error: {e}")),
                None => Incoming::Closed(None),
            };
        }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

fn closed_error(code: Option<u16>) -> String {
    match code {
        Some(code) => format!("closed by server ({code})"),
        None => "connection dropped".to_owned(),
    }
}

/// A help-seeker (or side `a`) for one session.
pub async fn initiator<C: Codec>(
    ws: Ws,
    mut codec: C,
    plan: Plan,
    stats: Arc<Stats>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut link = Link { ws };
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut payload = String::with_capacity(plan.size + 32);
    let greeted_at = Instant::now();
    let matched_at_once = codec.greet(&mut frames);
    if !link.send(&mut frames).await {
        stats.error("send failed");
        return;
    }
    let mut key: Option<Key> = None;
    let mut echoes = Order::starting_at(0);
    let mut seqs = Order::starting_at(1);
    let mut sent = 0u64;
    let mut next_due: Option<u64> = None;
    let mut now_phase = *phase.borrow();
    let mut finished = false;
    // Send times of messages not acked yet, and whether they count.
    let mut unacked: std::collections::VecDeque<(u64, bool)> = std::collections::VecDeque::new();
    let far = Instant::now() + Duration::from_secs(86_400);
    let sleep = tokio::time::sleep_until(far.into());
    tokio::pin!(sleep);
    let mut confirm = plan
        .confirm_every
        .map(|every| tokio::time::interval_at((Instant::now() + every).into(), every));

    // Starts the schedule once both the session and the run allow it.
    let schedule = |key: &Option<Key>, now_phase: Phase, sent: u64| -> Option<u64> {
        let interval = plan.interval?;
        if key.is_none() || plan.limit.is_some_and(|l| sent >= l) {
            return None;
        }
        match (plan.start, now_phase) {
            (Start::OnMatch, Phase::Ramp | Phase::Run { .. }) => Some(stats.now_us()),
            (Start::Together, Phase::Run { start_us }) => {
                let first = start_us + micros(plan.offset);
                // A session matched late joins at its next slot.
                let step = micros(interval).max(1);
                let now = stats.now_us();
                Some(if now <= first {
                    first
                } else {
                    first + (now - first).div_ceil(step) * step
                })
            }
            _ => None,
        }
    };
    if matched_at_once {
        key = Some(crate::codec::single());
        record_match(&stats, &plan, greeted_at);
        next_due = schedule(&key, now_phase, sent);
    }
    if let Some(due) = next_due {
        sleep.as_mut().reset(stats.instant(due).into());
    }

    loop {
        let mut changed_due = false;
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                now_phase = *phase.borrow_and_update();
                match now_phase {
                    Phase::Done => break,
                    Phase::Stop => next_due = None,
                    Phase::Run { .. } if next_due.is_none() => {
                        next_due = schedule(&key, now_phase, sent);
                        changed_due = true;
                    }
                    _ => {}
                }
            }
            () = &mut sleep, if next_due.is_some() => {
                let (Some(due), Some(k)) = (next_due, key.as_ref()) else { continue };
                let now = stats.now_us();
                if stats.in_window(due) {
                    stats.send_lag.record(plan.idx, Duration::from_micros(now.saturating_sub(due)));
                }
                Payload { n: sent, due_us: due, sent_us: now }.encode(plan.size, &mut payload);
                frames.push(codec.chat(k, sent, &payload));
                stats.out.sent.incr();
                if codec.acks() {
                    unacked.push_back((now, stats.in_window(due)));
                } else {
                    stats.out.accepted.incr();
                }
                sent += 1;
                next_due = match (plan.interval, plan.limit) {
                    (_, Some(limit)) if sent >= limit => None,
                    (Some(interval), _) => Some(due + micros(interval)),
                    (None, _) => None,
                };
                changed_due = true;
            }
            _ = tick(&mut confirm) => codec.confirm(&mut frames),
            incoming = link.recv() => match incoming {
                Incoming::Text(text) => {
                    codec.decode(&text, &mut events);
                    for event in events.drain(..) {
                        match event {
                            Event::Matched(k) => {
                                if key.is_none() {
                                    key = Some(k);
                                    record_match(&stats, &plan, greeted_at);
                                    next_due = schedule(&key, now_phase, sent);
                                    changed_due = true;
                                }
                            }
                            Event::Chat { text, seq, .. } => {
                                if let Some(seq) = seq {
                                    let _ = seqs.observe(seq);
                                }
                                let Some(p) = Payload::decode(&text) else {
                                    stats.error("foreign payload");
                                    continue;
                                };
                                if echoes.observe(p.n) == Outcome::Duplicate {
                                    continue;
                                }
                                stats.back.received.incr();
                                stats.relayed();
                                let now = stats.now_us();
                                if stats.in_window(p.due_us) {
                                    stats.rtt.record(plan.idx, Duration::from_micros(now.saturating_sub(p.sent_us)));
                                }
                            }
                            Event::Accepted => {
                                stats.out.accepted.incr();
                                // Acks come in the order of the sends.
                                if let Some((sent_us, timed)) = unacked.pop_front()
                                    && timed
                                {
                                    let now = stats.now_us();
                                    stats.ack.record(plan.idx, Duration::from_micros(now.saturating_sub(sent_us)));
                                }
                            }
                            Event::Refused(kind) => stats.error(kind),
                            Event::Ended(_) => {
                                if !finished {
                                    stats.error("session ended by the server");
                                }
                                finished = true;
                            }
                            Event::Position => stats.positions.incr(),
                            Event::Available => {}
                            Event::Reply(frame) => frames.push(frame),
                        }
                    }
                }
                Incoming::Closed(code) => {
                    if !finished && now_phase != Phase::Done {
                        stats.error(closed_error(code));
                    }
                    finished = true;
                }
                Incoming::Failed(e) => {
                    stats.error(e);
                    finished = true;
                }
            },
        }
        if changed_due && let Some(due) = next_due {
            sleep.as_mut().reset(stats.instant(due).into());
        }
        // A session with a message limit ends itself once every echo is in.
        if !finished
            && let (Some(limit), Some(k)) = (plan.limit, key.as_ref())
            && echoes.tally().received >= limit
        {
            codec.end(k, &mut frames);
            stats.sessions_done.incr();
            finished = true;
        }
        if !link.send(&mut frames).await {
            if !finished {
                stats.error("send failed");
            }
            break;
        }
        if finished {
            break;
        }
    }
    if !finished && let Some(k) = key.as_ref() {
        codec.end(k, &mut frames);
        let _ = link.send(&mut frames).await;
    }
    stats.back.add_tally(echoes.tally());
    stats.add_seq(seqs.tally());
    link.close().await;
}

fn record_match(stats: &Stats, plan: &Plan, greeted_at: Instant) {
    let hist = if plan.churn {
        &stats.churn_matched
    } else {
        &stats.matched
    };
    hist.record(plan.idx, greeted_at.elapsed());
    stats.sessions_matched.incr();
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// One session's streams as a responder sees them.
struct Inbound {
    payloads: Order,
    seqs: Order,
    echoed: u64,
}

impl Inbound {
    fn new() -> Self {
        Self {
            payloads: Order::starting_at(0),
            seqs: Order::starting_at(1),
            echoed: 0,
        }
    }

    fn report(&self, stats: &Stats) {
        stats.out.add_tally(self.payloads.tally());
        stats.add_seq(self.seqs.tally());
    }
}

/// A counsellor bot (or side `b`): echoes every new payload, in every
/// session, until the run is done or `leave` fires.
pub async fn responder<C: Codec>(
    ws: Ws,
    mut codec: C,
    confirm_every: Option<Duration>,
    stats: Arc<Stats>,
    mut phase: watch::Receiver<Phase>,
    leave: Option<oneshot::Receiver<()>>,
) {
    let mut link = Link { ws };
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut sessions: HashMap<Key, Inbound> = HashMap::new();
    let mut echo = String::new();
    if codec.greet(&mut frames) {
        sessions.insert(crate::codec::single(), Inbound::new());
        stats.peers_matched.incr();
    }
    if !link.send(&mut frames).await {
        stats.error("send failed");
        return;
    }
    let mut confirm =
        confirm_every.map(|every| tokio::time::interval_at((Instant::now() + every).into(), every));
    let leave = async {
        match leave {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(leave);
    loop {
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Done {
                    break;
                }
            }
            () = &mut leave => break,
            _ = tick(&mut confirm) => codec.confirm(&mut frames),
            incoming = link.recv() => match incoming {
                Incoming::Text(text) => {
                    codec.decode(&text, &mut events);
                    for event in events.drain(..) {
                        match event {
                            Event::Matched(key) => {
                                sessions.entry(key).or_insert_with(|| {
                                    stats.peers_matched.incr();
                                    Inbound::new()
                                });
                            }
                            Event::Chat { key, text, seq } => {
                                let inbound = sessions.entry(key.clone()).or_insert_with(Inbound::new);
                                if let Some(seq) = seq {
                                    let _ = inbound.seqs.observe(seq);
                                }
                                let Some(p) = Payload::decode(&text) else {
                                    stats.error("foreign payload");
                                    continue;
                                };
                                if inbound.payloads.observe(p.n) == Outcome::Duplicate {
                                    continue;
                                }
                                stats.out.received.incr();
                                stats.relayed();
                                // The echo is numbered in its own stream, so
                                // the way back is checked on its own: a
                                // message late on the way out is counted
                                // once, not again when its echo is late.
                                Payload { n: inbound.echoed, ..p }.encode(text.len(), &mut echo);
                                frames.push(codec.chat(&key, inbound.echoed, &echo));
                                inbound.echoed += 1;
                                stats.back.sent.incr();
                                if !codec.acks() {
                                    stats.back.accepted.incr();
                                }
                            }
                            Event::Accepted => stats.back.accepted.incr(),
                            Event::Refused(kind) => stats.error(kind),
                            Event::Ended(key) => {
                                if let Some(inbound) = sessions.remove(&key) {
                                    inbound.report(&stats);
                                }
                            }
                            Event::Available => stats.bots_ready.incr(),
                            Event::Position => {}
                            Event::Reply(frame) => frames.push(frame),
                        }
                    }
                }
                Incoming::Closed(code) => {
                    if *phase.borrow() != Phase::Done {
                        stats.error(closed_error(code));
                    }
                    break;
                }
                Incoming::Failed(e) => {
                    stats.error(e);
                    break;
                }
            },
        }
        if !link.send(&mut frames).await {
            stats.error("send failed");
            break;
        }
    }
    for inbound in sessions.values() {
        inbound.report(&stats);
    }
    link.close().await;
}
