//! Transcript keys for a test, and waiting for the files a server writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use haven_transcript::Identity;

/// A key pair for a test: the identity in a file outside the server's
/// data dir, and the recipient the server gets.
pub(crate) struct Keys {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) identity: Identity,
    pub(crate) recipient: String,
}

impl Keys {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate();
        std::fs::write(dir.path().join("identity.txt"), identity.to_text()).unwrap();
        let recipient = identity.recipient().to_text();
        Self {
            dir,
            identity,
            recipient,
        }
    }

    pub(crate) fn file(&self) -> PathBuf {
        self.dir.path().join("identity.txt")
    }

    /// Opens a transcript with this identity.
    pub(crate) fn read(&self, data: &[u8]) -> haven_transcript::Opened {
        let identity = Identity::parse(&self.identity.to_text()).unwrap();
        haven_transcript::read(data, &[identity])
    }
}

/// Waits until the finished transcript of `session` exists, and returns
/// its path.
pub(crate) async fn finished(data: &Path, topic: &str, session: &str) -> PathBuf {
    let path = data
        .join("transcripts")
        .join(topic)
        .join(format!("{session}.haven"));
    for _ in 0..200 {
        if path.exists() {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no finished transcript at {}", path.display());
}

/// Every file under `dir`, recursively.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
