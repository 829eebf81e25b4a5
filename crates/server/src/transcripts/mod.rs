//! Writing encrypted transcripts: one append-only file per session, each
//! record sealed to the configured recipient (a public key), so the broker
//! can write transcripts but never read them. The format and the sealing
//! are in `haven-transcript`; this is the IO around them.
//!
//! - **Where:** `<data_dir>/transcripts/<topic>/<session>.open` while the
//!   session lasts, renamed to `<session>.haven` once its end record is
//!   written (or, after a crash, once recovery has cut off a torn tail).
//! - **Who writes:** a few writer threads ([`writer`]), each owning a share
//!   of the sessions. A session's records go to its thread in the order
//!   they were taken under the session's lock, so they are sealed and
//!   numbered in conversation order.
//! - **Acknowledgements:** a chat message is relayed at once, but its
//!   sender's ack runs only after the batch holding its record was synced
//!   (group commit). A retry of a message still being written waits for
//!   the same sync.
//! - **Back-pressure:** each thread takes at most [`PENDING`] chat
//!   messages at a time; beyond that a message is refused with
//!   `peer_backlog_full` and the sender retries. Session events (start,
//!   joins, transfers, end) are never refused.
//! - **Failure:** a write or sync error stops that session's transcript
//!   (the chat goes on), tells its counsellors, and counts in
//!   `haven_transcript_errors_total`. Nothing panics.

pub(crate) mod retention;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use haven_core::SessionId;
use haven_transcript::{Body, Kind, Recipient, Verdict};
use tracing::{info, warn};

/// Runs once a record is durable (or its transcript stopped).
pub(crate) type Then = Box<dyn FnOnce() + Send>;
/// Runs when a session's transcript stops on an error.
pub(crate) type Failed = Box<dyn FnOnce() + Send>;

/// Chat messages one writer thread holds before refusing more.
const PENDING: usize = 8192;

/// The file name of a transcript still being written.
const OPEN_EXT: &str = "open";
/// The file name of a finished transcript.
pub(crate) const DONE_EXT: &str = "haven";

/// Counts for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) errors: AtomicU64,
}

enum Job {
    /// Create the session's file and write its start record.
    Open {
        session: SessionId,
        topic: String,
        at: u64,
        start: Body,
        failed: Failed,
    },
    Record {
        session: SessionId,
        kind: Kind,
        at: u64,
        body: Body,
        then: Option<Then>,
        /// Holds one of [`PENDING`]'s places.
        counted: bool,
    },
    /// Run `then` after everything queued before it is durable.
    After {
        then: Then,
        counted: bool,
    },
    Rotate(Arc<Recipient>),
    Stop,
}

struct Shard {
    jobs: Sender<Job>,
    pending: Arc<AtomicUsize>,
}

/// The transcript writers.
pub(crate) struct Transcripts {
    dir: PathBuf,
    stats: Arc<Stats>,
    shards: Vec<Arc<Shard>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Transcripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcripts")
            .field("dir", &self.dir)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Transcripts {
    /// Recovers what a crash left unfinished under `dir`, then starts the
    /// writers, sealing to `recipient`.
    pub(crate) fn start(dir: PathBuf, recipient: Recipient) -> std::io::Result<Arc<Self>> {
        crate::private::create_dir(&dir)?;
        recover_all(&dir);
        let recipient = Arc::new(recipient);
        let stats = Arc::new(Stats::default());
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        let mut shards = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = channel();
            let pending = Arc::new(AtomicUsize::new(0));
            let w = writer::Writer::new(
                dir.clone(),
                recipient.clone(),
                pending.clone(),
                stats.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("transcripts-{i}"))
                .spawn(move || w.run(&rx))?;
            shards.push(Arc::new(Shard { jobs: tx, pending }));
            threads.push(thread);
        }
        info!(dir = %dir.display(), kid = recipient.kid(), writers = n, "transcripts on");
        Ok(Arc::new(Self {
            dir,
            stats,
            shards,
            threads: Mutex::new(threads),
        }))
    }

    /// Starts recording a session: creates its file under `topic` with a
    /// start record. `failed` runs (on a writer thread) if the transcript
    /// stops on an error.
    pub(crate) fn open(
        &self,
        session: SessionId,
        topic: &str,
        at: u64,
        start: Body,
        failed: Failed,
    ) -> Recording {
        let shard = self.shards[shard_of(session, self.shards.len())].clone();
        let _ = shard.jobs.send(Job::Open {
            session,
            topic: topic.to_owned(),
            at,
            start,
            failed,
        });
        Recording { session, shard }
    }

