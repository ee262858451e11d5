//! LXD's response envelope and operations, parsed without I/O so every shape is unit-tested.
//!
//! Every LXD answer is `{type, status, status_code, error_code, error, metadata, operation}`:
//! `sync` carries the result in `metadata`, `async` a background operation in `metadata`, and
//! `error` LXD's message in `error` with the HTTP-like code in `error_code`.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    error_code: u16,
    #[serde(default)]
    error: String,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    operation: String,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The result itself (`null` when LXD returns nothing, e.g. after a create).
    Sync(Value),
    /// A background operation to wait on (or, for a join token, to read and leave running).
    Async(Operation),
}

/// Why an answer is not a success: LXD's refusal, or something that is not LXD's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Api { code: u16, message: String },
    Decode(String),
}

/// A background operation (`/1.0/operations/<id>`), with the fields we act on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Operation {
    pub id: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: u16,
    /// Operation-specific data: a join token's fields for class `token`.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Why it failed, in LXD's words.
    #[serde(default)]
    pub err: String,
    #[serde(default)]
    pub may_cancel: bool,
    /// The cluster member running it (`none` before clustering).
    #[serde(default)]
    pub location: String,
}

/// Where an operation stands, from its `status_code` (LXD `api.StatusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    /// Created, pending, running, cancelling (codes below 200).
    Running,
    Success,
    Failure,
    Cancelled,
}

impl Operation {
    pub fn state(&self) -> OpState {
        match self.status_code {
            200 => OpState::Success,
            401 => OpState::Cancelled,
            c if c >= 400 => OpState::Failure,
            // 100..=199, and 0 from a sparse answer: not finished as far as we know.
            _ => OpState::Running,
        }
    }
}

/// Parse one answer. `http_status` is only used when the body is not an envelope (a proxy's
/// or a crashed daemon's plain text) or carries no `error_code`.
pub fn parse(http_status: u16, body: &[u8]) -> Result<Reply, Refusal> {
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(env) => env,
        Err(e) if (200..300).contains(&http_status) => {
            return Err(Refusal::Decode(format!(
                "not an LXD envelope ({e}): {}",
                snippet(body)
            )))
        }
        Err(_) => {
            return Err(Refusal::Api {
                code: http_status,
                message: snippet(body),
            })
        }
    };
    match env.kind.as_str() {
        "error" => Err(Refusal::Api {
            code: if env.error_code != 0 {
                env.error_code
            } else {
                http_status
            },
            message: if env.error.is_empty() {
                "(LXD gave no message)".into()
            } else {
                env.error
            },
        }),
        "sync" if (200..300).contains(&http_status) => Ok(Reply::Sync(env.metadata)),
        "async" if (200..300).contains(&http_status) => {
            match serde_json::from_value::<Operation>(env.metadata) {
                Ok(op) => Ok(Reply::Async(op)),
                // A sparse operation: its path still names it.
                Err(_) => match env.operation.rsplit('/').next().filter(|s| !s.is_empty()) {
                    Some(id) => Ok(Reply::Async(Operation {
                        id: id.to_string(),
                        class: String::new(),
                        description: String::new(),
                        status: String::new(),
                        status_code: 0,
                        metadata: None,
                        err: String::new(),
                        may_cancel: false,
                        location: String::new(),
                    })),
                    None => Err(Refusal::Decode(format!(
                        "async answer without an operation: {}",
                        snippet(body)
                    ))),
                },
            }
        }
        "sync" | "async" => Err(Refusal::Api {
            code: http_status,
            message: format!("HTTP {http_status} with a {} envelope", env.kind),
        }),
        other => Err(Refusal::Decode(format!(
            "unknown envelope type {other:?}: {}",
            snippet(body)
        ))),
    }
}

