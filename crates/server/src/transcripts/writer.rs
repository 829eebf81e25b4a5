//! One transcript writer thread: seals records, appends them to their
//! session's file and syncs a whole batch at once (group commit).
//!
//! A thread of its own, not a task: sealing is CPU work (an X25519
//! exchange per record) and syncing blocks, and neither may hold up a
//! runtime worker that other sessions' sockets run on.
//!
//! The loop: wait for a job, take every job already queued (up to
//! [`BATCH`]), seal each record into its session's buffer, write each
//! buffer with one `write`, make the batch durable with one sync, and only
//! then run the batch's acknowledgements, in order. While one batch syncs,
//! the next one queues up, so a busy server syncs less often per record,
//! not more.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use haven_core::SessionId;
use haven_transcript::{Body, Kind, Recipient, Sealer, file_header};
use tracing::{debug, warn};

use super::{Failed, Job, Stats, Then};

/// The most jobs one batch takes.
const BATCH: usize = 4096;

/// One open transcript.
struct Open {
    file: File,
    path: PathBuf,
    sealer: Sealer,
    /// Sealed records waiting for this batch's write.
    buf: Vec<u8>,
    /// Tells the session its transcript stopped.
    failed: Option<Failed>,
    /// The end record is in `buf`: close after this batch.
    ending: bool,
}

pub(super) struct Writer {
    dir: PathBuf,
    recipient: Arc<Recipient>,
    /// Open transcripts. A session whose transcript stopped on an error is
    /// no longer here: its later records are dropped (their
    /// acknowledgements still run).
    open: HashMap<SessionId, Open>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
    stats: Arc<Stats>,
}

