//! The local API client: HTTP/1.1 (hyper) over the daemon's unix socket.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("microcloudd is not running (no control socket at {0}); start it with: systemctl start microcloudd")]
    NotRunning(PathBuf),
    #[error("permission denied on {0}: the control socket is for root only")]
    Denied(PathBuf),
    #[error("connecting to {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{method} {uri} over {path}: {message}")]
    Request {
        method: Method,
        uri: String,
        path: PathBuf,
        message: String,
    },
    /// The daemon refused: its message is for the operator as it stands.
    #[error("{message}")]
    Api {
        status: StatusCode,
        message: String,
        kind: Option<String>,
    },
}

pub struct Client {
    path: PathBuf,
}

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Client { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call(&self, method: Method, uri: &str, body: Vec<u8>) -> Result<Bytes, ClientError> {
        let stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning(self.path.clone())
                }
                std::io::ErrorKind::PermissionDenied => ClientError::Denied(self.path.clone()),
                _ => ClientError::Connect {
                    path: self.path.clone(),
                    source: e,
                },
            })?;
        let err = |message: String| ClientError::Request {
            method: method.clone(),
            uri: uri.to_string(),
            path: self.path.clone(),
            message,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| err(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(hyper::header::HOST, "microcloudd")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| err(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| err(e.to_string()))?
            .to_bytes();
        driver.abort();
        if status != StatusCode::OK {
            return Err(match serde_json::from_slice::<super::ApiError>(&body) {
                Ok(e) => ClientError::Api {
                    status,
                    message: e.error,
                    kind: e.kind,
                },
                Err(_) => err(format!("{status}: {}", String::from_utf8_lossy(&body))),
            });
        }
        Ok(body)
    }

    pub async fn get<T: DeserializeOwned>(&self, uri: &str) -> Result<T, ClientError> {
        let body = self.call(Method::GET, uri, Vec::new()).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Request {
            method: Method::GET,
            uri: uri.to_string(),
            path: self.path.clone(),
            message: format!("bad JSON from the daemon: {e}"),
        })
    }

    pub async fn post(&self, uri: &str) -> Result<(), ClientError> {
        self.call(Method::POST, uri, b"{}".to_vec())
            .await
            .map(|_| ())
    }

    /// POST a JSON body and decode the JSON answer.
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        uri: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bad = |message: String| ClientError::Request {
            method: Method::POST,
            uri: uri.to_string(),
            path: self.path.clone(),
            message,
        };
        let body = serde_json::to_vec(body).map_err(|e| bad(e.to_string()))?;
        let resp = self.call(Method::POST, uri, body).await?;
        serde_json::from_slice(&resp).map_err(|e| bad(format!("bad JSON from the daemon: {e}")))
    }
}
