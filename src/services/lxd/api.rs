//! Typed LXD calls for the bootstrap (reference/microcloud-flow.md §3.2 and §4): server
//! config, clustering, join tokens, storage pools, networks and profiles.

use std::collections::BTreeMap;

use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{seg, LxdClient};
use super::envelope::{Operation, Reply};
use super::token::{IssuedToken, JoinToken};
use super::types::{
    Cluster, ClusterJoin, Member, Network, NetworksPost, Profile, Server, StoragePool,
    StoragePoolsPost,
};
use super::LxdError;

/// `?target=<member>` (or nothing).
fn target(member: Option<&str>) -> String {
    member
        .map(|m| format!("?target={}", seg(m)))
        .unwrap_or_default()
}

/// `Ok(None)` for LXD's 404, so "does it exist" reads as a value.
fn optional<T>(r: Result<T, LxdError>) -> Result<Option<T>, LxdError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl LxdClient {
    /// `GET /1.0`: config, extensions, environment (name, clustering, storage drivers).
    pub async fn server(&self) -> Result<Server, LxdError> {
        self.get("/1.0").await
    }

    /// `PATCH /1.0`: merge these keys into the server config (others stay as they are; an
    /// empty value unsets a key).
    pub async fn patch_server_config(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<(), LxdError> {
        self.execute(Method::PATCH, "/1.0", Some(&json!({ "config": config })))
            .await
            .map(drop)
    }

    /// `GET /1.0/cluster`.
    pub async fn cluster(&self) -> Result<Cluster, LxdError> {
        self.get("/1.0/cluster").await
    }

    /// `PUT /1.0/cluster {server_name, enabled: true}`: turn this standalone LXD into the
    /// first member of a new cluster, and wait for it. `cluster.https_address` must be set.
    pub async fn enable_clustering(&self, server_name: &str) -> Result<(), LxdError> {
        let body = json!({ "server_name": server_name, "enabled": true });
        self.execute(Method::PUT, "/1.0/cluster", Some(&body))
            .await
            .map(drop)
    }

    /// `PUT /1.0/cluster` with a token: join an existing cluster, and wait for it. Use
    /// [`super::cert::fetch_cluster_certificate`] for `cluster_certificate` first.
    pub async fn join_cluster(&self, join: &ClusterJoin) -> Result<(), LxdError> {
        self.execute(Method::PUT, "/1.0/cluster", Some(join))
            .await
            .map(drop)
    }

    /// `GET /1.0/cluster/members?recursion=1`.
    pub async fn members(&self) -> Result<Vec<Member>, LxdError> {
        self.get("/1.0/cluster/members?recursion=1").await
    }

    /// `POST /1.0/cluster/members {server_name}`: a join token for `server_name`. The token
    /// lives in an operation that stays running until the token is used, expires or is
    /// revoked, so we read it from the answer instead of waiting.
    pub async fn issue_join_token(&self, server_name: &str) -> Result<IssuedToken, LxdError> {
        let url = "/1.0/cluster/members";
        let body = json!({ "server_name": server_name });
        match self.call(Method::POST, url, Some(&body)).await? {
            Reply::Async(op) => Ok(IssuedToken {
                token: JoinToken::from_operation(&op)?,
                operation_id: op.id,
            }),
            Reply::Sync(v) => Err(LxdError::Decode {
                method: "POST".into(),
                url: url.into(),
                message: format!("expected a token operation, got {v}"),
            }),
        }
    }

    /// Join tokens still pending on this member (running operations of class `token`). LXD
    /// 5.0 has no dedicated token endpoint, so this is how tokens are listed and found again.
    pub async fn pending_join_tokens(&self) -> Result<Vec<IssuedToken>, LxdError> {
        #[derive(Deserialize)]
        struct Ops {
            #[serde(default, deserialize_with = "super::types::nullable")]
            running: Vec<Operation>,
        }
        let ops: Ops = self.get("/1.0/operations?recursion=1").await?;
        Ok(ops
            .running
            .into_iter()
            .filter(|op| op.class == "token")
            .filter_map(|op| {
                Some(IssuedToken {
                    token: JoinToken::from_operation(&op).ok()?,
                    operation_id: op.id,
                })
            })
            .collect())
    }

    /// `DELETE /1.0/operations/<id>`: revoke a pending token (cancels its operation). A token
    /// already used or gone is not an error.
    pub async fn revoke_join_token(&self, operation_id: &str) -> Result<(), LxdError> {
        let url = format!("/1.0/operations/{}", seg(operation_id));
        optional(self.execute::<()>(Method::DELETE, &url, None).await).map(drop)
    }

    /// `GET /1.0/storage-pools?recursion=1`.
    pub async fn storage_pools(&self) -> Result<Vec<StoragePool>, LxdError> {
        self.get("/1.0/storage-pools?recursion=1").await
    }

    /// `GET /1.0/storage-pools/<name>[?target=]`; `None` if there is no such pool. With a
    /// target, `config` holds that member's keys (`source`).
    pub async fn storage_pool(
        &self,
        name: &str,
        member: Option<&str>,
    ) -> Result<Option<StoragePool>, LxdError> {
        let url = format!("/1.0/storage-pools/{}{}", seg(name), target(member));
        optional(self.get(&url).await)
    }

    /// `POST /1.0/storage-pools[?target=]`: with a target, define the pool as pending on that
    /// member with member-specific keys; without, create it everywhere with cluster-wide keys.
    pub async fn create_storage_pool(
        &self,
        pool: &StoragePoolsPost,
        member: Option<&str>,
    ) -> Result<(), LxdError> {
        let url = format!("/1.0/storage-pools{}", target(member));
        self.execute(Method::POST, &url, Some(pool)).await.map(drop)
    }

    /// `PATCH /1.0/storage-pools/<name>`: merge `body` (`description`, cluster-wide `config`).
    pub async fn patch_storage_pool(&self, name: &str, body: &Value) -> Result<(), LxdError> {
        let url = format!("/1.0/storage-pools/{}", seg(name));
        self.execute(Method::PATCH, &url, Some(body))
            .await
            .map(drop)
    }

    /// `GET /1.0/networks?recursion=1` (managed networks and the host's interfaces).
    pub async fn networks(&self) -> Result<Vec<Network>, LxdError> {
        self.get("/1.0/networks?recursion=1").await
    }

    /// `GET /1.0/networks/<name>[?target=]`; `None` if there is no such network.
    pub async fn network(
        &self,
        name: &str,
        member: Option<&str>,
    ) -> Result<Option<Network>, LxdError> {
        let url = format!("/1.0/networks/{}{}", seg(name), target(member));
        optional(self.get(&url).await)
    }

    /// `POST /1.0/networks[?target=]`: pending on one member, or the final cluster-wide create.
    pub async fn create_network(
        &self,
        network: &NetworksPost,
        member: Option<&str>,
    ) -> Result<(), LxdError> {
        let url = format!("/1.0/networks{}", target(member));
        self.execute(Method::POST, &url, Some(network))
            .await
            .map(drop)
    }

    /// `PATCH /1.0/networks/<name>`: merge `body` (`description`, cluster-wide `config`).
    pub async fn patch_network(&self, name: &str, body: &Value) -> Result<(), LxdError> {
        let url = format!("/1.0/networks/{}", seg(name));
        self.execute(Method::PATCH, &url, Some(body))
            .await
            .map(drop)
    }

    /// `DELETE /1.0/networks/<name>`; a missing network is not an error.
    pub async fn delete_network(&self, name: &str) -> Result<(), LxdError> {
        let url = format!("/1.0/networks/{}", seg(name));
        optional(self.execute::<()>(Method::DELETE, &url, None).await).map(drop)
    }

    /// `GET /1.0/profiles/<name>`; `None` if there is no such profile.
    pub async fn profile(&self, name: &str) -> Result<Option<Profile>, LxdError> {
        optional(self.get(&format!("/1.0/profiles/{}", seg(name))).await)
    }

    /// `PUT /1.0/profiles/<name>`: replace description, config and devices with `profile`'s
    /// (fields we do not model travel back as they came).
    pub async fn put_profile(&self, profile: &Profile) -> Result<(), LxdError> {
        let url = format!("/1.0/profiles/{}", seg(&profile.name));
        let mut body = serde_json::to_value(profile).map_err(|e| LxdError::Decode {
            method: "PUT".into(),
            url: url.clone(),
            message: format!("cannot encode the profile: {e}"),
        })?;
        // Read-only fields are not part of ProfilePut.
        if let Value::Object(m) = &mut body {
            m.remove("name");
            m.remove("used_by");
        }
        self.execute(Method::PUT, &url, Some(&body)).await.map(drop)
    }

    /// Like [`LxdClient::get`] for arbitrary JSON, for checks the typed calls do not cover.
    pub async fn get_value(&self, url: &str) -> Result<Value, LxdError> {
        self.get(url).await
    }
}
