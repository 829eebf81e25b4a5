//! The core must stay free of IO crates. This walks Cargo.lock from
//! `haven-core` through every dependency (normal and dev, which the lock
//! file does not tell apart, so this is stricter than needed) and fails if
//! any forbidden crate is reachable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FORBIDDEN: &[&str] = &["tokio", "axum", "redis", "dashmap", "hyper", "mio"];

/// A minimal reader for the `[[package]]` tables of Cargo.lock.
fn lock_graph(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut graph = BTreeMap::new();
    let mut name: Option<String> = None;
    let mut deps: Vec<String> = Vec::new();
    let mut in_deps = false;
    for line in text.lines().chain(std::iter::once("[[package]]")) {
        let line = line.trim();
        if line == "[[package]]" {
            if let Some(n) = name.take() {
                graph.insert(n, std::mem::take(&mut deps));
            }
            in_deps = false;
        } else if let Some(rest) = line.strip_prefix("name = ") {
            name = Some(rest.trim_matches('"').to_owned());
        } else if let Some(rest) = line.strip_prefix("dependencies = [") {
            in_deps = !rest.ends_with(']');
            for entry in rest
                .trim_end_matches(']')
                .split(',')
                .filter(|e| !e.trim().is_empty())
            {
                let entry = entry.trim().trim_matches('"');
                deps.push(entry.split(' ').next().unwrap_or_default().to_owned());
            }
        } else if in_deps && line == "]" {
            in_deps = false;
        } else if in_deps {
            // Entries look like `"name"` or `"name 1.2.3"`.
            let entry = line.trim_end_matches(',').trim_matches('"');
            deps.push(entry.split(' ').next().unwrap_or_default().to_owned());
        }
    }
    graph
}

#[test]
fn core_depends_on_no_io_crate() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).expect("Cargo.lock at the workspace root");
    let graph = lock_graph(&text);
    assert!(
        graph.contains_key("haven-core"),
        "haven-core missing from Cargo.lock"
    );
    assert!(
        graph.contains_key("tokio") || graph.len() > 1,
        "lock file parsed to nothing"
    );

    let mut seen = BTreeSet::new();
    let mut todo = vec!["haven-core".to_owned()];
    while let Some(pkg) = todo.pop() {
        if !seen.insert(pkg.clone()) {
            continue;
        }
        todo.extend(graph.get(&pkg).cloned().unwrap_or_default());
    }
    let bad: Vec<_> = FORBIDDEN.iter().filter(|f| seen.contains(**f)).collect();
    assert!(bad.is_empty(), "haven-core reaches IO crates: {bad:?}");
}

#[test]
fn the_lock_reader_finds_forbidden_crates() {
    let sample = r#"
[[package]]
name = "haven-core"
dependencies = [
 "a",
]

[[package]]
name = "a"
version = "1.0.0"
dependencies = ["tokio 1.54.1"]

[[package]]
name = "tokio"
"#;
    let graph = lock_graph(sample);
    assert_eq!(graph["haven-core"], ["a"]);
    assert_eq!(graph["a"], ["tokio"]);
}
