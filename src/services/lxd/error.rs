//! `LxdError`: every failure of the LXD driver, naming the socket, the request and LXD's own
//! words, so the executor can say which host, which step and why without adding context.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LxdError {
    #[error(
        "no LXD unix socket found (is LXD installed and running?); tried: {}",
        list(tried)
    )]
    NoSocket { tried: Vec<PathBuf> },
    #[error("LXD is not running: cannot connect to {}: {source}", socket.display())]
    NotRunning {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to LXD at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The transport failed (connection reset, timeout, malformed HTTP).
    #[error("{method} {url} on {}: {message}", socket.display())]
    Http {
        method: String,
        url: String,
        socket: PathBuf,
        message: String,
    },
    /// LXD answered with an error envelope: `message` is LXD's own text.
    #[error("LXD refused {method} {url}: {message} (error code {code})")]
    Api {
        method: String,
        url: String,
        code: u16,
        message: String,
    },
    /// LXD answered something we could not read as its envelope or the expected type.
    #[error("unexpected answer from LXD to {method} {url}: {message}")]
    Decode {
        method: String,
        url: String,
        message: String,
    },
    /// A background operation ended in failure or was cancelled (boxed: it is the largest).
    #[error("{0}")]
    Operation(Box<OperationFailed>),
    #[error("LXD operation {id} ({description}) started by {method} {url} still running after {waited:?}")]
    OperationTimeout {
        method: String,
        url: String,
        id: String,
        description: String,
        waited: Duration,
    },
    #[error("LXD on {} did not become ready within {waited:?}: {last}", socket.display())]
    NotReady {
        socket: PathBuf,
        waited: Duration,
        last: String,
    },
    #[error("invalid LXD join token: {0}")]
    Token(String),
    /// The certificate served at an address of the token is not the one the token names.
    #[error("cluster certificate check failed: {}", list_str(failures))]
    Certificate { failures: Vec<String> },
    #[error("this LXD lacks API extension {name:?}, needed for {needed_for}")]
    MissingExtension { name: String, needed_for: String },
    /// The state is not one an `ensure_*` helper may silently change.
    #[error("{0}")]
    Conflict(String),
}

/// A failed or cancelled operation: what started it, which it was, and LXD's `err` text.
#[derive(Debug, thiserror::Error)]
#[error("LXD operation {id} ({description}) started by {method} {url} {status}: {message}")]
pub struct OperationFailed {
    pub method: String,
    pub url: String,
    pub id: String,
    pub description: String,
    /// `failed` or `was cancelled`.
    pub status: String,
    pub message: String,
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_str(items: &[String]) -> String {
    items.join("; ")
}

impl LxdError {
    /// LXD's error code, when LXD itself refused (404 for a missing object).
    pub fn api_code(&self) -> Option<u16> {
        match self {
            LxdError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.api_code() == Some(404)
    }
}
