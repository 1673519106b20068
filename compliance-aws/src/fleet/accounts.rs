//! The accounts of a fleet: from a file, or from the organization.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Files larger than this are refused (an accounts file of 10,000 accounts is well under 4 MiB).
pub const MAX_ACCOUNTS_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// More accounts than this in one file are refused.
pub const MAX_ACCOUNTS: usize = 20_000;

/// One account to scan, as an accounts file lists it.
///
/// ```yaml
/// - id: "111122223333"
///   name: payments-prod
///   role_arn: arn:aws:iam::111122223333:role/ComplianceAudit
///   external_id: audit-2026
///   regions: [eu-west-1, eu-central-1]
///   tags: {env: prod, pci: "true"}
/// - id: "444455556666"
///   profile: sandbox-audit        # a profile of ~/.aws/config instead of a role
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AccountSpec {
    /// The 12-digit account id. Quote it in YAML: `012345670123` unquoted
    /// is an octal number to a YAML 1.1 reader.
    #[serde(deserialize_with = "account_id")]
    pub id: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role to assume in it; without it (and without a profile) the
    /// credentials in use, which must be that account's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// A profile of the shared AWS config files, instead of a role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The external id the role's trust policy asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Its regions (`all`: every region enabled for it); else the run's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Tags, shown in reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl AccountSpec {
    /// An account scanned with the credentials in use.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), ..Self::default() }
    }

    /// With a role to assume.
    pub fn with_role(mut self, role_arn: impl Into<String>) -> Self {
        self.role_arn = Some(role_arn.into());
        self
    }

    /// With a name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How it is named in gaps and logs: `111122223333 (payments-prod)`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({name})", self.id),
            None => self.id.clone(),
        }
    }
}

/// An id written as text, or as a number (YAML drops the leading zeros).
fn account_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Number(n) => format!("{n:012}"),
    })
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Parses an accounts file's text: a YAML list of [`AccountSpec`]. An error
/// names the file and the field (`accounts.yaml: [3].id: ...`).
pub fn parse_accounts(text: &str, source: &str) -> Result<Vec<AccountSpec>, String> {
    let stream = compliance_core::yaml::parse_documents(text, source);
    if let Some(e) = stream.error {
        return Err(e.to_string());
    }
    if stream.documents.len() != 1 {
        return Err(format!(
            "{source}: one YAML document expected (a list of accounts), found {}",
            stream.documents.len()
        ));
    }
    let value = stream.documents.into_iter().next().map(|d| d.value).unwrap_or_default();
    let accounts: Vec<AccountSpec> =
        serde_path_to_error::deserialize(value).map_err(|e| format!("{source}: {}: {}", e.path(), e.inner()))?;
    if accounts.is_empty() || accounts.len() > MAX_ACCOUNTS {
        return Err(format!("{source}: 1 to {MAX_ACCOUNTS} accounts expected, found {}", accounts.len()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, a) in accounts.iter().enumerate() {
        if !is_account_id(&a.id) {
            return Err(format!("{source}: [{i}].id: {:?} is not a 12-digit account id", a.id));
        }
        if !seen.insert(a.id.as_str()) {
            return Err(format!("{source}: [{i}].id: account {} is listed twice", a.id));
        }
        if a.role_arn.is_some() && a.profile.is_some() {
            return Err(format!("{source}: [{i}]: give role_arn or profile, not both"));
        }
        if let Some(arn) = &a.role_arn
            && !(arn.starts_with("arn:aws") && arn.contains(&format!(":iam::{}:role/", a.id)))
        {
            return Err(format!("{source}: [{i}].role_arn: {arn:?} is not a role of account {}", a.id));
        }
    }
    Ok(accounts)
}

/// Reads and parses an accounts file (at most [`MAX_ACCOUNTS_FILE_BYTES`]).
pub fn read_accounts_file(path: &Path) -> Result<Vec<AccountSpec>, String> {
    let name = path.display().to_string();
    let size = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?.len();
    if size > MAX_ACCOUNTS_FILE_BYTES {
        return Err(format!("{name}: {size} bytes, more than the {MAX_ACCOUNTS_FILE_BYTES} an accounts file may have"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    parse_accounts(&text, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_accounts_reads_and_every_mistake_is_named() {
        let good = "- {id: '111122223333', name: prod, role_arn: 'arn:aws:iam::111122223333:role/Audit', regions: [eu-west-1], tags: {env: prod}}\n- id: '444455556666'\n  profile: sandbox\n";
        let accounts = parse_accounts(good, "accounts.yaml").unwrap_or_default();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].label(), "111122223333 (prod)");
        assert_eq!(accounts[0].tags.get("env").map(String::as_str), Some("prod"));
        let error = |text: &str| parse_accounts(text, "accounts.yaml").err().unwrap_or_default();
        assert_eq!(error("- {id: '1234'}"), "accounts.yaml: [0].id: \"1234\" is not a 12-digit account id");
        let unquoted = parse_accounts("- id: 12345678901", "a.yaml").unwrap_or_default();
        assert_eq!(unquoted.first().map(|a| a.id.as_str()), Some("012345678901"), "the leading zero YAML dropped");
        let unknown = error("- {id: '111122223333', role: x}");
        assert!(unknown.starts_with("accounts.yaml: [0]") && unknown.contains("unknown field `role`"), "{unknown}");
        assert!(
            error("- {id: '111122223333'}\n- {id: '111122223333'}")
                .contains("[1].id: account 111122223333 is listed twice")
        );
        assert!(
            error("- {id: '111122223333', role_arn: 'arn:aws:iam::999999999999:role/A'}")
                .contains("is not a role of account")
        );
        assert!(error("[]").contains("1 to 20000 accounts expected"));
        assert!(
            error("- {id: '111122223333', role_arn: 'arn:aws:iam::111122223333:role/A', profile: p}")
                .contains("not both")
        );
    }

    #[test]
    fn a_file_larger_than_the_bound_is_refused_before_it_is_read() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("accounts.yaml");
        let line = "- {id: '111122223333'}\n";
        let size = usize::try_from(MAX_ACCOUNTS_FILE_BYTES).map_err(|e| e.to_string())? + line.len();
        std::fs::write(&path, line.repeat(size / line.len() + 1)).map_err(|e| e.to_string())?;
        let error = read_accounts_file(&path).err().unwrap_or_default();
        assert!(error.contains("more than the 4194304 an accounts file may have"), "{error}");
        // Deep nesting is refused by the YAML reader, naming the file.
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_accounts(&deep, "deep.yaml").err().is_some_and(|e| e.contains("deep.yaml")));
        Ok(())
    }
}
