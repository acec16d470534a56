//! A sandbox's files: a pruned walk of the workspace, an index that spares re-hashing files
//! nobody touched, change notification that spares a refresh the walk, materialisation
//! from a manifest, and the snapshot of what changed.

mod index;
pub(crate) mod output;
mod refresh;
mod snapshot;
mod walk;
mod watch;

pub(crate) use index::FileIndex;
#[cfg(test)]
pub(crate) use index::Looked;
pub(crate) use refresh::{Comparison, RefreshPlan, apply, plan};
pub(crate) use snapshot::snapshot;

#[cfg(test)]
mod tests;
