//! The routing plan: the configuration's topics and languages turned into
//! what the core router works with (numbered topics and languages, rules,
//! schedules), checked on the way.
//!
//! The same function validates the configuration at start-up (so a bad
//! period or time zone fails `haven check-config` and `haven serve` with
//! the key named) and builds the plan the broker runs with.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use haven_core::hours::{Period, Schedule};
use haven_core::{Assignment, LangId, RouterConfig, TopicId, TopicRules};
use haven_protocol::Alternative;

use super::{Config, Mode};

/// Longest topic name or language tag.
const MAX_TAG: usize = 32;

/// One topic, ready for the router.
#[derive(Clone, Debug)]
pub struct TopicPlan {
    /// Its name, as clients send it.
    pub name: String,
    /// Opening hours, if limited.
    pub schedule: Option<Schedule>,
    /// Where else to turn.
    pub alternatives: Vec<Alternative>,
    /// Whether help-seekers get a return code at the end of a session.
    pub return_codes: bool,
    /// Whether its sessions are recorded (the topic's own setting, else
    /// the top-level one).
    pub transcripts: super::TranscriptMode,
    /// Days its transcripts are kept; `None` keeps them.
    pub retention_days: Option<u32>,
}

/// Topics and languages numbered for the router, with its configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Topics in [`TopicId`] order.
    pub topics: Vec<TopicPlan>,
    /// Language tags in [`LangId`] order.
    pub languages: Vec<String>,
    /// The router's settings.
    pub router: RouterConfig,
    /// The topic of a help-seeker who names none.
    pub default_topic: TopicId,
}

fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TAG
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Plan {
    /// The id of a topic name.
    pub fn topic(&self, name: &str) -> Option<TopicId> {
        let index = self.topics.iter().position(|t| t.name == name)?;
        Some(TopicId(u16::try_from(index).ok()?))
    }

    /// A topic's plan.
    pub fn topic_plan(&self, topic: TopicId) -> Option<&TopicPlan> {
        self.topics.get(usize::from(topic.0))
    }

    /// A topic's name.
    pub fn topic_name(&self, topic: TopicId) -> &str {
        self.topic_plan(topic).map_or("", |t| t.name.as_str())
    }

    /// The language a requested tag is served in: an exact match, or the
    /// primary language (`nl-BE` is served in `nl`), case-insensitively.
    pub fn language(&self, tag: &str) -> Option<LangId> {
        let tag = tag.to_ascii_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        let index = self
            .languages
            .iter()
            .position(|l| l.eq_ignore_ascii_case(&tag))
            .or_else(|| {
                self.languages
                    .iter()
                    .position(|l| l.eq_ignore_ascii_case(primary))
            })?;
        Some(LangId(u16::try_from(index).ok()?))
    }

    /// A language's tag.
    pub fn language_tag(&self, language: LangId) -> &str {
        self.languages
            .get(usize::from(language.0))
            .map_or("", String::as_str)
    }
}

impl Config {
    /// Builds the routing plan, or says which key is wrong and why.
    pub fn plan(&self) -> Result<Plan, (String, String)> {
        let mut languages = Vec::new();
        for tag in &self.languages {
            if !valid_tag(tag)
                || languages
                    .iter()
                    .any(|l: &String| l.eq_ignore_ascii_case(tag))
            {
                return Err((
                    "languages".to_owned(),
                    format!("{tag:?}: tags are letters, digits and '-', each listed once"),
                ));
            }
            languages.push(tag.to_ascii_lowercase());
        }
        if languages.is_empty() {
            return Err((
                "languages".to_owned(),
                "list at least one language".to_owned(),
            ));
        }
        if self.topics.len() > usize::from(u16::MAX) {
            return Err(("topics".to_owned(), "too many topics".to_owned()));
        }
        let mut topics = Vec::new();
        let mut rules = Vec::new();
        for (name, topic) in &self.topics {
            let key = |field: &str| format!("topics.{name}.{field}");
            if !valid_tag(name) {
                return Err((
                    format!("topics.{name}"),
                    "topic names are letters, digits, '-' and '_'".to_owned(),
                ));
            }
            if topic.max_queue == 0 {
                return Err((key("max_queue"), "must be at least 1".to_owned()));
            }
            if topic.mode == Mode::Offer && topic.offer_timeout < Duration::from_secs(2) {
                return Err((
                    key("offer_timeout"),
                    "must be at least 2 seconds".to_owned(),
                ));
            }
            let day = Duration::from_secs(24 * 3600);
            for (field, value) in [
                ("offer_timeout", topic.offer_timeout),
                ("wrap_up", topic.wrap_up),
                ("triage_boost", topic.triage_boost),
                ("return_wait", topic.return_wait),
                ("assumed_session", topic.assumed_session),
            ] {
                if value > day {
                    return Err((key(field), "must be at most a day".to_owned()));
                }
            }
            if topic.assumed_session.is_zero() {
                return Err((key("assumed_session"), "must not be zero".to_owned()));
            }
            let mut alternatives = Vec::new();
            for (i, alt) in topic.alternatives.iter().enumerate() {
                if alt.name.trim().is_empty() || (alt.phone.is_none() && alt.url.is_none()) {
                    return Err((
                        format!("topics.{name}.alternatives[{i}]"),
                        "needs a name and a phone number or url".to_owned(),
                    ));
                }
                alternatives.push(Alternative {
                    name: alt.name.clone(),
                    phone: alt.phone.clone(),
                    url: alt.url.clone(),
                });
            }
            let schedule = match &topic.hours {
                None => None,
                Some(hours) => Some(schedule(name, hours)?),
            };
            rules.push(TopicRules {
                assignment: match topic.mode {
                    Mode::Auto => Assignment::Auto,
                    Mode::Offer => Assignment::Offer {
                        timeout: topic.offer_timeout,
                    },
                },
                max_queue: topic.max_queue as usize,
                wrap_up: topic.wrap_up,
                triage_boost: topic.triage_boost,
                return_wait: topic.return_wait,
                assumed_session: topic.assumed_session,
            });
            topics.push(TopicPlan {
                name: name.clone(),
                schedule,
                alternatives,
                return_codes: topic.return_codes,
                transcripts: topic.transcripts.unwrap_or(self.transcripts),
                retention_days: topic.retention_days,
            });
        }
        let default_topic = topics
            .iter()
            .position(|t| t.name == self.session.default_topic)
            .and_then(|i| u16::try_from(i).ok())
            .map(TopicId)
            .ok_or_else(|| {
                (
                    "session.default_topic".to_owned(),
                    format!("{:?} is not one of the topics", self.session.default_topic),
                )
            })?;
        let routing = &self.routing;
        if routing.position_interval < Duration::from_millis(100) {
            return Err((
                "routing.position_interval".to_owned(),
                "must be at least 100ms".to_owned(),
            ));
        }
        Ok(Plan {
            topics,
            languages,
            router: RouterConfig {
                seeker_grace: self.session.seeker_grace,
                counsellor_grace: self.session.counsellor_grace,
                topics: rules,
                position_interval: routing.position_interval,
                return_code_ttl: routing.return_code_ttl,
                away_after_missed_offer: routing.away_after_missed_offer,
            },
            default_topic,
        })
    }
}

