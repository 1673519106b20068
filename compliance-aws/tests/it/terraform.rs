//! Terraform source and plans: the example module (every style of S3
//! configuration), a plan in Terraform's JSON format, errors, and Checkov's
//! verdicts on the same files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use compliance_aws::terraform::{scan_module_text, scan_paths, scan_plan_text};
use compliance_core::{Collection, Scope, Status};

use crate::TestResult;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/terraform")
}

/// `(bucket name, check suffix) → status`.
fn statuses(c: &Collection) -> BTreeMap<(String, String), Status> {
    c.evidence
        .iter()
        .map(|e| ((e.resource.name.clone(), e.check_id.as_str().trim_start_matches("aws.s3.").to_owned()), e.status))
        .collect()
}

#[test]
fn the_example_module_is_judged_across_files_and_styles() -> TestResult {
    let c = scan_paths(&[example()], &Scope::all());
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);
    assert_eq!(c.evidence.len(), 4 * 6);
    let got = statuses(&c);
    use Status::{Error, Fail, Pass};
    let expected = [
        // MFA Delete is declared nowhere: changing it needs the root user's MFA device at apply time.
        ("acme-audit-evidence", [Pass, Pass, Pass, Pass, Pass, Fail]),
        ("acme-legacy-exports", [Fail, Pass, Pass, Pass, Pass, Fail]),
        ("acme-reports", [Error, Pass, Fail, Fail, Fail, Fail]),
        ("acme-access-logs", [Fail, Pass, Fail, Fail, Fail, Fail]),
    ];
    for (bucket, want) in expected {
        for (check, status) in
            ["public_access_block", "default_encryption", "versioning", "access_logging", "ssl_only", "mfa_delete"]
                .iter()
                .zip(want)
        {
            assert_eq!(got.get(&(bucket.to_owned(), (*check).to_owned())), Some(&status), "{bucket} {check}");
        }
    }
    // Evidence points at the bucket's block, and says why.
    let audit = c.evidence.iter().find(|e| e.resource.name == "acme-audit-evidence").ok_or("audit")?;
    assert!(audit.resource.file.as_deref().is_some_and(|f| f.ends_with("examples/terraform/main.tf")));
    assert_eq!(audit.resource.line, Some(14));
    let logs = c.evidence.iter().find(|e| e.resource.name == "acme-access-logs").ok_or("logs")?;
    assert!(logs.resource.file.as_deref().is_some_and(|f| f.ends_with("logs.tf")));
    let unknown = c
        .evidence
        .iter()
        .find(|e| e.resource.name == "acme-reports" && e.check_id.as_str() == "aws.s3.public_access_block")
        .ok_or("reports")?;
    assert!(unknown.message.contains("`var.block_public_acls`, known only at plan time"), "{}", unknown.message);
    let reports_ssl = c
        .evidence
        .iter()
        .find(|e| e.resource.name == "acme-reports" && e.check_id.as_str() == "aws.s3.ssl_only")
        .ok_or("reports ssl")?;
    assert_eq!(reports_ssl.details["statements"], 1, "jsonencode was read: {:?}", reports_ssl.details);
    Ok(())
}

#[test]
fn a_file_that_does_not_parse_is_a_gap_with_its_line_and_the_others_are_judged() {
    let good = "resource \"aws_s3_bucket\" \"a\" {\n  bucket = \"a\"\n}\n";
    let bad = "resource \"aws_s3_bucket\" \"b\" {\n  bucket = \"b\"\n\n  versioning {\n    enabled = \n  }\n";
    let c = scan_module_text(&[("good.tf", good), ("bad.tf", bad)], &Scope::all());
    assert_eq!(c.gaps.len(), 1);
    let source = c.gaps[0].source.clone().unwrap_or_default();
    assert!(source.starts_with("bad.tf:"), "{source}");
    assert!(c.gaps[0].reason.starts_with("invalid HCL at line"), "{}", c.gaps[0].reason);
    assert_eq!(c.evidence.len(), 6);
    assert!(c.evidence.iter().all(|e| e.resource.name == "a"));
}

