//! HTTPS transport of the peer API: a TLS accept loop that serves an axum router with the
//! caller's certificate fingerprint attached to every request, and a small JSON client over
//! hyper + tokio-rustls with a chosen server-trust policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

use super::tls::fingerprint;

/// Who is calling, as the TLS handshake proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub fingerprint: [u8; 32],
    pub addr: SocketAddr,
}

/// A handshake must finish quickly: a slow or silent client must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` over TLS on `listener` until cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("peer API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, cancel) = (acceptor.clone(), router.clone(), cancel.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, "peer API TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%addr, "peer API TLS handshake timed out");
                    return;
                }
            };
            let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
                return;
            };
            // A dual-stack socket reports IPv4 callers as ::ffff:a.b.c.d.
            let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
            let caller = Caller {
                fingerprint: fingerprint(cert),
                addr,
            };
            let svc = TowerToHyperService::new(router.layer(axum::Extension(caller)));
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(%addr, "peer API connection: {e}") },
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// What went wrong calling a peer, kept apart so the CLI can say which it was.
#[derive(Debug, thiserror::Error)]
pub enum PeerCallError {
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed: {message}")]
    Tls { addr: SocketAddr, message: String },
    #[error("{addr} answered {status}: {message}")]
    Status {
        addr: SocketAddr,
        status: StatusCode,
        message: String,
    },
    #[error("talking to {addr}: {message}")]
    Protocol { addr: SocketAddr, message: String },
}

/// A JSON client for one peer.
#[derive(Clone)]
pub struct PeerClient {
    pub addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl PeerClient {
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Self {
        PeerClient {
            addr,
            tls,
            timeout: Duration::from_secs(30),
        }
    }

    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, PeerCallError> {
        let addr = self.addr;
        let fut = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| PeerCallError::Unreachable { addr, source })?;
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let tls = TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| PeerCallError::Tls {
                    addr,
                    message: e.to_string(),
                })?;
            let proto = |message: String| PeerCallError::Protocol { addr, message };
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| proto(e.to_string()))?;
            let driver = tokio::spawn(conn);
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, addr.to_string())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| proto(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| proto(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| proto(e.to_string()))?
                .to_bytes();
            driver.abort();
            if !status.is_success() {
                let message = serde_json::from_slice::<super::ApiError>(&bytes)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
                return Err(PeerCallError::Status {
                    addr,
                    status,
                    message,
                });
            }
            Ok(bytes)
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(PeerCallError::Unreachable {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"),
            }),
        }
    }

    fn decode<T: DeserializeOwned>(&self, b: &[u8]) -> Result<T, PeerCallError> {
        serde_json::from_slice(b).map_err(|e| PeerCallError::Protocol {
            addr: self.addr,
            message: format!("bad JSON: {e}"),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PeerCallError> {
        let b = self.call(Method::GET, path, None).await?;
        self.decode(&b)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, PeerCallError> {
        let body = serde_json::to_vec(body).map_err(|e| PeerCallError::Protocol {
            addr: self.addr,
            message: e.to_string(),
        })?;
        let b = self.call(Method::POST, path, Some(body)).await?;
        self.decode(&b)
    }
}
