//! Each session's conversation in Redis: sequence numbers, unconfirmed
//! messages (ciphertext only) and retry ids, changed only by atomic
//! scripts that apply [`haven_core::Conversation`]'s rules.
//!
//! A direction is three keys under the session's hash tag (so a Redis
//! Cluster keeps a session on one shard): a hash of counters, a stream of
//! the messages not yet confirmed (entry id `<seq>-0`) and a sorted set of
//! retry ids (MACs, scored by their seq). Every write renews their expiry,
//! so a session nobody touches any more leaves nothing behind.
//!
//! The replies mirror core's: a message is accepted with the next seq, is
//! recognised as a retry of an earlier one, or is refused because the
//! receiver has too much unconfirmed (nothing is ever dropped to make
//! room); a resume returns exactly what follows the receiver's last seq,
//! and says when some of it was already confirmed and freed.

use std::time::Duration;

use haven_core::conversation::Seq;
use haven_core::{ReplayLimits, SessionId, Side};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};

use crate::seal::IdMac;

/// The outcome of offering a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Accepted with this new seq.
    New(Seq),
    /// A retry of a message accepted earlier with this seq.
    Duplicate(Seq),
    /// The receiver has too much unconfirmed: not accepted.
    BacklogFull,
}

/// What a returning receiver is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// Every message after their last seq follows (no gap).
    pub recovered: bool,
    /// The highest seq in this direction.
    pub last_seq: Seq,
    /// The messages after their last seq, in order, as stored.
    pub replay: Vec<(Seq, Vec<u8>)>,
}

/// The conversation scripts and the limits they enforce.
#[derive(Debug, Clone)]
pub struct Conversations {
    prefix: String,
    limits: ReplayLimits,
    ttl_ms: u64,
    append: Script,
    confirm: Script,
    resume: Script,
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/lib.lua"), include_str!($file)))
    };
}

fn dir(to: Side) -> &'static str {
    match to {
        Side::Seeker => "s",
        Side::Counsellor => "c",
    }
}

impl Conversations {
    /// Conversations under the key prefix `prefix` (e.g. `hv:`), bounded by
    /// `limits`, each forgotten `ttl` after its last change.
    pub fn new(prefix: &str, limits: ReplayLimits, ttl: Duration) -> Self {
        Self {
            prefix: prefix.to_owned(),
            limits,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            append: script!("lua/append.lua"),
            confirm: script!("lua/confirm.lua"),
            resume: script!("lua/resume.lua"),
        }
    }

    /// The keys of one direction: counters, stream, retry ids.
    fn keys(&self, session: SessionId, to: Side) -> [String; 3] {
        let tag = format!("{}s:{{{:032x}}}", self.prefix, session.0);
        let d = dir(to);
        [
            format!("{tag}:meta"),
            format!("{tag}:to-{d}"),
            format!("{tag}:ids-{d}"),
        ]
    }

    /// Offers `sealed` from `from` (toward the other side) under the
    /// client id `id`; `weight` counts toward the byte bound.
    pub async fn append<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        session: SessionId,
        from: Side,
        id: &IdMac,
        weight: usize,
        sealed: &[u8],
    ) -> RedisResult<Appended> {
        let to = from.peer();
        let [meta, stream, ids] = self.keys(session, to);
        let (code, seq): (u8, Seq) = self
            .append
            .key(meta)
            .key(stream)
            .key(ids)
            .arg(dir(to))
            .arg(id.as_str())
            .arg(weight)
            .arg(sealed)
            .arg(self.limits.max_entries)
            .arg(self.limits.max_bytes)
            .arg(self.limits.max_ids)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await?;
        Ok(match code {
            0 => Appended::New(seq),
            1 => Appended::Duplicate(seq),
            _ => Appended::BacklogFull,
        })
    }

    /// `by` has received everything up to `up_to`: the new confirmed mark,
    /// when it moved.
    pub async fn confirm<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        session: SessionId,
        by: Side,
        up_to: Seq,
    ) -> RedisResult<Option<Seq>> {
        let [meta, stream, _] = self.keys(session, by);
        let moved: i64 = self
            .confirm
            .key(meta)
            .key(stream)
            .arg(dir(by))
            .arg(up_to)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await?;
        Ok(u64::try_from(moved).ok())
    }

    /// `to` comes back having seen everything up to `last_seen`: confirms
    /// that much and returns what follows.
    pub async fn resume<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        session: SessionId,
        to: Side,
        last_seen: Seq,
    ) -> RedisResult<Resumed> {
        let [meta, stream, _] = self.keys(session, to);
        let reply: Vec<redis::Value> = self
            .resume
            .key(meta)
            .key(stream)
            .arg(dir(to))
            .arg(last_seen)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await?;
        let mut items = reply.into_iter();
        let recovered: i64 = redis::from_redis_value(items.next().unwrap_or(redis::Value::Nil))?;
        let last_seq: Seq = redis::from_redis_value(items.next().unwrap_or(redis::Value::Nil))?;
        let mut replay = Vec::new();
        while let (Some(seq), Some(body)) = (items.next(), items.next()) {
            replay.push((
                redis::from_redis_value(seq)?,
                redis::from_redis_value(body)?,
            ));
        }
        Ok(Resumed {
            recovered: recovered == 1,
            last_seq,
            replay,
        })
    }
}
