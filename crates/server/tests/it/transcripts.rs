//! The offline transcript commands of the `haven` binary: keygen, decrypt
//! and verify.

use std::os::unix::fs::PermissionsExt as _;

use haven_transcript::{Body, Kind, Recipient, Role, Sealer, file_header};

use super::support::process::{haven, output};

#[test]
fn keygen_decrypt_and_verify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("identity.txt");
    let (ok, out, err) = output(haven(dir.path()).args(["keygen", "--out"]).arg(&key));
    assert!(ok, "{err}");
    let recipient = Recipient::parse(out.trim()).unwrap();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Never overwritten.
    let (ok, _, err) = output(haven(dir.path()).args(["keygen", "--out"]).arg(&key));
    assert!(!ok && err.contains("must not exist"), "{err}");

    let mut data = file_header(*b"0123456789abcdef");
    let mut sealer = Sealer::new(*b"0123456789abcdef");
    let start = Body {
        nickname: Some("Sam".into()),
        topic: Some("algemeen".into()),
        ..Body::default()
    };
    data.extend(
        sealer
            .seal(&recipient, Kind::Start, 1_795_435_190_000, &start)
            .unwrap(),
    );
    let said = Body {
        role: Some(Role::Seeker),
        text: Some("Ik weet niet waar ik moet beginnen.".into()),
        seq: Some(1),
        ..Body::default()
    };
    data.extend(
        sealer
            .seal(&recipient, Kind::Message, 1_795_435_191_000, &said)
            .unwrap(),
    );
    let answer = Body {
        role: Some(Role::Counsellor),
        from: Some("Anna".into()),
        text: Some("Neem je tijd.".into()),
        seq: Some(1),
        ..Body::default()
    };
    data.extend(
        sealer
            .seal(&recipient, Kind::Message, 1_795_435_192_000, &answer)
            .unwrap(),
    );
    let end = Body {
        text: Some("counsellor_ended".into()),
        ..Body::default()
    };
    data.extend(
        sealer
            .seal(&recipient, Kind::End, 1_795_435_193_000, &end)
            .unwrap(),
    );
    let path = dir.path().join("t.haven");
    std::fs::write(&path, &data).unwrap();

    let (ok, out, err) = output(
        haven(dir.path())
            .args(["transcript", "decrypt", "--identity"])
            .arg(&key)
            .arg(&path),
    );
    assert!(ok, "{err}");
    assert!(out.contains("complete"), "{out}");
    assert!(
        out.contains("Sam (help-seeker): Ik weet niet waar ik moet beginnen."),
        "{out}"
    );
    assert!(out.contains("Anna: Neem je tijd."), "{out}");
    assert!(out.contains("2026-"), "{out}");
    let (ok, out, _) = output(
        haven(dir.path())
            .args(["transcript", "decrypt", "--json", "--identity"])
            .arg(&key)
            .arg(&path),
    );
    assert!(ok);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["text"], "Neem je tijd.");
    assert_eq!(lines[3]["kind"], "end");

    // Without a key: complete; cut short: truncated; altered: tampered
    // (and the exit status says so).
    let (ok, out, _) = output(haven(dir.path()).args(["transcript", "verify"]).arg(&path));
    assert!(ok && out.contains("complete"), "{out}");
    std::fs::write(&path, &data[..data.len() - 5]).unwrap();
    let (ok, out, _) = output(haven(dir.path()).args(["transcript", "verify"]).arg(&path));
    assert!(ok && out.contains("truncated"), "{out}");
    let mut bad = data.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let (ok, out, _) = output(
        haven(dir.path())
            .args(["transcript", "verify", "--identity"])
            .arg(&key)
            .arg(&path),
    );
    assert!(!ok && out.contains("TAMPERED"), "{out}");
}

#[test]
fn the_server_refuses_private_keys_in_its_config_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("identity.txt");
    assert!(output(haven(dir.path()).args(["keygen", "--out"]).arg(&key)).0);
    let identity = std::fs::read_to_string(&key).unwrap();
    let secret = identity.lines().find(|l| !l.starts_with('#')).unwrap();

    // In any environment variable, whatever its name.
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("SOME_SECRET", secret),
    );
    assert!(!ok, "started with a private key in the environment");
    assert!(
        err.contains("SOME_SECRET") && err.contains("private transcript key"),
        "{err}"
    );
    assert!(
        !err.contains(&secret[30..]),
        "the error repeats the key: {err}"
    );

    // In the config file.
    let config = dir.path().join("haven.toml");
    std::fs::write(&config, format!("# pasted by mistake: {secret}\n")).unwrap();
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("check-config"),
    );
    assert!(
        !ok && err.contains("haven.toml") && err.contains("private transcript key"),
        "{err}"
    );
    // An age identity too.
    std::fs::write(&config, "# AGE-SECRET-KEY-1QQQ\n").unwrap();
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("check-config"),
    );
    assert!(!ok && err.contains("AGE-SECRET-KEY-"), "{err}");
    // The public recipient is fine anywhere.
    let recipient = identity.lines().nth(1).unwrap().trim_start_matches("# ");
    std::fs::write(&config, format!("# {recipient}\n")).unwrap();
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("check-config"),
    );
    assert!(ok, "{err}");
}

#[test]
fn transcript_settings_are_checked_and_take_a_comma_separated_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut recipients = Vec::new();
    for n in 0..2 {
        let key = dir.path().join(format!("identity-{n}.txt"));
        let (ok, out, _) = output(haven(dir.path()).args(["keygen", "--out"]).arg(&key));
        assert!(ok);
        recipients.push(out.trim().to_owned());
    }
    // On, with nobody to seal to.
    let (ok, _, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_TRANSCRIPTS", "on"),
    );
    assert!(
        !ok && err.contains("`transcripts`") && err.contains("haven keygen"),
        "{err}"
    );
    // Two recipients from one variable.
    let (ok, out, err) = output(
        haven(dir.path())
            .arg("check-config")
            .env("HAVEN_TRANSCRIPTS", "ask")
            .env("HAVEN_TRANSCRIPT_RECIPIENTS", recipients.join(",")),
    );
    assert!(ok, "{err}");
    assert!(out.contains("transcripts = \"ask\""), "{out}");
    assert!(
        out.contains(&recipients[0]) && out.contains(&recipients[1]),
        "{out}"
    );
    // A broken one is named.
    let (ok, _, err) = output(haven(dir.path()).arg("check-config").env(
        "HAVEN_TRANSCRIPT_RECIPIENTS",
        format!("{},haven-tr1:nope", recipients[0]),
    ));
    assert!(
        !ok && err.contains("transcript_recipients") && err.contains("entry 2"),
        "{err}"
    );
}
