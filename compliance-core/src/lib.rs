//! # compliance-core
//!
//! The traits, evidence model and engine of compliance-rs. No cloud SDK and no
//! I/O but tokio: providers (`compliance-k8s`, `compliance-aws`) implement the
//! traits, `compliance-report` turns runs into reports.
//!
//! - [`Check`]: stable metadata of a rule, with a [`CheckId`] and a [`Severity`].
//! - [`Evidence`]: one [`Status`] of one check on one [`ResourceRef`], at one UTC time.
//! - [`Collector`]: gathers evidence; [`Remediator`]: plans and applies fixes,
//!   dry run by default, risky plans behind an [`Approver`]; [`Framework`]:
//!   controls and the checks behind them.
//! - [`Waiver`]: an accepted risk with owner, reason and expiry.
//! - [`EvidenceStore`]: evidence history in a tamper-evident chain of
//!   records ([`store`]); backends live in `compliance-store`.
//!   [`EvidenceStoreExt`]: plans saved, decided and closed on any store.
//! - [`Engine`]: runs collectors concurrently with a bound, a timeout and
//!   cancellation; a failing collector becomes a [`Gap`], the rest finish.
//! - [`Catalogue`]: a provider's checks, each one entry binding its
//!   [`CheckSpec`] to its judge by type ([`catalogue`]).
//! - [`Provider`] and [`Registry`]: a platform exposes its catalogue and
//!   builds its collectors and remediators from a serde configuration
//!   ([`provider`]).
//!
//! ```
//! use std::sync::Arc;
//! use compliance_core::{Engine, Scope, Status};
//! use compliance_core::testkit::{InMemoryCollector, World, sample_check};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> compliance_core::Result<()> {
//! let world = World::default();
//! world.set("db-1", "demo.db.backups", false);
//! let engine = Engine::new().with_collector(Arc::new(
//!     InMemoryCollector::new("demo", vec![sample_check("demo.db.backups")?], world),
//! ));
//! let run = engine.run(&Scope::all()).await;
//! assert_eq!(run.evidence[0].status, Status::Fail);
//! # Ok(()) }
//! ```
//!
//! ## Feature flags
//! - `testkit` (off by default): [`testkit`], the in-memory collector and
//!   remediator and the conformance functions every implementation runs.

pub mod catalogue;
pub mod check;
pub mod collector;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod files;
pub mod framework;
pub mod provider;
pub mod remediation;
pub mod resource;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod waiver;
pub mod yaml;

pub use catalogue::{Catalogue, CheckDef};
pub use check::{Check, CheckId, CheckSpec, Severity};
pub use collector::{Collection, Collector, Gap, GapKind, Scope};
pub use engine::{CollectorOutcome, CollectorTiming, Engine, EngineConfig, ProgressEvent, Run, RunOptions};
pub use error::{BoxError, Error, Result};
pub use evidence::{Evidence, Status, Verdict, WaiverMark};
pub use framework::{Control, Framework, FrameworkDef};
pub use provider::{Provider, Registry, Wiring};
pub use remediation::{
    Approval, ApproveAll, Approver, Change, Mode, RejectAll, RemediationOutcome, RemediationPlan, Remediator, Risk,
};
pub use resource::ResourceRef;
pub use store::{EvidenceStore, EvidenceStoreExt, StoreError};
pub use tokio_util::sync::CancellationToken;
pub use waiver::{ExpiredWaiver, Waiver, apply_waivers};
