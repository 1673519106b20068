//! The IAM credential report (CSV, as AWS returns it): parsed by
//! `compliance_aws::iam::parse_credential_report`, then every row judged by
//! the IAM catalogue at a fixed time, as the IAM collector does.
//!
//! Any bytes: no panic (dates far in the past or future included), no hang,
//! memory bounded.
#![no_main]

use chrono::{DateTime, Utc};
use compliance_aws::iam::{IamConfig, Review, catalogue, parse_credential_report};
use compliance_core::{ResourceRef, Scope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((rows, bad)) = parse_credential_report(data) else {
        return;
    };
    // A fixed time keeps runs reproducible.
    let now = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let review = Review { config: IamConfig::default(), now };
    let scope = Scope::all();
    for row in &rows {
        let kind = if row.is_root() { "AWSAccount" } else { "IAMUser" };
        let resource = ResourceRef::new("aws", kind, row.arn.clone(), row.user.clone());
        let evidence = catalogue().judge(row, &review, resource, &scope, now);
        let _ = serde_json::to_string(&evidence);
    }
    for b in &bad {
        let _ = format!("credential report line {}: {}", b.line, b.reason);
    }
});
