//! Reading transcripts: checking them without a key, opening them with
//! one, and cutting off a tail torn by a crash.

use std::path::Path;

use crate::format::{Body, HEADER_LEN, Kind, MAGIC, PREV_LEN, Record, inner, link};
use crate::keys::Identity;

/// What a transcript is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record in order, ending with `end`.
    Complete,
    /// In order as far as it goes, but without `end`: the session was still
    /// going, the broker stopped, or a crash tore the last record (the
    /// torn bytes are not counted as records).
    Truncated,
    /// Altered: see the damage.
    Tampered(Damage),
}

/// Where and how a transcript was found altered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The record (from 1) where it shows.
    pub record: u64,
    /// What is wrong.
    pub why: String,
}

/// A transcript, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The session id.
    pub session: [u8; 16],
    /// The records that checked out, in order (opened ones only with an
    /// identity).
    pub records: Vec<Record>,
    /// What the transcript is.
    pub verdict: Verdict,
    /// Bytes of the intact prefix (header and whole, chained records).
    pub intact: usize,
}

struct Frame<'a> {
    bytes: &'a [u8],
    kid: &'a str,
    seq: u64,
    kind: Kind,
    prev: [u8; PREV_LEN],
    sealed: &'a [u8],
}

enum End {
    /// The data ends exactly after a record.
    Clean,
    /// The last record is cut short.
    Torn,
    /// A record does not parse.
    Malformed(String),
}

fn tampered(record: u64, why: impl Into<String>) -> Verdict {
    Verdict::Tampered(Damage {
        record,
        why: why.into(),
    })
}

/// Splits `data` after the header into records.
fn frames(data: &[u8]) -> (Vec<Frame<'_>>, End) {
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        let Some(len) = data
            .get(pos..pos + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return (out, End::Torn);
        };
        let Some(rest) = data.get(pos + 4..pos + 4 + len) else {
            return (out, End::Torn);
        };
        let bytes = &data[pos..pos + 4 + len];
        let parsed = (|| {
            let kid_len = usize::from(*rest.first()?);
            let kid = std::str::from_utf8(rest.get(1..1 + kid_len)?).ok()?;
            let at = 1 + kid_len;
            let seq = u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?);
            let kind = Kind::from_byte(*rest.get(at + 8)?)?;
            let prev: [u8; PREV_LEN] = rest.get(at + 9..at + 9 + PREV_LEN)?.try_into().ok()?;
            let sealed = rest.get(at + 9 + PREV_LEN..)?;
            Some(Frame {
                bytes,
                kid,
                seq,
                kind,
                prev,
                sealed,
            })
        })();
        match parsed {
            Some(frame) => out.push(frame),
            None => {
                return (
                    out,
                    End::Malformed("a record's header does not parse".into()),
                );
            }
        }
        pos += 4 + len;
    }
    (out, End::Clean)
}

/// Checks order and chain; returns the verdict and how many records and
/// bytes are intact.
fn check<'a>(data: &'a [u8]) -> Result<([u8; 16], Vec<Frame<'a>>, Verdict, usize), Verdict> {
    if data.len() < HEADER_LEN || &data[..8] != MAGIC {
        return Err(tampered(0, "not a Haven transcript (bad header)"));
    }
    let mut session = [0u8; 16];
    session.copy_from_slice(&data[8..HEADER_LEN]);
    let (frames, end) = frames(data);
    let mut prev = [0u8; PREV_LEN];
    let mut intact = HEADER_LEN;
    let mut ended = false;
    let mut broken = None;
    for (i, f) in frames.iter().enumerate() {
        let n = i as u64 + 1;
        if ended {
            broken = Some(tampered(n, "a record after the end"));
        } else if f.seq != n {
            broken = Some(tampered(
                n,
                format!(
                    "record number {} where {n} belongs: deleted, duplicated or reordered",
                    f.seq
                ),
            ));
        } else if f.prev != prev {
            broken = Some(tampered(n, "the chain to the previous record is broken"));
        }
        if broken.is_some() {
            break;
        }
        prev = link(f.bytes);
        intact += f.bytes.len();
        ended = f.kind == Kind::End;
    }
    let verdict = match (broken, end) {
        (Some(verdict), _) => verdict,
        (None, End::Malformed(why)) => tampered(frames.len() as u64 + 1, why),
        (None, End::Torn) => Verdict::Truncated,
        (None, End::Clean) if ended => Verdict::Complete,
        (None, End::Clean) => Verdict::Truncated,
    };
    Ok((session, frames, verdict, intact))
}

/// Checks a transcript without any key: the header, every record's
/// number and chain, a torn tail, and whether it ends with `end`. It
/// cannot see inside records: [`read`] with the identity also proves no
/// byte was changed.
pub fn verify(data: &[u8]) -> Opened {
    match check(data) {
        Err(verdict) => Opened {
            session: [0; 16],
            records: Vec::new(),
            verdict,
            intact: 0,
        },
        Ok((session, _, verdict, intact)) => Opened {
            session,
            records: Vec::new(),
            verdict,
            intact,
        },
    }
}

/// Opens a transcript with the identities it may be sealed to (several
/// after a key rotation), checking everything [`verify`] does and that
/// each record opens and names its own session, number, kind and
/// predecessor.
pub fn read(data: &[u8], identities: &[Identity]) -> Opened {
    let (session, frames, mut verdict, intact) = match check(data) {
        Err(verdict) => {
            return Opened {
                session: [0; 16],
                records: Vec::new(),
                verdict,
                intact: 0,
            };
        }
        Ok(checked) => checked,
    };
    let mut records = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let n = i as u64 + 1;
        if let Verdict::Tampered(d) = &verdict
            && n >= d.record
        {
            break;
        }
        let Some(identity) = identities.iter().find(|id| id.recipient().kid() == f.kid) else {
            verdict = tampered(n, format!("sealed to key {}, which was not given", f.kid));
            break;
        };
        let Ok(plain) = identity.secret().unseal(f.sealed) else {
            verdict = tampered(n, "does not open: altered");
            break;
        };
        let head = 16 + 8 + 1 + PREV_LEN + 8;
        let expected = inner(&session, f.seq, f.kind, &f.prev, 0, &[]);
        if plain.len() < head || plain[..head - 8] != expected[..head - 8] {
            verdict = tampered(n, "belongs to another session or place");
            break;
        }
        let at = u64::from_le_bytes(plain[head - 8..head].try_into().unwrap_or([0; 8]));
        let Ok(body) = serde_json::from_slice::<Body>(&plain[head..]) else {
            verdict = tampered(n, "its content does not parse");
            break;
        };
        records.push(Record {
            seq: f.seq,
            kind: f.kind,
            at,
            kid: f.kid.to_owned(),
            body,
        });
    }
    Opened {
        session,
        records,
        verdict,
        intact,
    }
}

/// Cuts a torn last record off a transcript file (after a crash), so the
/// file is its intact prefix again and can be appended to. Returns the
/// verdict; a tampered file is left as it is.
pub fn recover(path: &Path) -> std::io::Result<Opened> {
    let data = std::fs::read(path)?;
    let opened = verify(&data);
    if opened.verdict == Verdict::Truncated && opened.intact < data.len() {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(opened.intact as u64)?;
        file.sync_all()?;
    }
    Ok(opened)
}
