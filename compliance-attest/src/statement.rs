//! in-toto Statement v1 (<https://in-toto.io/Statement/v1>): the files a
//! signature covers (subjects, by SHA-256) and what is said about them (a
//! predicate of a type this project defines).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AttestError;

/// The statement type of in-toto v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// An in-toto Statement v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The files it covers.
    pub subject: Vec<Subject>,
    /// What the predicate is.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What is said about the subjects.
    pub predicate: Value,
}

impl Statement {
    /// A statement about `subject`.
    pub fn new(subject: Vec<Subject>, predicate_type: &str, predicate: Value) -> Self {
        Self { statement_type: STATEMENT_TYPE.into(), subject, predicate_type: predicate_type.into(), predicate }
    }
}

/// One subject: a name (a path relative to the signed folder, with `/`)
/// and its digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The file, relative, with `/`.
    pub name: String,
    /// `{"sha256": hex}`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with its SHA-256.
    pub fn sha256(name: impl Into<String>, hex: impl Into<String>) -> Self {
        Self { name: name.into(), digest: BTreeMap::from([("sha256".to_owned(), hex.into())]) }
    }

    /// Its SHA-256, if it has one.
    pub fn sha256_hex(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, AttestError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| AttestError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(|e| AttestError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
