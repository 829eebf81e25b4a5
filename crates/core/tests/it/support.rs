//! Shared helpers for the router scenario tests: a router with a fake
//! clock and an effect log, and effect filters.

use std::time::{Duration, Instant};

use haven_core::{
    Arrival, CounsellorId, Effect, LangId, Profile, Router, RouterConfig, SessionId, Status,
    TopicId, TopicRules,
};

pub(crate) const ALGEMEEN: TopicId = TopicId(0);
pub(crate) const JONGEREN: TopicId = TopicId(1);
pub(crate) const NL: LangId = LangId(0);
pub(crate) const FR: LangId = LangId(1);
pub(crate) const ANNA: CounsellorId = CounsellorId(1);
pub(crate) const BOB: CounsellorId = CounsellorId(2);
pub(crate) const CLEM: CounsellorId = CounsellorId(3);

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn s(n: u128) -> SessionId {
    SessionId(n)
}

/// A router with a fake clock and an effect log.
pub(crate) struct Harness {
    pub(crate) router: Router,
    pub(crate) now: Instant,
    pub(crate) log: Vec<Effect>,
}

impl Harness {
    pub(crate) fn new(topics: Vec<TopicRules>) -> Self {
        let now = Instant::now();
        let config = RouterConfig {
            topics,
            ..RouterConfig::default()
        };
        Self {
            router: Router::new(config, now),
            now,
            log: Vec::new(),
        }
    }

    pub(crate) fn simple() -> Self {
        Self::new(vec![TopicRules::default(), TopicRules::default()])
    }

    /// Advances the clock, running every timer on the way.
    pub(crate) fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.router.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.router.handle_timeout(self.now);
        }
        self.now = until;
        self.router.handle_timeout(self.now);
    }

    /// Effects since the last call.
    pub(crate) fn effects(&mut self) -> Vec<Effect> {
        let new: Vec<Effect> = std::iter::from_fn(|| self.router.poll_effect()).collect();
        self.log.extend(new.iter().cloned());
        new
    }

    pub(crate) fn arrive(&mut self, session: SessionId, topic: TopicId, language: Option<LangId>) {
        self.arrive_with(
            session,
            Arrival {
                topic,
                language,
                urgent: false,
                prefer: None,
            },
        );
    }

    pub(crate) fn arrive_with(&mut self, session: SessionId, arrival: Arrival) {
        self.router
            .seeker_arrived(self.now, session, arrival)
            .unwrap();
    }

    pub(crate) fn staff(
        &mut self,
        c: CounsellorId,
        topics: &[TopicId],
        languages: &[LangId],
        capacity: u32,
    ) {
        let profile = Profile {
            topics: topics.to_vec(),
            languages: languages.to_vec(),
            capacity,
            max_capacity: capacity + 2,
        };
        self.router.counsellor_connected(self.now, c, profile);
        self.router
            .set_status(self.now, c, Status::Available)
            .unwrap();
    }
}

pub(crate) fn assigned(effects: &[Effect]) -> Vec<(SessionId, CounsellorId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Assigned {
                session,
                counsellor,
                ..
            } => Some((*session, *counsellor)),
            _ => None,
        })
        .collect()
}

pub(crate) fn offered(effects: &[Effect]) -> Vec<(SessionId, CounsellorId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Offered {
                session,
                counsellor,
                ..
            } => Some((*session, *counsellor)),
            _ => None,
        })
        .collect()
}

pub(crate) fn queued(effects: &[Effect], session: SessionId) -> Vec<(u32, Option<Duration>, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Queued {
                session: x,
                position,
                wait,
                requeued,
            } if *x == session => Some((*position, *wait, *requeued)),
            _ => None,
        })
        .collect()
}
