//! Telling waiting help-seekers where they stand: positions, estimated
//! waits, and what happens when a topic closes.
//!
//! # The estimate
//!
//! A topic's throughput is its staffed seats divided by the time one seat
//! takes per session (session length plus wrap-up). The session length is a
//! moving average of recent sessions in the topic, starting from the
//! configured `assumed_session` until real sessions have been seen. A
//! help-seeker at position `p` while `f` seats are free waits about
//!
//! ```text
//!     max(0, p − f) × (average session + wrap-up) ÷ staffed seats
//! ```
//!
//! rounded up to whole minutes. With nobody staffed the estimate is
//! unknown rather than invented. It is an estimate: the widget should say
//! "about".
//!
//! # Coalescing
//!
//! Positions and estimates are sent on a tick every `position_interval`,
//! and only to help-seekers whose position or rounded estimate changed: at
//! most one update per help-seeker per interval, whatever happens in
//! between. The tick runs only while someone waits.

use std::time::{Duration, Instant};

use super::{Effect, EndReason, Event, Gate, Link, Router};
use crate::ids::{SessionId, TopicId};

/// Weight of the newest session in the moving average.
const ALPHA: f64 = 0.2;

/// How far an arrival's immediate position is counted before it is left to
/// the next tick.
const IMMEDIATE_POSITION_STEPS: usize = 4096;

/// What a topic's recent sessions say about how long one takes.
#[derive(Clone, Debug)]
pub(super) struct WaitModel {
    /// Seat time per session until sessions have been measured.
    assumed: Duration,
    /// Moving average of measured session lengths.
    mean: Option<Duration>,
    /// Wrap-up added to each measured session.
    wrap_up: Duration,
}

impl WaitModel {
    pub(super) fn new(assumed: Duration, wrap_up: Duration) -> Self {
        Self {
            assumed,
            mean: None,
            wrap_up,
        }
    }

    /// The measured mean seat time, if any session was measured yet.
    pub(super) fn mean(&self) -> Option<Duration> {
        self.mean
    }

    /// Sets the measured mean (a restored router).
    pub(super) fn set_mean(&mut self, mean: Option<Duration>) {
        self.mean = mean;
    }

    /// A session of this length just ended (or was handed on).
    pub(super) fn observe(&mut self, held: Duration) {
        self.mean = Some(match self.mean {
            None => held,
            Some(mean) => mean.mul_f64(1.0 - ALPHA) + held.mul_f64(ALPHA),
        });
    }

    /// Seat time one session takes.
    fn cycle(&self) -> Duration {
        self.mean.map_or(self.assumed, |m| m + self.wrap_up)
    }

    /// The wait at `position` with `staffed` seats of which `free` are free.
    pub(super) fn estimate(&self, position: u32, staffed: u32, free: u32) -> Option<Duration> {
        if staffed == 0 {
            return None;
        }
        let ahead = position.saturating_sub(free);
        Some(round_up_to_minute(self.cycle() * ahead / staffed))
    }
}

fn round_up_to_minute(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().div_ceil(60) * 60)
}

fn minutes(wait: Option<Duration>) -> Option<u64> {
    wait.map(|w| w.as_secs() / 60)
}

impl Router {
    /// Sends positions and estimates that changed; closes queues nobody is
    /// left to serve. Re-arms itself while anyone waits.
    pub(super) fn tick(&mut self, now: Instant) {
        for t in 0..self.lines.len() {
            let topic = TopicId(u16::try_from(t).unwrap_or(u16::MAX));
            self.close_unserved(now, topic);
            if self.lines[t].is_empty() {
                continue;
            }
            let (staffed, free) = self.staffing(topic);
            let model = &self.waits[t];
            for (index, (_, session)) in self.lines[t].iter().enumerate() {
                let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
                let wait = model.estimate(position, staffed, free);
                let Some(s) = self.seekers.get_mut(&session) else {
                    continue;
                };
                let now_told = (position, minutes(wait));
                if s.announced == Some(now_told) {
                    continue;
                }
                s.announced = Some(now_told);
                self.effects.push_back(Effect::Queued {
                    session,
                    position,
                    wait,
                    requeued: std::mem::take(&mut s.requeued),
                });
                self.events.push_back(Event::Position {
                    session,
                    topic,
                    position,
                    wait,
                });
            }
        }
        self.arm_tick(now);
    }

    /// Tells one waiting help-seeker their position and estimate now, if
    /// that is cheap: ordinary arrivals join at the tail, where it is O(1).
    /// A priority arrival deep in a long line is told at the next tick
    /// instead, so an arrival never costs O(n).
    pub(super) fn announce(&mut self, session: SessionId) {
        let Some(s) = self.seekers.get(&session) else {
            return;
        };
        let t = usize::from(s.topic.0);
        let Some(position) = self.lines[t].position_within(s.key, IMMEDIATE_POSITION_STEPS) else {
            return;
        };
        let (staffed, free) = self.staffing(s.topic);
        let wait = self.waits[t].estimate(position, staffed, free);
        let topic = s.topic;
        if let Some(s) = self.seekers.get_mut(&session) {
            s.announced = Some((position, minutes(wait)));
            self.effects.push_back(Effect::Queued {
                session,
                position,
                wait,
                requeued: std::mem::take(&mut s.requeued),
            });
            self.events.push_back(Event::Position {
                session,
                topic,
                position,
                wait,
            });
        }
    }

    /// After closing time, once no counsellor serving the topic is
    /// connected, nobody will reach those still waiting: their sessions end
    /// with [`EndReason::TopicClosed`] instead of hanging.
    pub(super) fn close_unserved(&mut self, now: Instant, topic: TopicId) {
        let t = usize::from(topic.0);
        if !matches!(self.topics[t].gate, Gate::Closed { .. }) || self.lines[t].is_empty() {
            return;
        }
        let present = self
            .counsellors
            .values()
            .any(|c| c.link == Link::Connected && c.profile.topics.contains(&topic));
        if present {
            return;
        }
        let waiting: Vec<SessionId> = self.lines[t].iter().map(|(_, s)| s).collect();
        for session in waiting {
            self.end(now, session, EndReason::TopicClosed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_position_seats_and_measured_sessions() {
        let mut model = WaitModel::new(Duration::from_secs(20 * 60), Duration::from_secs(120));
        assert_eq!(model.estimate(3, 0, 0), None);
        // Two seats, nothing free: the 3rd waits 3 × 20 min / 2 = 30 min.
        assert_eq!(model.estimate(3, 2, 0), Some(Duration::from_secs(30 * 60)));
        // A free seat serves the first at once.
        assert_eq!(model.estimate(1, 2, 1), Some(Duration::ZERO));
        // Measured 8-minute sessions plus 2 minutes of wrap-up: 10 min per seat.
        model.observe(Duration::from_secs(8 * 60));
        assert_eq!(model.estimate(4, 2, 0), Some(Duration::from_secs(20 * 60)));
        // Rounded up to whole minutes.
        assert_eq!(model.estimate(1, 3, 0), Some(Duration::from_secs(4 * 60)));
    }
}
