//! What can go wrong: an error (the work could not be done) or a problem
//! (the work was done and found something that does not verify).

use serde::Serialize;

/// The signing, exporting or verifying could not be done: a file cannot be
/// read or written, a key is not a key, the store failed. Distinct from a
/// [`Problem`], which is a verification's finding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key or keyring file cannot be used.
    #[error("{path}: {message}")]
    Key {
        /// The file (or what the key was read from).
        path: String,
        /// Why.
        message: String,
    },
    /// Input that is not what it should be (a date range, a framework).
    #[error("{0}")]
    Invalid(String),
    /// The evidence store failed.
    #[error("evidence store: {0}")]
    Store(#[from] compliance_core::StoreError),
    /// A report could not be rendered.
    #[error("report: {0}")]
    Report(#[from] compliance_report::ReportError),
}

impl AttestError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// The first thing that does not verify, named so an auditor can act on
/// it. Verification stops at the first problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// No signature verifies with a key of the keyring.
    #[error("{what}: the signature does not verify with any key of the keyring ({keys})")]
    BadSignature {
        /// What was signed (a file).
        what: String,
        /// The key ids the signatures name.
        keys: String,
    },
    /// The key that signed is known, but was not valid when it signed.
    #[error("{what}: signed at {at} by key {key}, which was valid {validity}")]
    KeyNotValid {
        /// What was signed.
        what: String,
        /// The key's fingerprint.
        key: String,
        /// When it was signed, as the signed statement says.
        at: String,
        /// The key's validity period.
        validity: String,
    },
    /// The signed content is not what it should be (not an in-toto
    /// statement, the wrong predicate type, a field missing).
    #[error("{what}: {message}")]
    Malformed {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
    /// A file's content no longer matches its signed digest (or size).
    #[error("{path}: changed ({actual}, signed {expected})")]
    FileChanged {
        /// The file, relative to the package.
        path: String,
        /// What was signed (`SHA-256 …` or `N bytes`).
        expected: String,
        /// What is there now.
        actual: String,
    },
    /// A signed file is missing.
    #[error("{path}: removed (it is signed, but not there)")]
    FileRemoved {
        /// The file.
        path: String,
    },
    /// A file that is not signed is in the package.
    #[error("{path}: added (it is not signed)")]
    FileAdded {
        /// The file.
        path: String,
    },
    /// A chain record does not recompute, or does not link to the one
    /// before it.
    #[error("chain record {seq}: {detail}")]
    ChainChanged {
        /// The record's position.
        seq: i64,
        /// What differs.
        detail: String,
    },
    /// Evidence in a report (or a control's file) that the chain does not hold.
    #[error("{file}: evidence {check} on {resource} is not in the chain")]
    EvidenceNotInChain {
        /// The file it is in.
        file: String,
        /// Its check.
        check: String,
        /// Its resource.
        resource: String,
    },
    /// A checkpoint does not match the chain: the chain was rewritten, or
    /// cut short, after the checkpoint was signed.
    #[error("checkpoint of record {seq} ({source_of}): {detail}")]
    CheckpointMismatch {
        /// The record the checkpoint signs.
        seq: i64,
        /// Where the checkpoint came from (`chain record N` or a file line).
        source_of: String,
        /// What differs.
        detail: String,
    },
    /// Nothing in the chain is signed.
    #[error("no signed checkpoint: nothing proves the chain was not rewritten as a whole")]
    NoCheckpoint,
    /// A run's records are not covered by a checkpoint, and checkpoints
    /// were required.
    #[error(
        "run {run}: its records end at {last_seq}, but checkpoints cover the chain only through record {attested_through}"
    )]
    NotAttested {
        /// The run.
        run: String,
        /// Its last record.
        last_seq: i64,
        /// The last record a verified checkpoint covers (0: none).
        attested_through: i64,
    },
}
