//! What a coordinator is shown beyond the queue itself: today's figures
//! per topic (answered, answered within the service-level target,
//! abandoned) and the alerts (an urgent help-seeker waiting too long, a
//! long queue, a long wait, a flood of arrivals).
//!
//! Both are fed by the router's [`Event`]s and decided here, once: the
//! server publishes the verdict with each event ([`Counted`]) and each
//! snapshot, and dashboards add up what they are told instead of deciding
//! again. Whether a session counts as answered or abandoned is the
//! router's to say (it knows a session put back in line and taken again
//! was answered once); this module keeps the tally and the alerts' memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::{SessionId, TopicId};
use crate::router::Event;

/// How today's figures counted one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Answered for the first time today (or ever), and whether within
    /// the service-level target.
    Answered {
        /// Reached a counsellor within the target.
        in_target: bool,
    },
    /// Left the line without ever reaching a counsellor.
    Abandoned,
    /// Not a figure: any other event, or a session answered before.
    Not,
}

/// One topic's figures for a day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Today {
    /// Help-seekers who reached a counsellor.
    pub answered: u32,
    /// Of them, those who reached one within the service-level target.
    pub answered_in_target: u32,
    /// Help-seekers who left the line before reaching anyone.
    pub abandoned: u32,
}

/// Today's figures per topic.
#[derive(Debug)]
pub struct Figures<D> {
    /// The day they are for (the shell's local date).
    day: Option<D>,
    topics: Vec<Today>,
    target: Duration,
}

impl<D: PartialEq> Figures<D> {
    /// Figures for `topics` topics, with the service-level `target`.
    pub fn new(topics: usize, target: Duration) -> Self {
        Self {
            day: None,
            topics: vec![Today::default(); topics],
            target,
        }
    }

    /// It is `day` now: a new day starts from zero.
    pub fn roll(&mut self, day: D) {
        if self.day.as_ref() != Some(&day) {
            self.day = Some(day);
            self.topics.iter_mut().for_each(|t| *t = Today::default());
        }
    }

    /// Counts one router event, and says how it counted.
    pub fn count(&mut self, event: &Event) -> Counted {
        let (topic, counted) = match *event {
            Event::Started {
                topic,
                waited,
                first: true,
                ..
            } => (
                topic,
                Counted::Answered {
                    in_target: waited <= self.target,
                },
            ),
            Event::Abandoned {
                topic,
                answered: false,
                ..
            } => (topic, Counted::Abandoned),
            _ => return Counted::Not,
        };
        if let Some(t) = self.topics.get_mut(usize::from(topic.0)) {
            match counted {
                Counted::Answered { in_target } => {
                    t.answered += 1;
                    t.answered_in_target += u32::from(in_target);
                }
                Counted::Abandoned => t.abandoned += 1,
                Counted::Not => {}
            }
        }
        counted
    }

    /// A topic's figures today.
    pub fn today(&self, topic: TopicId) -> Today {
        self.topics
            .get(usize::from(topic.0))
            .copied()
            .unwrap_or_default()
    }
}

/// When an alert goes off. A zero count turns its alert off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertRules {
    /// An urgent help-seeker has waited this long.
    pub urgent_wait: Duration,
    /// This many wait in one topic.
    pub queue_length: u32,
    /// Someone in a topic has waited this long.
    pub long_wait: Duration,
    /// This many arrived in one topic within the last minute.
    pub arrivals_per_minute: u32,
}

/// An alert, raised once when its condition starts to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alert {
    /// An urgent help-seeker has waited `waited` already.
    UrgentWaiting {
        /// Who.
        session: SessionId,
        /// Their topic.
        topic: TopicId,
        /// How long they have waited.
        waited: Duration,
    },
    /// A topic's queue reached the length rule.
    QueueLength {
        /// The topic.
        topic: TopicId,
        /// How many wait.
        waiting: u32,
    },
    /// Someone in a topic has waited past the rule.
    LongWait {
        /// The topic.
        topic: TopicId,
        /// The longest wait.
        waited: Duration,
    },
    /// Arrivals in a topic within the last minute reached the rule: a
    /// suspected flood of fake help-seekers.
    Flood {
        /// The topic.
        topic: TopicId,
        /// How many wait.
        waiting: u32,
        /// How many arrived within the minute.
        arrivals: u32,
    },
}

