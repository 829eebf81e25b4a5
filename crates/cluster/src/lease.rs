//! The routing lease: which node runs the router, and the fencing that
//! keeps a former leader from writing after it lost the lease.
//!
//! A lock alone is not enough: a leader can stall (a long pause, a
//! partition) past its lease and wake up still believing it leads. So
//! each grant comes with an epoch, one higher than any before, and every
//! write a leader makes goes through a script that first checks the epoch
//! is still current ([`Lease::fenced`]); a stale leader's write is refused
//! with [`FENCED`] and it steps down. Lease, epoch and the state they
//! guard live in the same Redis, so the check and the write are one atomic
//! step.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};

/// The error a fenced script returns when its epoch is stale.
pub const FENCED: &str = "FENCED";

/// A node's view of the routing lease.
#[derive(Debug, Clone)]
pub struct Lease {
    lease_key: String,
    epoch_key: String,
    node: String,
    ttl_ms: u64,
    script: Script,
}

/// The outcome of trying to take the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// This node leads, under this epoch.
    Leader(u64),
    /// Another node leads, under this epoch.
    Follower(u64),
}

impl Lease {
    /// `node`'s handle on the lease under `prefix`, held for `ttl` unless
    /// renewed.
    pub fn new(prefix: &str, node: &str, ttl: Duration) -> Self {
        Self {
            lease_key: format!("{prefix}ctl:{{lease}}"),
            epoch_key: format!("{prefix}ctl:{{lease}}:epoch"),
            node: node.to_owned(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            script: Script::new(include_str!("lua/lease.lua")),
        }
    }

    /// The key holding the epoch: the first key of every fenced script.
    pub fn epoch_key(&self) -> &str {
        &self.epoch_key
    }

    async fn call<C: ConnectionLike + Send, T: redis::FromRedisValue>(
        &self,
        con: &mut C,
        op: &str,
        epoch: u64,
    ) -> RedisResult<T> {
        self.script
            .key(&self.lease_key)
            .key(&self.epoch_key)
            .arg(op)
            .arg(&self.node)
            .arg(epoch)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await
    }

    /// The node holding the lease now, if any.
    pub async fn holder<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
    ) -> RedisResult<Option<String>> {
        redis::cmd("GET")
            .arg(&self.lease_key)
            .query_async(con)
            .await
    }

    /// Takes the lease if nobody holds it (with a new epoch), extends it if
    /// this node holds it, or says who leads.
    pub async fn acquire<C: ConnectionLike + Send>(&self, con: &mut C) -> RedisResult<Grant> {
        let (held, epoch): (u8, u64) = self.call(con, "acquire", 0).await?;
        Ok(if held == 1 {
            Grant::Leader(epoch)
        } else {
            Grant::Follower(epoch)
        })
    }

    /// Extends the lease granted under `epoch`; `false` when it was lost.
    pub async fn renew<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        epoch: u64,
    ) -> RedisResult<bool> {
        let held: u8 = self.call(con, "renew", epoch).await?;
        Ok(held == 1)
    }

    /// Gives the lease up (a clean shutdown), so another node takes over at
    /// once rather than after the lease runs out.
    pub async fn release<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        epoch: u64,
    ) -> RedisResult<bool> {
        let held: u8 = self.call(con, "release", epoch).await?;
        Ok(held == 1)
    }

    /// A script run by the leader: `body` after the fencing check, with
    /// the epoch key as `KEYS[1]` and the epoch as `ARGV[1]` (so the body's
    /// own keys start at `KEYS[2]` and its arguments at `ARGV[2]`). The
    /// body should begin with `if fenced() then return
    /// redis.error_reply('FENCED') end`.
    pub fn fenced(body: &str) -> Script {
        Script::new(&format!("{}\n{body}", include_str!("lua/fence.lua")))
    }
}

/// Whether a script's error is the fencing refusal.
pub fn is_fenced(error: &redis::RedisError) -> bool {
    error.code() == Some(FENCED) || error.to_string().contains(FENCED)
}
