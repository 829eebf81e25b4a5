//! The waiting room over real sockets: opening hours, full queues, pauses
//! and the counsellors' queue overview.

use std::time::Duration;

use haven_protocol::seeker::{TopicState, Unavailability};
use haven_protocol::{counsellor as c, seeker as s};
use haven_server::accounts::Role;
use haven_server::config::{AlternativeConfig, HoursConfig, TopicConfig};
use haven_testkit::TestServer;
use hyper::Method;

use super::support::topics::{hello, skills, two_topics, waiting};

/// Brussels wall time now, as "HH:MM", offset by `minutes`.
fn brussels_time(minutes: i64) -> String {
    let tz = jiff::tz::TimeZone::get("Europe/Brussels").unwrap();
    let t = jiff::Timestamp::now()
        .to_zoned(tz)
        .checked_add(jiff::SignedDuration::from_mins(minutes))
        .unwrap();
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn hours_every_day(period: String) -> HoursConfig {
    let every = vec![period];
    HoursConfig {
        monday: every.clone(),
        tuesday: every.clone(),
        wednesday: every.clone(),
        thursday: every.clone(),
        friday: every.clone(),
        saturday: every.clone(),
        sunday: every,
        closing_warning: Duration::from_secs(15 * 60),
        ..HoursConfig::default()
    }
}

#[tokio::test]
async fn outside_opening_hours_a_hello_is_told_when_chat_opens() {
    let server = TestServer::start_with(|c| {
        c.topics.insert(
            "algemeen".into(),
            TopicConfig {
                // Opens in two hours, for one hour, every day.
                hours: Some(hours_every_day(format!(
                    "{}-{}",
                    brussels_time(120),
                    brussels_time(180)
                ))),
                alternatives: vec![AlternativeConfig {
                    name: "113".into(),
                    phone: Some("0800-0113".into()),
                    url: None,
                }],
                ..TopicConfig::default()
            },
        );
    })
    .await;
    let (mut seeker, answer) = hello(&server, "algemeen", None, false, None).await;
    let s::ServerMessage::Unavailable {
        reason,
        opens_at,
        alternatives,
        ..
    } = answer
    else {
        panic!("{answer:?}")
    };
    assert_eq!(reason, Unavailability::Closed);
    let in_two_hours = jiff::Timestamp::now().as_millisecond() + 2 * 3600 * 1000;
    let opens = i64::try_from(opens_at.unwrap()).unwrap();
    assert!(
        (opens - in_two_hours).abs() < 61_000,
        "opens at {opens}, expected about {in_two_hours}"
    );
    assert_eq!(alternatives[0].phone.as_deref(), Some("0800-0113"));
    assert_eq!(seeker.closed().await, Some(1000));
}

#[tokio::test]
async fn shortly_before_closing_those_arriving_and_waiting_are_warned() {
    let server = TestServer::start_with(|c| {
        c.topics.insert(
            "algemeen".into(),
            TopicConfig {
                // Open from an hour ago until ten minutes from now: within
                // the 15-minute warning.
                hours: Some(hours_every_day(format!(
                    "{}-{}",
                    brussels_time(-60),
                    brussels_time(10)
                ))),
                ..TopicConfig::default()
            },
        );
    })
    .await;
    let (mut seeker, welcome) = hello(&server, "algemeen", None, false, None).await;
    assert!(
        matches!(welcome, s::ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    let warning = seeker
        .expect("closing", |m| {
            matches!(m, s::ServerMessage::TopicStatus { .. })
        })
        .await;
    assert!(
        matches!(
            warning,
            s::ServerMessage::TopicStatus {
                state: TopicState::Closing,
                at: Some(_),
                ..
            }
        ),
        "{warning:?}"
    );
}

#[tokio::test]
async fn a_full_queue_says_so_with_the_alternatives() {
    let server = TestServer::start_with(|c| {
        c.topics.insert(
            "algemeen".into(),
            TopicConfig {
                max_queue: 1,
                ..TopicConfig::default()
            },
        );
    })
    .await;
    let _first = waiting(&server, "algemeen").await;
    let (mut second, answer) = hello(&server, "algemeen", None, false, None).await;
    assert!(
        matches!(answer, s::ServerMessage::Unavailable { reason: Unavailability::Full, ref alternatives, .. } if !alternatives.is_empty()),
        "{answer:?}"
    );
    assert_eq!(second.closed().await, Some(1000));
}

async fn post(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Option<String>,
) -> haven_testkit::HttpResponse {
    let auth = format!("Bearer {token}");
    server
        .http(Method::POST, path, &[("authorization", &auth)], body)
        .await
}

#[tokio::test]
async fn a_coordinator_pauses_and_resumes_a_topic_with_a_message() {
    let server = TestServer::start().await;
    let coordinator = server.add_account("coord", Role::Supervisor, None);
    let coordinator = server.token("coord", &coordinator).await;
    let counsellor = server.add_account("anna", Role::Counsellor, None);
    let counsellor = server.token("anna", &counsellor).await;
    let mut waiting_seeker = waiting(&server, "algemeen").await;
    let message = r#"{"message": "We zijn even gesloten wegens een storing."}"#.to_owned();
    assert_eq!(
        post(
            &server,
            &counsellor,
            "/api/v1/topics/algemeen/pause",
            Some(message.clone())
        )
        .await
        .status,
        403
    );
    assert_eq!(
        post(
            &server,
            &coordinator,
            "/api/v1/topics/nergens/pause",
            Some(message.clone())
        )
        .await
        .status,
        404
    );
    assert_eq!(
        post(
            &server,
            &coordinator,
            "/api/v1/topics/algemeen/pause",
            Some(message)
        )
        .await
        .status,
        204
    );

    let notice = waiting_seeker
        .expect("paused", |m| {
            matches!(m, s::ServerMessage::TopicStatus { .. })
        })
        .await;
    assert!(
        matches!(notice, s::ServerMessage::TopicStatus { state: TopicState::Paused, ref message, .. }
        if message.as_deref() == Some("We zijn even gesloten wegens een storing.")),
        "{notice:?}"
    );
    let (_, answer) = hello(&server, "algemeen", None, false, None).await;
    assert!(
        matches!(answer, s::ServerMessage::Unavailable { reason: Unavailability::Paused, ref message, .. } if message.is_some()),
        "{answer:?}"
    );
    let topics = server
        .http(
            Method::GET,
            "/api/v1/topics",
            &[("authorization", &format!("Bearer {counsellor}"))],
            None,
        )
        .await;
    assert_eq!(topics.json()["topics"][0]["paused"], true);
    assert_eq!(topics.json()["topics"][0]["waiting"], 1);

    assert_eq!(
        post(
            &server,
            &coordinator,
            "/api/v1/topics/algemeen/resume",
            None
        )
        .await
        .status,
        204
    );
    waiting_seeker
        .expect("open", |m| {
            matches!(
                m,
                s::ServerMessage::TopicStatus {
                    state: TopicState::Open,
                    ..
                }
            )
        })
        .await;
    let (_, answer) = hello(&server, "algemeen", None, false, None).await;
    assert!(
        matches!(answer, s::ServerMessage::Welcome { .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn counsellors_see_the_queues_they_serve() {
    let server = TestServer::start_with(two_topics).await;
    let _one = waiting(&server, "algemeen").await;
    let _two = waiting(&server, "algemeen").await;
    let (mut anna, _) = server
        .counsellor_with("anna", &skills(&["algemeen"], &["nl"], 1))
        .await;
    let queues = anna
        .expect("queues", |m| matches!(m, c::ServerMessage::Queues { .. }))
        .await;
    let c::ServerMessage::Queues { topics } = queues else {
        unreachable!()
    };
    assert_eq!(topics.len(), 1, "only the topics she serves");
    assert_eq!(topics[0].topic, "algemeen");
    assert_eq!(topics[0].waiting, 2);
}
