//! The LXD driver: a typed client for LXD's REST API over its unix socket, and the idempotent
//! `ensure_*` layer the bootstrap executor calls (reference/microcloud-flow.md §3.2, §4).
//!
//! Layout: `socket` finds the socket, `envelope` parses LXD's answers and operations (pure),
//! `client` moves JSON and waits on operations, `types` holds the objects, `api` the typed
//! calls, `token` join tokens, `cert` the token-pinned cluster certificate, `ensure` the
//! check-then-change helpers for server config, clustering, joins and tokens, `objects` those
//! for pools, networks and the profile, `drivers` the choice of storage driver (pure).
//!
//! ```no_run
//! # async fn f() -> Result<(), microcloud::services::lxd::LxdError> {
//! use microcloud::services::lxd::LxdClient;
//! let lxd = LxdClient::discover(None)?;
//! lxd.ensure_clustered("micro01", "10.1.0.1:8443").await?;
//! let token = lxd.fresh_join_token("micro02").await?;
//! # Ok(()) }
//! ```

mod api;
pub mod cert;
mod client;
pub mod drivers;
pub mod ensure;
pub mod envelope;
mod error;
pub mod objects;
pub mod socket;
pub mod token;
pub mod types;

pub use client::{seg, LxdClient, DEFAULT_OPERATION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
pub use drivers::{choose_common_driver, choose_local_driver, LocalDriver};
pub use ensure::JoinSpec;
pub use envelope::{OpState, Operation, Reply};
pub use error::{LxdError, OperationFailed};
pub use objects::{nic_device, root_device, MemberKeys};
pub use token::{IssuedToken, JoinToken};
pub use types::{
    Cluster, ClusterJoin, Device, Member, MemberConfigKey, Network, NetworksPost, Profile, Server,
    StorageDriverInfo, StoragePool, StoragePoolsPost,
};
