//! The fast paths agree with the derived serde code: decoding returns what
//! the typed parse returns (or steps aside), and encoding writes the same
//! bytes.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use haven_protocol::common::{ChatText, ClientMsgId, SessionRef};
use haven_protocol::{counsellor, fast, seeker};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any text, weighted toward what needs escaping.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 .-]{0,40}",
        "\\PC{0,40}",
        prop::collection::vec(
            prop_oneof![
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("\n".to_owned()),
                Just("\u{1}".to_owned()),
                Just("é".to_owned()),
                Just("😀".to_owned()),
                "[a-z]{1,3}",
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// A JSON value of any kind, to put where a field is expected.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({"nested": [1, 2]})),
        Just(json!(1.5)),
    ]
}

/// A frame that is often a hot message, sometimes almost one, sometimes
/// something else: random types, fields, values and key order.
fn frame() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        Just("send"),
        Just("received"),
        Just("typing"),
        Just("ping"),
        Just("end"),
        Just("hello"),
        Just("fly"),
    ];
    let field = |name: &'static str, good: BoxedStrategy<Value>| {
        prop::option::weighted(0.8, prop_oneof![4 => good, 1 => value()])
            .prop_map(move |v| (name, v))
    };
    (
        ty,
        prop::option::weighted(0.95, Just(())),
        field("session", "[0-9a-f]{32}".prop_map(Value::from).boxed()),
        field("id", "[a-z0-9]{1,8}".prop_map(Value::from).boxed()),
        field("text", text().prop_map(Value::from).boxed()),
        field("up_to", any::<u64>().prop_map(Value::from).boxed()),
        field("received", any::<u64>().prop_map(Value::from).boxed()),
        field("active", any::<bool>().prop_map(Value::from).boxed()),
        prop::option::of(value()),
        any::<u64>(),
    )
        .prop_map(
            |(ty, has_type, session, id, text, up_to, received, active, extra, order)| {
                let mut fields: Vec<(String, Value)> = Vec::new();
                if has_type.is_some() {
                    fields.push(("type".into(), Value::from(ty)));
                }
                for (name, v) in [session, id, text, up_to, received, active] {
                    if let Some(v) = v {
                        fields.push((name.into(), v));
                    }
                }
                if let Some(v) = extra {
                    fields.push(("future_field".into(), v));
                }
                // A reproducible shuffle: "type" is not always first.
                let n = fields.len().max(1);
                fields.rotate_left(usize::try_from(order).unwrap() % n);
                let map: Map<String, Value> = fields.into_iter().collect();
                Value::Object(map).to_string()
            },
        )
}

