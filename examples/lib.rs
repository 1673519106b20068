//! Runnable examples of compliance-rs. CI builds every one and runs those
//! that need no cluster or cloud account:
//!
//! - `embed_engine`: a service embeds the engine with its own collector,
//!   the manifest collector, a framework and waivers, and writes the report.
//! - `embed_monitor`: a service of its own runs the monitor (interval scans
//!   stored in an evidence store, `/metrics`) next to its own routes.
//! - `providers`: the providers built from configuration sections through
//!   the registry, as the command line does.
//! - `scan_manifests`: judge a folder of manifests and print the failures.
//! - `admission_review`: answer an `AdmissionReview` request.
//! - `fix_manifests`: plan fixes and write fixed copies of manifests.
//! - `report_outputs`: every report output, and the changes since a previous run.
//! - `cluster_scan`: judge a live cluster (needs a kubeconfig).
//! - `aws_review`: IAM access review and S3 posture of an AWS account (or
//!   of an emulator: CI runs it against moto).
//!
//! ```text
//! cargo run -p compliance-examples --example scan_manifests -- examples/manifests
//! ```

/// The README's Rust examples, compiled and run as doc-tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
