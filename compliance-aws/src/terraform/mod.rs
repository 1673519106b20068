//! Terraform (feature `terraform`): the S3 bucket checks on Terraform
//! source (`.tf`) and on plans (`terraform show -json`), before anything is
//! applied. The same judges as the live S3 checks decide, so a bucket gets
//! the same check ids, and the same framework controls, from code review to
//! production.
//!
//! A folder of `.tf` files is one module: a bucket and the resources that
//! configure it may sit in different files. Both ways of configuring a
//! bucket are read: the AWS provider v4+ split resources
//! (`aws_s3_bucket_public_access_block`, `aws_s3_bucket_versioning`,
//! `aws_s3_bucket_server_side_encryption_configuration`,
//! `aws_s3_bucket_logging`, `aws_s3_bucket_policy`) linked by their `bucket`
//! argument, and the older inline blocks of `aws_s3_bucket`. Policies may be
//! heredoc JSON, `jsonencode(…)` or an `aws_iam_policy_document` data source.
//! A value Terraform only knows at plan time (a variable without default, a
//! module output) gives `error` evidence that says so, never a guess: scan
//! the plan for those.
//!
//! ```
//! use compliance_core::{Scope, Status};
//! use compliance_aws::terraform::scan_module_text;
//! let tf = r#"
//! resource "aws_s3_bucket" "logs" {
//!   bucket = "acme-logs"
//! }
//! resource "aws_s3_bucket_versioning" "logs" {
//!   bucket = aws_s3_bucket.logs.id
//!   versioning_configuration { status = "Enabled" }
//! }
//! "#;
//! let collection = scan_module_text(&[("main.tf", tf)], &Scope::only(["aws.s3.versioning"]));
//! let evidence = &collection.evidence[0];
//! assert_eq!(evidence.status, Status::Pass);
//! assert_eq!((evidence.resource.file.as_deref(), evidence.resource.line), (Some("main.tf"), Some(2)));
//! ```
//!
//! - `hcl`: `.tf` modules, with expressions resolved where they are known;
//!   `plan`: plans; both declare buckets that the S3 catalogue judges.

mod hcl;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use compliance_core::files::files_under;
use compliance_core::{
    Check, Collection, Collector, Error, Evidence, Gap, GapKind, ResourceRef, Scope, Status, Verdict,
};
use serde_json::json;
use tracing::info;

pub use hcl::scan_module_text;
pub use plan::scan_plan_text;

use crate::s3::{BucketState, Encryption, Logging, PublicAccessBlock, Setting, Versioning, catalogue, checks};

/// A value known only when Terraform plans: its expression, as written.
#[derive(Clone, Debug, PartialEq)]
struct Unknown(String);

type Known<T> = Result<T, Unknown>;

/// What the configuration declares about one bucket.
#[derive(Clone, Debug, Default)]
struct DeclaredBucket {
    /// `aws_s3_bucket.logs` (with `module.x.` in plans).
    address: String,
    /// The bucket's name, when it is a literal.
    name: Option<String>,
    file: String,
    line: Option<usize>,
    public_access_block: Option<Known<PublicAccessBlock>>,
    encryption: Option<Known<Encryption>>,
    versioning: Option<Known<Versioning>>,
    logging: Option<Known<Logging>>,
    policy: Option<Known<String>>,
}

// ---- judging, whatever the source ----

fn unknown_verdict(what: &str, unknown: &Unknown) -> Verdict {
    Verdict::new(
        Status::Error,
        format!("{what} depends on `{}`, known only at plan time; scan the plan (terraform show -json)", unknown.0),
        json!({ "unknown": unknown.0 }),
    )
}