impl Writer {
    pub(super) fn new(
        dir: PathBuf,
        recipient: Arc<Recipient>,
        pending: Arc<std::sync::atomic::AtomicUsize>,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            dir,
            recipient,
            open: HashMap::new(),
            pending,
            stats,
        }
    }

    /// Runs until told to stop or every sender is gone; then ends the
    /// transcripts still open.
    pub(super) fn run(mut self, jobs: &Receiver<Job>) {
        let mut batch = Vec::new();
        let mut thens: Vec<Then> = Vec::new();
        let mut stop = false;
        while !stop {
            let Ok(first) = jobs.recv() else { break };
            batch.push(first);
            while batch.len() < BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            for job in batch.drain(..) {
                stop |= self.take(job, &mut thens);
            }
            self.commit();
            for then in thens.drain(..) {
                then();
            }
        }
        // Whatever was still open ends here: the server is stopping.
        let open: Vec<SessionId> = self.open.keys().copied().collect();
        for session in open {
            self.seal(
                session,
                Kind::End,
                now_ms(),
                &end_body("the server stopped"),
            );
            if let Some(t) = self.open.get_mut(&session) {
                t.ending = true;
            }
        }
        self.commit();
    }

    /// Takes one job into the batch; returns whether it says stop.
    fn take(&mut self, job: Job, thens: &mut Vec<Then>) -> bool {
        match job {
            Job::Open {
                session,
                topic,
                at,
                start,
                failed,
            } => self.open(session, &topic, at, &start, failed),
            Job::Record {
                session,
                kind,
                at,
                body,
                then,
                counted,
            } => {
                if counted {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                }
                self.seal(session, kind, at, &body);
                if kind == Kind::End
                    && let Some(t) = self.open.get_mut(&session)
                {
                    t.ending = true;
                }
                if let Some(then) = then {
                    thens.push(then);
                }
            }
            Job::After { then, counted } => {
                if counted {
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                }
                thens.push(then);
            }
            Job::Rotate(recipient) => {
                debug!(kid = recipient.kid(), "transcripts: new recipient");
                self.recipient = recipient;
            }
            Job::Stop => return true,
        }
        false
    }

    fn open(&mut self, session: SessionId, topic: &str, at: u64, start: &Body, failed: Failed) {
        let dir = self.dir.join(topic);
        let path = dir.join(super::open_file_name(session));
        match create(&dir, &path, session) {
            Ok(file) => {
                self.open.insert(
                    session,
                    Open {
                        file,
                        path,
                        sealer: Sealer::new(session_bytes(session)),
                        buf: Vec::new(),
                        failed: Some(failed),
                        ending: false,
                    },
                );
                self.seal(session, Kind::Start, at, start);
            }
            Err(e) => {
                warn!(session = %session, error = %e, "transcript could not be created; this session is not recorded");
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                failed();
            }
        }
    }

    /// Seals a record into its session's buffer.
    fn seal(&mut self, session: SessionId, kind: Kind, at: u64, body: &Body) {
        let Some(t) = self.open.get_mut(&session) else {
            return;
        };
        match t.sealer.seal(&self.recipient, kind, at, body) {
            Ok(record) => {
                self.stats.records.fetch_add(1, Ordering::Relaxed);
                t.buf.extend_from_slice(&record);
            }
            Err(e) => {
                warn!(session = %session, error = %e, "transcript record could not be sealed");
                self.fail(session);
            }
        }
    }

    /// Writes every buffer and syncs them together; sessions whose write
    /// fails lose their transcript (not their chat).
    fn commit(&mut self) {
        let mut written = Vec::new();
        let mut broken = Vec::new();
        for (session, t) in &mut self.open {
            if t.buf.is_empty() {
                continue;
            }
            match t.file.write_all(&t.buf) {
                Ok(()) => {
                    self.stats
                        .bytes
                        .fetch_add(t.buf.len() as u64, Ordering::Relaxed);
                    written.push(*session);
                }
                Err(e) => {
                    warn!(session = %session, error = %e, "transcript write failed");
                    broken.push(*session);
                }
            }
            t.buf.clear();
        }
        if !written.is_empty() {
            let synced = sync(&self.dir, written.iter().filter_map(|s| self.open.get(s)));
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = synced {
                warn!(error = %e, sessions = written.len(), "transcript sync failed");
                broken.append(&mut written);
            }
        }
        for session in broken {
            self.fail(session);
        }
        // Finished transcripts (their end record now durable) get their
        // final name; if a crash comes first, recovery renames them.
        self.open.retain(|_, t| {
            if t.ending {
                let _ = std::fs::rename(&t.path, t.path.with_extension(super::DONE_EXT));
            }
            !t.ending
        });
    }

    /// Stops a session's transcript after an error: the file keeps its
    /// intact prefix (without an end record, so it reads as truncated), the
    /// session is told, the error is counted.
    fn fail(&mut self, session: SessionId) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(mut t) = self.open.remove(&session) {
            // Finished, as far as it goes: it reads as truncated.
            let _ = std::fs::rename(&t.path, t.path.with_extension(super::DONE_EXT));
            if let Some(failed) = t.failed.take() {
                failed();
            }
        }
    }
}

/// Creates a new transcript file (never reusing one) with its header.
fn create(dir: &Path, path: &Path, session: SessionId) -> std::io::Result<File> {
    crate::private::create_dir(dir)?;
    let mut file = crate::private::file_options()
        .append(true)
        .create_new(true)
        .open(path)?;
    file.write_all(&file_header(session_bytes(session)))?;
    Ok(file)
}

/// Makes the batch durable. On Linux one `syncfs` covers every file (and
/// the directory entries of new ones) on the transcripts' file system; in
/// other places each file is synced.
#[cfg(target_os = "linux")]
fn sync<'a>(dir: &Path, _files: impl Iterator<Item = &'a Open>) -> std::io::Result<()> {
    let handle = File::open(dir)?;
    rustix::fs::syncfs(&handle)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync<'a>(_dir: &Path, files: impl Iterator<Item = &'a Open>) -> std::io::Result<()> {
    for t in files {
        t.file.sync_data()?;
    }
    Ok(())
}

fn session_bytes(session: SessionId) -> [u8; 16] {
    session.0.to_be_bytes()
}

pub(super) fn end_body(reason: &str) -> Body {
    Body {
        text: Some(reason.to_owned()),
        ..Body::default()
    }
}

fn now_ms() -> u64 {
    crate::broker::session::now_ms()
}
