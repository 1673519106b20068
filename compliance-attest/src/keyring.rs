//! Public keys an auditor trusts, each for a period, so that keys can be
//! rotated: a signature made by a key outside its period does not verify.
//!
//! A keyring file is YAML:
//!
//! ```yaml
//! keys:
//!   - public_key: keys/2026.pub        # relative to this file
//!     not_before: 2026-01-01T00:00:00Z
//!     not_after: 2027-01-01T00:00:00Z
//!   - public_key: keys/2027.pub
//!     not_before: 2027-01-01T00:00:00Z
//! ```
//!
//! A PEM public key file is a keyring of one key, valid at any time.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::keys::read_small;
use crate::{AttestError, Problem, PublicKey};

/// A key and the period in which its signatures are accepted.
#[derive(Clone, Debug)]
pub struct KeyringEntry {
    /// The key.
    pub key: PublicKey,
    /// Signatures made before this time are refused.
    pub not_before: Option<DateTime<Utc>>,
    /// Signatures made at or after this time are refused.
    pub not_after: Option<DateTime<Utc>>,
}

impl KeyringEntry {
    fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before.is_none_or(|t| at >= t) && self.not_after.is_none_or(|t| at < t)
    }

    fn period(&self) -> String {
        let show = |t: Option<DateTime<Utc>>| t.map_or_else(|| "…".to_owned(), |t| t.to_rfc3339());
        format!("from {} until {}", show(self.not_before), show(self.not_after))
    }
}

/// The keys a verification accepts.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    keys: Vec<KeyringFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFileEntry {
    public_key: String,
    #[serde(default, deserialize_with = "time")]
    not_before: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "time")]
    not_after: Option<DateTime<Utc>>,
}

/// An RFC 3339 time, or a date (midnight UTC).
fn time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = String::deserialize(d)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(Some(t.to_utc()));
    }
    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| serde::de::Error::custom(format!("{text:?}: expected a date (2026-01-31) or an RFC 3339 time")))
}

/// More keys than any rotation needs.
const MAX_KEYS: usize = 1000;

impl Keyring {
    /// One key, valid at any time.
    pub fn single(key: PublicKey) -> Self {
        Self { entries: vec![KeyringEntry { key, not_before: None, not_after: None }] }
    }

    /// Keys with their periods.
    pub fn new(entries: Vec<KeyringEntry>) -> Self {
        Self { entries }
    }

    /// Reads a PEM public key, or a keyring YAML file naming PEM files
    /// (relative to it) with their periods.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, AttestError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = read_small(path)?;
        if text.trim_start().starts_with("-----BEGIN") {
            return Ok(Self::single(PublicKey::from_pem(&text, &name)?));
        }
        let bad = |message: String| AttestError::Key { path: name.clone(), message };
        let stream = compliance_core::yaml::parse_documents(&text, &name);
        if let Some(e) = stream.error {
            return Err(bad(format!("not a PEM public key, nor a keyring: {e}")));
        }
        if stream.documents.len() > 1 {
            return Err(bad("one YAML document expected, this file has several".into()));
        }
        let value = stream.documents.into_iter().next().map(|d| d.value).unwrap_or_default();
        let file: KeyringFile = serde_path_to_error::deserialize(value)
            .map_err(|e| bad(format!("not a PEM public key, nor a keyring: {}: {}", e.path(), e.inner())))?;
        if file.keys.is_empty() || file.keys.len() > MAX_KEYS {
            return Err(bad(format!("a keyring holds 1 to {MAX_KEYS} keys, this one {}", file.keys.len())));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut entries = Vec::with_capacity(file.keys.len());
        for (i, entry) in file.keys.into_iter().enumerate() {
            let key = if entry.public_key.trim_start().starts_with("-----BEGIN") {
                PublicKey::from_pem(&entry.public_key, &format!("{name}: keys[{i}]"))?
            } else {
                PublicKey::read(base.join(&entry.public_key))?
            };
            if let (Some(from), Some(until)) = (entry.not_before, entry.not_after)
                && from >= until
            {
                return Err(bad(format!("keys[{i}]: not_before is not before not_after")));
            }
            entries.push(KeyringEntry { key, not_before: entry.not_before, not_after: entry.not_after });
        }
        Ok(Self { entries })
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.entries.iter().map(|e| &e.key)
    }

    /// `Ok` when `key` may sign at `at`: some entry for it covers that time.
    pub fn check_valid(&self, key: &PublicKey, at: DateTime<Utc>, what: &str) -> Result<(), Problem> {
        let entries: Vec<&KeyringEntry> = self.entries.iter().filter(|e| e.key == *key).collect();
        if entries.iter().any(|e| e.valid_at(at)) {
            return Ok(());
        }
        Err(Problem::KeyNotValid {
            what: what.to_owned(),
            key: key.fingerprint().to_owned(),
            at: at.to_rfc3339(),
            validity: entries.iter().map(|e| e.period()).collect::<Vec<_>>().join(", or "),
        })
    }
}