/// What the configuration declares, as the state the S3 catalogue judges.
/// What is not declared is what S3 applies: nothing, except default
/// encryption, which S3 applies to every new bucket.
fn state_of(bucket: &DeclaredBucket, name: &str) -> BucketState {
    fn known<T: Clone, U>(declared: &Option<Known<T>>, what: &str, read: impl FnOnce(Option<&T>) -> U) -> Setting<U> {
        match declared {
            Some(Err(u)) => Setting::Decided(unknown_verdict(what, u)),
            Some(Ok(value)) => Setting::Read(read(Some(value))),
            None => Setting::Read(read(None)),
        }
    }
    let mut state = BucketState::unconfigured(name);
    state.public_access_block = known(&bucket.public_access_block, "the public access block", |b| b.copied());
    state.encryption = match &bucket.encryption {
        None => Setting::Decided(Verdict::new(
            Status::Pass,
            "no default encryption is declared: S3 applies SSE-S3 (AES256) to every new bucket since January 2023",
            json!({ "declared": null, "effective": "AES256" }),
        )),
        declared => known(declared, "default encryption", |e| e.cloned()),
    };
    state.versioning = known(&bucket.versioning, "versioning", |v| v.cloned().unwrap_or_default());
    state.logging = known(&bucket.logging, "access logging", |l| l.cloned());
    state.policy = known(&bucket.policy, "the bucket policy", |p| p.cloned());
    state
}

fn judge(bucket: &DeclaredBucket, scope: &Scope, collector: &str) -> Vec<Evidence> {
    let name = bucket.name.clone().unwrap_or_else(|| bucket.address.clone());
    let mut resource = ResourceRef::new("aws", "S3Bucket", format!("{}#{}", bucket.file, bucket.address), name.clone())
        .with_file(bucket.file.clone(), bucket.line);
    resource.labels.insert("terraform_address".into(), bucket.address.clone());
    let collector: Arc<str> = Arc::from(collector);
    let mut evidence = catalogue().judge(&state_of(bucket, &name), &(), resource, scope, chrono::Utc::now());
    for e in &mut evidence {
        e.collector = Arc::clone(&collector);
    }
    evidence
}

// ---- files and folders ----

/// Judges Terraform under `paths`: folders (each folder with `.tf` files is
/// a module; `.terraform/` is skipped), `.tf` files, and plans (`.json`).
pub fn scan_paths(paths: &[PathBuf], scope: &Scope) -> Collection {
    let mut modules: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut plans = Vec::new();
    let mut collection = Collection::default();
    for file in files_under(paths, is_tf, &mut collection.gaps) {
        if file.extension().is_some_and(|e| e == "json") {
            plans.push(file);
        } else {
            modules.entry(file.parent().map(Path::to_path_buf).unwrap_or_default()).or_default().push(file);
        }
    }
    for files in modules.values() {
        let mut texts = Vec::new();
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(file) {
                Ok(text) => texts.push((name, text)),
                Err(e) => collection.gaps.push(Gap::source(name, GapKind::Unreadable, format!("cannot read: {e}"))),
            }
        }
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        collection.extend(scan_module_text(&pairs, scope));
    }
    for plan in plans {
        let name = plan.display().to_string();
        match std::fs::read_to_string(&plan) {
            Ok(text) => collection.extend(scan_plan_text(&text, &name, scope)),
            Err(e) => collection.gaps.push(Gap::source(name, GapKind::Unreadable, format!("cannot read: {e}"))),
        }
    }
    info!(evidence = collection.evidence.len(), gaps = collection.gaps.len(), "Terraform judged");
    collection
}

fn is_tf(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tf")
}

/// Judges Terraform files, folders and plans as a collector
/// (`"terraform"`), with the S3 checks.
#[derive(Clone, Debug)]
pub struct TerraformCollector {
    paths: Vec<PathBuf>,
}

impl TerraformCollector {
    /// A collector over these paths.
    pub fn new<I: IntoIterator<Item = P>, P: Into<PathBuf>>(paths: I) -> Self {
        Self { paths: paths.into_iter().map(Into::into).collect() }
    }
}

#[async_trait]
impl Collector for TerraformCollector {
    fn name(&self) -> &str {
        "terraform"
    }

    fn checks(&self) -> Vec<Check> {
        checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        let (paths, scope) = (self.paths.clone(), scope.clone());
        tokio::task::spawn_blocking(move || scan_paths(&paths, &scope))
            .await
            .map_err(|e| Error::collect_from("terraform", e.to_string(), e))
    }
}