/// A help-seeker waiting, as the alerts look at them.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    /// Who.
    pub session: SessionId,
    /// Their topic.
    pub topic: TopicId,
    /// Whether they said it is urgent.
    pub urgent: bool,
    /// How long they have waited.
    pub waited: Duration,
}

/// A topic's line, as the alerts look at it.
#[derive(Clone, Copy, Debug)]
pub struct Line {
    /// The topic.
    pub topic: TopicId,
    /// How many wait.
    pub waiting: u32,
    /// The longest current wait.
    pub longest_wait: Duration,
}

/// What a flood alert looks back over.
const FLOOD_WINDOW: Duration = Duration::from_secs(60);
/// Arrival times kept per topic at most (far above any rule).
const FLOOD_SAMPLES: usize = 10_000;

/// The alerts' memory: which are raised (so each is told once, until its
/// condition clears) and recent arrivals per topic.
#[derive(Debug, Default)]
pub struct Alerts {
    urgent: HashSet<SessionId>,
    long_queue: HashSet<TopicId>,
    long_wait: HashSet<TopicId>,
    flood: HashSet<TopicId>,
    arrivals: HashMap<TopicId, VecDeque<Instant>>,
}

impl Alerts {
    /// Takes note of one router event: arrivals count towards a flood,
    /// and a help-seeker who left or was served is no longer urgent.
    pub fn observe(&mut self, now: Instant, event: &Event) {
        match *event {
            Event::Queued { topic, .. } => self.arrived(topic, now),
            Event::Abandoned { session, .. } | Event::Ended { session, .. } => {
                self.urgent.remove(&session);
            }
            _ => {}
        }
    }

    /// A help-seeker arrived in `topic`, or was refused at the door (too
    /// many waiting from their source): either counts towards a flood.
    pub fn arrived(&mut self, topic: TopicId, now: Instant) {
        let line = self.arrivals.entry(topic).or_default();
        if line.len() == FLOOD_SAMPLES {
            line.pop_front();
        }
        line.push_back(now);
    }

    /// Arrivals in `topic` within the minute before `now`.
    fn recent(&mut self, topic: TopicId, now: Instant) -> u32 {
        let Some(line) = self.arrivals.get_mut(&topic) else {
            return 0;
        };
        while line
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLOOD_WINDOW)
        {
            line.pop_front();
        }
        u32::try_from(line.len()).unwrap_or(u32::MAX)
    }

    /// The alerts that start to hold now, given who waits and each topic's
    /// line. Each is raised once; one that stops holding may be raised
    /// again later.
    pub fn check(
        &mut self,
        now: Instant,
        rules: &AlertRules,
        waiting: impl IntoIterator<Item = Waiting>,
        lines: impl IntoIterator<Item = Line>,
    ) -> Vec<Alert> {
        let mut raised = Vec::new();
        for w in waiting {
            if w.urgent && w.waited >= rules.urgent_wait && self.urgent.insert(w.session) {
                raised.push(Alert::UrgentWaiting {
                    session: w.session,
                    topic: w.topic,
                    waited: w.waited,
                });
            }
        }
        for l in lines {
            let long = rules.queue_length > 0 && l.waiting >= rules.queue_length;
            if crossed(&mut self.long_queue, l.topic, long) {
                raised.push(Alert::QueueLength {
                    topic: l.topic,
                    waiting: l.waiting,
                });
            }
            let slow = l.waiting > 0 && l.longest_wait >= rules.long_wait;
            if crossed(&mut self.long_wait, l.topic, slow) {
                raised.push(Alert::LongWait {
                    topic: l.topic,
                    waited: l.longest_wait,
                });
            }
            let arrivals = self.recent(l.topic, now);
            let flood = rules.arrivals_per_minute > 0 && arrivals >= rules.arrivals_per_minute;
            if crossed(&mut self.flood, l.topic, flood) {
                raised.push(Alert::Flood {
                    topic: l.topic,
                    waiting: l.waiting,
                    arrivals,
                });
            }
        }
        raised
    }
}

