//! `LxdClient`: HTTP/1.1 (hyper) to LXD over its unix socket, LXD's envelope, and waiting on
//! background operations. Typed calls live in `api`, this file only moves JSON.
//!
//! One connection per request, like the agent's own local client: LXD serves the socket
//! cheaply, and a bootstrap makes a few dozen calls, so pooling would buy nothing but state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::sync::OnceCell;

use super::envelope::{self, OpState, Operation, Refusal, Reply};
use super::error::OperationFailed;
use super::{socket, LxdError};

/// How long one request may take before we give up on it (not an operation: see
/// [`LxdClient::with_operation_timeout`]). Creating a zfs pool on a slow disk is the longest.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long we wait for a background operation (enabling clustering, a join).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest single `/wait?timeout=` we ask LXD for; we loop until the operation's deadline, so
/// a wedged connection costs at most this much.
const WAIT_SLICE: Duration = Duration::from_secs(30);

/// A client for one LXD daemon. Cheap to clone; clones share the cached API extensions.
#[derive(Debug, Clone)]
pub struct LxdClient {
    socket: PathBuf,
    request_timeout: Duration,
    operation_timeout: Duration,
    extensions: Arc<OnceCell<Vec<String>>>,
}

impl LxdClient {
    /// A client for the socket at `socket` (not contacted until the first call).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        LxdClient {
            socket: socket.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            extensions: Arc::new(OnceCell::new()),
        }
    }

    /// A client for the socket [`socket::discover`] finds (explicit path, `$LXD_DIR`, snap,
    /// Debian).
    pub fn discover(explicit: Option<&Path>) -> Result<Self, LxdError> {
        Ok(Self::new(socket::discover(explicit)?))
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// One HTTP exchange: the status and the body, whatever they are.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), LxdError> {
        let http = |message: String| LxdError::Http {
            method: method.to_string(),
            url: url.to_string(),
            socket: self.socket.clone(),
            message,
        };
        let work = async {
            let stream = UnixStream::connect(&self.socket)
                .await
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                        LxdError::NotRunning {
                            socket: self.socket.clone(),
                            source,
                        }
                    }
                    _ => LxdError::Connect {
                        socket: self.socket.clone(),
                        source,
                    },
                })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| http(e.to_string()))?;
            // The connection task ends with the exchange; aborting it after is belt and braces.
            let driver = tokio::spawn(conn);
            let mut req = Request::builder()
                .method(method.clone())
                .uri(url)
                .header(hyper::header::HOST, "lxd");
            if body.is_some() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| http(e.to_string()))?;
            let result = async {
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| http(e.to_string()))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| http(e.to_string()))?
                    .to_bytes();
                Ok((status, bytes))
            }
            .await;
            driver.abort();
            result
        };
        let started = std::time::Instant::now();
        let r = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| http(format!("no answer within {timeout:?}")))?;
        tracing::debug!(
            %method,
            url,
            status = r.as_ref().map_or(0, |(s, _)| *s),
            elapsed = ?started.elapsed(),
            "LXD request"
        );
        r
    }

    async fn call_with(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Reply, LxdError> {
        let (status, bytes) = self.exchange(&method, url, body, timeout).await?;
        envelope::parse(status, &bytes).map_err(|r| match r {
            Refusal::Api { code, message } => LxdError::Api {
                method: method.to_string(),
                url: url.to_string(),
                code,
                message,
            },
            Refusal::Decode(message) => LxdError::Decode {
                method: method.to_string(),
                url: url.to_string(),
                message,
            },
        })
    }

    /// Send one request and return LXD's answer without waiting on an operation it starts.
    /// `body` is sent as JSON; no ETag is sent (LXD accepts PUT and PATCH without `If-Match`).
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<Reply, LxdError> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| LxdError::Decode {
                method: method.to_string(),
                url: url.to_string(),
                message: format!("cannot encode the request: {e}"),
            })?),
            None => None,
        };
        self.call_with(method, url, body, self.request_timeout)
            .await
    }

    /// GET a synchronous result and decode it as `T`.
    pub async fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, LxdError> {
        match self.call::<()>(Method::GET, url, None).await? {
            Reply::Sync(v) => decode(&Method::GET, url, v),
            Reply::Async(op) => Err(LxdError::Decode {
                method: "GET".into(),
                url: url.into(),
                message: format!("expected a result, got operation {}", op.id),
            }),
        }
    }

    /// Send a request and, if LXD answers with an operation, wait for it to finish. Returns the
    /// sync `metadata`, or the finished operation's `metadata` (`null` if none).
    pub async fn execute<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<Value, LxdError> {
        match self.call(method.clone(), url, body).await? {
            Reply::Sync(v) => Ok(v),
            Reply::Async(op) => {
                let done = self.wait_operation(&op, &method, url).await?;
                Ok(done.metadata.unwrap_or(Value::Null))
            }
        }
    }

    /// Wait until `op` (started by `method url`, named in errors) finishes, within the
    /// operation timeout. Success returns the final operation; failure and cancellation
    /// return [`LxdError::Operation`] with LXD's `err` text.
    pub async fn wait_operation(
        &self,
        op: &Operation,
        method: &Method,
        url: &str,
    ) -> Result<Operation, LxdError> {
        let deadline = Instant::now() + self.operation_timeout;
        let mut current = op.clone();
        loop {
            match current.state() {
                OpState::Success => return Ok(current),
                OpState::Failure | OpState::Cancelled => {
                    return Err(LxdError::Operation(Box::new(OperationFailed {
                        method: method.to_string(),
                        url: url.to_string(),
                        id: current.id.clone(),
                        description: current.description.clone(),
                        status: if current.state() == OpState::Cancelled {
                            "was cancelled".into()
                        } else {
                            "failed".into()
                        },
                        message: if current.err.is_empty() {
                            format!("status {}", current.status)
                        } else {
                            current.err.clone()
                        },
                    })))
                }
                OpState::Running => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LxdError::OperationTimeout {
                    method: method.to_string(),
                    url: url.to_string(),
                    id: current.id.clone(),
                    description: current.description.clone(),
                    waited: self.operation_timeout,
                });
            }
            let slice = left.min(WAIT_SLICE);
            let wait_url = format!(
                "/1.0/operations/{}/wait?timeout={}",
                seg(&current.id),
                slice.as_secs().max(1)
            );
            let reply = self
                .call_with(
                    Method::GET,
                    &wait_url,
                    None,
                    slice + Duration::from_secs(10),
                )
                .await?;
            current = match reply {
                Reply::Sync(v) => decode(&Method::GET, &wait_url, v)?,
                Reply::Async(op) => op,
            };
        }
    }

    /// The API extensions of this LXD, fetched once per client (they only change when the
    /// daemon is upgraded, which restarts it).
    pub async fn extensions(&self) -> Result<&[String], LxdError> {
        let list = self
            .extensions
            .get_or_try_init(|| async {
                let server: super::types::Server = self.get("/1.0").await?;
                Ok::<_, LxdError>(server.api_extensions)
            })
            .await?;
        Ok(list)
    }

    /// Whether this LXD has API extension `name`: check it before sending a newer key.
    pub async fn has_extension(&self, name: &str) -> Result<bool, LxdError> {
        Ok(self.extensions().await?.iter().any(|e| e == name))
    }

    /// [`LxdError::MissingExtension`] unless this LXD has `name`.
    pub async fn require_extension(&self, name: &str, needed_for: &str) -> Result<(), LxdError> {
        if self.has_extension(name).await? {
            Ok(())
        } else {
            Err(LxdError::MissingExtension {
                name: name.into(),
                needed_for: needed_for.into(),
            })
        }
    }

    /// Poll LXD's `/internal/ready` (what `lxd waitready` uses) until it answers, for a daemon
    /// that was just started: the socket may not exist yet, or LXD may still be loading.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), LxdError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self
                .call_with(Method::GET, "/internal/ready", None, Duration::from_secs(5))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(LxdError::NotReady {
                    socket: self.socket.clone(),
                    waited: timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(
    method: &Method,
    url: &str,
    v: Value,
) -> Result<T, LxdError> {
    serde_json::from_value(v).map_err(|e| LxdError::Decode {
        method: method.to_string(),
        url: url.to_string(),
        message: e.to_string(),
    })
}

/// Percent-encode one path segment or query value, so a name can never change the URL's shape.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::seg;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("local"), "local");
        assert_eq!(seg("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
        assert_eq!(seg("..%"), "..%25");
    }
}
