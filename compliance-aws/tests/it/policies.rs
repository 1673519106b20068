//! The IAM policies of deploy/aws against the calls the code makes: every
//! read is allowed by the audit role, every fix by the remediation policy,
//! and the audit role can change nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::TestResult;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `"service:Action"` string of the crate's source.
fn operations(dir: &Path, found: &mut BTreeSet<String>) -> TestResult {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            operations(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            for quoted in text.split('"').skip(1).step_by(2) {
                let Some((service, action)) = quoted.split_once(':') else { continue };
                let known = ["account", "cloudtrail", "config", "iam", "organizations", "s3", "sts"];
                if known.contains(&service)
                    && action.chars().next().is_some_and(char::is_uppercase)
                    && action.chars().all(char::is_alphanumeric)
                {
                    found.insert(quoted.to_owned());
                }
            }
        }
    }
    Ok(())
}

fn actions(file: &str) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let policy: Value = serde_json::from_slice(&std::fs::read(repo().join("deploy/aws").join(file))?)?;
    assert_eq!(policy["Version"], "2012-10-17", "{file}");
    let mut all = BTreeSet::new();
    for statement in policy["Statement"].as_array().ok_or("no Statement")? {
        assert_eq!(statement["Effect"], "Allow", "{file}");
        assert!(statement.get("Resource").is_some() || statement.get("Principal").is_some(), "{file}");
        match &statement["Action"] {
            Value::String(a) => {
                all.insert(a.clone());
            }
            Value::Array(list) => all.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned))),
            other => return Err(format!("{file}: Action {other}").into()),
        }
    }
    assert!(all.iter().all(|a| !a.contains('*')), "{file}: no wildcard action");
    Ok(all)
}

const WRITES: [&str; 8] = ["Put", "Update", "Delete", "Create", "Start", "Stop", "Attach", "Enable"];

#[test]
fn every_call_is_in_its_policy_and_the_audit_role_writes_nothing() -> TestResult {
    let mut used = BTreeSet::new();
    operations(&repo().join("compliance-aws/src"), &mut used)?;
    // Not calls: actions named inside a bucket policy statement; a call that needs no permission.
    for not_a_call in ["s3:GetObject", "sts:GetCallerIdentity"] {
        used.remove(not_a_call);
    }
    let audit = actions("audit-role-policy.json")?;
    let scanner = actions("scanner-policy.json")?;
    let fixes = actions("remediation-policy.json")?;
    actions("audit-role-trust-policy.json")?;
    let is_write = |a: &str| a.split_once(':').is_some_and(|(_, action)| WRITES.iter().any(|w| action.starts_with(w)));
    for op in &used {
        let allowed = if is_write(op) { fixes.contains(op) } else { audit.contains(op) || scanner.contains(op) };
        assert!(allowed, "{op} is called but no policy of deploy/aws allows it");
    }
    assert!(audit.iter().all(|a| !is_write(a)), "the audit role is read-only: {audit:?}");
    let unused: Vec<&String> =
        audit.iter().chain(&scanner).chain(&fixes).filter(|a| !used.contains(*a) && *a != "sts:AssumeRole").collect();
    assert!(unused.is_empty(), "allowed but never called: {unused:?}");
    assert!(used.len() > 30, "the source was read: {used:?}");
    Ok(())
}