/// The start of a body for an error message, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn sync_returns_metadata() {
        let b = body(
            json!({"type":"sync","status":"Success","status_code":200,"operation":"",
            "error_code":0,"error":"","metadata":{"server_name":"m1","enabled":true}}),
        );
        assert_eq!(
            parse(200, &b).unwrap(),
            Reply::Sync(json!({"server_name":"m1","enabled":true}))
        );
        let null = body(json!({"type":"sync","status_code":200,"metadata":null}));
        assert_eq!(parse(200, &null).unwrap(), Reply::Sync(Value::Null));
    }

    #[test]
    fn error_carries_lxd_text_and_code() {
        let b = body(
            json!({"type":"error","status":"","status_code":0,"operation":"",
            "error_code":404,"error":"Cluster member not found","metadata":null}),
        );
        assert_eq!(
            parse(404, &b).unwrap_err(),
            Refusal::Api {
                code: 404,
                message: "Cluster member not found".into()
            }
        );
        let no_code = body(json!({"type":"error","error":"boom"}));
        assert_eq!(
            parse(500, &no_code).unwrap_err(),
            Refusal::Api {
                code: 500,
                message: "boom".into()
            }
        );
    }

    #[test]
    fn async_parses_the_operation() {
        let b = body(
            json!({"type":"async","status":"Operation created","status_code":100,
            "operation":"/1.0/operations/b302","error_code":0,"error":"",
            "metadata":{"id":"b302","class":"token","description":"Executing operation",
                "status":"Running","status_code":103,"metadata":{"serverName":"m2"},
                "may_cancel":true,"err":"","location":"m1"}}),
        );
        let Reply::Async(op) = parse(202, &b).unwrap() else {
            panic!()
        };
        assert_eq!(op.id, "b302");
        assert_eq!(op.class, "token");
        assert_eq!(op.state(), OpState::Running);
        assert_eq!(op.metadata.unwrap()["serverName"], "m2");
    }

    #[test]
    fn sparse_async_falls_back_to_the_operation_path() {
        let b = body(json!({"type":"async","operation":"/1.0/operations/abc","metadata":null}));
        let Reply::Async(op) = parse(202, &b).unwrap() else {
            panic!()
        };
        assert_eq!(op.id, "abc");
        let none = body(json!({"type":"async","operation":"","metadata":null}));
        assert!(matches!(parse(202, &none), Err(Refusal::Decode(_))));
    }

    #[test]
    fn operation_states() {
        let op = |code| Operation {
            id: "x".into(),
            class: String::new(),
            description: String::new(),
            status: String::new(),
            status_code: code,
            metadata: None,
            err: String::new(),
            may_cancel: false,
            location: String::new(),
        };
        assert_eq!(op(103).state(), OpState::Running);
        assert_eq!(op(105).state(), OpState::Running);
        assert_eq!(op(200).state(), OpState::Success);
        assert_eq!(op(400).state(), OpState::Failure);
        assert_eq!(op(401).state(), OpState::Cancelled);
        // The failed operation as LXD 5.0 reports it after a second bootstrap attempt.
        let failed: Operation = serde_json::from_value(json!({"id":"8930","class":"task",
            "description":"Creating bootstrap node","status":"Failure","status_code":400,
            "resources":{"cluster":null},"metadata":null,"may_cancel":false,
            "err":"Inconsistent state: found leftover cluster certificate","location":"m1"}))
        .unwrap();
        assert_eq!(failed.state(), OpState::Failure);
        assert!(failed.err.contains("leftover"));
    }

    #[test]
    fn not_an_envelope() {
        assert_eq!(
            parse(502, b"Bad Gateway\n").unwrap_err(),
            Refusal::Api {
                code: 502,
                message: "Bad Gateway".into()
            }
        );
        assert!(matches!(parse(200, b"<html>"), Err(Refusal::Decode(_))));
        let odd = body(json!({"type":"weird"}));
        assert!(matches!(parse(200, &odd), Err(Refusal::Decode(m)) if m.contains("weird")));
        let sync_500 = body(json!({"type":"sync","metadata":{}}));
        assert!(matches!(
            parse(500, &sync_500),
            Err(Refusal::Api { code: 500, .. })
        ));
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = vec![b'x'; 1000];
        let Refusal::Api { message, .. } = parse(500, &long).unwrap_err() else {
            panic!()
        };
        assert!(message.chars().count() <= 301);
    }
}
