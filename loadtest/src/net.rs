//! Connecting many sockets: the target's address, source addresses spread
//! over `127.0.0.x` so one source never runs out of ports, a small read
//! buffer per socket, the file limit, and errors that say what to do.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, http};

/// A client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// Client sockets one source address may hold: the ephemeral port range
/// (about 28,000) with room for churn and TIME_WAIT.
const PER_SOURCE: u64 = 20_000;

/// Where the server is.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port` as given, for the `Host` header.
    pub authority: String,
    /// The resolved address.
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Parses and resolves a `ws://HOST:PORT` URL. Paths are the
    /// scenario's business, so a path in the URL is refused.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL; use ws://HOST:PORT"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => bail!(
                "--url {url:?}: wss is not supported; run against the server's plain \
                 ws port (TLS belongs to the reverse proxy in front of it)"
            ),
            _ => bail!("--url {url:?} must start with ws://"),
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            bail!("--url {url:?}: give only ws://HOST:PORT, without a path");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("--url {url:?} has no host"))?
            .to_string();
        let host_port = if uri.port().is_some() {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&host_port)
            .await
            .with_context(|| format!("cannot resolve {host_port}"))?
            .next()
            .with_context(|| format!("{host_port} resolves to no address"))?;
        Ok(Self { authority, addr })
    }

    /// The `http://` URL of a path on the server.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }
}

/// Source addresses to spread client sockets over.
#[derive(Debug)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// `wanted` addresses (or as many as `connections` need) when the
    /// target is on IPv4 loopback; otherwise the system picks.
    pub fn new(target: SocketAddr, wanted: Option<u8>, connections: u64) -> Self {
        let loopback = matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback());
        let count = match wanted {
            Some(n) => u64::from(n.max(1)),
            None => connections.div_ceil(PER_SOURCE).max(1),
        };
        let addrs = if loopback && count > 1 {
            (1..=count.min(254))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(i).unwrap_or(1))))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// How many source addresses are in use (1 when the system picks).
    pub fn count(&self) -> usize {
        self.addrs.len().max(1)
    }

    fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        Some(self.addrs[i])
    }
}

/// The client side's WebSocket settings: a 1 KiB read buffer (the default
/// 128 KiB would cost the generator gigabytes at 20,000 sockets, and is
/// zeroed before every read) and frames up to 64 KiB.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 10))
        .max_frame_size(Some(64 << 10))
}

/// Why a connection failed, in words a person running a benchmark can act
/// on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens there.
    #[error("connection refused by {0}: is the server running on that port?")]
    Refused(SocketAddr),
    /// Out of file descriptors.
    #[error("out of file descriptors (the limit is {0}); raise it with `ulimit -n`")]
    FileLimit(u64),
    /// Out of local ports or addresses.
    #[error("out of local ports for {0}; use more source addresses with --sources")]
    Ports(SocketAddr),
    /// The server answered the upgrade with an HTTP error.
    #[error("the server refused the WebSocket upgrade of {path} with HTTP {status}")]
    Http {
        /// The path.
        path: String,
        /// The status.
        status: u16,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ConnectError {
    fn from_io(e: &io::Error, addr: SocketAddr) -> Self {
        match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() => {
                Self::FileLimit(file_limit().0)
            }
            Some(code) if code == rustix::io::Errno::ADDRNOTAVAIL.raw_os_error() => {
                Self::Ports(addr)
            }
            _ if e.kind() == io::ErrorKind::ConnectionRefused => Self::Refused(addr),
            _ => Self::Other(format!("cannot connect to {addr}: {e}")),
        }
    }
}

/// Opens a WebSocket to `path` on `endpoint`, from the next source
/// address.
pub async fn connect(
    endpoint: &Endpoint,
    sources: &Sources,
    path: &str,
) -> Result<Ws, ConnectError> {
    let addr = endpoint.addr;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| ConnectError::from_io(&e, addr))?;
    if let Some(ip) = sources.pick() {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| ConnectError::from_io(&e, addr))?;
    }
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| ConnectError::from_io(&e, addr))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{}{path}", endpoint.authority);
    let request = url
        .into_client_request()
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    match tokio_tungstenite::client_async_with_config(request, tcp, Some(client_config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(ConnectError::Http {
            path: path.to_owned(),
            status: response.status().as_u16(),
        }),
        Err(tungstenite::Error::Io(e)) => Err(ConnectError::from_io(&e, addr)),
        Err(e) => Err(ConnectError::Other(format!(
            "WebSocket handshake failed: {e}"
        ))),
    }
}

/// The soft and hard limits on open files.
pub fn file_limit() -> (u64, u64) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    (
        limit.current.unwrap_or(u64::MAX),
        limit.maximum.unwrap_or(u64::MAX),
    )
}

/// Raises the file limit to at least `needed` if allowed (the hard limit
/// too when running as root), else as far as the hard limit goes. Fails
/// with a clear message when that is still too few.
pub fn raise_file_limit(needed: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let (soft, hard) = file_limit();
    if soft >= needed {
        return Ok(soft);
    }
    let raised = Rlimit {
        current: Some(needed),
        maximum: Some(hard.max(needed)),
    };
    if setrlimit(Resource::Nofile, raised).is_err() {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        );
    }
    let (soft, _) = file_limit();
    if soft < needed {
        bail!(
            "this run needs about {needed} file descriptors but the limit is {soft} \
             (hard limit {hard}); raise it with `ulimit -n {needed}` or run fewer sessions"
        );
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked_with_a_clear_message() {
        let e = Endpoint::resolve("http://127.0.0.1:1").await.unwrap_err();
        assert!(e.to_string().contains("must start with ws://"), "{e}");
        let e = Endpoint::resolve("ws://127.0.0.1:1/ws/seeker")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("without a path"), "{e}");
        let e = Endpoint::resolve("wss://127.0.0.1:1").await.unwrap_err();
        assert!(e.to_string().contains("reverse proxy"), "{e}");
        let e = Endpoint::resolve("not a url").await.unwrap_err();
        assert!(e.to_string().contains("not a URL"), "{e}");
        let ok = Endpoint::resolve("ws://127.0.0.1:8080").await.unwrap();
        assert_eq!(ok.addr, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn sources_spread_over_loopback_only_when_needed() {
        let lo: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(Sources::new(lo, None, 1000).count(), 1);
        let many = Sources::new(lo, None, 50_000);
        assert_eq!(many.count(), 3);
        let picks: Vec<_> = (0..4).map(|_| many.pick().unwrap()).collect();
        assert_eq!(picks[0], picks[3]);
        assert_ne!(picks[0], picks[1]);
        let remote: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(Sources::new(remote, Some(8), 50_000).pick(), None);
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        // Bind then drop, so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ep = Endpoint::resolve(&format!("ws://127.0.0.1:{port}"))
            .await
            .unwrap();
        let sources = Sources::new(ep.addr, None, 1);
        let e = connect(&ep, &sources, "/").await.unwrap_err();
        assert!(matches!(e, ConnectError::Refused(_)), "{e}");
        assert!(e.to_string().contains("is the server running"));
    }
}
