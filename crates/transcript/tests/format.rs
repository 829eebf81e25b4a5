//! The transcript format: round trips, keys, rotation, torn tails and
//! tampering of every kind.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use haven_transcript::{
    Body, Identity, Kind, Recipient, Role, Sealer, Verdict, file_header, holds_identity, read,
    recover, verify,
};
use rand::{RngExt, SeedableRng};

const SESSION: [u8; 16] = *b"0123456789abcdef";

fn message(from: &str, text: &str, seq: u64) -> Body {
    Body {
        from: Some(from.into()),
        text: Some(text.into()),
        seq: Some(seq),
        ..Body::default()
    }
}

/// A complete transcript of `n` messages, and the record boundaries.
fn transcript(to: &Recipient, session: [u8; 16], n: u64) -> (Vec<u8>, Vec<usize>) {
    let mut data = file_header(session);
    let mut bounds = vec![data.len()];
    let mut sealer = Sealer::new(session);
    let start = Body {
        nickname: Some("Sam".into()),
        topic: Some("algemeen".into()),
        ..Body::default()
    };
    data.extend(sealer.seal(to, Kind::Start, 1000, &start).unwrap());
    bounds.push(data.len());
    for i in 1..=n {
        let from = if i % 2 == 0 { "Anna" } else { "seeker" };
        data.extend(
            sealer
                .seal(
                    to,
                    Kind::Message,
                    1000 + i,
                    &message(from, &format!("bericht {i}"), i),
                )
                .unwrap(),
        );
        bounds.push(data.len());
    }
    data.extend(sealer.seal(to, Kind::End, 5000, &Body::default()).unwrap());
    bounds.push(data.len());
    (data, bounds)
}

#[test]
fn a_transcript_opens_with_its_identity_and_only_with_it() {
    let id = Identity::generate();
    let (data, _) = transcript(&id.recipient(), SESSION, 4);
    let opened = read(&data, std::slice::from_ref(&id));
    assert_eq!(opened.verdict, Verdict::Complete);
    assert_eq!(opened.session, SESSION);
    assert_eq!(opened.records.len(), 6);
    assert_eq!(opened.records[0].body.nickname.as_deref(), Some("Sam"));
    assert_eq!(opened.records[2].body.text.as_deref(), Some("bericht 2"));
    assert_eq!(opened.records[2].body.from.as_deref(), Some("Anna"));
    assert_eq!(opened.records[5].kind, Kind::End);
    assert_eq!(verify(&data).verdict, Verdict::Complete);

    let other = Identity::generate();
    let refused = read(&data, &[other]);
    assert!(
        matches!(refused.verdict, Verdict::Tampered(ref d) if d.record == 1 && d.why.contains("not given"))
    );
    assert!(refused.records.is_empty());
    // Nothing of the text is visible in the file.
    assert!(!data.windows(7).any(|w| w == b"bericht"));
}

#[test]
fn keys_travel_as_text_and_a_recipient_names_its_key() {
    let id = Identity::generate();
    let text = id.to_text();
    assert!(holds_identity(&text));
    let back = Identity::parse(&format!("# made by haven keygen\n{text}\n")).unwrap();
    assert_eq!(back.recipient(), id.recipient());
    let recipient = id.recipient().to_text();
    assert!(!holds_identity(&recipient));
    assert_eq!(Recipient::parse(&recipient).unwrap(), id.recipient());
    assert!(recipient.starts_with(&format!("haven-tr1:{}:", id.recipient().kid())));
    // A key id that does not match its key is refused.
    let other = Identity::generate().recipient();
    let forged = format!(
        "haven-tr1:{}:{}",
        other.kid(),
        recipient.rsplit(':').next().unwrap()
    );
    assert!(Recipient::parse(&forged).is_err());
    assert!(Identity::parse("nonsense").is_err());
    assert!(Recipient::parse("haven-tr1:abc").is_err());
}

#[test]
fn a_rotated_key_applies_from_the_next_record_and_both_identities_open_it() {
    let (old, new) = (Identity::generate(), Identity::generate());
    let mut data = file_header(SESSION);
    let mut sealer = Sealer::new(SESSION);
    data.extend(
        sealer
            .seal(&old.recipient(), Kind::Start, 1, &Body::default())
            .unwrap(),
    );
    data.extend(
        sealer
            .seal(
                &old.recipient(),
                Kind::Message,
                2,
                &message("seeker", "voor", 1),
            )
            .unwrap(),
    );
    data.extend(
        sealer
            .seal(
                &new.recipient(),
                Kind::Message,
                3,
                &message("seeker", "na", 2),
            )
            .unwrap(),
    );
    data.extend(
        sealer
            .seal(&new.recipient(), Kind::End, 4, &Body::default())
            .unwrap(),
    );
    let both = read(&data, &[old, new]);
    assert_eq!(both.verdict, Verdict::Complete);
    let kids: Vec<&str> = both.records.iter().map(|r| r.kid.as_str()).collect();
    assert_eq!(kids[0], kids[1]);
    assert_ne!(kids[1], kids[2]);
}

