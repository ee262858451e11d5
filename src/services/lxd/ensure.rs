//! The idempotent layer the bootstrap executor calls: each helper reads the current state,
//! does nothing when it is already as asked, and otherwise makes the one change needed,
//! returning [`Outcome`]. A state it may not silently change (clustered under another name, a
//! pool with another driver, a profile device the operator set differently) is an
//! [`LxdError::Conflict`] naming the object, what is there and what was asked.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::services::Outcome;

use super::cert::{check_certificate, fetch_cluster_certificate};
use super::token::{IssuedToken, JoinToken};
use super::types::{ClusterJoin, MemberConfigKey};
use super::{LxdClient, LxdError};

/// Extension that allows `source.wipe` on a pending pool.
pub const EXT_SOURCE_WIPE: &str = "storage_pool_source_wipe";
/// Extension that adds `cluster_token` to `PUT /1.0/cluster`.
pub const EXT_TRUST_TOKEN: &str = "explicit_trust_token";

/// Everything a joiner sends in `PUT /1.0/cluster`, checked before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub server_name: String,
    /// This member's `host:port` in the cluster (becomes its `cluster.https_address`).
    pub server_address: String,
    pub token: JoinToken,
    /// The member the certificate came from, which LXD contacts to join.
    pub cluster_address: String,
    /// PEM of the cluster certificate; its fingerprint must be the token's.
    pub cluster_certificate: String,
    pub member_config: Vec<MemberConfigKey>,
}

impl JoinSpec {
    /// Decode `encoded_token` and fetch the cluster certificate from the token's addresses
    /// (from this host's network, which is what a joiner's daemon does).
    pub async fn fetch(
        server_name: &str,
        server_address: &str,
        encoded_token: &str,
        member_config: Vec<MemberConfigKey>,
        timeout: Duration,
    ) -> Result<JoinSpec, LxdError> {
        let token = JoinToken::decode(encoded_token)?;
        let (cluster_address, cluster_certificate) =
            fetch_cluster_certificate(&token, timeout).await?;
        Ok(JoinSpec {
            server_name: server_name.into(),
            server_address: server_address.into(),
            token,
            cluster_address,
            cluster_certificate,
            member_config,
        })
    }
}

impl LxdClient {
    /// Set these server config keys where they differ.
    pub async fn ensure_server_config(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Outcome, LxdError> {
        let server = self.server().await?;
        let diff: BTreeMap<String, String> = keys
            .iter()
            .filter(|(k, v)| server.config_str(k).unwrap_or("") != v.as_str())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if diff.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        self.patch_server_config(&diff).await?;
        Ok(Outcome::Changed)
    }

    /// Make this LXD the first member of a cluster named by `server_name`, reachable at
    /// `address` (`host:port`): sets `cluster.https_address`, and `core.https_address` when
    /// LXD does not listen yet (an existing listener such as `[::]:8443` is kept), then enables
    /// clustering. Already clustered under this name: nothing to do; under another: conflict.
    pub async fn ensure_clustered(
        &self,
        server_name: &str,
        address: &str,
    ) -> Result<Outcome, LxdError> {
        let cluster = self.cluster().await?;
        if cluster.enabled {
            return self.same_member(&cluster.server_name, server_name);
        }
        let server = self.server().await?;
        let mut keys = BTreeMap::new();
        if server.config_str("cluster.https_address") != Some(address) {
            keys.insert("cluster.https_address".to_string(), address.to_string());
        }
        if server.config_str("core.https_address").is_none() {
            keys.insert("core.https_address".to_string(), address.to_string());
        }
        if !keys.is_empty() {
            self.patch_server_config(&keys).await?;
        }
        self.enable_clustering(server_name).await?;
        Ok(Outcome::Changed)
    }

    fn same_member(&self, current: &str, wanted: &str) -> Result<Outcome, LxdError> {
        if current == wanted {
            Ok(Outcome::Unchanged)
        } else {
            Err(LxdError::Conflict(format!(
                "LXD at {} is already a cluster member named {current:?}, not {wanted:?}",
                self.socket().display()
            )))
        }
    }

    /// Join the cluster described by `join`, unless this LXD is already a member under that
    /// name. The certificate is checked against the token first, and the token must be for
    /// this name (LXD would refuse later, with a vaguer message).
    pub async fn ensure_joined(&self, join: &JoinSpec) -> Result<Outcome, LxdError> {
        let cluster = self.cluster().await?;
        if cluster.enabled {
            return self.same_member(&cluster.server_name, &join.server_name);
        }
        if join.token.server_name != join.server_name {
            return Err(LxdError::Token(format!(
                "the token is for {:?}, this member joins as {:?}",
                join.token.server_name, join.server_name
            )));
        }
        check_certificate(&join.token, &join.cluster_certificate)?;
        // `cluster_token` is newer than LXD 5.0, which ignores it and would then join without
        // the secret ("not authorized"); 5.0 reads a token passed as `cluster_password`.
        let encoded = join.token.encode();
        let (cluster_token, cluster_password) = if self.has_extension(EXT_TRUST_TOKEN).await? {
            (encoded, String::new())
        } else {
            (String::new(), encoded)
        };
        self.join_cluster(&ClusterJoin {
            server_name: join.server_name.clone(),
            enabled: true,
            server_address: join.server_address.clone(),
            cluster_address: join.cluster_address.clone(),
            cluster_certificate: join.cluster_certificate.clone(),
            cluster_token,
            cluster_password,
            member_config: join.member_config.clone(),
        })
        .await?;
        Ok(Outcome::Changed)
    }

    /// A fresh join token for `server_name`, after revoking any it still has pending (a re-run
    /// must not leave old secrets valid); `None` if it is a member already.
    pub async fn fresh_join_token(
        &self,
        server_name: &str,
    ) -> Result<Option<IssuedToken>, LxdError> {
        if self
            .members()
            .await?
            .iter()
            .any(|m| m.server_name == server_name)
        {
            return Ok(None);
        }
        self.revoke_join_tokens_for(server_name).await?;
        self.issue_join_token(server_name).await.map(Some)
    }

    /// Revoke every pending token issued for `server_name`; how many there were.
    pub async fn revoke_join_tokens_for(&self, server_name: &str) -> Result<usize, LxdError> {
        let mut n = 0;
        for t in self.pending_join_tokens().await? {
            if t.token.server_name == server_name {
                self.revoke_join_token(&t.operation_id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
