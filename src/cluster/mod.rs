//! The cluster bootstrap: `plan` turns inventories and answers into what the cluster will be
//! (pure), `filter` evaluates the preseed's disk filters, `steps` orders the work (pure), and
//! `execute` carries the steps out against the services.

pub mod execute;
pub mod filter;
pub mod plan;
pub mod steps;
