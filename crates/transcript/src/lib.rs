//! Haven's transcripts: written by the broker, readable only offline.
//!
//! The broker holds **recipients** (a key id and an X25519 public key) and
//! never an identity (the private key). Each record of a transcript is a
//! sealed box to the current recipient (an ephemeral X25519 key and
//! XSalsa20-Poly1305, 48 bytes of overhead). The sender cannot open what it
//! sealed, so nobody who takes the running broker can read a transcript.
//!
//! # File format
//!
//! One append-only file per session. It has an 8-byte magic `HAVENTR\x01`
//! and the 16-byte session id, then the records, each self-contained:
//!
//! ```text
//! len    u32 LE   bytes after this field
//! kid    u8 n, then n bytes: the recipient's key id (ASCII)
//! seq    u64 LE   1, 2, 3, … within the session
//! kind   u8       start, message, transfer, join, leave, notice, end
//! prev   16 bytes the first 16 bytes of SHA-256 of the previous record
//!                 (all of it, from `len`); zeros for the first
//! sealed          crypto_box seal of: session id, seq, kind, prev,
//!                 time (u64 LE ms), body (JSON)
//! ```
//!
//! The header fields in the clear let [`verify`] check order and
//! completeness without a key. The same fields inside the seal bind each
//! record to its session, place and predecessor, so with the identity
//! ([`read`]) any flipped bit, deleted, duplicated, reordered or spliced
//! record is caught. A final `end` record marks a complete transcript; a
//! record cut short by a crash is a torn tail, which [`recover`] cuts off.

mod format;
mod keys;
mod read;

pub use format::{Body, Kind, MAGIC, Record, Role, SealError, Sealer, file_header};
pub use keys::{IDENTITY_PREFIX, Identity, KeyError, RECIPIENT_PREFIX, Recipient, holds_identity};
pub use read::{Damage, Opened, Verdict, read, recover, verify};
