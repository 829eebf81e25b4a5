//! Golden fixtures: one JSON file per message variant under `fixtures/`.
//!
//! Each fixture must parse into its enum, serialize back to the same JSON,
//! and carry the `type` its file is named after. The set of fixtures must
//! equal the set of variants serde knows, so a new variant without a
//! fixture (or a stale fixture) fails here. `docs/protocol.md` must quote
//! every fixture verbatim, so the document cannot drift from the code.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use haven_protocol::{counsellor, events, seeker};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(sub)
}

/// Reads every fixture in `sub` as `(type name, compact JSON text)`.
fn fixtures(sub: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture_dir(sub)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap().trim().to_owned();
        out.push((name, text));
    }
    out.sort();
    out
}

/// The variant names serde itself knows, read from its "unknown variant"
/// error so the list cannot be maintained by hand.
fn serde_variants<T: DeserializeOwned>() -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(r#"{"type": "\u0000"}"#)
        .err()
        .unwrap()
        .to_string();
    let list = err.split("expected one of ").nth(1).unwrap();
    list.split(", ")
        .map(|s| s.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .map(|s| s.split('`').next().unwrap().to_owned())
        .collect()
}

fn check<T>(sub: &str, types: &[&str], type_name: fn(&T) -> &'static str)
where
    T: DeserializeOwned + Serialize + std::fmt::Debug,
{
    let files = fixtures(sub);
    let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let declared: BTreeSet<String> = types.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(names, declared, "{sub}: fixtures differ from TYPES");
    assert_eq!(
        serde_variants::<T>(),
        declared,
        "{sub}: TYPES differ from the enum"
    );

    for (name, text) in files {
        let msg: T = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{sub}/{name}.json does not parse: {e}"));
        assert_eq!(type_name(&msg), name, "{sub}/{name}.json");
        let back = serde_json::to_value(&msg).unwrap();
        let want: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, want, "{sub}/{name}.json does not round-trip");
    }
}

#[test]
fn seeker_client_messages() {
    check::<seeker::ClientMessage>(
        "seeker/client",
        seeker::ClientMessage::TYPES,
        seeker::ClientMessage::type_name,
    );
}

#[test]
fn seeker_server_messages() {
    check::<seeker::ServerMessage>(
        "seeker/server",
        seeker::ServerMessage::TYPES,
        seeker::ServerMessage::type_name,
    );
}

#[test]
fn counsellor_client_messages() {
    check::<counsellor::ClientMessage>(
        "counsellor/client",
        counsellor::ClientMessage::TYPES,
        counsellor::ClientMessage::type_name,
    );
}

#[test]
fn counsellor_server_messages() {
    check::<counsellor::ServerMessage>(
        "counsellor/server",
        counsellor::ServerMessage::TYPES,
        counsellor::ServerMessage::type_name,
    );
}

#[test]
fn events() {
    let files = fixtures("events");
    let names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let declared: BTreeSet<String> = events::Event::TYPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(names, declared, "events: fixtures differ from TYPES");
    assert_eq!(serde_variants::<events::Event>(), declared);
    for (name, text) in files {
        let record: events::Record = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("events/{name}.json does not parse: {e}"));
        assert_eq!(record.event.type_name(), name);
        let back = serde_json::to_value(&record).unwrap();
        let want: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, want, "events/{name}.json does not round-trip");
    }
}

#[test]
fn events_document_quotes_every_fixture() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let missing: Vec<String> = fixtures("events")
        .into_iter()
        .filter(|(_, text)| !doc.contains(text.as_str()))
        .map(|(name, _)| format!("events/{name}.json"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/events.md lacks these fixtures verbatim: {missing:?}"
    );
}

#[test]
fn protocol_document_quotes_every_fixture() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let mut missing = Vec::new();
    for sub in [
        "seeker/client",
        "seeker/server",
        "counsellor/client",
        "counsellor/server",
    ] {
        for (name, text) in fixtures(sub) {
            if !doc.contains(&text) {
                missing.push(format!("{sub}/{name}.json"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md lacks these fixtures verbatim: {missing:?}"
    );
}

#[test]
fn protocol_document_lists_every_close_and_error_code() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    for code in haven_protocol::CloseCode::ALL {
        assert!(
            doc.contains(&format!("| {} | `{}` |", code.code(), code.reason())),
            "{code:?} missing"
        );
    }
    let err = serde_json::from_str::<haven_protocol::ErrorCode>("\"\\u0000\"")
        .unwrap_err()
        .to_string();
    let list = err.split("expected one of ").nth(1).unwrap();
    for name in list.split(", ") {
        let name = name
            .trim()
            .trim_start_matches('`')
            .split('`')
            .next()
            .unwrap();
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "error code {name} missing"
        );
    }
}

#[test]
fn redacting_debug_never_prints_secrets() {
    let msg: seeker::ClientMessage =
        serde_json::from_str(r#"{"type":"send","id":"x","text":"canary-7731"}"#).unwrap();
    assert!(!format!("{msg:?}").contains("canary-7731"));
    let msg: seeker::ClientMessage =
        serde_json::from_str(r#"{"type":"resume","token":"tok-canary","last_seq":0}"#).unwrap();
    assert!(!format!("{msg:?}").contains("tok-canary"));
}
