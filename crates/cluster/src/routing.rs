//! The router's state in Redis, so that whichever node leads next carries
//! on where the last one stopped.
//!
//! The leader keeps the router in memory and, after each step (a batch of
//! inputs, or timers that fired), commits in one fenced script: the
//! records of the router's snapshot that changed (one hash field per
//! session, counsellor and return code, and one for the rest), the effects
//! for the nodes to carry out, and the id of the last input it applied.
//! A step is therefore all or nothing: a leader that dies before its
//! commit leaves the inputs of that step unapplied and no effect of it
//! sent, and its successor applies them; one that stalled and lost the
//! lease is refused ([`crate::FENCED`]).
//!
//! Nodes hand inputs to the leader through one stream and read the
//! effects from another. Both hold ids and counts only; nothing a person
//! wrote passes through them.

use std::collections::BTreeMap;

use haven_core::router::{CounsellorSnapshot, Offset, RouterSnapshot, SeekerSnapshot};
use haven_core::{CounsellorId, Gate};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};
use serde::{Deserialize, Serialize};

use crate::Lease;

/// Effects kept for nodes that fell behind (approximately).
const EFFECTS_KEPT: usize = 100_000;
/// Inputs kept (approximately); applied ones are of no further use.
const INPUTS_KEPT: usize = 100_000;

/// What is stored besides the records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Globals {
    /// The router's origin on the wall clock, ms since the Unix epoch.
    origin_wall_ms: u64,
    topics: Vec<(Gate, bool)>,
    waits: Vec<Option<std::time::Duration>>,
    next_arrival: u64,
    tick: Option<Offset>,
}

/// The router as stored: its snapshot, its origin on the wall clock, and
/// the last input applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The router's state.
    pub snapshot: RouterSnapshot,
    /// When its origin was, in ms since the Unix epoch.
    pub origin_wall_ms: u64,
    /// The id of the last input applied, if any.
    pub applied: Option<String>,
}

/// The router's state, inputs and effects in Redis.
#[derive(Debug, Clone)]
pub struct RouterStore {
    epoch_key: String,
    state_key: String,
    inputs_key: String,
    effects_key: String,
    commit: Script,
}

fn fields(
    snapshot: &RouterSnapshot,
    origin_wall_ms: u64,
) -> serde_json::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in &snapshot.seekers {
        out.insert(format!("s:{:032x}", s.session.0), serde_json::to_string(s)?);
    }
    for c in &snapshot.counsellors {
        out.insert(format!("c:{}", c.id.0), serde_json::to_string(c)?);
    }
    for (code, c, until) in &snapshot.returns {
        out.insert(
            format!("r:{code:016x}"),
            serde_json::to_string(&(c, until))?,
        );
    }
    let globals = Globals {
        origin_wall_ms,
        topics: snapshot.topics.clone(),
        waits: snapshot.waits.clone(),
        next_arrival: snapshot.next_arrival,
        tick: snapshot.tick,
    };
    out.insert("g".to_owned(), serde_json::to_string(&globals)?);
    Ok(out)
}

fn parse_err(e: &serde_json::Error) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "stored router state",
        e.to_string(),
    ))
}

impl RouterStore {
    /// The store under `lease`'s keys (so a commit can check its epoch in
    /// the same atomic step).
    pub fn new(lease: &Lease) -> Self {
        let base = lease.epoch_key().trim_end_matches(":epoch");
        Self {
            epoch_key: lease.epoch_key().to_owned(),
            state_key: format!("{base}:state"),
            inputs_key: format!("{base}:inputs"),
            effects_key: format!("{base}:effects"),
            commit: Lease::fenced(include_str!("lua/commit.lua")),
        }
    }

