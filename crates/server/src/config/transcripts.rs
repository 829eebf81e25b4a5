//! Transcript settings: whether sessions are recorded, and to whom the
//! records are sealed. The server holds recipients (public keys) only.

use serde::{Deserialize, Deserializer, Serialize};

/// Whether a topic's sessions are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptMode {
    /// Never.
    #[default]
    Off,
    /// Always; the help-seeker is told in the privacy notice.
    On,
    /// The widget asks the help-seeker, who may decline.
    Ask,
}

/// A list in the config file, or a comma-separated string in an
/// environment variable (`HAVEN_TRANSCRIPT_RECIPIENTS=a,b`).
pub(super) fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Commas(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Checks the recipients and that a mode other than `off` has some, as
/// `(key, problem)`.
pub(super) fn check(
    recipients: &[String],
    modes: impl Iterator<Item = (String, TranscriptMode)>,
) -> Result<(), (String, String)> {
    for (i, r) in recipients.iter().enumerate() {
        if let Err(e) = haven_transcript::Recipient::parse(r) {
            return Err((
                "transcript_recipients".to_owned(),
                format!("entry {}: {e} (make one with `haven keygen`)", i + 1),
            ));
        }
    }
    if recipients.is_empty()
        && let Some((key, mode)) = modes.into_iter().find(|(_, m)| *m != TranscriptMode::Off)
    {
        let name = if mode == TranscriptMode::On {
            "on"
        } else {
            "ask"
        };
        return Err((
            key,
            format!(
                "is \"{name}\", but transcript_recipients is empty: make a key with `haven keygen`"
            ),
        ));
    }
    Ok(())
}