    /// Seals every record queued from now on to `recipient`.
    pub(crate) fn rotate(&self, recipient: Recipient) {
        let recipient = Arc::new(recipient);
        for shard in &self.shards {
            let _ = shard.jobs.send(Job::Rotate(recipient.clone()));
        }
    }

    /// Ends the transcripts still open ("the server stopped") and waits
    /// for the writers to finish. Blocking: call it off the runtime.
    pub(crate) fn stop(&self) {
        for shard in &self.shards {
            let _ = shard.jobs.send(Job::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// What was written, for `/metrics`.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The directory transcripts are written under.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

fn shard_of(session: SessionId, n: usize) -> usize {
    // Session ids are random: any bits spread evenly.
    (session.0 % n as u128) as usize
}

/// One session's transcript, held in its cell.
#[derive(Clone)]
pub(crate) struct Recording {
    session: SessionId,
    shard: Arc<Shard>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recording")
    }
}

impl Recording {
    /// A place for one chat message, or `None` when the writer is too far
    /// behind (the message must be refused, to be retried).
    pub(crate) fn reserve(&self) -> Option<Reserved> {
        let pending = &self.shard.pending;
        if pending.fetch_add(1, Ordering::AcqRel) >= PENDING {
            pending.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Reserved {
            recording: self.clone(),
            used: false,
        })
    }

    /// Records a session event (never refused).
    pub(crate) fn event(&self, kind: Kind, at: u64, body: Body) {
        let _ = self.shard.jobs.send(Job::Record {
            session: self.session,
            kind,
            at,
            body,
            then: None,
            counted: false,
        });
    }

    /// Records the end: the transcript is complete.
    pub(crate) fn end(&self, at: u64, reason: &str) {
        self.event(Kind::End, at, writer::end_body(reason));
    }
}

/// A reserved place for one chat message.
pub(crate) struct Reserved {
    recording: Recording,
    used: bool,
}

impl Reserved {
    /// Records a message; `then` runs once it is durable.
    pub(crate) fn record(mut self, at: u64, body: Body, then: Then) {
        self.used = true;
        let r = &self.recording;
        let _ = r.shard.jobs.send(Job::Record {
            session: r.session,
            kind: Kind::Message,
            at,
            body,
            then: Some(then),
            counted: true,
        });
    }

    /// Runs `then` once what was queued before is durable (a retry of a
    /// message that may still be on its way to disk).
    pub(crate) fn after(mut self, then: Then) {
        self.used = true;
        let _ = self.recording.shard.jobs.send(Job::After {
            then,
            counted: true,
        });
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if !self.used {
            self.recording.shard.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The file of a transcript being written (renamed to `DONE_EXT` once
/// finished).
fn open_file_name(session: SessionId) -> String {
    format!("{session}.{OPEN_EXT}")
}

/// Recovers the transcripts a crash left open: cuts off a torn last record
/// and marks the file finished. Logs counts only.
fn recover_all(dir: &Path) {
    let (mut intact, mut cut, mut tampered, mut failed) = (0u32, 0u32, 0u32, 0u32);
    for path in files(dir, OPEN_EXT) {
        let before = std::fs::metadata(&path).map(|m| m.len()).ok();
        match haven_transcript::recover(&path) {
            Ok(opened) => {
                match opened.verdict {
                    Verdict::Tampered(_) => tampered += 1,
                    _ if before.is_some_and(|len| len > opened.intact as u64) => cut += 1,
                    _ => intact += 1,
                }
                if std::fs::rename(&path, path.with_extension(DONE_EXT)).is_err() {
                    failed += 1;
                }
            }
            Err(_) => failed += 1,
        }
    }
    if intact + cut + tampered + failed > 0 {
        info!(
            intact,
            torn_tail_cut = cut,
            tampered,
            failed,
            "transcripts left open by the last run recovered"
        );
    }
    if tampered + failed > 0 {
        warn!(
            tampered,
            failed, "some unfinished transcripts could not be recovered cleanly"
        );
    }
}

/// The files with extension `ext` in each topic directory under `dir`.
pub(crate) fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(topics) = std::fs::read_dir(dir) else {
        return out;
    };
    for topic in topics.flatten() {
        let Ok(entries) = std::fs::read_dir(topic.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out
}
