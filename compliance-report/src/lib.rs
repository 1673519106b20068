#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod delta;
pub mod frameworks;
pub mod metrics;
mod model;
pub mod notify;
pub mod oscal;
mod render;
mod targets;

pub use frameworks::{
    CONFIG_RULE_PREFIX, ConfigRuleMapping, MappedFramework, apply_mappings, aws_config_rules, builtin_frameworks,
    builtin_mappings, check_known, parse_framework,
};

/// The JSON Schema (draft 2020-12) of the JSON report.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");

pub use delta::{Change, CheckDelta, ControlChange, Delta};
pub use model::{
    CheckResult, ControlResult, ControlStatus, FrameworkResult, Report, SCHEMA_VERSION, write_complete, write_new,
};
pub use render::{Format, OCSF_VERSION, POLICY_REPORT_SOURCE, PolicyReportApi, RESULTS_PER_REPORT, policy_reports};
pub use targets::{TargetResult, target_results};

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
