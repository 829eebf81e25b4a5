//! The counsellor console's settings: the ring for new chats and the
//! canned responses (*standaardteksten*) counsellors can insert.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest canned response title, in characters.
const MAX_CANNED_TITLE: usize = 80;
/// Most canned responses.
const MAX_CANNED: usize = 500;

/// The console's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The sound for a new offer or chat, unless a counsellor picks another
    /// for their own browser.
    pub ring: Ring,
    /// While an offer waits for an answer, ring again this often (zero:
    /// ring once).
    #[serde(with = "humantime_serde")]
    pub ring_repeat: Duration,
    /// Texts counsellors can insert into the composer and edit before
    /// sending.
    pub canned: Vec<CannedResponse>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            ring: Ring::Bell,
            ring_repeat: Duration::from_secs(10),
            canned: Vec::new(),
        }
    }
}

/// The console's ring sounds (synthesised in the browser; no audio files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ring {
    /// Three bright tones, high-low-high.
    Bell,
    /// Two soft rising tones.
    Chime,
    /// Four short beeps.
    Beep,
    /// No sound: the title and the offer list still flash.
    Off,
}

/// One canned response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    /// What the console lists it as.
    pub title: String,
    /// The text inserted into the composer.
    pub text: String,
    /// The language it is written in; the console lists those matching the
    /// chat's language first. Unset: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The topics it is meant for. Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
}

impl ConsoleConfig {
    /// Checks the canned responses against the chat limits, languages and
    /// topics, as `(key, problem)`.
    pub(super) fn check(
        &self,
        max_chars: u32,
        languages: &[String],
        topic_exists: impl Fn(&str) -> bool,
    ) -> Result<(), (String, String)> {
        if self.canned.len() > MAX_CANNED {
            return Err((
                "console.canned".into(),
                format!("at most {MAX_CANNED} canned responses"),
            ));
        }
        for (i, c) in self.canned.iter().enumerate() {
            let key = format!("console.canned[{i}]");
            let title = c.title.trim();
            let problem = if title.is_empty() {
                Some("title must not be empty".to_owned())
            } else if title.chars().count() > MAX_CANNED_TITLE {
                Some(format!(
                    "title must be at most {MAX_CANNED_TITLE} characters"
                ))
            } else if c.text.trim().is_empty() {
                Some(format!("{title:?}: text must not be empty"))
            } else if c.text.chars().count() > max_chars as usize {
                Some(format!(
                    "{title:?}: text is longer than session.max_chars ({max_chars})"
                ))
            } else if let Some(l) = c.language.as_deref().filter(|l| {
                let base = l.split('-').next().unwrap_or(l);
                !languages.iter().any(|x| x.eq_ignore_ascii_case(base))
            }) {
                Some(format!("{title:?}: language {l:?} is not in `languages`"))
            } else {
                c.topics
                    .iter()
                    .find(|t| !topic_exists(t))
                    .map(|t| format!("{title:?}: no topic named {t:?}"))
            };
            if let Some(problem) = problem {
                return Err((key, problem));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned(title: &str, text: &str) -> CannedResponse {
        CannedResponse {
            title: title.to_owned(),
            text: text.to_owned(),
            language: None,
            topics: Vec::new(),
        }
    }

    fn check(list: Vec<CannedResponse>) -> Result<(), (String, String)> {
        let config = ConsoleConfig {
            canned: list,
            ..ConsoleConfig::default()
        };
        config.check(20, &["nl".to_owned(), "fr".to_owned()], |t| t == "algemeen")
    }

    #[test]
    fn canned_responses_are_checked_and_the_bad_one_named() {
        let good = CannedResponse {
            language: Some("nl-BE".to_owned()),
            topics: vec!["algemeen".to_owned()],
            ..canned("Welkom", "Hoi!")
        };
        assert_eq!(check(vec![good.clone()]), Ok(()));
        let cases = [
            (canned(" ", "Hoi"), "title must not be empty"),
            (canned("Leeg", "  "), "text must not be empty"),
            (
                canned("Lang", &"x".repeat(21)),
                "longer than session.max_chars",
            ),
            (
                CannedResponse {
                    language: Some("de".to_owned()),
                    ..canned("Hallo", "Hallo")
                },
                "not in `languages`",
            ),
            (
                CannedResponse {
                    topics: vec!["nergens".to_owned()],
                    ..canned("Hoi", "Hoi")
                },
                "no topic named",
            ),
        ];
        for (bad, problem) in cases {
            let (key, said) = check(vec![good.clone(), bad]).unwrap_err();
            assert_eq!(key, "console.canned[1]");
            assert!(said.contains(problem), "{said}");
        }
    }
}