/// A frame from [`frame`] with one to three characters cut, changed or
/// put in: mostly broken JSON, as a buggy or hostile client sends it.
fn mutated() -> impl Strategy<Value = String> {
    let chars = vec![
        '"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '.', ' ', 'u', '\u{0}',
        '\u{1f}', 'é', '😀',
    ];
    let edit = (
        0..3u8,
        any::<prop::sample::Index>(),
        prop::sample::select(chars),
    );
    (frame(), prop::collection::vec(edit, 1..4)).prop_map(|(f, edits)| {
        let mut chars: Vec<char> = f.chars().collect();
        for (op, at, c) in edits {
            let i = at.index(chars.len() + 1);
            match op {
                0 => chars.truncate(i),
                1 if i < chars.len() => chars[i] = c,
                _ => chars.insert(i, c),
            }
        }
        chars.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// The decoder the server calls answers any text without panicking:
    /// with what the typed parse reads, or, when that fails too, with an
    /// error code and a hint.
    #[test]
    fn broken_frames_get_an_error_code_or_the_typed_parse(f in mutated()) {
        let typed_s = serde_json::from_str::<seeker::ClientMessage>(&f).ok();
        match haven_protocol::decode_seeker(&f) {
            Ok(msg) => prop_assert_eq!(Some(msg), typed_s, "seeker {}", f),
            Err(e) => prop_assert!(typed_s.is_none() && !e.detail.is_empty(), "seeker {}", f),
        }
        let typed_c = serde_json::from_str::<counsellor::ClientMessage>(&f).ok();
        match haven_protocol::decode_counsellor(&f) {
            Ok(msg) => prop_assert_eq!(Some(msg), typed_c, "counsellor {}", f),
            Err(e) => prop_assert!(typed_c.is_none() && !e.detail.is_empty(), "counsellor {}", f),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn fast_decoding_agrees_with_the_typed_parse(f in frame()) {
        let typed_s = serde_json::from_str::<seeker::ClientMessage>(&f).ok();
        if let Some(fast) = fast::decode_seeker(&f) {
            prop_assert_eq!(Some(fast), typed_s, "seeker {}", f);
        }
        let typed_c = serde_json::from_str::<counsellor::ClientMessage>(&f).ok();
        if let Some(fast) = fast::decode_counsellor(&f) {
            prop_assert_eq!(Some(fast), typed_c, "counsellor {}", f);
        }
    }

    #[test]
    fn hot_frames_take_the_fast_path(id in "[a-z0-9]{1,8}", t in text(), up_to in any::<u64>(), active in any::<bool>()) {
        let session = "0123456789abcdef0123456789abcdef";
        for f in [
            json!({"type": "send", "session": session, "id": id, "text": t}),
            json!({"type": "send", "session": session, "id": id, "text": t, "received": up_to}),
            json!({"type": "received", "session": session, "up_to": up_to}),
            json!({"type": "typing", "session": session, "active": active}),
            json!({"type": "ping"}),
        ] {
            let f = f.to_string();
            prop_assert!(fast::decode_seeker(&f).is_some(), "{}", f);
            prop_assert!(fast::decode_counsellor(&f).is_some(), "{}", f);
        }
    }

    #[test]
    fn fast_encoding_writes_what_serde_writes(
        t in text(), from in text(), id in text(), seq in any::<u64>(), at in any::<u64>(), session in "[0-9a-f]{32}",
    ) {
        let seeker_frames = [
            seeker::ServerMessage::Message { seq, text: ChatText(t.clone()), at, from },
            seeker::ServerMessage::Ack { id: ClientMsgId(id.clone()), seq },
            seeker::ServerMessage::Delivered { up_to: seq },
            seeker::ServerMessage::Pong,
        ];
        for m in &seeker_frames {
            prop_assert_eq!(fast::encode_seeker(m).unwrap(), serde_json::to_string(m).unwrap());
        }
        let session = SessionRef(session);
        let counsellor_frames = [
            counsellor::ServerMessage::Message { session: session.clone(), seq, text: ChatText(t), at },
            counsellor::ServerMessage::Ack { session: session.clone(), id: ClientMsgId(id), seq },
            counsellor::ServerMessage::Delivered { session, up_to: at },
            counsellor::ServerMessage::Pong,
        ];
        for m in &counsellor_frames {
            prop_assert_eq!(fast::encode_counsellor(m).unwrap(), serde_json::to_string(m).unwrap());
        }
    }
}

/// Hand-picked frames the generator above does not write: spacing,
/// escapes (also in keys), repeated keys, and numbers serde reads
/// differently or not at all. Where the fast path answers, it answers as
/// the typed parse does; where it must step aside, it does.
#[test]
fn the_fast_decoder_agrees_on_odd_but_possible_frames() {
    let agree = [
        " { \"type\" : \"send\" ,\n\t\"id\" : \"a\" , \"text\" : \"b\" } ",
        r#"{"type":"send","id":"a","text":"line\nnext \"quoted\" \u00e9 \ud83d\ude00"}"#,
        r#"{"typ\u0065":"s\u0065nd","id":"a","text":"b"}"#,
        r#"{"type":"received","up_to":0}"#,
        r#"{"type":"received","up_to":18446744073709551615}"#,
        r#"{"type":"typing","active":false}"#,
        r#"{"type":"ping"}"#,
    ];
    for f in agree {
        let fast = fast::decode_seeker(f);
        assert!(fast.is_some(), "{f}");
        assert_eq!(
            fast,
            serde_json::from_str::<seeker::ClientMessage>(f).ok(),
            "{f}"
        );
    }
    let aside = [
        r#"{"type":"send","id":"a","text":"b","text":"c"}"#,
        r#"{"type":"received","up_to":18446744073709551616}"#,
        r#"{"type":"received","up_to":01}"#,
        r#"{"type":"received","up_to":1.0}"#,
        r#"{"type":"received","up_to":1e2}"#,
        r#"{"type":"received","up_to":-1}"#,
        r#"{"type":"received","up_to":null}"#,
        r#"{"type":"typing","active":tru}"#,
        r#"{"type":"send","id":"a","text":"b"} x"#,
        r#"{"type":"send","id":"a","text":"b",}"#,
        r#"{"type":"send","id":"a","text":"b""#,
        r#"{"type":"send","id":"a","text":"\q"}"#,
        r#"{"type":"send","id":"a","text":"\"}"#,
        "{\"type\":\"send\",\"id\":\"a\",\"text\":\"raw\u{1}control\"}",
        r#"{"type":"send","id":"a","text":"b","extra":[1,{"x":2}]}"#,
        r#"{}"#,
        r#"[]"#,
        "",
    ];
    for f in aside {
        assert_eq!(fast::decode_seeker(f), None, "{f}");
        assert_eq!(fast::decode_counsellor(f), None, "{f}");
    }
}
