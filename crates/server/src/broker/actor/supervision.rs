//! What the actor tells the supervisor view: each router event as a
//! published record (with how core's figures counted it), today's figures
//! per topic, alerts, and the node's snapshot.

use std::sync::Arc;

use haven_core::supervision::{Alert, AlertRules, Alerts, Counted, Figures, Line, Waiting};
use haven_core::{CounsellorId, Event, SessionId, TopicId};
use haven_protocol::SessionRef;
use haven_protocol::events::{self, AlertKind, EndedBy, Snapshot};

use super::super::secs;
use super::snapshot::{Draft, Names};
use super::{Actor, now, wire_reason, wire_status};

/// Samples kept per topic for the chart.
const HISTORY_SAMPLES: usize = 720;

/// The actor's supervision state.
#[derive(Debug)]
pub(super) struct Supervision {
    /// Per topic, oldest first: `[at_ms, waiting, longest_wait_secs]`.
    history: std::collections::BTreeMap<String, std::collections::VecDeque<[u64; 3]>>,
    /// When the history was last sampled.
    sampled: Option<std::time::Instant>,
    /// Account and display names of counsellors seen, for events about
    /// them after they left.
    pub(super) names: Names,
    /// Today's figures per topic.
    pub(super) today: Figures<jiff::civil::Date>,
    alerts: Alerts,
}

fn session_ref(session: SessionId) -> SessionRef {
    SessionRef(session.to_string())
}

impl Supervision {
    /// Supervision of `topics` topics, with the service-level `target`.
    pub(super) fn new(topics: usize, target: std::time::Duration) -> Self {
        Self {
            history: std::collections::BTreeMap::new(),
            sampled: None,
            names: Names::default(),
            today: Figures::new(topics, target),
            alerts: Alerts::default(),
        }
    }

    /// A help-seeker was refused because their source has too many
    /// waiting: it counts towards a flood like an arrival.
    pub(super) fn refused_arrival(&mut self, topic: TopicId, at: std::time::Instant) {
        self.alerts.arrived(topic, at);
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
            let counted = self.count_today(&event);
            let event = self.wire_event(event, counted);
            self.emit(event);
        }
    }

    fn emit(&self, event: events::Event) {
        self.shared.settings.events.emit(event);
    }

    fn wire_event(&self, event: Event, counted: Counted) -> events::Event {
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
                ..
            } => W::Abandoned {
                session: session_ref(session),
                topic: self.topic_name(topic),
                waited_secs: secs(waited),
                reason: wire_reason(reason),
                counted: counted == Counted::Abandoned,
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
                ..
            } => W::SessionStarted {
                session: session_ref(session),
                topic: self.topic_name(topic),
                counsellor: self.counsellor_name(counsellor),
                waited_secs: secs(waited),
                urgent: self.cell(session).is_some_and(|c| c.info.urgent),
                counted: matches!(counted, Counted::Answered { .. }),
                in_target: counted == Counted::Answered { in_target: true },
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
        self.supervision
            .today
            .roll(jiff::Timestamp::now().to_zoned(tz).date());
    }

    /// Counts one router event in today's figures, the wait histograms
    /// and the alerts' memory; says how the figures counted it.
    fn count_today(&mut self, event: &Event) -> Counted {
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
        self.supervision.alerts.observe(now(), event);
        self.supervision.today.count(event)
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
        let cfg = &self.shared.settings.supervisor;
        let rules = AlertRules {
            urgent_wait: cfg.alert_urgent_wait,
            queue_length: cfg.alert_queue_length,
            long_wait: cfg.alert_wait,
            arrivals_per_minute: cfg.alert_arrivals_per_minute,
        };
        let waiting = draft.waiting().iter().map(|w| Waiting {
            session: w.session,
            topic: w.topic,
            urgent: w.urgent,
            waited: std::time::Duration::from_secs(u64::from(w.waited_secs)),
        });
        let lines = draft.head().topics.iter().enumerate().filter_map(|(i, t)| {
            Some(Line {
                topic: TopicId(u16::try_from(i).ok()?),
                waiting: t.waiting,
                longest_wait: std::time::Duration::from_secs(u64::from(t.longest_wait_secs)),
            })
        });
        let raised = self.supervision.alerts.check(now(), &rules, waiting, lines);
        for alert in raised {
            let alert = self.wire_alert(alert);
            self.emit(alert);
        }
    }

    fn wire_alert(&self, alert: Alert) -> events::Event {
        let (alert, topic, session, waited, waiting, arrivals) = match alert {
            Alert::UrgentWaiting {
                session,
                topic,
                waited,
            } => (
                AlertKind::UrgentWaiting,
                topic,
                Some(session_ref(session)),
                Some(secs(waited)),
                None,
                None,
            ),
            Alert::QueueLength { topic, waiting } => (
                AlertKind::QueueLength,
                topic,
                None,
                None,
                Some(waiting),
                None,
            ),
            Alert::LongWait { topic, waited } => (
                AlertKind::LongWait,
                topic,
                None,
                Some(secs(waited)),
                None,
                None,
            ),
            Alert::Flood {
                topic,
                waiting,
                arrivals,
            } => (
                AlertKind::Flood,
                topic,
                None,
                None,
                Some(waiting),
                Some(arrivals),
            ),
        };
        events::Event::Alert {
            alert,
            topic: self.topic_name(topic),
            session,
            waited_secs: waited,
            waiting,
            arrivals,
        }
    }
}