/// Whether `on` newly holds for `id`, remembering it in `set`.
fn crossed(set: &mut HashSet<TopicId>, id: TopicId, on: bool) -> bool {
    if on {
        set.insert(id)
    } else {
        set.remove(&id);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::EndReason;

    const T: TopicId = TopicId(0);

    fn started(session: u128, waited: u64, first: bool) -> Event {
        Event::Started {
            session: SessionId(session),
            topic: T,
            counsellor: crate::ids::CounsellorId(1),
            waited: Duration::from_secs(waited),
            first,
        }
    }

    fn abandoned(session: u128, answered: bool) -> Event {
        Event::Abandoned {
            session: SessionId(session),
            topic: T,
            waited: Duration::from_secs(5),
            reason: EndReason::SeekerEnded,
            answered,
        }
    }

    #[test]
    fn each_help_seeker_counts_once_and_a_new_day_starts_from_zero() {
        let mut f = Figures::new(1, Duration::from_secs(60));
        f.roll(1);
        assert_eq!(
            f.count(&started(1, 30, true)),
            Counted::Answered { in_target: true }
        );
        assert_eq!(
            f.count(&started(2, 90, true)),
            Counted::Answered { in_target: false }
        );
        // Put back in line and taken again: answered once.
        assert_eq!(f.count(&started(1, 200, false)), Counted::Not);
        // Put back in line and left: answered, not abandoned.
        assert_eq!(f.count(&abandoned(2, true)), Counted::Not);
        assert_eq!(f.count(&abandoned(3, false)), Counted::Abandoned);
        assert_eq!(
            f.today(T),
            Today {
                answered: 2,
                answered_in_target: 1,
                abandoned: 1
            }
        );
        f.roll(1);
        assert_eq!(f.today(T).answered, 2);
        f.roll(2);
        assert_eq!(f.today(T), Today::default());
        assert_eq!(f.today(TopicId(9)), Today::default());
    }

    #[test]
    fn alerts_are_raised_once_until_they_clear() {
        let rules = AlertRules {
            urgent_wait: Duration::from_secs(60),
            queue_length: 3,
            long_wait: Duration::from_secs(600),
            arrivals_per_minute: 4,
        };
        let now = Instant::now();
        let mut a = Alerts::default();
        let urgent = Waiting {
            session: SessionId(7),
            topic: T,
            urgent: true,
            waited: Duration::from_secs(61),
        };
        let line = |waiting, longest| Line {
            topic: T,
            waiting,
            longest_wait: Duration::from_secs(longest),
        };
        assert_eq!(
            a.check(now, &rules, [urgent], [line(3, 61)]),
            [
                Alert::UrgentWaiting {
                    session: SessionId(7),
                    topic: T,
                    waited: Duration::from_secs(61)
                },
                Alert::QueueLength {
                    topic: T,
                    waiting: 3
                }
            ]
        );
        assert!(a.check(now, &rules, [urgent], [line(3, 61)]).is_empty());
        // The queue shrinks and grows again: raised again. The urgent one
        // was served: forgotten, so a later long wait would be told.
        a.observe(
            now,
            &Event::Ended {
                session: SessionId(7),
                topic: T,
                counsellors: Vec::new(),
                reason: EndReason::SeekerEnded,
                waited: Duration::ZERO,
                duration: Duration::ZERO,
            },
        );
        assert!(
            a.check(now, &rules, [], [line(1, 700)])
                == [Alert::LongWait {
                    topic: T,
                    waited: Duration::from_secs(700)
                }]
        );
        assert_eq!(a.check(now, &rules, [urgent], [line(3, 700)]).len(), 2);
        // Four arrivals within a minute are a flood; a minute later, not.
        for _ in 0..4 {
            a.arrived(T, now);
        }
        assert!(matches!(
            a.check(now, &rules, [], [line(0, 0)]).as_slice(),
            [Alert::Flood { arrivals: 4, .. }]
        ));
        let later = now + Duration::from_secs(61);
        assert!(a.check(later, &rules, [], [line(0, 0)]).is_empty());
        a.arrived(T, later);
        assert!(a.check(later, &rules, [], [line(0, 0)]).is_empty());
    }
}