fn schedule(name: &str, hours: &super::HoursConfig) -> Result<Schedule, (String, String)> {
    let key = |field: &str| format!("topics.{name}.hours.{field}");
    let time_zone = jiff::tz::TimeZone::get(&hours.time_zone).map_err(|_| {
        (
            key("time_zone"),
            format!("{:?} is not a known time zone", hours.time_zone),
        )
    })?;
    let mut weekly: [Vec<Period>; 7] = Default::default();
    for (i, (day, periods)) in hours.days().into_iter().enumerate() {
        for text in periods {
            let period = Period::from_str(text).map_err(|e| (key(day), e.to_string()))?;
            weekly[i].push(period);
        }
    }
    let mut holidays = BTreeSet::new();
    for text in &hours.holidays {
        let date: jiff::civil::Date = text.parse().map_err(|_| {
            (
                key("holidays"),
                format!("{text:?} is not a date like 2026-12-25"),
            )
        })?;
        holidays.insert(date);
    }
    if hours.closing_warning > Duration::from_secs(6 * 3600) {
        return Err((key("closing_warning"), "must be at most 6 hours".to_owned()));
    }
    Ok(Schedule {
        time_zone,
        weekly,
        holidays,
        closing_warning: hours.closing_warning,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{HoursConfig, TopicConfig};
    use super::*;

    fn config() -> Config {
        let mut config = Config::default();
        config.fill_default_topic();
        config
    }

    #[test]
    fn default_plan_has_one_open_topic() {
        let plan = config().plan().unwrap();
        assert_eq!(plan.topics.len(), 1);
        assert_eq!(plan.topics[0].name, "algemeen");
        assert!(plan.topics[0].schedule.is_none());
        assert_eq!(plan.default_topic, TopicId(0));
    }

    #[test]
    fn languages_match_exactly_or_by_primary_tag() {
        let plan = config().plan().unwrap();
        assert_eq!(plan.language("nl"), Some(LangId(0)));
        assert_eq!(plan.language("nl-BE"), Some(LangId(0)));
        assert_eq!(plan.language("FR-be"), Some(LangId(1)));
        assert_eq!(plan.language("de"), None);
        assert_eq!(plan.language_tag(LangId(2)), "en");
    }

    #[test]
    fn bad_hours_name_the_key() {
        let mut c = config();
        let mut topic = TopicConfig {
            hours: Some(HoursConfig {
                monday: vec!["9-5".to_owned()],
                ..HoursConfig::default()
            }),
            ..TopicConfig::default()
        };
        c.topics.insert("jongeren".to_owned(), topic.clone());
        assert_eq!(c.plan().unwrap_err().0, "topics.jongeren.hours.monday");
        topic.hours = Some(HoursConfig {
            time_zone: "Mars/Olympus".to_owned(),
            ..HoursConfig::default()
        });
        c.topics.insert("jongeren".to_owned(), topic);
        assert_eq!(c.plan().unwrap_err().0, "topics.jongeren.hours.time_zone");
        c.topics.remove("jongeren");
        c.session.default_topic = "nope".to_owned();
        assert_eq!(c.plan().unwrap_err().0, "session.default_topic");
    }
}
