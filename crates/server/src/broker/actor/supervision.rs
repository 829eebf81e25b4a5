//! What the actor tells the supervisor view: each router event as a
//! published record, today's figures per topic, alerts, and the node's
//! snapshot.

use std::collections::HashSet;
use std::sync::Arc;

use haven_core::{CounsellorId, Event, SessionId, TopicId};
use haven_protocol::SessionRef;
use haven_protocol::events::{self, AlertKind, EndedBy, Snapshot};

use super::super::secs;
use super::snapshot::{Draft, Names};
use super::{Actor, now, wire_reason, wire_status};

/// Today's figures per topic, and what they have counted so far.
#[derive(Debug, Default)]
pub(super) struct Today {
    /// The local date they are for.
    date: Option<jiff::civil::Date>,
    answered: Vec<u32>,
    in_target: Vec<u32>,
    abandoned: Vec<u32>,
    /// Sessions counted as answered (a session put back in line and taken
    /// again counts once).
    counted: HashSet<SessionId>,
}

impl Today {
    /// Help-seekers of topic `i` who reached a counsellor today.
    pub(super) fn answered(&self, i: usize) -> u32 {
        self.answered.get(i).copied().unwrap_or(0)
    }

    /// Of them, those who reached one within the service-level target.
    pub(super) fn in_target(&self, i: usize) -> u32 {
        self.in_target.get(i).copied().unwrap_or(0)
    }

    /// Help-seekers of topic `i` who left the line today.
    pub(super) fn abandoned(&self, i: usize) -> u32 {
        self.abandoned.get(i).copied().unwrap_or(0)
    }
}

/// Alerts raised and not yet cleared, so each is told once.
#[derive(Debug, Default)]
pub(super) struct Alerts {
    urgent: HashSet<SessionId>,
    long_queue: HashSet<TopicId>,
    long_wait: HashSet<TopicId>,
    flood: HashSet<TopicId>,
}

/// What a flood alert looks back over.
const FLOOD_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Arrival times kept per topic at most (far above any threshold).
const FLOOD_SAMPLES: usize = 10_000;

/// Per topic, when help-seekers arrived (or were refused for their
/// source's waiting limit) within the last minute.
#[derive(Debug, Default)]
pub(super) struct Arrivals(
    std::collections::HashMap<TopicId, std::collections::VecDeque<std::time::Instant>>,
);

impl Arrivals {
    fn push(&mut self, topic: TopicId, at: std::time::Instant) {
        let line = self.0.entry(topic).or_default();
        if line.len() == FLOOD_SAMPLES {
            line.pop_front();
        }
        line.push_back(at);
    }

