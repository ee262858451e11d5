//! LXD cluster join tokens: what `POST /1.0/cluster/members` starts (an operation of class
//! `token` whose metadata holds the fields), and the base64 JSON string a joiner presents,
//! which is what `lxc cluster add` prints.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope::Operation;
use super::LxdError;

/// The fields of a join token (LXD `api.ClusterMemberJoinToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The name the joiner must use.
    pub server_name: String,
    /// SHA-256 hex of the cluster certificate: the joiner checks what it connects to.
    pub fingerprint: String,
    /// `host:port` of members that were online when the token was issued.
    pub addresses: Vec<String>,
    pub secret: String,
    /// RFC 3339; absent on LXD without `cluster_join_token_expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl JoinToken {
    /// The string form: base64 (standard alphabet, padded) of the JSON, as LXD encodes it.
    pub fn encode(&self) -> String {
        // Serialising plain strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Parse the string form; whitespace around it (a pasted token) is ignored.
    pub fn decode(token: &str) -> Result<JoinToken, LxdError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|e| LxdError::Token(format!("not base64: {e}")))?;
        let t: JoinToken = serde_json::from_slice(&raw)
            .map_err(|e| LxdError::Token(format!("not a join token: {e}")))?;
        t.check()?;
        Ok(t)
    }

    /// The token held in a `token` operation's metadata (keys `serverName`, `fingerprint`,
    /// `addresses`, `secret`, `expiresAt`).
    pub fn from_operation(op: &Operation) -> Result<JoinToken, LxdError> {
        let md = op.metadata.as_ref().unwrap_or(&Value::Null);
        let s = |k: &str| md.get(k).and_then(Value::as_str).map(str::to_string);
        let t = JoinToken {
            server_name: s("serverName").unwrap_or_default(),
            fingerprint: s("fingerprint").unwrap_or_default(),
            addresses: md
                .get("addresses")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            secret: s("secret").unwrap_or_default(),
            expires_at: s("expiresAt"),
        };
        t.check()
            .map_err(|e| LxdError::Token(format!("operation {}: {e}", op.id)))?;
        Ok(t)
    }

    fn check(&self) -> Result<(), LxdError> {
        if self.server_name.is_empty() {
            return Err(LxdError::Token("no server_name".into()));
        }
        if self.secret.is_empty() {
            return Err(LxdError::Token("no secret".into()));
        }
        if self.addresses.is_empty() {
            return Err(LxdError::Token("no member addresses".into()));
        }
        let fp_ok = self.fingerprint.len() == 64
            && self
                .fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !fp_ok {
            return Err(LxdError::Token(format!(
                "fingerprint {:?} is not 64 lower-case hex characters",
                self.fingerprint.chars().take(80).collect::<String>()
            )));
        }
        Ok(())
    }
}

/// A token we issued: the operation that holds it (delete it to revoke) and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub operation_id: String,
    pub token: JoinToken,
}

impl IssuedToken {
    /// What the joiner is given.
    pub fn encoded(&self) -> String {
        self.token.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FP: &str = "a6880aac3d6e48c33d29b459748135c6d5f3a3b28e4028e1c27078997b967404";

    fn op(md: Value) -> Operation {
        serde_json::from_value(json!({"id":"b302","class":"token","status_code":103,"metadata":md}))
            .unwrap()
    }

    #[test]
    fn from_operation_then_round_trip() {
        // As LXD 5.0.2 returns it from POST /1.0/cluster/members.
        let t = JoinToken::from_operation(&op(json!({"addresses":["127.0.0.1:18443"],
            "expiresAt":"2026-11-24T23:51:05.256351472Z","fingerprint":FP,
            "secret":"6d3d","serverName":"m2"})))
        .unwrap();
        assert_eq!(t.server_name, "m2");
        assert_eq!(t.addresses, ["127.0.0.1:18443"]);
        assert_eq!(
            t.expires_at.as_deref(),
            Some("2026-11-24T23:51:05.256351472Z")
        );
        let s = t.encode();
        assert_eq!(JoinToken::decode(&format!("  {s}\n")).unwrap(), t);
        // LXD's own key names in the encoded JSON.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        for k in [
            "server_name",
            "fingerprint",
            "addresses",
            "secret",
            "expires_at",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
    }

    #[test]
    fn decodes_a_token_as_lxc_prints_it() {
        let json = format!(
            r#"{{"server_name":"micro02","fingerprint":"{FP}","addresses":["10.0.0.1:8443","[fd00::1]:8443"],"secret":"s3","expires_at":"0001-01-01T00:00:00Z"}}"#
        );
        let s = base64::engine::general_purpose::STANDARD.encode(json);
        let t = JoinToken::decode(&s).unwrap();
        assert_eq!(t.addresses.len(), 2);
        assert_eq!(t.server_name, "micro02");
    }

    #[test]
    fn bad_tokens_say_why() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cases = [
            ("%%%".to_string(), "not base64"),
            (b64("{}"), "not a join token"),
            (b64("[1,2]"), "not a join token"),
            (
                b64(&format!(
                    r#"{{"server_name":"","fingerprint":"{FP}","addresses":["a:1"],"secret":"s"}}"#
                )),
                "no server_name",
            ),
            (
                b64(&format!(
                    r#"{{"server_name":"m","fingerprint":"{FP}","addresses":[],"secret":"s"}}"#
                )),
                "no member addresses",
            ),
            (
                b64(r#"{"server_name":"m","fingerprint":"XYZ","addresses":["a:1"],"secret":"s"}"#),
                "not 64 lower-case hex",
            ),
        ];
        for (token, want) in cases {
            let err = JoinToken::decode(&token).unwrap_err().to_string();
            assert!(err.contains(want), "{token}: {err}");
        }
        let empty = JoinToken::from_operation(&op(Value::Null)).unwrap_err();
        assert!(empty.to_string().contains("operation b302"), "{empty}");
    }
}
