//! The account-level S3 public access block (S3 Control), which applies to
//! every bucket of the account, present and future, whatever each bucket
//! sets: `aws.s3.account_public_access_block` passes when all four settings
//! are on (a CIS AWS Foundations Benchmark recommendation). One evidence per account.
//!
//! - `api`: the S3 Control calls ([`AccountBlockApi`]); `collector` and
//!   `remediator` (turns the four settings on, with approval).

use std::sync::LazyLock;

use compliance_core::{Catalogue, CheckDef, CheckSpec, Severity, Status, Verdict};
use serde_json::json;

use super::PublicAccessBlock;

mod api;
mod collector;
mod remediator;

#[cfg(test)]
pub use api::MockAccountBlockApi;
pub use api::{AccountBlockApi, SdkAccountBlock};
pub use collector::AccountPublicAccessBlockCollector;
pub use remediator::AccountPublicAccessBlockRemediator;

/// The resource kind of the evidence.
pub(crate) const KIND: &str = "AWS::S3::AccountPublicAccessBlock";
pub(crate) const CHECK: &str = "aws.s3.account_public_access_block";

fn judge(block: &Option<PublicAccessBlock>, _: &()) -> Option<Verdict> {
    let details = json!({ "public_access_block": block });
    Some(match block {
        Some(b) if *b == PublicAccessBlock::ALL_ON => {
            Verdict::new(Status::Pass, "all four settings are on for the account", details)
        }
        Some(b) => Verdict::new(Status::Fail, format!("off for the account: {}", b.off().join(", ")), details),
        None => Verdict::new(
            Status::Fail,
            "the account has no public access block: each bucket's own settings decide alone",
            details,
        ),
    })
}

static DEFS: &[CheckDef<Option<PublicAccessBlock>, ()>] = &[CheckDef {
    spec: CheckSpec {
        id: CHECK,
        title: "S3 public access is blocked for the whole account",
        severity: Severity::High,
        resource_kind: KIND,
        rationale: "The account-level block covers every bucket, including ones created later or by another team, so one bucket's policy or ACL cannot make data public.",
        remediation: "Turn on all four settings of the account's public access block (s3control:PutPublicAccessBlock); first check that no bucket must serve public content.",
        reference: "CIS AWS Foundations Benchmark (account-level S3 Block Public Access); PCI DSS v4.0 1.3.1",
        remediable: true,
    },
    judge,
}];

pub(crate) static CATALOGUE: LazyLock<Catalogue<Option<PublicAccessBlock>, ()>> =
    LazyLock::new(|| Catalogue::new(DEFS));

/// The account-level catalogue (one check).
pub fn account_catalogue() -> &'static Catalogue<Option<PublicAccessBlock>, ()> {
    &CATALOGUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_settings_pass_and_a_missing_block_fails_naming_what_is_off() {
        assert!(account_catalogue().problems().is_empty());
        assert_eq!(judge(&Some(PublicAccessBlock::ALL_ON), &()).map(|v| v.status), Some(Status::Pass));
        let none = judge(&None, &()).map(|v| (v.status, v.message));
        assert_eq!(none.as_ref().map(|v| v.0), Some(Status::Fail));
        let partial = PublicAccessBlock { block_public_policy: false, ..PublicAccessBlock::ALL_ON };
        let verdict = judge(&Some(partial), &()).map(|v| (v.status, v.message));
        assert_eq!(verdict, Some((Status::Fail, "off for the account: BlockPublicPolicy".to_owned())));
    }
}