    /// The stored router, if any leader ever committed one.
    pub async fn load<C: ConnectionLike + Send>(&self, con: &mut C) -> RedisResult<Option<Stored>> {
        let all: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.state_key)
            .query_async(con)
            .await?;
        let Some(globals) = all.get("g") else {
            return Ok(None);
        };
        let globals: Globals = serde_json::from_str(globals).map_err(|e| parse_err(&e))?;
        let mut seekers: Vec<SeekerSnapshot> = Vec::new();
        let mut counsellors: Vec<CounsellorSnapshot> = Vec::new();
        let mut returns = Vec::new();
        for (field, value) in &all {
            if field.starts_with("s:") {
                seekers.push(serde_json::from_str(value).map_err(|e| parse_err(&e))?);
            } else if field.starts_with("c:") {
                counsellors.push(serde_json::from_str(value).map_err(|e| parse_err(&e))?);
            } else if let Some(code) = field.strip_prefix("r:") {
                let code = u64::from_str_radix(code, 16).map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::Parse, "return code", e.to_string()))
                })?;
                let (c, until): (CounsellorId, Offset) =
                    serde_json::from_str(value).map_err(|e| parse_err(&e))?;
                returns.push((code, c, until));
            }
        }
        seekers.sort_unstable_by_key(|s| s.session);
        counsellors.sort_unstable_by_key(|c| c.id);
        returns.sort_unstable();
        Ok(Some(Stored {
            snapshot: RouterSnapshot {
                seekers,
                counsellors,
                topics: globals.topics,
                waits: globals.waits,
                returns,
                next_arrival: globals.next_arrival,
                tick: globals.tick,
            },
            origin_wall_ms: globals.origin_wall_ms,
            applied: all.get("applied").cloned(),
        }))
    }

    /// Commits one step of the leader under `epoch`: the records of `now`
    /// that differ from `before` (what was committed last; `None` for the
    /// first commit of this leader, which writes everything), the
    /// `effects`, and the last input `applied`. Returns the id of the last
    /// effect added. A stale epoch is refused with [`crate::FENCED`].
    #[allow(clippy::too_many_arguments)] // One atomic step's parts.
    pub async fn commit<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        epoch: u64,
        before: Option<&RouterSnapshot>,
        now: &RouterSnapshot,
        origin_wall_ms: u64,
        applied: Option<&str>,
        effects: &[Vec<u8>],
    ) -> RedisResult<String> {
        let next = fields(now, origin_wall_ms).map_err(|e| parse_err(&e))?;
        let (set, delete): (Vec<(&String, &String)>, Vec<String>) = match before {
            None => {
                // Whatever an older leader left that this one no longer
                // holds goes too.
                let stored: Vec<String> = redis::cmd("HKEYS")
                    .arg(&self.state_key)
                    .query_async(con)
                    .await?;
                let gone = stored
                    .into_iter()
                    .filter(|f| f != "applied" && !next.contains_key(f))
                    .collect();
                (next.iter().collect(), gone)
            }
            Some(before) => {
                let prev = fields(before, origin_wall_ms).map_err(|e| parse_err(&e))?;
                let set = next
                    .iter()
                    .filter(|(f, v)| prev.get(*f) != Some(*v))
                    .collect();
                let gone = prev
                    .keys()
                    .filter(|f| !next.contains_key(*f))
                    .cloned()
                    .collect();
                (set, gone)
            }
        };
        let mut call = self.commit.key(&self.epoch_key);
        call.key(&self.state_key)
            .key(&self.effects_key)
            .arg(epoch)
            .arg(applied.unwrap_or(""))
            .arg(EFFECTS_KEPT)
            .arg(set.len());
        for (f, v) in set {
            call.arg(f).arg(v);
        }
        call.arg(delete.len());
        for f in &delete {
            call.arg(f);
        }
        call.arg(effects.len());
        for e in effects {
            call.arg(&e[..]);
        }
        call.invoke_async(con).await
    }

    /// Hands an input to the leader; returns its id.
    pub async fn push_input<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        input: &[u8],
    ) -> RedisResult<String> {
        redis::cmd("XADD")
            .arg(&self.inputs_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(INPUTS_KEPT)
            .arg("*")
            .arg("i")
            .arg(input)
            .query_async(con)
            .await
    }

    /// Inputs after `after` (`None`: from the start), at most `count`,
    /// waiting up to `block_ms` for one when there are none (0: do not
    /// wait). Blocking needs a connection of its own.
    pub async fn inputs<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        after: Option<&str>,
        count: usize,
        block_ms: u64,
    ) -> RedisResult<Vec<(String, Vec<u8>)>> {
        read(con, &self.inputs_key, after, count, block_ms).await
    }

    /// Effects after `after` (`None`: only those added from now on when
    /// blocking, else from the start), as [`RouterStore::inputs`].
    pub async fn effects<C: ConnectionLike + Send>(
        &self,
        con: &mut C,
        after: Option<&str>,
        count: usize,
        block_ms: u64,
    ) -> RedisResult<Vec<(String, Vec<u8>)>> {
        read(con, &self.effects_key, after, count, block_ms).await
    }
}

type StreamReply = Option<Vec<(String, Vec<(String, Vec<(String, Vec<u8>)>)>)>>;

async fn read<C: ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    after: Option<&str>,
    count: usize,
    block_ms: u64,
) -> RedisResult<Vec<(String, Vec<u8>)>> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(count);
    if block_ms > 0 {
        cmd.arg("BLOCK").arg(block_ms);
    }
    cmd.arg("STREAMS").arg(key).arg(after.unwrap_or("0-0"));
    let reply: StreamReply = cmd.query_async(con).await?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .filter_map(|(id, mut fields)| fields.pop().map(|(_, value)| (id, value)))
        .collect())
}
