//! What the tests share: real `haven` processes (`process`) and several
//! of them as one helpline (`cluster`), a raw
//! WebSocket client (`frames`), transcript keys (`recording`), topic
//! set-ups (`topics`), a control conversation and metric lookups.

pub(crate) mod cluster;
pub(crate) mod frames;
pub(crate) mod process;
pub(crate) mod recording;
pub(crate) mod topics;

use haven_protocol::SessionRef;
use haven_testkit::{CounsellorClient, SeekerClient, TestServer};

/// A healthy pair chatting, to prove bad clients do not affect others.
pub(crate) struct Control {
    pub(crate) seeker: SeekerClient,
    pub(crate) counsellor: CounsellorClient,
    pub(crate) session: SessionRef,
    n: u64,
}

impl Control {
    pub(crate) async fn start(server: &TestServer) -> Self {
        let mut seeker = server.seeker().await;
        seeker.hello(Some("control")).await;
        let (mut counsellor, _) = server.counsellor("control", 1).await;
        counsellor.available().await;
        let session = counsellor.assigned().await;
        Self {
            seeker,
            counsellor,
            session,
            n: 0,
        }
    }

    pub(crate) async fn still_works(&mut self) {
        self.n += 1;
        let id = format!("ctl{}", self.n);
        let seq = self.seeker.say(&id, "nog steeds hier").await;
        assert_eq!(
            self.counsellor.heard(&self.session).await,
            (seq, "nog steeds hier".into())
        );
        let seq = self.counsellor.say(&self.session, &id, "ik ook").await;
        assert_eq!(self.seeker.heard().await, (seq, "ik ook".into()));
    }
}

pub(crate) fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
