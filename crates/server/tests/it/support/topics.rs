//! Topic and skill set-ups, and a help-seeker saying hello to a topic.

use std::time::Duration;

use haven_protocol::counsellor::CounsellorStatus;
use haven_protocol::{SessionRef, counsellor as c, seeker as s};
use haven_server::accounts::AccountSpec;
use haven_server::config::{Config, Mode, TopicConfig};
use haven_testkit::{CounsellorClient, SeekerClient, TestServer};

pub(crate) fn topic(mode: Mode) -> TopicConfig {
    TopicConfig {
        mode,
        offer_timeout: Duration::from_secs(2),
        wrap_up: Duration::ZERO,
        ..TopicConfig::default()
    }
}

/// Two topics: `algemeen` (auto-assign) and `jongeren` (offer-and-accept).
pub(crate) fn two_topics(c: &mut Config) {
    c.topics.insert("algemeen".into(), topic(Mode::Auto));
    c.topics.insert("jongeren".into(), topic(Mode::Offer));
}

pub(crate) fn skills(topics: &[&str], languages: &[&str], capacity: u32) -> AccountSpec {
    AccountSpec {
        capacity: Some(capacity),
        max_capacity: Some(capacity + 2),
        topics: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
        languages: Some(languages.iter().map(|l| (*l).to_owned()).collect()),
        ..AccountSpec::default()
    }
}

pub(crate) async fn hello(
    server: &TestServer,
    topic: &str,
    language: Option<&str>,
    urgent: bool,
    return_code: Option<&str>,
) -> (SeekerClient, s::ServerMessage) {
    let mut seeker = server.seeker().await;
    seeker
        .send(&s::ClientMessage::Hello {
            protocol: 1,
            nickname: None,
            topic: Some(topic.to_owned()),
            language: language.map(str::to_owned),
            urgent,
            return_code: return_code.map(str::to_owned),
            transcript_consent: false,
        })
        .await;
    let first = seeker.recv().await;
    (seeker, first)
}

pub(crate) async fn waiting(server: &TestServer, topic: &str) -> SeekerClient {
    let (seeker, first) = hello(server, topic, None, false, None).await;
    assert!(
        matches!(first, s::ServerMessage::Welcome { .. }),
        "{first:?}"
    );
    seeker
}

pub(crate) async fn offered(counsellor: &mut CounsellorClient) -> SessionRef {
    match counsellor
        .expect("offer", |m| matches!(m, c::ServerMessage::Offer { .. }))
        .await
    {
        c::ServerMessage::Offer { info, .. } => info.session,
        _ => unreachable!(),
    }
}

pub(crate) async fn status(
    counsellor: &mut CounsellorClient,
    want: CounsellorStatus,
) -> c::ServerMessage {
    counsellor
        .expect(
            "status",
            |m| matches!(m, c::ServerMessage::Status { status, .. } if *status == want),
        )
        .await
}
