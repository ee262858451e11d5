//! The LXD client's error paths against a stub LXD on a unix socket: an error envelope, a
//! failed, cancelled and never-ending operation, a non-LXD answer, a missing socket. Every
//! success path is tested against real LXD (tests/lxd_real.rs), never against a stub.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use microcloud::services::lxd::{LxdClient, LxdError};
use serde_json::{json, Value};
use tokio::net::UnixListener;

fn op(id: &str, code: u16, status: &str, err: &str) -> Value {
    json!({"id": id, "class": "task", "description": format!("Stub task {id}"),
        "status": status, "status_code": code, "metadata": null, "may_cancel": false,
        "err": err, "location": "none"})
}

fn envelope(kind: &str, metadata: Value) -> Value {
    json!({"type": kind, "status": "", "status_code": 200, "operation": "", "error_code": 0,
        "error": "", "metadata": metadata})
}

fn error(code: u16, message: &str) -> (u16, String) {
    let v = json!({"type": "error", "status": "", "status_code": 0, "operation": "",
        "error_code": code, "error": message, "metadata": null});
    (code, v.to_string())
}

/// What the stub LXD answers: `(HTTP status, body)` per method and path.
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let (status, body) = match (req.method().as_str(), path.as_str()) {
        ("GET", "/1.0/storage-pools/missing") => error(404, "Storage pool not found"),
        ("POST", "/1.0/storage-pools") => error(500, "Source path '/x' doesn't exist"),
        ("GET", "/1.0/plain") => (502, "Bad Gateway\n".to_string()),
        ("GET", "/1.0/garbage") => (200, "<html>".to_string()),
        ("PUT", "/1.0/cluster") => (
            202,
            envelope("async", op("fails", 103, "Running", "")).to_string(),
        ),
        ("GET", p) if p.starts_with("/1.0/operations/fails/wait") => (
            200,
            envelope(
                "sync",
                op(
                    "fails",
                    400,
                    "Failure",
                    "Inconsistent state: found leftover cluster certificate",
                ),
            )
            .to_string(),
        ),
        ("PATCH", "/1.0") => (
            202,
            envelope("async", op("cancelled", 103, "Running", "")).to_string(),
        ),
        ("GET", p) if p.starts_with("/1.0/operations/cancelled/wait") => (
            200,
            envelope("sync", op("cancelled", 401, "Cancelled", "")).to_string(),
        ),
        ("DELETE", "/1.0/networks/forever") => (
            202,
            envelope("async", op("forever", 103, "Running", "")).to_string(),
        ),
        ("GET", p) if p.starts_with("/1.0/operations/forever/wait") => {
            // LXD holds the request up to `timeout`; a short nap keeps the loop honest.
            tokio::time::sleep(Duration::from_millis(200)).await;
            (
                200,
                envelope("sync", op("forever", 103, "Running", "")).to_string(),
            )
        }
        // A token request answered synchronously: not what LXD does.
        ("POST", "/1.0/cluster/members") => (200, envelope("sync", json!({})).to_string()),
        // A token operation whose metadata lacks the secret.
        ("GET", "/1.0/operations?recursion=1") => (
            200,
            envelope(
                "sync",
                json!({"running": [{"id": "t1", "class": "token", "status_code": 103,
                    "metadata": {"serverName": "m2", "addresses": ["a:1"]}}]}),
            )
            .to_string(),
        ),
        ("GET", "/internal/ready") => error(503, "LXD daemon not ready yet"),
        _ => error(404, "not found"),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

/// Serve the stub on a fresh socket; the task ends with the runtime.
fn stub(dir: &Path) -> PathBuf {
    let path = dir.join("unix.socket");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                    .await;
            });
        }
    });
    path
}

#[tokio::test]
async fn error_envelope_names_request_and_lxd_text() {
    let dir = tempfile::tempdir().unwrap();
    let lxd = LxdClient::new(stub(dir.path()));

    let err = lxd
        .get_value("/1.0/storage-pools/missing")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "LXD refused GET /1.0/storage-pools/missing: Storage pool not found (error code 404)"
    );
    // The typed call turns 404 into "absent".
    assert!(lxd.storage_pool("missing", None).await.unwrap().is_none());

    let err = lxd
        .ensure_pool_created("local", "dir", &Default::default(), "")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("POST /1.0/storage-pools") && msg.contains("Source path '/x' doesn't exist"),
        "{msg}"
    );
    assert_eq!(err.api_code(), Some(500));
}

#[tokio::test]
async fn not_lxd_answers() {
    let dir = tempfile::tempdir().unwrap();
    let lxd = LxdClient::new(stub(dir.path()));
    let err = lxd.get_value("/1.0/plain").await.unwrap_err();
    assert!(
        matches!(&err, LxdError::Api { code: 502, message, .. } if message == "Bad Gateway"),
        "{err:?}"
    );
    let err = lxd.get_value("/1.0/garbage").await.unwrap_err();
    assert!(
        matches!(&err, LxdError::Decode { url, .. } if url == "/1.0/garbage"),
        "{err:?}"
    );
    let err = lxd.issue_join_token("m2").await.unwrap_err();
    assert!(
        err.to_string().contains("expected a token operation"),
        "{err}"
    );
    // A malformed token operation is skipped, not a crash.
    assert!(lxd.pending_join_tokens().await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_operation_carries_its_err() {
    let dir = tempfile::tempdir().unwrap();
    let lxd = LxdClient::new(stub(dir.path()));
    let err = lxd.enable_clustering("m1").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, LxdError::Operation(f) if f.id == "fails"),
        "{err:?}"
    );
    assert!(
        msg.contains("PUT /1.0/cluster")
            && msg.contains("Stub task fails")
            && msg.contains("failed: Inconsistent state: found leftover cluster certificate"),
        "{msg}"
    );

    let err = lxd
        .patch_server_config(&Default::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was cancelled"), "{err}");
}

#[tokio::test]
async fn endless_operation_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let lxd = LxdClient::new(stub(dir.path())).with_operation_timeout(Duration::from_millis(1500));
    let start = Instant::now();
    let err = lxd.delete_network("forever").await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&err, LxdError::OperationTimeout { id, .. } if id == "forever"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("DELETE /1.0/networks/forever"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn missing_socket_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.socket");
    let err = LxdClient::new(&missing).server().await.unwrap_err();
    assert!(matches!(err, LxdError::NotRunning { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // Nothing at any candidate location: the error lists them.
    let err = LxdClient::discover(None);
    if let Err(e) = err {
        assert!(e.to_string().contains("/var/lib/lxd/unix.socket"), "{e}");
    }

    let lxd = LxdClient::new(stub(dir.path()));
    let err = lxd
        .wait_ready(Duration::from_millis(300))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("did not become ready") && msg.contains("LXD daemon not ready yet"),
        "{msg}"
    );
}
