//! The service layer: typed drivers for the daemons a MicroCloud is made of, each with an
//! idempotent `ensure_*` layer the bootstrap executor calls.
//!
//! Only LXD exists today (`lxd`). OVN and Ceph will sit beside it as `ovn` and `ceph`, built
//! the same way: a client for the daemon's own API (no shelling out to its CLI), typed calls
//! carrying only the fields we read or write, and helpers that look at the current state first
//! and report [`Outcome::Changed`] or [`Outcome::Unchanged`], so a re-run after any failure
//! resumes where the last one stopped and a second run changes nothing.

pub mod lxd;
pub mod wipe;

/// What an `ensure_*` helper did. The executor prints it per host and step, and tests use it to
/// prove that a second run is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The state was not as asked and the helper changed it.
    Changed,
    /// The state was already as asked; nothing was sent that modifies it.
    Unchanged,
}

impl Outcome {
    pub fn changed(self) -> bool {
        self == Outcome::Changed
    }

    /// `Changed` if either is.
    pub fn and(self, other: Outcome) -> Outcome {
        if self.changed() || other.changed() {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}