#[test]
fn a_torn_tail_is_reported_as_truncated_and_recovery_cuts_it_off() {
    let id = Identity::generate();
    let (data, bounds) = transcript(&id.recipient(), SESSION, 3);
    let last_whole = bounds[bounds.len() - 2];
    // Every cut inside the last record leaves the records before it.
    for cut in last_whole + 1..data.len() {
        let torn = &data[..cut];
        let checked = verify(torn);
        assert_eq!(checked.verdict, Verdict::Truncated, "cut at {cut}");
        assert_eq!(checked.intact, last_whole);
        let opened = read(torn, std::slice::from_ref(&id));
        assert_eq!(opened.verdict, Verdict::Truncated);
        assert_eq!(opened.records.len(), bounds.len() - 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.haven");
    std::fs::write(&path, &data[..data.len() - 10]).unwrap();
    assert_eq!(recover(&path).unwrap().verdict, Verdict::Truncated);
    assert_eq!(std::fs::read(&path).unwrap(), data[..last_whole]);
    // Without its end, a transcript is truncated too.
    assert_eq!(verify(&data[..last_whole]).verdict, Verdict::Truncated);
}

#[test]
fn every_flipped_bit_is_caught() {
    let id = Identity::generate();
    let (data, _) = transcript(&id.recipient(), SESSION, 5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..4000 {
        let mut bad = data.clone();
        let at = rng.random_range(0..bad.len());
        bad[at] ^= 1 << rng.random_range(0..8);
        let opened = read(&bad, std::slice::from_ref(&id));
        assert_ne!(
            opened.verdict,
            Verdict::Complete,
            "a flip at byte {at} went unnoticed"
        );
    }
}

#[test]
fn deleted_duplicated_reordered_and_spliced_records_are_caught() {
    let id = Identity::generate();
    let (data, b) = transcript(&id.recipient(), SESSION, 4);
    let record = |i: usize| data[b[i]..b[i + 1]].to_vec();
    let rebuild = |order: &[usize]| {
        let mut out = data[..b[0]].to_vec();
        for &i in order {
            out.extend(record(i));
        }
        out
    };
    let all: Vec<usize> = (0..b.len() - 1).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deleted", rebuild(&[0, 1, 3, 4, 5])),
        ("duplicated", rebuild(&[0, 1, 2, 2, 3, 4, 5])),
        ("reordered", rebuild(&[0, 2, 1, 3, 4, 5])),
        ("end moved up", rebuild(&[0, 1, 5])),
        ("deleted end", rebuild(&all[..all.len() - 1])),
    ];
    for (what, bad) in &cases {
        let opened = read(bad, std::slice::from_ref(&id));
        assert_ne!(opened.verdict, Verdict::Complete, "{what} went unnoticed");
        // Without a key, order and completeness are checked too.
        assert_ne!(
            verify(bad).verdict,
            Verdict::Complete,
            "{what} went unnoticed without a key"
        );
    }

    // A record from another session with the same key, at the same place.
    let (other, ob) = transcript(&id.recipient(), *b"fedcba9876543210", 4);
    let mut spliced = data[..b[2]].to_vec();
    spliced.extend(&other[ob[2]..ob[3]]);
    spliced.extend(&data[b[3]..]);
    assert!(matches!(
        read(&spliced, std::slice::from_ref(&id)).verdict,
        Verdict::Tampered(_)
    ));
    // Even with the clear chain and number rewritten to fit, the sealed
    // inside names the other session.
    let mut forged = other[ob[2]..ob[3]].to_vec();
    let kid_len = usize::from(forged[4]);
    let prev_at = 4 + 1 + kid_len + 8 + 1;
    forged[prev_at..prev_at + 16].copy_from_slice(&data[b[2]..b[3]][prev_at..prev_at + 16]);
    let mut spliced = data[..b[2]].to_vec();
    spliced.extend(&forged);
    let opened = read(&spliced, std::slice::from_ref(&id));
    assert!(
        matches!(opened.verdict, Verdict::Tampered(ref d) if d.why.contains("another session")),
        "{:?}",
        opened.verdict
    );
}

/// Not a test: the figures `loadtest/transcripts.sh` quotes. A message
/// record's size for a 100- and a 200-character text, and sealing's CPU
/// time (run it in release).
#[test]
#[ignore = "a measurement, run by loadtest/transcripts.sh"]
fn record_cost() {
    let to = Identity::generate().recipient();
    let mut sealer = Sealer::new([7; 16]);
    let mut sizes = Vec::new();
    for chars in [100, 200] {
        let body = Body {
            role: Some(Role::Seeker),
            text: Some("x".repeat(chars)),
            seq: Some(12_345),
            ..Body::default()
        };
        let record = sealer.seal(&to, Kind::Message, 1, &body).unwrap();
        sizes.push((chars, record.len()));
    }
    let n = 2000u32;
    let body = message("Anna", &"x".repeat(100), 1);
    let started = std::time::Instant::now();
    for _ in 0..n {
        sealer.seal(&to, Kind::Message, 1, &body).unwrap();
    }
    let per = started.elapsed() / n;
    println!(
        "record cost: a message of {} characters makes a {}-byte record, of {} a {}-byte one \
         ({} bytes beyond the text); sealing takes {:.0} µs of CPU per record",
        sizes[0].0,
        sizes[0].1,
        sizes[1].0,
        sizes[1].1,
        sizes[1].1 - sizes[1].0,
        per.as_secs_f64() * 1e6
    );
}
