//! The cluster bootstrap: `plan` turns inventories and answers into what the cluster will be
//! (pure), `filter` evaluates the preseed's disk filters. The executor that carries a plan out
//! against the services comes next.

pub mod filter;
pub mod plan;
