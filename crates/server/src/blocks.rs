//! Cool-downs for abusive help-seekers: a counsellor ends a chat with
//! "block for 24 hours" (or 7 days) and a reason, and the source it came
//! from may start no new chat until then.
//!
//! Nothing that identifies anyone is kept: a block holds the keyed hashes
//! the session's connections were admitted under ([`SourceTag`]), each
//! with the in-memory key of its day, which stays alive as long as a block
//! needs it and goes with the block. So a block lapses by itself, a
//! restart lifts every block (nothing is written to disk), and nobody can
//! turn one back into an address. A new connection is checked at
//! admission, while its address is in hand; the help-seeker then gets a
//! kind `unavailable` (`blocked`, with when it lapses and the
//! alternatives) instead of a session. Resumes are never blocked, so
//! someone else behind the same address who is mid-chat is not cut off.
//!
//! Supervisors list blocks and lift them early; every block and lift is in
//! the audit log.

use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;

use crate::limits::SourceTag;

/// One block.
struct Block {
    id: String,
    sources: Vec<SourceTag>,
    info: BlockInfo,
}

/// What supervisors see of a block: never where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct BlockInfo {
    pub(crate) id: String,
    /// The counsellor who set it (account name).
    pub(crate) by: String,
    /// One of `abuse.block_reasons`.
    pub(crate) reason: String,
    /// The topic of the chat that was ended.
    pub(crate) topic: String,
    /// When it was set and when it lapses, in milliseconds since the Unix
    /// epoch.
    pub(crate) at: u64,
    pub(crate) until: u64,
}

/// The blocks in force.
#[derive(Default)]
pub(crate) struct Blocks {
    entries: Mutex<Vec<Block>>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks").finish_non_exhaustive()
    }
}

impl Blocks {
    /// Blocks `sources` until `until` (ms); returns what supervisors see.
    pub(crate) fn add(
        &self,
        sources: Vec<SourceTag>,
        by: &str,
        reason: &str,
        topic: &str,
        now_ms: u64,
        until: u64,
    ) -> BlockInfo {
        let info = BlockInfo {
            id: crate::tokens::new_epoch(),
            by: by.to_owned(),
            reason: reason.to_owned(),
            topic: topic.to_owned(),
            at: now_ms,
            until,
        };
        let mut entries = self.lock(now_ms);
        entries.push(Block {
            id: info.id.clone(),
            sources,
            info: info.clone(),
        });
        info
    }

    /// When the block on `ip` lapses, if one is in force.
    pub(crate) fn until(&self, ip: IpAddr, now_ms: u64) -> Option<u64> {
        self.lock(now_ms)
            .iter()
            .filter(|b| b.sources.iter().any(|s| s.matches(ip)))
            .map(|b| b.info.until)
            .max()
    }

    /// The blocks in force, newest first.
    pub(crate) fn list(&self, now_ms: u64) -> Vec<BlockInfo> {
        let mut list: Vec<BlockInfo> = self.lock(now_ms).iter().map(|b| b.info.clone()).collect();
        list.sort_by_key(|b| std::cmp::Reverse(b.at));
        list
    }

    /// Lifts a block early. Returns it, if it was in force.
    pub(crate) fn lift(&self, id: &str, now_ms: u64) -> Option<BlockInfo> {
        let mut entries = self.lock(now_ms);
        let i = entries.iter().position(|b| b.id == id)?;
        Some(entries.remove(i).info)
    }

    /// The entries, with those that lapsed (and their keys) dropped.
    fn lock(&self, now_ms: u64) -> std::sync::MutexGuard<'_, Vec<Block>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|b| b.info.until > now_ms);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;
    use crate::limits::SourceLimiter;

    #[test]
    fn a_block_holds_its_source_until_it_lapses_or_is_lifted() {
        let limiter = SourceLimiter::new(&LimitsConfig::default());
        let abuser: IpAddr = "198.51.100.9".parse().unwrap();
        let other: IpAddr = "198.51.100.10".parse().unwrap();
        let socket = limiter.admit(abuser).unwrap();
        let blocks = Blocks::default();
        let info = blocks.add(
            vec![socket.tag()],
            "anna",
            "abusive",
            "algemeen",
            1_000,
            5_000,
        );
        assert_eq!(blocks.until(abuser, 2_000), Some(5_000));
        assert_eq!(blocks.until(other, 2_000), None);
        // The same /64 is the same source.
        let v6 = limiter.admit("2001:db8::1".parse().unwrap()).unwrap();
        blocks.add(vec![v6.tag()], "anna", "abusive", "algemeen", 1_000, 5_000);
        assert!(
            blocks
                .until("2001:db8::ffff".parse().unwrap(), 2_000)
                .is_some()
        );
        // It lapses by itself...
        assert_eq!(blocks.until(abuser, 5_000), None);
        assert!(blocks.list(5_000).is_empty());
        // ... or is lifted.
        let again = blocks.add(
            vec![socket.tag()],
            "anna",
            "threats",
            "algemeen",
            6_000,
            9_000,
        );
        assert_ne!(again.id, info.id);
        assert_eq!(blocks.list(7_000), vec![again.clone()]);
        assert_eq!(blocks.lift(&again.id, 7_000), Some(again));
        assert_eq!(blocks.until(abuser, 7_000), None);
        assert_eq!(blocks.lift("nope", 7_000), None);
    }
}
