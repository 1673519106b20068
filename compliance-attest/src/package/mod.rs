//! Evidence packages: a folder an auditor can verify offline.
//!
//! ```text
//! PACKAGE/
//!   reports/<run-id>.json        the run's report (the JSON contract)
//!   reports/<run-id>.html        the same, for people
//!   reports/<run-id>.oscal.json  the same, as OSCAL assessment results
//!   controls/<framework>/<control>.json
//!                                per control: its checks and the evidence
//!                                records that support it (sequence, hash, evidence)
//!   chain.jsonl                  the chain's records from the first run's
//!                                header to the head, one canonical record a line
//!   waivers.json                 the waivers in force during the runs
//!   remediation.json             plans, decisions and outcomes of the period
//!   manifest.json                every file above with its SHA-256 and size
//!   package.dsse.json            a DSSE envelope of an in-toto Statement v1:
//!                                every file as a subject, and the predicate
//! ```
//!
//! [`export`] writes one from a store; [`verify_package`] checks one with
//! nothing but the folder and the public keys. The format and the
//! verification are specified in `docs/evidence-package.md` of the
//! repository, so that an auditor can re-implement them.

mod export;
mod verify;

pub use export::{ExportRequest, ExportSummary, export};
pub use verify::{PackageReport, VerifyOptions, verify_package, verify_package_with};

/// The predicate type of an evidence package's statement.
pub const PREDICATE_TYPE: &str = "https://github.com/compliance-rs/compliance-rs/blob/main/docs/evidence-package.md#v1";

/// The envelope's file name.
pub const ENVELOPE: &str = "package.dsse.json";

/// The unsigned statement's file name, when no key was given.
pub const UNSIGNED_STATEMENT: &str = "statement.json";

/// The chain segment's file name.
pub const CHAIN: &str = "chain.jsonl";

/// One chain record as a line of `chain.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainLine {
    /// Position.
    pub seq: i64,
    /// Kind (`run`, `evidence`, `checkpoint`, …).
    pub kind: String,
    /// The canonical JSON body, as a string (hashed as these bytes).
    pub body: String,
    /// The previous record's hash.
    pub prev_hash: String,
    /// `SHA-256(prev_hash "\n" seq "\n" kind "\n" body)`, hex.
    pub hash: String,
}
