//! Return codes: what a help-seeker may note at the end of a session to be
//! routed to the same counsellor next time.
//!
//! A code is 40 random bits written as eight characters in two groups
//! (`K7M2-Q9XD`), from an alphabet without look-alikes (no 0/O, 1/I). The
//! router keeps only code → counsellor, for a limited time; nothing else
//! links the two sessions.
//!
//! With Redis, each code is also kept there ([`Kept`]), so that it outlives
//! a restart (and reaches whichever node leads next): under a keyed hash
//! of the code, never the code, holding only the counsellor's account
//! number, and expiring with the code.

use haven_core::CounsellorId;

/// Digits 2–9 and letters without I and O: 32 symbols, 5 bits each.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const SYMBOLS: usize = 8;

/// A fresh random code.
pub(crate) fn new_code() -> u64 {
    rand::random::<u64>() & ((1 << (5 * SYMBOLS)) - 1)
}

/// Writes a code for people: `K7M2-Q9XD`.
pub(crate) fn format_code(code: u64) -> String {
    let mut out = String::with_capacity(SYMBOLS + 1);
    for i in (0..SYMBOLS).rev() {
        let symbol = (code >> (5 * i)) & 31;
        out.push(char::from(ALPHABET[usize::try_from(symbol).unwrap_or(0)]));
        if i == SYMBOLS / 2 {
            out.push('-');
        }
    }
    out
}

/// Reads a code as people type it: case, spaces and dashes do not matter.
pub(crate) fn parse_code(text: &str) -> Option<u64> {
    let mut code = 0u64;
    let mut count = 0;
    for b in text.bytes().filter(|b| !matches!(b, b'-' | b' ')) {
        let b = b.to_ascii_uppercase();
        let value = ALPHABET.iter().position(|a| *a == b)?;
        code = (code << 5) | u64::try_from(value).ok()?;
        count += 1;
    }
    (count == SYMBOLS).then_some(code)
}

/// Return codes kept in Redis as well.
#[derive(Debug)]
pub(crate) struct Kept {
    client: redis::Client,
    con: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    /// The key of the codes' hashes, from `control_key`.
    key: [u8; 32],
    ttl_ms: u64,
}

/// How long a hello waits for Redis to say whom a code names.
const LOOKUP: std::time::Duration = std::time::Duration::from_millis(500);

impl Kept {
    /// Codes in the Redis at `redis_url`, hashed under a key from
    /// `control_key`, kept for `ttl`.
    pub(crate) fn new(
        redis_url: &str,
        control_key: &str,
        ttl: std::time::Duration,
    ) -> Option<std::sync::Arc<Self>> {
        use hmac::Mac as _;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(control_key.as_bytes())
                .ok()?;
        mac.update(b"haven return codes v1");
        Some(std::sync::Arc::new(Self {
            client: redis::Client::open(redis_url).ok()?,
            con: tokio::sync::OnceCell::new(),
            key: mac.finalize().into_bytes().into(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
        }))
    }

    /// The Redis key a code is kept under.
    fn name(&self, code: u64) -> String {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&code.to_be_bytes());
        let hash: String = mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("haven:return:{hash}")
    }

    async fn con(&self) -> Option<redis::aio::ConnectionManager> {
        self.con
            .get_or_try_init(|| redis::aio::ConnectionManager::new(self.client.clone()))
            .await
            .ok()
            .cloned()
    }

    /// Keeps `code` → `counsellor` (in the background: the end of a
    /// session never waits for Redis).
    pub(crate) fn keep(self: &std::sync::Arc<Self>, code: u64, counsellor: CounsellorId) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(mut con) = this.con().await else {
                return;
            };
            let kept: redis::RedisResult<()> = redis::cmd("SET")
                .arg(this.name(code))
                .arg(counsellor.0)
                .arg("PX")
                .arg(this.ttl_ms)
                .query_async(&mut con)
                .await;
            if let Err(e) = kept {
                tracing::warn!(error = %e, "a return code could not be kept in Redis");
            }
        });
    }

    /// Spends `code`: the counsellor it names, if Redis has it (and
    /// answers in time).
    pub(crate) async fn take(&self, code: u64) -> Option<CounsellorId> {
        let lookup = async {
            let mut con = self.con().await?;
            redis::cmd("GETDEL")
                .arg(self.name(code))
                .query_async::<Option<u64>>(&mut con)
                .await
                .ok()
                .flatten()
        };
        tokio::time::timeout(LOOKUP, lookup)
            .await
            .ok()
            .flatten()
            .map(CounsellorId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_tolerate_typing() {
        for _ in 0..1000 {
            let code = new_code();
            let text = format_code(code);
            assert_eq!(text.len(), 9);
            assert_eq!(parse_code(&text), Some(code));
            assert_eq!(
                parse_code(&text.to_lowercase().replace('-', " ")),
                Some(code)
            );
        }
        assert_eq!(parse_code("K7M2-Q9X"), None);
        assert_eq!(parse_code("K7M2-Q9X0"), None, "0 is not in the alphabet");
        assert_eq!(parse_code(""), None);
    }
}
