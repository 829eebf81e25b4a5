//! Topic (queue) settings: how sessions are handed out, queue limits,
//! wrap-up, triage, return codes, alternatives and opening hours.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a topic hands help-seekers to counsellors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The longest-idle counsellor who fits simply gets the session.
    Auto,
    /// That counsellor is offered the session and accepts or declines.
    Offer,
}

/// A place to turn to instead, shown to help-seekers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternativeConfig {
    /// What it is ("113 Zelfmoordpreventie").
    pub name: String,
    /// A phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A web address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Opening hours of a topic. Without them, a topic is always open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoursConfig {
    /// An IANA time zone such as `Europe/Brussels`.
    pub time_zone: String,
    /// Opening periods per weekday, like `"09:00-12:00"`; a period ending
    /// at or before it starts runs past midnight, `24:00` is midnight.
    pub monday: Vec<String>,
    /// See `monday`.
    pub tuesday: Vec<String>,
    /// See `monday`.
    pub wednesday: Vec<String>,
    /// See `monday`.
    pub thursday: Vec<String>,
    /// See `monday`.
    pub friday: Vec<String>,
    /// See `monday`.
    pub saturday: Vec<String>,
    /// See `monday`.
    pub sunday: Vec<String>,
    /// Dates (`2026-12-25`) with no opening at all.
    pub holidays: Vec<String>,
    /// How long before closing those waiting are warned.
    #[serde(with = "humantime_serde")]
    pub closing_warning: Duration,
}

impl Default for HoursConfig {
    fn default() -> Self {
        Self {
            time_zone: "Europe/Brussels".to_owned(),
            monday: Vec::new(),
            tuesday: Vec::new(),
            wednesday: Vec::new(),
            thursday: Vec::new(),
            friday: Vec::new(),
            saturday: Vec::new(),
            sunday: Vec::new(),
            holidays: Vec::new(),
            closing_warning: Duration::from_secs(15 * 60),
        }
    }
}

impl HoursConfig {
    /// The weekdays in order, Monday first, with their names.
    pub fn days(&self) -> [(&'static str, &[String]); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }
}

/// One topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicConfig {
    /// `auto` or `offer`.
    pub mode: Mode,
    /// In `offer` mode, how long a counsellor has to accept.
    #[serde(with = "humantime_serde")]
    pub offer_timeout: Duration,
    /// Most help-seekers waiting at once; beyond it they are told the chat
    /// is full and shown the alternatives.
    pub max_queue: u32,
    /// Wrap-up (*nazorg*) after each session before the next is routed.
    #[serde(with = "humantime_serde")]
    pub wrap_up: Duration,
    /// Head start of a help-seeker whose triage answer is urgent. Priorities
    /// age: whoever waited longer than this goes before a new urgent one.
    #[serde(with = "humantime_serde")]
    pub triage_boost: Duration,
    /// Whether help-seekers get a return code at the end of a session.
    pub return_codes: bool,
    /// How long a returning help-seeker waits for the counsellor their code
    /// names before normal routing.
    #[serde(with = "humantime_serde")]
    pub return_wait: Duration,
    /// Seat time per session (with wrap-up) assumed for wait estimates until
    /// real sessions have been measured.
    #[serde(with = "humantime_serde")]
    pub assumed_session: Duration,
    /// Where else to turn (emergency numbers, other services).
    pub alternatives: Vec<AlternativeConfig>,
    /// Opening hours; absent means always open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HoursConfig>,
    /// Whether this topic's sessions are recorded; unset: the top-level
    /// `transcripts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcripts: Option<super::TranscriptMode>,
    /// Days a transcript of this topic is kept before it is deleted; unset:
    /// kept until the operator deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            offer_timeout: Duration::from_secs(30),
            max_queue: 200,
            wrap_up: Duration::from_secs(120),
            triage_boost: Duration::from_secs(10 * 60),
            return_codes: true,
            return_wait: Duration::from_secs(5 * 60),
            assumed_session: Duration::from_secs(20 * 60),
            alternatives: vec![AlternativeConfig {
                name: "Noodnummer / Emergency".to_owned(),
                phone: Some("112".to_owned()),
                url: None,
            }],
            hours: None,
            transcripts: None,
            retention_days: None,
        }
    }
}

/// Routing settings shared by all topics.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Waiting help-seekers are told their position and wait at most this
    /// often (updates in between are coalesced).
    #[serde(with = "humantime_serde")]
    pub position_interval: Duration,
    /// How long a return code stays valid.
    #[serde(with = "humantime_serde")]
    pub return_code_ttl: Duration,
    /// Whether a counsellor who lets an offer time out is set away.
    pub away_after_missed_offer: bool,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            position_interval: Duration::from_secs(2),
            return_code_ttl: Duration::from_secs(7 * 24 * 3600),
            away_after_missed_offer: true,
        }
    }
}
