//! The loss, duplicate and reorder checks against a relay that breaks
//! each of them on purpose: a run that looks clean against a faulty server
//! would make every clean run worthless.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser as _;
use futures_util::{SinkExt as _, StreamExt as _};
use haven_loadtest::cli::{Cli, Command};
use haven_loadtest::report::Report;
use haven_loadtest::scenario::{self, Scenario};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What the relay does to the `n`th frame (from 0) one side of a session
/// sends on its way to the other.
#[derive(Clone, Copy, Debug)]
struct Faults {
    drop: u64,
    duplicate: u64,
    /// This frame is held back and sent after the next one.
    swap: u64,
}

type Queues = Arc<Mutex<HashMap<String, [Option<mpsc::UnboundedReceiver<Message>>; 2]>>>;
type Senders = Arc<Mutex<HashMap<String, [mpsc::UnboundedSender<Message>; 2]>>>;

const NONE: Faults = Faults {
    drop: u64::MAX,
    duplicate: u64::MAX,
    swap: u64::MAX,
};

/// A pair relay on `/s/<id>/<a|b>` that applies `faults[0]` to what `a`
/// sends and `faults[1]` to what `b` sends.
async fn faulty_relay(faults: [Faults; 2]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receivers: Queues = Arc::default();
    let senders: Senders = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (receivers, senders) = (receivers.clone(), senders.clone());
            tokio::spawn(async move {
                let mut path = String::new();
                let ws =
                    tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
                        path = req.uri().path().to_owned();
                        Ok(resp)
                    })
                    .await
                    .unwrap();
                let mut parts = path.trim_start_matches("/s/").split('/');
                let (id, side) = (parts.next().unwrap().to_owned(), parts.next().unwrap());
                let me = usize::from(side == "b");
                let (to_peer, mut inbox) = {
                    let mut tx = senders.lock().unwrap();
                    let mut rx = receivers.lock().unwrap();
                    let pair = tx.entry(id.clone()).or_insert_with(|| {
                        let (a_tx, a_rx) = mpsc::unbounded_channel();
                        let (b_tx, b_rx) = mpsc::unbounded_channel();
                        rx.insert(id.clone(), [Some(a_rx), Some(b_rx)]);
                        [a_tx, b_tx]
                    });
                    let to_peer = pair[1 - me].clone();
                    (to_peer, rx.get_mut(&id).unwrap()[me].take().unwrap())
                };
                let (mut sink, mut source) = ws.split();
                tokio::spawn(async move {
                    while let Some(msg) = inbox.recv().await {
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                let faults = faults[me];
                let mut n = 0u64;
                let mut held = None;
                while let Some(Ok(msg)) = source.next().await {
                    if !msg.is_text() {
                        continue;
                    }
                    let this = n;
                    n += 1;
                    if this == faults.drop {
                        continue;
                    }
                    if this == faults.swap {
                        held = Some(msg);
                        continue;
                    }
                    if this == faults.duplicate {
                        let _ = to_peer.send(msg.clone());
                    }
                    let _ = to_peer.send(msg);
                    if let Some(late) = held.take() {
                        let _ = to_peer.send(late);
                    }
                }
            });
        }
    });
    addr
}

async fn run_against(addr: SocketAddr, sessions: u32) -> Report {
    let url = format!("ws://{addr}");
    let cli = Cli::try_parse_from([
        "haven-loadtest",
        "chat",
        "--target",
        "relay",
        "--url",
        &url,
        "--sessions",
        &sessions.to_string(),
        "--rate",
        "20",
        "--warmup",
        "300ms",
        "--duration",
        "1s",
        "--drain",
        "1s",
    ])
    .unwrap();
    let Command::Chat(args) = cli.command else {
        unreachable!()
    };
    scenario::run(Scenario::Chat, &args).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_duplicates_and_swaps_is_caught_every_time() {
    let sessions = 4;
    let out = Faults {
        drop: 3,
        duplicate: 5,
        swap: 7,
    };
    // On the way back: another swap, and a drop (of the echo of message
    // 12, the 12th frame back after the loss of message 3).
    let back = Faults {
        drop: 11,
        duplicate: u64::MAX,
        swap: 14,
    };
    let addr = faulty_relay([out, back]).await;
    let report = run_against(addr, sessions).await;
    let n = u64::from(sessions);
    assert!(
        report.sent >= 20 * n,
        "too few messages to reach every fault: {report:?}"
    );
    assert_eq!(
        report.lost,
        2 * n,
        "two lost per session, one each way: {report:?}"
    );
    assert_eq!(
        report.duplicated, n,
        "one duplicate per session: {report:?}"
    );
    assert_eq!(
        report.reordered,
        2 * n,
        "one late message each way per session: {report:?}"
    );
    assert!(!report.clean(), "a run with faults must not pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_relay_without_faults_gives_a_clean_run() {
    let addr = faulty_relay([NONE, NONE]).await;
    let report = run_against(addr, 4).await;
    assert!(report.messages > 0, "{report:?}");
    assert_eq!(
        (report.lost, report.duplicated, report.reordered),
        (0, 0, 0),
        "{report:?}"
    );
    assert!(report.clean(), "{report:?}");
}