    /// Arrivals in `topic` within the window before `now`.
    fn recent(&mut self, topic: TopicId, now: std::time::Instant) -> u32 {
        let Some(line) = self.0.get_mut(&topic) else {
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
}

/// Samples kept per topic for the chart.
const HISTORY_SAMPLES: usize = 720;

/// The actor's supervision state.
#[derive(Debug, Default)]
pub(super) struct Supervision {
    /// Per topic, oldest first: `[at_ms, waiting, longest_wait_secs]`.
    history: std::collections::BTreeMap<String, std::collections::VecDeque<[u64; 3]>>,
    /// When the history was last sampled.
    sampled: Option<std::time::Instant>,
    /// Account and display names of counsellors seen, for events about
    /// them after they left.
    pub(super) names: Names,
    pub(super) today: Today,
    alerts: Alerts,
    arrivals: Arrivals,
}

fn session_ref(session: SessionId) -> SessionRef {
    SessionRef(session.to_string())
}

impl Supervision {
    /// A help-seeker was refused because their source has too many
    /// waiting: it counts towards a flood like an arrival.
    pub(super) fn refused_arrival(&mut self, topic: TopicId, at: std::time::Instant) {
        self.arrivals.push(topic, at);
    }

    /// Remembers a counsellor's account and display names.
    pub(super) fn name(&mut self, id: CounsellorId, name: &str, display: &Arc<str>) {
        let known = self
            .names
            .get(&id)
            .is_some_and(|(n, d)| n.as_ref() == name && d == display);
        if !known {
            Arc::make_mut(&mut self.names).insert(id, (Arc::from(name), display.clone()));
        }
    }
}

impl Actor {
    fn counsellor_name(&self, id: CounsellorId) -> String {
        self.supervision
            .names
            .get(&id)
            .map_or_else(String::new, |(n, _)| n.to_string())
    }

    fn counsellor_display(&self, id: CounsellorId) -> String {
        self.supervision
            .names
            .get(&id)
            .map_or_else(String::new, |(_, d)| d.to_string())
    }

    fn topic_name(&self, topic: TopicId) -> String {
        self.shared.settings.plan.topic_name(topic).to_owned()
    }

    /// Publishes every event the router queued, in order.
    pub(super) fn publish_events(&mut self) {
        while let Some(event) = self.router.poll_event() {
            self.count_today(&event);
            let event = self.wire_event(event);
            self.emit(event);
        }
    }

    fn emit(&self, event: events::Event) {
        self.shared.settings.events.emit(event);
    }

    fn wire_event(&self, event: Event) -> events::Event {
        use events::Event as W;
        match event {
            Event::Queued {
                session,
                topic,
                urgent,
                returning,
            } => W::Queued {
                session: session_ref(session),
                topic: self.topic_name(topic),
                urgent,
                returning,
            },
            Event::Position {
                session,
                topic,
                position,
                wait,
            } => W::Position {
                session: session_ref(session),
                topic: self.topic_name(topic),
                position,
                wait_secs: wait.map(secs),
            },
            Event::Abandoned {
                session,
                topic,
                waited,
                reason,
            } => W::Abandoned {
                session: session_ref(session),
                topic: self.topic_name(topic),
                waited_secs: secs(waited),
                reason: wire_reason(reason),
            },
            Event::Offered {
                session,
                topic,
                counsellor,
                from,
            } => W::Offered {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
                from: from.map(|f| self.counsellor_name(f)),
            },
            Event::Accepted {
                session,
                topic,
                counsellor,
            } => W::Accepted {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
            },
            Event::Declined {
                session,
                topic,
                counsellor,
            } => W::Declined {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
            },
            Event::OfferTimedOut {
                session,
                topic,
                counsellor,
            } => W::OfferTimedOut {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
            },
            Event::Started {
                session,
                topic,
                counsellor,
                waited,
            } => W::SessionStarted {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
                waited_secs: secs(waited),
                urgent: self.cell(session).is_some_and(|c| c.info.urgent),
            },
            Event::Transferred {
                session,
                topic,
                from,
                to,
                warm,
            } => W::Transferred {
                session: session_ref(session),
                topic: self.topic_name(topic),
                from: self.counsellor_name(from),
                to: to.map(|t| self.counsellor_name(t)),
                warm,
            },
            Event::Requeued { session, topic } => W::Requeued {
                session: session_ref(session),
                topic: self.topic_name(topic),
            },
            Event::Ended {
                session,
                topic,
                counsellors,
                reason,
                waited,
                duration,
            } => {
                let reason = wire_reason(reason);
                W::SessionEnded {
                    session: session_ref(session),
                    topic: self.topic_name(topic),
                    counsellors: counsellors
                        .iter()
                        .map(|c| self.counsellor_name(*c))
                        .collect(),
                    by: EndedBy::of(reason),
                    reason,
                    waited_secs: secs(waited),
                    duration_secs: secs(duration),
                }
            }
            Event::Counsellor {
                counsellor,
                activity,
                capacity,
                active,
            } => W::Counsellor {
                counsellor: self.counsellor_name(counsellor),
                display_name: self.counsellor_display(counsellor),
                status: wire_status(activity).0,
                capacity,
                active,
            },
            Event::CounsellorOffline { counsellor } => W::CounsellorOffline {
                counsellor: self.counsellor_name(counsellor),
            },
            Event::TopicPaused { topic, paused } => W::TopicPaused {
                topic: self.topic_name(topic),
                paused,
            },
            Event::Hand {
                session,
                topic,
                counsellor,
                raised,
            } => W::Hand {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
                raised,
            },
        }
    }

    /// Starts a new day's figures when the local date changed.
    fn roll_day(&mut self) {
        let tz = jiff::tz::TimeZone::get(&self.shared.settings.supervisor.time_zone)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let today = jiff::Timestamp::now().to_zoned(tz).date();
        let topics = self.shared.settings.plan.topics.len();
        let t = &mut self.supervision.today;
        if t.date != Some(today) {
            *t = Today {
                date: Some(today),
                answered: vec![0; topics],
                in_target: vec![0; topics],
                abandoned: vec![0; topics],
                counted: std::mem::take(&mut t.counted),
            };
        }
    }

    fn count_today(&mut self, event: &Event) {
        self.roll_day();
        match event {
            Event::Started { topic, waited, .. } => self.shared.settings.metrics.observe_wait(
                &self.topic_name(*topic),
                "answered",
                waited.as_secs_f64(),
            ),
            Event::Abandoned { topic, waited, .. } => self.shared.settings.metrics.observe_wait(
                &self.topic_name(*topic),
                "abandoned",
                waited.as_secs_f64(),
            ),
            _ => {}
        }
        if let Event::Queued { topic, .. } = event {
            self.supervision.arrivals.push(*topic, now());
        }
        let target = self.shared.settings.supervisor.service_level_target;
        let t = &mut self.supervision.today;
        match event {
            Event::Started {
                session,
                topic,
                waited,
                ..
            } if t.counted.insert(*session) => {
                let i = usize::from(topic.0);
                if let Some(n) = t.answered.get_mut(i) {
                    *n += 1;
                }
                if *waited <= target
                    && let Some(n) = t.in_target.get_mut(i)
                {
                    *n += 1;
                }
            }
            Event::Abandoned { session, topic, .. } => {
                if !t.counted.remove(session)
                    && let Some(n) = t.abandoned.get_mut(usize::from(topic.0))
                {
                    *n += 1;
                }
                self.supervision.alerts.urgent.remove(session);
            }
            Event::Ended { session, .. } => {
                t.counted.remove(session);
                self.supervision.alerts.urgent.remove(session);
            }
            _ => {}
        }
    }

    /// Takes the node's snapshot, raises the alerts it shows, and hands
    /// it to the snapshot writer to finish and publish.
    pub(super) fn supervise(&mut self) {
        self.roll_day();
        let draft = self.draft_snapshot();
        self.raise_alerts(&draft);
        self.sample_history(draft.head());
        self.shared.settings.events.snapshot(move || draft.finish());
    }

    fn sample_history(&mut self, snapshot: &Snapshot) {
        let every = self.shared.settings.supervisor.history_interval;
        let at = now();
        if self
            .supervision
            .sampled
            .is_some_and(|t| at.saturating_duration_since(t) < every)
        {
            return;
        }
        self.supervision.sampled = Some(at);
        for t in &snapshot.topics {
            let line = self.supervision.history.entry(t.topic.clone()).or_default();
            if line.len() == HISTORY_SAMPLES {
                line.pop_front();
            }
            line.push_back([
                snapshot.at,
                u64::from(t.waiting),
                u64::from(t.longest_wait_secs),
            ]);
        }
        let history = events::History {
            node: snapshot.node.clone(),
            topics: self
                .supervision
                .history
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
                .collect(),
        };
        if let Ok(json) = serde_json::to_string(&history) {
            self.shared.settings.events.history(Arc::from(json));
        }
    }

    fn raise_alerts(&mut self, draft: &Draft) {
        let cfg = self.shared.settings.supervisor.clone();
        let mut raised = Vec::new();
        let urgent_limit = secs(cfg.alert_urgent_wait);
        for w in draft.waiting().iter().filter(|w| w.urgent) {
            if w.waited_secs >= urgent_limit && self.supervision.alerts.urgent.insert(w.session) {
                raised.push(events::Event::Alert {
                    alert: AlertKind::UrgentWaiting,
                    topic: self.topic_name(w.topic),
                    session: Some(session_ref(w.session)),
                    waited_secs: Some(w.waited_secs),
                    waiting: None,
                    arrivals: None,
                });
            }
        }
        for (i, t) in draft.head().topics.iter().enumerate() {
            let Ok(id) = u16::try_from(i).map(TopicId) else {
                continue;
            };
            let alerts = &mut self.supervision.alerts;
            let long = cfg.alert_queue_length > 0 && t.waiting >= cfg.alert_queue_length;
            if crossed(&mut alerts.long_queue, id, long) {
                raised.push(events::Event::Alert {
                    alert: AlertKind::QueueLength,
                    topic: t.topic.clone(),
                    session: None,
                    waited_secs: None,
                    waiting: Some(t.waiting),
                    arrivals: None,
                });
            }
            let slow = t.waiting > 0 && t.longest_wait_secs >= secs(cfg.alert_wait);
            if crossed(&mut alerts.long_wait, id, slow) {
                raised.push(events::Event::Alert {
                    alert: AlertKind::LongWait,
                    topic: t.topic.clone(),
                    session: None,
                    waited_secs: Some(t.longest_wait_secs),
                    waiting: None,
                    arrivals: None,
                });
            }
            let arrivals = self.supervision.arrivals.recent(id, now());
            let flood =
                cfg.alert_arrivals_per_minute > 0 && arrivals >= cfg.alert_arrivals_per_minute;
            if crossed(&mut self.supervision.alerts.flood, id, flood) {
                raised.push(events::Event::Alert {
                    alert: AlertKind::Flood,
                    topic: t.topic.clone(),
                    session: None,
                    waited_secs: None,
                    waiting: Some(t.waiting),
                    arrivals: Some(arrivals),
                });
            }
        }
        for alert in raised {
            self.emit(alert);
        }
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
