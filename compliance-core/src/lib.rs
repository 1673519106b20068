#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

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
pub mod target;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub mod waiver;
pub mod yaml;

pub use catalogue::{Catalogue, CheckDef};
pub use check::{Check, CheckId, CheckSpec, Severity};
pub use collector::{Collection, Collector, Gap, GapKind, Scope};
pub use engine::{CollectorOutcome, CollectorTiming, Engine, EngineConfig, Progress, ProgressEvent, Run, RunOptions};
pub use error::{BoxError, Error, Result};
pub use evidence::{Evidence, Status, Verdict, WaiverMark};
pub use framework::{Control, DeclaredControl, Framework, FrameworkDef};
pub use provider::{Provider, Registry, Wiring};
pub use remediation::{
    Approval, ApproveAll, Approver, Change, Mode, RejectAll, RemediationOutcome, RemediationPlan, Remediator, Risk,
};
pub use resource::ResourceRef;
pub use store::{EvidenceStore, EvidenceStoreExt, StoreError};
pub use target::{Shard, Target, TargetKind};
pub use tokio_util::sync::CancellationToken;
pub use waiver::{ExpiredWaiver, Waiver, apply_waivers};
