//! Terraform plans in JSON (`terraform show -json PLAN`):
//! `compliance_aws::terraform::scan_plan_text`, the S3 checks on planned
//! values linked through the configuration's references.
//!
//! Any bytes: no panic, no hang, memory bounded.
#![no_main]

use compliance_aws::terraform::scan_plan_text;
use compliance_core::Scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let collection = scan_plan_text(&text, "plan.json", &Scope::all());
    let _ = serde_json::to_string(&collection.evidence);
    let _ = serde_json::to_string(&collection.gaps);
});