#[test]
fn a_plan_in_json_is_judged_with_links_by_reference_and_by_name_and_modules() -> TestResult {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/terraform-plan/plan.json");
    let c = scan_plan_text(&std::fs::read_to_string(&path)?, "plan.json", &Scope::all());
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);
    let got = statuses(&c);
    use Status::{Error, Fail, Pass};
    let expected = [("plan-audit", [Fail, Pass, Pass, Fail, Error]), ("plan-logs", [Fail, Pass, Fail, Pass, Fail])];
    for (bucket, want) in expected {
        for (check, status) in
            ["public_access_block", "default_encryption", "versioning", "access_logging", "ssl_only", "mfa_delete"]
                .iter()
                .zip(want)
        {
            assert_eq!(got.get(&(bucket.to_owned(), (*check).to_owned())), Some(&status), "{bucket} {check}");
        }
    }
    let logs = c.evidence.iter().find(|e| e.resource.name == "plan-logs").ok_or("logs")?;
    assert_eq!(
        logs.resource.labels.get("terraform_address").map(String::as_str),
        Some("module.logs.aws_s3_bucket.this")
    );
    let pab = c
        .evidence
        .iter()
        .find(|e| e.resource.name == "plan-audit" && e.check_id.as_str() == "aws.s3.public_access_block")
        .ok_or("pab")?;
    assert_eq!(pab.message, "public access block settings off: RestrictPublicBuckets");

    let not_a_plan = scan_plan_text(r#"{"resources": []}"#, "state.json", &Scope::all());
    assert!(not_a_plan.gaps[0].reason.contains("terraform show -json"), "{:?}", not_a_plan.gaps);
    let broken = scan_plan_text("{\n  \"format_version\": ", "broken.json", &Scope::all());
    assert_eq!(broken.gaps[0].source.as_deref(), Some("broken.json:2"));
    Ok(())
}

/// Where Checkov's verdict differs from ours on the example module, and why.
const EXPECTED_DIFFERENCES: [(&str, &str, &str); 5] = [
    (
        "CKV2_AWS_6",
        "reports",
        "block_public_acls is var.block_public_acls without a default: we give error evidence (unknown until plan); Checkov reports nothing for the bucket",
    ),
    (
        "CKV_AWS_145",
        "legacy",
        "SSE-S3 (AES256) is default encryption for us and for the live check; CKV_AWS_145 demands KMS",
    ),
    (
        "CKV_AWS_145",
        "access_logs",
        "nothing declared, so S3's SSE-S3 default applies: a pass for us, a fail for CKV_AWS_145 (KMS)",
    ),
    (
        "CKV_AWS_145",
        "reports",
        "nothing declared, so S3's SSE-S3 default applies: a pass for us, a fail for CKV_AWS_145 (KMS)",
    ),
    (
        "CKV_AWS_18",
        "access_logs",
        "Checkov exempts a bucket that receives other buckets' logs; we ask it to log too (to another bucket), as the live check does",
    ),
];

/// Checkov, from `COMPLIANCE_CHECKOV` or the venv `scripts/test` creates.
fn checkov() -> Result<PathBuf, String> {
    let path = std::env::var_os("COMPLIANCE_CHECKOV").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/compliance-rs/checkov-venv/bin/checkov"))
    });
    path.filter(|p| p.is_file()).ok_or_else(|| "Checkov is not installed: scripts/test installs it".to_owned())
}

