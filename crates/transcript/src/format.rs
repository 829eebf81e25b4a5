//! The record format, and sealing records.

use crypto_box::aead::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::Recipient;

/// The first bytes of every transcript file.
pub const MAGIC: &[u8; 8] = b"HAVENTR\x01";
/// Bytes of the file header: magic and session id.
pub(crate) const HEADER_LEN: usize = 8 + 16;
/// Bytes of the chain link.
pub(crate) const PREV_LEN: usize = 16;

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The session started: the help-seeker arrived.
    Start,
    /// A chat message, from either side.
    Message,
    /// The session was handed on.
    Transfer,
    /// A counsellor took the session, or a supervisor joined visibly.
    Join,
    /// A counsellor or supervisor left.
    Leave,
    /// Something about the transcript itself (for example a write error
    /// ended it early).
    Notice,
    /// The session ended: the transcript is complete.
    End,
}

impl Kind {
    pub(crate) fn byte(self) -> u8 {
        match self {
            Kind::Start => 1,
            Kind::Message => 2,
            Kind::Transfer => 3,
            Kind::Join => 4,
            Kind::Leave => 5,
            Kind::Notice => 6,
            Kind::End => 255,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::Start,
            2 => Kind::Message,
            3 => Kind::Transfer,
            4 => Kind::Join,
            5 => Kind::Leave,
            6 => Kind::Notice,
            255 => Kind::End,
            _ => return None,
        })
    }
}

/// Who a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The help-seeker.
    Seeker,
    /// A counsellor.
    Counsellor,
    /// A supervisor (coordinator).
    Supervisor,
}

/// What a record says, as stored (JSON inside the seal).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Body {
    /// Who wrote, joined or left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Their display name (counsellors and supervisors; the help-seeker's
    /// nickname is in the start record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The help-seeker's nickname as they gave it (start only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// The topic (start and transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// To whom, for a transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The text of a message or notice, or the reason of an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The message's sequence number in its direction, for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One record, opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the transcript, from 1.
    #[serde(rename = "record")]
    pub seq: u64,
    /// What it is.
    pub kind: Kind,
    /// When it was written, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The key it was sealed to.
    pub kid: String,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// The file header for a session.
pub fn file_header(session: [u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&session);
    out
}

/// The chain link to a record: the first 16 bytes of its SHA-256.
pub(crate) fn link(record: &[u8]) -> [u8; PREV_LEN] {
    let digest = Sha256::digest(record);
    let mut out = [0u8; PREV_LEN];
    out.copy_from_slice(&digest[..PREV_LEN]);
    out
}

/// The plaintext sealed in a record.
pub(crate) fn inner(
    session: &[u8; 16],
    seq: u64,
    kind: Kind,
    prev: &[u8; PREV_LEN],
    at: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 8 + 1 + PREV_LEN + 8 + body.len());
    out.extend_from_slice(session);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(kind.byte());
    out.extend_from_slice(prev);
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Sealing a record failed (the system's randomness was not available).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a transcript record could not be sealed")]
pub struct SealError;

/// Seals the records of one session in order. Holds only public data: the
/// session id, the next number and the last record's link.
#[derive(Debug)]
pub struct Sealer {
    session: [u8; 16],
    next: u64,
    prev: [u8; PREV_LEN],
}

impl Sealer {
    /// For a new transcript (after its [`file_header`]).
    pub fn new(session: [u8; 16]) -> Self {
        Self {
            session,
            next: 1,
            prev: [0; PREV_LEN],
        }
    }

    /// The number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// One record, ready to append, sealed to `to`.
    ///
    /// On failure nothing changes: the next record gets the same number.
    pub fn seal(
        &mut self,
        to: &Recipient,
        kind: Kind,
        at: u64,
        body: &Body,
    ) -> Result<Vec<u8>, SealError> {
        let body = serde_json::to_vec(body).map_err(|_| SealError)?;
        let plain = inner(&self.session, self.next, kind, &self.prev, at, &body);
        let sealed = to
            .public()
            .seal(&mut OsRng, &plain)
            .map_err(|_| SealError)?;
        let kid = to.kid().as_bytes();
        let kid_len = u8::try_from(kid.len()).unwrap_or(u8::MAX);
        let rest = 1 + usize::from(kid_len) + 8 + 1 + PREV_LEN + sealed.len();
        let mut record = Vec::with_capacity(4 + rest);
        record.extend_from_slice(&u32::try_from(rest).unwrap_or(u32::MAX).to_le_bytes());
        record.push(kid_len);
        record.extend_from_slice(&kid[..usize::from(kid_len)]);
        record.extend_from_slice(&self.next.to_le_bytes());
        record.push(kind.byte());
        record.extend_from_slice(&self.prev);
        record.extend_from_slice(&sealed);
        self.prev = link(&record);
        self.next += 1;
        Ok(record)
    }
}
