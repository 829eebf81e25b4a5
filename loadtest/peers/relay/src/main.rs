//! The bare relay: the physical limit of Haven's stack on this machine.
//!
//! Two sockets per session, `/s/<id>/a` and `/s/<id>/b`; every text frame
//! one sends is relayed verbatim to the other. No routing, no acks, no
//! replay, no limits: just tokio-tungstenite with what any careful relay
//! would do (a 4 KiB read buffer, one writer task per socket that feeds
//! everything queued and flushes once, pairing through a `DashMap`, a
//! single-threaded runtime on one CPU as Haven has). Haven's
//! cost per message is measured against this.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use dashmap::DashMap;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frames queued per socket before the relay drops (a peer that does not
/// read).
const QUEUE: usize = 1024;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "haven-bare-relay")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
}

/// One side of one session.
type Key = (Box<str>, bool);

type Peers = Arc<DashMap<Key, mpsc::Sender<Message>>>;

/// Tokio's runtime the way Haven picks it: single-threaded on one CPU,
/// multi-threaded on more, so the floor gets what Haven gets.
fn main() -> anyhow::Result<()> {
    let single = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if single {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("haven-bare-relay listening on {}", listener.local_addr()?);
    let peers: Peers = Arc::default();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep serving.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(serve(stream, peers.clone()));
    }
}

/// `/s/<id>/a` or `/s/<id>/b` as a key.
fn parse_path(path: &str) -> Option<Key> {
    let rest = path.strip_prefix("/s/")?;
    let (id, side) = rest.rsplit_once('/')?;
    match side {
        "a" => Some((id.into(), false)),
        "b" => Some((id.into(), true)),
        _ => None,
    }
}

async fn serve(stream: TcpStream, peers: Peers) {
    let _ = stream.set_nodelay(true);
    let mut key = None;
    let config = WebSocketConfig::default().read_buffer_size(4096);
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        key = parse_path(request.uri().path());
        Ok(response)
    };
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some(key) = key else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    peers.insert(key.clone(), tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.feed(msg).await.is_err() {
                return;
            }
            while let Ok(msg) = rx.try_recv() {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let peer_key: Key = (key.0.clone(), !key.1);
    let mut peer: Option<mpsc::Sender<Message>> = None;
    while let Some(Ok(msg)) = source.next().await {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if peer.as_ref().is_none_or(mpsc::Sender::is_closed) {
                    peer = peers.get(&peer_key).map(|p| p.clone());
                }
                if let Some(p) = &peer {
                    // A full or closed peer loses the frame, as a bare
                    // relay would; the load generator counts it.
                    let _ = p.try_send(msg);
                }
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    peers.remove_if(&key, |_, current| current.same_channel(&tx));
    drop(tx);
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_a_session_and_a_side() {
        assert_eq!(parse_path("/s/42/a"), Some(("42".into(), false)));
        assert_eq!(parse_path("/s/x/y/b"), Some(("x/y".into(), true)));
        assert_eq!(parse_path("/s/42/c"), None);
        assert_eq!(parse_path("/other"), None);
    }
}
