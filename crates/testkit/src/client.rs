//! WebSocket clients: [`Ws`] speaks raw frames (for bad-input tests), and
//! [`SeekerClient`] / [`CounsellorClient`] speak the typed protocol.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use haven_protocol::{counsellor, seeker};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum WsError {
    /// The server answered the upgrade with this HTTP status.
    Http(StatusCode),
    /// Anything else.
    Other(String),
}

/// What arrived on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text frame.
    Text(String),
    /// The socket closed, with the close code if one was sent.
    Closed(Option<u16>),
}

/// A raw WebSocket client.
#[derive(Debug)]
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects with extra request headers (such as `Origin` or `Cookie`).
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, WsError> {
        let mut req = url
            .into_client_request()
            .map_err(|e| WsError::Other(e.to_string()))?;
        for (k, v) in headers {
            req.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tungstenite::Error::Http(resp)) => Err(WsError::Http(resp.status())),
            Err(e) => Err(WsError::Other(e.to_string())),
        }
    }

    /// Connects with a tiny TCP receive buffer, so a client that stops
    /// reading backs up into the server quickly (slow-consumer tests).
    pub async fn connect_small_buffer(url: &str, addr: std::net::SocketAddr) -> Ws {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let req = url.into_client_request().unwrap();
        let (stream, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
        Ws { stream }
    }

    /// Connects from a chosen local address (a loopback alias such as
    /// 127.0.0.77), so tests can look for that address afterwards.
    pub async fn connect_from(
        url: &str,
        server: std::net::SocketAddr,
        local: std::net::IpAddr,
    ) -> Ws {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
        let tcp = socket.connect(server).await.unwrap();
        let req = url.into_client_request().unwrap();
        let (stream, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
        Ws { stream }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream.send(Message::binary(bytes)).await.unwrap();
    }

    /// Sends a message as JSON.
    pub async fn send_json<T: Serialize>(&mut self, msg: &T) {
        self.send_text(&serde_json::to_string(msg).unwrap()).await;
    }

    /// Sends a raw frame; errors are returned, not panicked on.
    pub async fn try_send(&mut self, msg: Message) -> Result<(), tungstenite::Error> {
        self.stream.send(msg).await
    }

    /// The next text frame or close, skipping pings and pongs; `None` on
    /// timeout.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Event::Closed(None)),
                Ok(Some(Err(_))) => return Some(Event::Closed(None)),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(t) => return Some(Event::Text(t.to_string())),
                Message::Close(frame) => {
                    return Some(Event::Closed(frame.map(|f: CloseFrame| u16::from(f.code))));
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// The next text frame; panics on close or timeout.
    pub async fn recv_text(&mut self) -> String {
        match self.next_event(WAIT).await {
            Some(Event::Text(t)) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Waits for the close and returns its code, skipping text frames.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next_event(WAIT).await {
                Some(Event::Text(_)) => {}
                Some(Event::Closed(code)) => return code,
                None => panic!("socket did not close within {WAIT:?}"),
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Drops the TCP connection without a close handshake, as a phone
    /// losing signal would.
    pub fn drop_abruptly(self) {
        drop(self);
    }
}

/// A typed client for one role: sends `C`, receives `S`.
#[derive(Debug)]
pub struct Client<C, S> {
    /// The raw socket underneath.
    pub ws: Ws,
    pending: VecDeque<S>,
    _sends: PhantomData<C>,
}

/// A help-seeker's client.
pub type SeekerClient = Client<seeker::ClientMessage, seeker::ServerMessage>;
/// A counsellor's client.
pub type CounsellorClient = Client<counsellor::ClientMessage, counsellor::ServerMessage>;

impl<C: Serialize, S: DeserializeOwned + Debug + Clone> Client<C, S> {
    /// Wraps a connected socket.
    pub fn new(ws: Ws) -> Self {
        Self {
            ws,
            pending: VecDeque::new(),
            _sends: PhantomData,
        }
    }

    /// Sends a typed message.
    pub async fn send(&mut self, msg: &C) {
        self.ws.send_json(msg).await;
    }

    /// The next message (buffered ones first); panics on close or timeout.
    pub async fn recv(&mut self) -> S {
        if let Some(msg) = self.pending.pop_front() {
            return msg;
        }
        let text = self.ws.recv_text().await;
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("server sent an invalid frame {text}: {e}"))
    }

    /// The next message within `timeout`, or `None` if the socket stays
    /// quiet (or closes).
    pub async fn try_recv(&mut self, timeout: Duration) -> Option<S> {
        if let Some(msg) = self.pending.pop_front() {
            return Some(msg);
        }
        match self.ws.next_event(timeout).await? {
            Event::Text(text) => Some(serde_json::from_str(&text).unwrap()),
            Event::Closed(_) => None,
        }
    }

    /// The first message matching `want`; others are kept for later
    /// `recv`/`expect` calls, in order.
    pub async fn expect(&mut self, what: &str, want: impl Fn(&S) -> bool) -> S {
        if let Some(i) = self.pending.iter().position(&want) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.ws.next_event(left).await;
            match event {
                Some(Event::Text(text)) => {
                    let msg: S = serde_json::from_str(&text).unwrap();
                    if want(&msg) {
                        return msg;
                    }
                    self.pending.push_back(msg);
                }
                other => panic!(
                    "waiting for {what}: got {other:?}; earlier: {:?}",
                    self.pending
                ),
            }
        }
    }

    /// Messages received but not yet taken.
    pub fn pending(&self) -> &VecDeque<S> {
        &self.pending
    }

    /// Waits for the close code, dropping any messages before it.
    pub async fn closed(&mut self) -> Option<u16> {
        self.ws.closed().await
    }
}

impl SeekerClient {
    /// Says hello and returns the `welcome`.
    pub async fn hello(&mut self, nickname: Option<&str>) -> seeker::ServerMessage {
        self.send(&seeker::ClientMessage::Hello {
            protocol: haven_protocol::PROTOCOL_VERSION,
            nickname: nickname.map(str::to_owned),
            topic: None,
            language: Some("nl-BE".to_owned()),
            urgent: false,
            return_code: None,
            transcript_consent: false,
        })
        .await;
        let msg = self
            .expect("welcome", |m| {
                matches!(m, seeker::ServerMessage::Welcome { .. })
            })
            .await;
        assert!(matches!(msg, seeker::ServerMessage::Welcome { .. }));
        msg
    }

    /// Sends a chat message and waits for its ack; returns its seq.
    pub async fn say(&mut self, id: &str, text: &str) -> u64 {
        self.send(&seeker::ClientMessage::Send {
            id: haven_protocol::ClientMsgId(id.to_owned()),
            text: haven_protocol::ChatText(text.to_owned()),
            received: None,
        })
        .await;
        let ack = self
            .expect("ack", |m| {
                matches!(m, seeker::ServerMessage::Ack { id: i, .. } if i.0 == id)
                    || matches!(m, seeker::ServerMessage::Error { id: Some(i), .. } if i.0 == id)
            })
            .await;
        match ack {
            seeker::ServerMessage::Ack { seq, .. } => seq,
            other => panic!("message {id} refused: {other:?}"),
        }
    }

    /// Waits for the next chat message and returns `(seq, text)`.
    pub async fn heard(&mut self) -> (u64, String) {
        match self
            .expect("message", |m| {
                matches!(m, seeker::ServerMessage::Message { .. })
            })
            .await
        {
            seeker::ServerMessage::Message { seq, text, .. } => (seq, text.0),
            _ => unreachable!(),
        }
    }

    /// Waits for the next delivery mark and returns its `up_to`.
    pub async fn delivered(&mut self) -> u64 {
        match self
            .expect("delivered", |m| {
                matches!(m, seeker::ServerMessage::Delivered { .. })
            })
            .await
        {
            seeker::ServerMessage::Delivered { up_to } => up_to,
            _ => unreachable!(),
        }
    }
}

impl CounsellorClient {
    /// Says hello with a login token and returns the `welcome`.
    pub async fn hello(&mut self, token: Option<&str>) -> counsellor::ServerMessage {
        self.send(&counsellor::ClientMessage::Hello {
            protocol: haven_protocol::PROTOCOL_VERSION,
            token: token.map(|t| haven_protocol::common::AuthToken(t.to_owned())),
        })
        .await;
        self.expect("welcome", |m| {
            matches!(m, counsellor::ServerMessage::Welcome { .. })
        })
        .await
    }

    /// Goes available.
    pub async fn available(&mut self) {
        self.send(&counsellor::ClientMessage::SetStatus {
            status: counsellor::CounsellorStatus::Available,
        })
        .await;
    }

    /// Accepts the offer of `session`.
    pub async fn accept(&mut self, session: &haven_protocol::SessionRef) {
        self.send(&counsellor::ClientMessage::Accept {
            session: session.clone(),
        })
        .await;
    }

    /// Waits for the next assignment and returns its session id.
    pub async fn assigned(&mut self) -> haven_protocol::SessionRef {
        self.assigned_info().await.session
    }

    /// Waits for the next assignment and returns what it says about the
    /// session.
    pub async fn assigned_info(&mut self) -> counsellor::SessionInfo {
        match self
            .expect("session_assigned", |m| {
                matches!(m, counsellor::ServerMessage::SessionAssigned { .. })
            })
            .await
        {
            counsellor::ServerMessage::SessionAssigned { info, .. } => info,
            _ => unreachable!(),
        }
    }

    /// Sends a chat message in `session` and waits for its ack; returns its
    /// seq.
    pub async fn say(&mut self, session: &haven_protocol::SessionRef, id: &str, text: &str) -> u64 {
        self.send(&counsellor::ClientMessage::Send {
            session: session.clone(),
            id: haven_protocol::ClientMsgId(id.to_owned()),
            text: haven_protocol::ChatText(text.to_owned()),
            received: None,
        })
        .await;
        let ack = self
            .expect("ack", |m| {
                matches!(m, counsellor::ServerMessage::Ack { id: i, .. } if i.0 == id)
                    || matches!(m, counsellor::ServerMessage::Error { id: Some(i), .. } if i.0 == id)
            })
            .await;
        match ack {
            counsellor::ServerMessage::Ack { seq, .. } => seq,
            other => panic!("message {id} refused: {other:?}"),
        }
    }

    /// Waits for the next chat message in `session`; returns `(seq, text)`.
    pub async fn heard(&mut self, session: &haven_protocol::SessionRef) -> (u64, String) {
        match self
            .expect("message", |m| matches!(m, counsellor::ServerMessage::Message { session: s, .. } if s == session))
            .await
        {
            counsellor::ServerMessage::Message { seq, text, .. } => (seq, text.0),
            _ => unreachable!(),
        }
    }
}