#[test]
#[ignore = "needs Checkov 3.3.30: scripts/test installs it"]
fn checkov_agrees_on_the_bucket_controls_except_where_explained() -> TestResult {
    let checkov = checkov()?;
    let output = std::process::Command::new(checkov)
        .args(["-d", &example().display().to_string(), "--framework", "terraform", "--skip-download", "-o", "json"])
        .args(["--check", "CKV2_AWS_6,CKV_AWS_21,CKV_AWS_145,CKV_AWS_19,CKV_AWS_18"])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "TRUE")
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("checkov output: {e}: {}", String::from_utf8_lossy(&output.stderr)))?;
    let mut theirs: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (kind, passed) in [("passed_checks", true), ("failed_checks", false)] {
        for r in report["results"][kind].as_array().into_iter().flatten() {
            let bucket = r["resource"].as_str().unwrap_or_default().trim_start_matches("aws_s3_bucket.").to_owned();
            theirs.insert((r["check_id"].as_str().unwrap_or_default().to_owned(), bucket), passed);
        }
    }
    let ours = scan_paths(&[example()], &Scope::all());
    let by_address: BTreeMap<(String, String), Status> = ours
        .evidence
        .iter()
        .map(|e| {
            let address = e.resource.labels.get("terraform_address").cloned().unwrap_or_default();
            ((e.check_id.as_str().to_owned(), address.trim_start_matches("aws_s3_bucket.").to_owned()), e.status)
        })
        .collect();
    let ckv_to_ours = [
        ("CKV2_AWS_6", "aws.s3.public_access_block"),
        ("CKV_AWS_21", "aws.s3.versioning"),
        ("CKV_AWS_19", "aws.s3.default_encryption"),
        ("CKV_AWS_145", "aws.s3.default_encryption"),
        ("CKV_AWS_18", "aws.s3.access_logging"),
    ];
    let mut differences = BTreeSet::new();
    let mut agreements = 0;
    for bucket in ["audit", "legacy", "reports", "access_logs"] {
        for (ckv, check) in ckv_to_ours {
            let ours = by_address.get(&(check.to_owned(), bucket.to_owned())).copied();
            let theirs = theirs.get(&(ckv.to_owned(), bucket.to_owned())).copied();
            match (ours, theirs) {
                (Some(Status::Pass), Some(true)) | (Some(Status::Fail), Some(false)) => agreements += 1,
                _ => {
                    differences.insert((ckv, bucket));
                }
            }
        }
    }
    let expected: BTreeSet<(&str, &str)> = EXPECTED_DIFFERENCES.iter().map(|(c, b, _)| (*c, *b)).collect();
    eprintln!("Checkov vs ours on examples/terraform: {agreements} agree, {} differ (explained)", differences.len());
    assert_eq!(differences, expected, "a difference appeared or disappeared: explain it in EXPECTED_DIFFERENCES");
    assert_eq!(agreements, 20 - EXPECTED_DIFFERENCES.len());
    Ok(())
}

#[test]
fn mfa_delete_is_read_from_both_styles_and_from_plans() -> TestResult {
    let tf = r#"
resource "aws_s3_bucket" "split" { bucket = "split" }
resource "aws_s3_bucket_versioning" "split" {
  bucket = aws_s3_bucket.split.id
  versioning_configuration {
    status     = "Enabled"
    mfa_delete = "Enabled"
  }
}
resource "aws_s3_bucket" "inline_on" {
  bucket = "inline-on"
  versioning {
    enabled    = true
    mfa_delete = true
  }
}
resource "aws_s3_bucket" "inline_off" {
  bucket = "inline-off"
  versioning { enabled = true }
}
"#;
    let c = scan_module_text(&[("main.tf", tf)], &Scope::only(["aws.s3.mfa_delete"]));
    let got = statuses(&c);
    for (bucket, want) in [("split", Status::Pass), ("inline-on", Status::Pass), ("inline-off", Status::Fail)] {
        assert_eq!(got.get(&(bucket.to_owned(), "mfa_delete".to_owned())), Some(&want), "{bucket}: {got:?}");
    }
    let plan = serde_json::json!({"format_version": "1.2", "planned_values": {"root_module": {"resources": [
        {"address": "aws_s3_bucket.p", "type": "aws_s3_bucket", "name": "p",
         "values": {"bucket": "planned", "versioning": [{"enabled": true, "mfa_delete": true}]}}]}}});
    let c = scan_plan_text(&plan.to_string(), "plan.json", &Scope::only(["aws.s3.mfa_delete"]));
    assert_eq!(statuses(&c).get(&("planned".to_owned(), "mfa_delete".to_owned())), Some(&Status::Pass), "{c:?}");
    Ok(())
}
