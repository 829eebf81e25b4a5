//! Printing the effective configuration (`haven check-config`) as TOML,
//! with secrets hidden. figment's value tree is walked and written in TOML
//! syntax, so no TOML serializer is needed.

use std::fmt::Write as _;

use figment::Figment;
use figment::providers::Serialized;
use figment::value::{Dict, Value};
use serde::Deserialize;

use super::Config;

#[derive(Deserialize)]
struct Root(Dict);

/// The configuration as TOML.
pub(super) fn to_toml(config: &Config) -> String {
    match Figment::from(Serialized::defaults(config)).extract::<Root>() {
        Ok(root) => {
            let mut out = String::new();
            write_table(&mut out, "", &root.0);
            out
        }
        Err(e) => format!("# could not render: {e}\n"),
    }
}

/// Hides the password in `redis://user:password@host`.
pub(super) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://<redacted>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn write_table(out: &mut String, prefix: &str, dict: &Dict) {
    let (tables, values): (Vec<_>, Vec<_>) =
        dict.iter().partition(|(_, v)| matches!(v, Value::Dict(..)));
    for (key, value) in values {
        if matches!(value, Value::Empty(..)) {
            let _ = writeln!(out, "# {key} is unset");
        } else {
            let _ = writeln!(out, "{key} = {}", scalar(value));
        }
    }
    for (key, value) in tables {
        if let Value::Dict(_, inner) = value {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            // A table of tables (like `[topics]`) needs no header of its own.
            if inner.values().any(|v| !matches!(v, Value::Dict(..))) {
                let _ = writeln!(out, "\n[{name}]");
            }
            write_table(out, &name, inner);
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("\"{c}\""),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|v| v.to_string())
            .or_else(|| n.to_i128().map(|v| v.to_string()))
            .or_else(|| n.to_f64().map(|v| v.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => "\"\"".to_owned(),
        Value::Array(_, items) => {
            let inner: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Dict(_, dict) => {
            let inner: Vec<String> = dict
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Empty(..)))
                .map(|(k, v)| format!("{k} = {}", scalar(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_are_hidden() {
        assert_eq!(
            redact_url("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://<redacted>@10.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }

    #[test]
    fn defaults_render() {
        let text = Config::default().to_redacted_toml();
        assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
        assert!(text.contains("[session]"), "{text}");
        assert!(text.contains("seeker_grace = \"2m\""), "{text}");
        assert!(text.contains("# redis_url is unset"), "{text}");
    }
}
