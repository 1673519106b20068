//! # compliance-report
//!
//! Turns a [`Run`](compliance_core::Run) into a [`Report`]: the counts and the
//! `compliance_percentage` of the blog post the project grew from, per-framework control results and
//! scores, gaps and evidence; and writes it as the versioned JSON report
//! (`compliance_report_<YYYYMMDD_HHMMSS>.json`, UTC) described in DESIGN.md.
//!
//! ```
//! use std::sync::Arc;
//! use compliance_core::{Control, Engine, FrameworkDef, Scope};
//! use compliance_core::testkit::{InMemoryCollector, World, sample_check};
//! use compliance_report::Report;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let world = World::default();
//! world.set("db-1", "demo.db.encrypted", true);
//! world.set("db-2", "demo.db.encrypted", false);
//! let framework = FrameworkDef::new("internal", "Internal", "1", vec![
//!     Control::new("IC-1", "Data at rest is encrypted", vec!["demo.db.encrypted".parse()?]),
//! ]);
//! let engine = Engine::new()
//!     .with_collector(Arc::new(InMemoryCollector::new("demo", vec![sample_check("demo.db.encrypted")?], world)))
//!     .with_framework(Arc::new(framework));
//! let run = engine.run(&Scope::all()).await;
//! let report = Report::from_run(&run, engine.frameworks());
//! assert_eq!(report.compliance_percentage, 50.0);
//! assert_eq!(report.frameworks[0].controls[0].status.as_str(), "fail");
//! let dir = tempfile::tempdir()?;
//! let path = report.write_json(dir.path())?;
//! assert!(path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("compliance_report_")));
//! # Ok(()) }
//! ```

mod delta;
pub mod frameworks;
pub mod metrics;
mod model;
pub mod notify;
pub mod oscal;
mod render;

pub use frameworks::{
    MappedFramework, apply_mappings, builtin_frameworks, builtin_mappings, check_known, parse_framework,
};

/// The JSON Schema (draft 2020-12) of the JSON report.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");

pub use delta::{Change, CheckDelta, ControlChange, Delta};
pub use model::{CheckResult, ControlResult, ControlStatus, FrameworkResult, Report, SCHEMA_VERSION, write_new};
pub use render::Format;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Writing a report failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be serialised or read back.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}
