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

/// Writes the package folder `dir` as one gzip-compressed tar archive at
/// `file` (a new file), its entries under the folder's name. Links are
/// stored as links, never followed. Verify after unpacking
/// (`tar -xzf FILE`).
pub fn archive(dir: &std::path::Path, file: &std::path::Path) -> Result<(), crate::AttestError> {
    let name =
        dir.file_name().ok_or_else(|| crate::AttestError::Invalid(format!("{}: not a folder name", dir.display())))?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|e| crate::AttestError::io(file, e))?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(out, flate2::Compression::default()));
    builder.follow_symlinks(false);
    builder.append_dir_all(name, dir).map_err(|e| crate::AttestError::io(dir, e))?;
    let encoder = builder.into_inner().map_err(|e| crate::AttestError::io(file, e))?;
    let out = encoder.finish().map_err(|e| crate::AttestError::io(file, e))?;
    out.sync_all().map_err(|e| crate::AttestError::io(file, e))
}

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
