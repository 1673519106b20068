//! In-memory collector and remediator, and the conformance suite that every
//! collector and remediator implementation runs in its own tests.
//!
//! Enabled by the `testkit` feature. The conformance functions return
//! [`Error::Conformance`](crate::Error::Conformance) naming the rule that was broken, so a test can
//! simply `?` them.
//!
//! - `world`: a shared in-memory state, and a collector and a remediator over it.
//! - `conformance`: what every collector and remediator must do.
//! - `store`: the in-memory evidence store, and what every store must do.

mod conformance;
mod store;
mod world;

pub use conformance::{check_collector, check_remediator};
pub use store::{InMemoryStore, append_sample_runs, check_store};
pub use world::{InMemoryCollector, InMemoryRemediator, World, sample_check};
