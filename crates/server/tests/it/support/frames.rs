//! A raw WebSocket client over TCP, and frame builders that may break RFC
//! 6455 on purpose.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use haven_protocol::SUBPROTOCOL;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

pub(crate) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub(crate) const HELLO: &str = r#"{"type":"hello","protocol":1,"language":"nl"}"#;

/// A client frame. `key: None` leaves it unmasked (which a client must
/// never do).
pub(crate) fn frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    key: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 0x7) << 4) | (opcode & 0xf)];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | u8::try_from(n).unwrap()),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&u64::try_from(n).unwrap().to_be_bytes());
        }
    }
    match key {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A whole, masked frame of `opcode`.
pub(crate) fn whole(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, payload, Some(KEY))
}

/// A close frame's payload: the code and a reason.
pub(crate) fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// A frame header that announces `len` payload bytes (a 64-bit length)
/// and sends none of them.
pub(crate) fn announcing(len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | TEXT, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&KEY);
    out
}

/// One client socket past the opening handshake, read and written raw.
pub(crate) struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub(crate) async fn open(addr: SocketAddr, path: &str) -> Raw {
        Self::open_with(addr, path, "").await.0
    }

    /// Opens with `extra` request header lines; also returns the response
    /// head.
    pub(crate) async fn open_with(addr: SocketAddr, path: &str, extra: &str) -> (Raw, String) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0; 1024];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server hung up during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.drain(..end);
        (Raw { tcp, buf }, head)
    }

    /// Writes `bytes`. The server may have closed already; that is fine.
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// Writes `bytes` in two, as a network might cut them.
    pub(crate) async fn send_cut(&mut self, bytes: &[u8]) {
        let cut = bytes.len() / 2;
        self.send(&bytes[..cut]).await;
        tokio::task::yield_now().await;
        self.send(&bytes[cut..]).await;
    }

    /// The server's next frame as (opcode, payload); `None` when the
    /// connection ends or nothing comes within `wait`.
    pub(crate) async fn frame(&mut self, wait: Duration) -> Option<(u8, Vec<u8>)> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some((opcode, payload, used)) = server_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some((opcode, payload));
                }
                let mut chunk = [0; 4096];
                match self.tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Reads until the server's close frame and returns its code; `None`
    /// when the connection ends (or stays quiet for `wait`) without one.
    pub(crate) async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        while let Some((opcode, payload)) = self.frame(wait).await {
            if opcode == CLOSE {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }

    /// Skips frames until a text frame of type `want`; false when none
    /// comes within `wait`.
    pub(crate) async fn until_type(&mut self, want: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some((opcode, payload)) = self
            .frame(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            if opcode == TEXT
                && serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["type"] == want
            {
                return true;
            }
        }
        false
    }

    /// The next text frame's `type`, skipping control frames.
    pub(crate) async fn next_type(&mut self) -> String {
        loop {
            let (opcode, payload) = self
                .frame(Duration::from_secs(5))
                .await
                .expect("a frame from the server");
            if opcode == TEXT {
                let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                return value["type"].as_str().unwrap().to_owned();
            }
        }
    }
}

/// Parses one server frame at the start of `buf`: (opcode, payload, bytes
/// used), or `None` when it is not all there yet.
pub(crate) fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "a server's frames are never masked");
    let (len, at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => {
            let len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            (usize::try_from(len).unwrap(), 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((b0 & 0xf, payload, at + len))
}
