//! Staff accounts: a second factor set up from the console and asked at
//! every login, required per role before anything else, recovery codes
//! good once, codes never good twice; the first start's password changed
//! at the first login (and its file gone); and a password policy that
//! refuses the worst.

use std::time::{SystemTime, UNIX_EPOCH};

use haven_server::accounts::{AccountStore, Role};
use haven_testkit::{HttpResponse, TestServer, totp_code};
use hyper::Method;
use serde_json::{Value, json};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(server: &TestServer, token: Option<&str>, path: &str, body: Value) -> HttpResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    server
        .http(Method::POST, path, &headers, Some(body.to_string()))
        .await
}

async fn get(server: &TestServer, token: &str, path: &str) -> u16 {
    server
        .http(
            Method::GET,
            path,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
        .status
        .as_u16()
}

/// Sets up a second factor on the login `token`; returns the secret, the
/// recovery codes and the fresh token.
async fn enrol(server: &TestServer, token: &str) -> (String, Vec<String>, String) {
    let started = post(
        server,
        Some(token),
        "/api/v1/account/second-factor/start",
        json!({}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let started = started.json();
    let secret = started["secret"].as_str().unwrap().to_owned();
    assert!(
        started["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Haven:")
    );
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));
    // A wrong code does not confirm it.
    let wrong = post(
        server,
        Some(token),
        "/api/v1/account/second-factor/confirm",
        json!({"code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let code = totp_code(&secret, now());
    let confirmed = post(
        server,
        Some(token),
        "/api/v1/account/second-factor/confirm",
        json!({"code": code}),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let confirmed = confirmed.json();
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (
        secret,
        codes,
        confirmed["token"].as_str().unwrap().to_owned(),
    )
}

/// Logs in with a password, expecting to be asked for the second factor;
/// returns the challenge.
async fn challenge(server: &TestServer, name: &str, password: &str) -> String {
    let answer = server.login(name, password).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    assert_eq!(answer["second_factor"], "totp", "{answer}");
    assert!(
        answer.get("token").is_none(),
        "a token before the second factor: {answer}"
    );
    answer["challenge"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_second_factor_is_asked_at_every_login_and_no_code_works_twice() {
    let server = TestServer::start().await;
    let password = server.add_account("anna", Role::Counsellor, Some(1));
    let first = server.token("anna", &password).await;
    let (secret, codes, fresh) = enrol(&server, &first).await;
    // Setting it up ended the login it was set up on; the fresh one works.
    assert_eq!(get(&server, &first, "/api/v1/me").await, 401);
    assert_eq!(get(&server, &fresh, "/api/v1/me").await, 200);

    // A password alone no longer logs in.
    // (Setting it up used this step's code: the app's next one, good a
    // step early as clocks drift, is what works now.)
    let c = challenge(&server, "anna", &password).await;
    let wrong = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c, "code": "123456"}),
    )
    .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.json()["code"].as_str()),
        (401, Some("wrong_code"))
    );
    let code = totp_code(&secret, now() + 30);
    let ok = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c, "code": code}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = ok.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, &token, "/api/v1/me").await, 200);
    // The challenge is spent, and the same code does not work again.
    let again = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c, "code": code}),
    )
    .await;
    assert_eq!(again.status, 401);
    let c2 = challenge(&server, "anna", &password).await;
    let replay = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c2, "code": code}),
    )
    .await;
    assert_eq!(replay.status, 401, "a code worked twice");

    // A recovery code works once.
    let recovered = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c2, "code": codes[0]}),
    )
    .await;
    assert_eq!(recovered.status, 200, "{}", recovered.body);
    let c3 = challenge(&server, "anna", &password).await;
    let reused = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c3, "code": codes[0]}),
    )
    .await;
    assert_eq!(reused.status, 401);

    // Five wrong codes spend a challenge.
    let c4 = challenge(&server, "anna", &password).await;
    for _ in 0..5 {
        let w = post(
            &server,
            None,
            "/api/v1/login/second-factor",
            json!({"challenge": c4, "code": "000000"}),
        )
        .await;
        assert_eq!(w.status, 401);
    }
    let late = post(
        &server,
        None,
        "/api/v1/login/second-factor",
        json!({"challenge": c4, "code": codes[1]}),
    )
    .await;
    assert_eq!(
        (late.status.as_u16(), late.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );

    let audit = std::fs::read_to_string(server.data_dir().join("audit.log")).unwrap();
    for action in [
        "second_factor_enrolled",
        "second_factor_failed",
        "recovery_code_used",
    ] {
        assert!(
            audit.contains(&format!(r#""actor":"anna","action":"{action}""#)),
            "{action}: {audit}"
        );
    }
    assert!(!audit.contains(&secret) && !audit.contains(&codes[0]));
    // The secret is kept for the server, never the recovery codes.
    let stored = std::fs::read_to_string(server.data_dir().join("accounts.json")).unwrap();
    assert!(!codes.iter().any(|c| stored.contains(c.as_str())));

    // An admin resets it (a lost phone): the password alone works again,
    // and the account's logins end.
    AccountStore::new(server.data_dir())
        .clear_second_factor("anna")
        .unwrap();
    assert_eq!(server.login("anna", &password).await.status, 200);
    assert!(
        server
            .login("anna", &password)
            .await
            .json()
            .get("token")
            .is_some()
    );
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_sets_it_up_before_anything_else() {
    let server =
        TestServer::start_with(|c| c.auth.second_factor_roles = vec![Role::Supervisor]).await;
    let password = server.add_account("coco", Role::Supervisor, None);
    let answer = server.login("coco", &password).await.json();
    assert_eq!(answer["enrol_second_factor"], true, "{answer}");
    let token = answer["token"].as_str().unwrap().to_owned();
    // Nothing but setting it up (and who am I).
    assert_eq!(get(&server, &token, "/api/v1/supervisor/audit").await, 403);
    assert_eq!(get(&server, &token, "/api/v1/topics").await, 403);
    assert_eq!(get(&server, &token, "/api/v1/me").await, 200);
    let mut socket = server.counsellor_socket(&[]).await.unwrap();
    socket
        .ws
        .send_text(&format!(
            r#"{{"type":"hello","protocol":1,"token":"{token}"}}"#
        ))
        .await;
    assert_eq!(socket.closed().await, Some(4501));
    let (_, _, fresh) = enrol(&server, &token).await;
    assert_eq!(get(&server, &fresh, "/api/v1/supervisor/audit").await, 200);
    // It may not be removed.
    let removed = post(
        &server,
        Some(&fresh),
        "/api/v1/account/second-factor/remove",
        json!({"code": "000000"}),
    )
    .await;
    assert_eq!(removed.status, 403);
    // Counsellors are not asked.
    let anna = server.add_account("anna", Role::Counsellor, Some(1));
    assert_eq!(
        server.login("anna", &anna).await.json()["enrol_second_factor"],
        false
    );
}

#[tokio::test]
async fn the_first_start_password_is_changed_at_the_first_login_and_its_file_removed() {
    // As on a first start without a terminal: the password in a file.
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::new(dir.path());
    let generated = store.ensure_admin().unwrap().unwrap();
    let file = dir
        .path()
        .join(haven_server::accounts::INITIAL_PASSWORD_FILE);
    std::fs::write(&file, format!("{generated}\n")).unwrap();
    let data = dir.path().to_owned();
    let server = TestServer::start_with(move |c| c.data_dir = data).await;

    let answer = server.login("admin", &generated).await.json();
    assert_eq!(answer["change_password"], true, "{answer}");
    let token = answer["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, &token, "/api/v1/supervisor/audit").await, 403);
    // The policy refuses the worst; a wrong current password is refused.
    let weak = post(
        &server,
        Some(&token),
        "/api/v1/account/password",
        json!({"current": generated, "new": "Welcome2024!"}),
    )
    .await;
    assert_eq!(
        (weak.status.as_u16(), weak.json()["code"].as_str()),
        (400, Some("weak_password"))
    );
    let wrong = post(
        &server,
        Some(&token),
        "/api/v1/account/password",
        json!({"current": "not it at all", "new": "tulpen-fiets-regen-7"}),
    )
    .await;
    assert_eq!(wrong.status, 403);
    let changed = post(
        &server,
        Some(&token),
        "/api/v1/account/password",
        json!({"current": generated, "new": "tulpen-fiets-regen-7"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let changed = changed.json();
    assert_eq!(changed["change_password"], false);
    let fresh = changed["token"].as_str().unwrap();
    assert_eq!(get(&server, fresh, "/api/v1/supervisor/audit").await, 200);
    assert_eq!(
        get(&server, &token, "/api/v1/me").await,
        401,
        "the old login lives on"
    );
    assert!(
        !file.exists(),
        "the first start's password file is still there"
    );
    assert_eq!(server.login("admin", &generated).await.status, 401);
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains(r#""actor":"admin","action":"password_changed""#),
        "{audit}"
    );
}

#[test]
fn the_password_policy_refuses_the_worst_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::new(dir.path());
    let spec = haven_server::accounts::AccountSpec::default();
    for weak in [
        "short",
        "password1234",
        "Sunshine2024!",
        "123456789012345",
        "anna2024!!!!!",
    ] {
        let refused = store.add("anna", Role::Counsellor, weak, &spec);
        assert!(
            matches!(
                refused,
                Err(haven_server::accounts::AccountError::WeakPassword(_))
            ),
            "{weak}: {refused:?}"
        );
    }
    store
        .add(
            "anna",
            Role::Counsellor,
            "een lange zin als wachtwoord",
            &spec,
        )
        .unwrap();
    assert!(store.set_password("anna", "letmein12345").is_err());
}
