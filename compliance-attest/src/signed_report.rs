//! Signed reports: a DSSE envelope beside a scan's output files, covering
//! every one of them, so a report handed over as files can be checked.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::statement::{PAYLOAD_TYPE, STATEMENT_TYPE, file_sha256};
use crate::{AttestError, Envelope, Keyring, Problem, SigningKey, Statement, Subject, TOOL};

/// The predicate type of a signed report.
pub const REPORT_PREDICATE_TYPE: &str =
    "https://github.com/compliance-rs/compliance-rs/blob/main/docs/evidence-package.md#signed-reports";

/// Signs `files` (all in one folder) and writes the envelope there as
/// `envelope_name`; returns its path. `run_id` names the run they report.
pub fn sign_files(
    files: &[PathBuf],
    run_id: &str,
    envelope_name: &str,
    key: &SigningKey,
) -> Result<PathBuf, AttestError> {
    let Some(dir) = files.first().and_then(|f| f.parent()) else {
        return Err(AttestError::Invalid("no file to sign".into()));
    };
    let mut subjects = Vec::with_capacity(files.len());
    for file in files {
        if file.parent() != Some(dir) {
            return Err(AttestError::Invalid(format!("{}: not in {}", file.display(), dir.display())));
        }
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        subjects.push(Subject::sha256(name, file_sha256(file)?));
    }
    let predicate = json!({ "tool": TOOL, "signed_at": Utc::now(), "run_id": run_id });
    let statement = Statement::new(subjects, REPORT_PREDICATE_TYPE, predicate);
    let payload = serde_json::to_vec(&statement).map_err(|e| AttestError::Invalid(e.to_string()))?;
    let envelope = Envelope::sign(PAYLOAD_TYPE, &payload, key);
    let path = dir.join(envelope_name);
    let bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| AttestError::Invalid(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut out = options.open(&path).map_err(|e| AttestError::io(&path, e))?;
    std::io::Write::write_all(&mut out, &bytes).map_err(|e| AttestError::io(&path, e))?;
    Ok(path)
}

/// What a signed report that verified covers.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SignedFiles {
    /// The key that signed.
    pub signed_by: String,
    /// When.
    pub signed_at: DateTime<Utc>,
    /// The run.
    pub run_id: String,
    /// The files, each checked.
    pub files: Vec<String>,
}

/// Verifies an envelope written by [`sign_files`]: the signature, the key's
/// validity, and every file beside it against its digest. The outer `Err`
/// is an envelope that cannot be read; the inner one the first problem.
pub fn verify_files(envelope: &Path, keyring: &Keyring) -> Result<Result<SignedFiles, Problem>, AttestError> {
    let what = envelope.display().to_string();
    let malformed = |message: String| Problem::Malformed { what: what.clone(), message };
    let regular = |path: &Path| std::fs::symlink_metadata(path).map(|m| m.file_type().is_file());
    if !regular(envelope).map_err(|e| AttestError::io(envelope, e))? {
        return Ok(Err(malformed("not a regular file (a link, a folder or a device): refused".into())));
    }
    let text = crate::keys::read_limited(envelope, 16 << 20)?;
    let parsed: Envelope = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => return Ok(Err(malformed(format!("not a DSSE envelope: {e}")))),
    };
    let verified = match parsed.verify(keyring, &what) {
        Ok(v) => v,
        Err(p) => return Ok(Err(p)),
    };
    let statement: Statement = match serde_json::from_slice(&verified.payload) {
        Ok(s) => s,
        Err(e) => return Ok(Err(malformed(format!("not an in-toto statement: {e}")))),
    };
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != REPORT_PREDICATE_TYPE {
        return Ok(Err(malformed(format!("predicate {}: not a signed report", statement.predicate_type))));
    }
    let Ok(signed_at) = serde_json::from_value::<DateTime<Utc>>(statement.predicate["signed_at"].clone()) else {
        return Ok(Err(malformed("predicate.signed_at is missing".into())));
    };
    if signed_at > Utc::now() + chrono::Duration::minutes(5) {
        return Ok(Err(malformed(format!("predicate.signed_at {signed_at} is in the future"))));
    }
    if let Err(p) = keyring.check_valid(&verified.key, signed_at, &what) {
        return Ok(Err(p));
    }
    let dir = envelope.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for subject in &statement.subject {
        let name = &subject.name;
        if name.contains('/') || name.contains('\\') || name == ".." || name.is_empty() {
            return Ok(Err(malformed(format!("subject {name:?} is not a file beside the envelope"))));
        }
        let path = dir.join(name);
        match regular(&path) {
            Err(_) => return Ok(Err(Problem::FileRemoved { path: name.clone() })),
            Ok(false) => {
                return Ok(Err(malformed(format!(
                    "{name}: not a regular file (a link, a folder or a device): refused"
                ))));
            }
            Ok(true) => {}
        }
        let actual = file_sha256(&path)?;
        let expected = subject.sha256_hex().unwrap_or_default();
        if actual != expected {
            return Ok(Err(Problem::FileChanged {
                path: name.clone(),
                expected: format!("SHA-256 {expected}"),
                actual: format!("SHA-256 {actual}"),
            }));
        }
        files.push(name.clone());
    }
    Ok(Ok(SignedFiles {
        signed_by: verified.key.fingerprint().to_owned(),
        signed_at,
        run_id: statement.predicate["run_id"].as_str().unwrap_or_default().to_owned(),
        files,
    }))
}
