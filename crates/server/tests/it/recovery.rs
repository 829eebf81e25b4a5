//! Transcript files at start: what a crash left open is recovered (a torn
//! tail cut off), and what outlived its topic's retention is deleted.

use std::path::Path;
use std::time::{Duration, SystemTime};

use haven_server::config::{TopicConfig, TranscriptMode};
use haven_testkit::TestServer;
use haven_transcript::{Body, Kind, Sealer, Verdict, file_header};

use super::support::recording::Keys;

/// Seals a small transcript for `session` straight into `path`.
fn write_transcript(path: &Path, keys: &Keys, session: [u8; 16], end: bool) -> Vec<u8> {
    let recipient = keys.identity.recipient();
    let mut data = file_header(session);
    let mut sealer = Sealer::new(session);
    data.extend(
        sealer
            .seal(&recipient, Kind::Start, 1, &Body::default())
            .unwrap(),
    );
    let said = Body {
        text: Some("hallo".into()),
        ..Body::default()
    };
    data.extend(sealer.seal(&recipient, Kind::Message, 2, &said).unwrap());
    if end {
        data.extend(
            sealer
                .seal(&recipient, Kind::End, 3, &Body::default())
                .unwrap(),
        );
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &data).unwrap();
    data
}

#[tokio::test]
async fn at_start_unfinished_transcripts_are_recovered_and_expired_ones_deleted() {
    let keys = Keys::new();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("transcripts");
    // Left open by a crash, with half a record at the end.
    let open = dir.join("algemeen/000000000000000000000000000000aa.open");
    let whole = write_transcript(&open, &keys, [0xaa; 16], false);
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[24..60]);
    std::fs::write(&open, &torn).unwrap();
    // Finished ones: one 3 days old, one fresh, in a topic keeping 2 days;
    // and an old one in a topic that keeps everything.
    let old = dir.join("algemeen/000000000000000000000000000000bb.haven");
    let fresh = dir.join("algemeen/000000000000000000000000000000cc.haven");
    let kept = dir.join("archief/000000000000000000000000000000dd.haven");
    for (path, id) in [(&old, 0xbb), (&fresh, 0xcc), (&kept, 0xdd)] {
        write_transcript(path, &keys, [id; 16], true);
    }
    let three_days_ago = SystemTime::now() - Duration::from_secs(3 * 86_400);
    for path in [&old, &kept] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(three_days_ago)
            .unwrap();
    }

    let recipient = keys.recipient.clone();
    let data_dir = data.path().to_owned();
    let server = TestServer::start_with(move |config| {
        config.data_dir = data_dir;
        config.transcripts = TranscriptMode::On;
        config.transcript_recipients = vec![recipient];
        config.topics.get_mut("algemeen").unwrap().retention_days = Some(2);
        config
            .topics
            .insert("archief".into(), TopicConfig::default());
    })
    .await;

    // Recovered: renamed, the torn half record cut off, readable.
    let recovered = open.with_extension("haven");
    assert!(!open.exists() && recovered.exists());
    let bytes = std::fs::read(&recovered).unwrap();
    assert_eq!(bytes, whole, "exactly the torn tail was cut");
    let opened = keys.read(&bytes);
    assert_eq!(opened.verdict, Verdict::Truncated);
    assert_eq!(opened.records.len(), 2);
    // Retention: the sweep runs at start.
    for _ in 0..100 {
        if !old.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!old.exists(), "an expired transcript was kept");
    assert!(fresh.exists() && kept.exists());
    drop(server);
}
