//! Signed orders between nodes. Anyone who can publish on Redis could
//! otherwise pause a topic with any text for every help-seeker, so each
//! pause or resume order, on the `haven:control` channel and in the
//! `haven:paused` hash alike, carries an HMAC-SHA256 under `control_key`:
//! a secret every node gets from its configuration or environment, never
//! from Redis. An order also names who gave it and when; one that is
//! unsigned, signed under another key, or older than a minute (a replay)
//! is ignored, counted and logged (without its content).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::PauseOrder;

/// An order on the channel is good for this long after it was given.
const FRESH_MS: u64 = 60_000;

/// The shared secret that signs orders.
#[derive(Clone)]
pub(crate) struct ControlKey(Vec<u8>);

impl std::fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlKey(<redacted>)")
    }
}

/// What travels: the order as JSON text, and its signature.
#[derive(Serialize, Deserialize)]
struct Sealed {
    order: String,
    mac: String,
}

/// The order, with who gave it and when.
#[derive(Serialize, Deserialize)]
struct Signed {
    #[serde(flatten)]
    order: PauseOrder,
    /// The account that gave it.
    by: String,
    /// When, in milliseconds since the Unix epoch.
    at: u64,
}

/// Why an order was not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Not a sealed order, or signed under another key.
    Unsigned,
    /// Signed, but too old to be anything but a replay.
    Stale,
}

impl ControlKey {
    pub(crate) fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, text: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(text.as_bytes());
        mac
    }

    /// `order`, given by `by` at `at_ms`, signed.
    pub(crate) fn seal(&self, order: &PauseOrder, by: &str, at_ms: u64) -> String {
        let signed = Signed {
            order: order.clone(),
            by: by.to_owned(),
            at: at_ms,
        };
        let order = serde_json::to_string(&signed).unwrap_or_default();
        let mac = STANDARD_NO_PAD.encode(self.mac(&order).finalize().into_bytes());
        serde_json::to_string(&Sealed { order, mac }).unwrap_or_default()
    }

    /// The order in `text` and who gave it, when it is signed under this
    /// key. `now_ms` decides freshness; `None` skips that check (the
    /// stored pause state, which holds until changed).
    pub(crate) fn open(
        &self,
        text: &str,
        now_ms: Option<u64>,
    ) -> Result<(PauseOrder, String), Rejected> {
        let sealed: Sealed = serde_json::from_str(text).map_err(|_| Rejected::Unsigned)?;
        let mac = STANDARD_NO_PAD
            .decode(&sealed.mac)
            .map_err(|_| Rejected::Unsigned)?;
        self.mac(&sealed.order)
            .verify_slice(&mac)
            .map_err(|_| Rejected::Unsigned)?;
        let signed: Signed = serde_json::from_str(&sealed.order).map_err(|_| Rejected::Unsigned)?;
        if let Some(now) = now_ms
            && now.abs_diff(signed.at) > FRESH_MS
        {
            return Err(Rejected::Stale);
        }
        Ok((signed.order, signed.by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> PauseOrder {
        PauseOrder {
            topic: "algemeen".into(),
            paused: true,
            message: Some("Even pauze".into()),
        }
    }

    #[test]
    fn only_a_fresh_order_signed_under_the_key_is_followed() {
        let key = ControlKey::new("a secret of thirty-two characters!");
        let sealed = key.seal(&order(), "coco", 1_000_000);
        assert_eq!(
            key.open(&sealed, Some(1_010_000)),
            Ok((order(), "coco".to_owned()))
        );
        // Another key, a forged order, a bare one, a replay.
        let other = ControlKey::new("another secret of thirty-two chars");
        assert_eq!(
            other.open(&sealed, Some(1_010_000)),
            Err(Rejected::Unsigned)
        );
        let forged = sealed.replace("Even pauze", "Ga weg");
        assert_eq!(key.open(&forged, Some(1_010_000)), Err(Rejected::Unsigned));
        let bare = serde_json::to_string(&order()).unwrap();
        assert_eq!(key.open(&bare, Some(1_010_000)), Err(Rejected::Unsigned));
        assert_eq!(key.open(&sealed, Some(1_100_000)), Err(Rejected::Stale));
        // The stored state has no age limit.
        assert!(key.open(&sealed, None).is_ok());
    }
}
