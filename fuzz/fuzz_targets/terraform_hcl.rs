//! Terraform source (`.tf`): `compliance_aws::terraform::scan_module_text`,
//! the S3 checks on a module. A NUL byte splits the input into files of one
//! module (a bucket and the resources that configure it may be in different
//! files).
//!
//! Any text: no panic, no stack overflow, no hang, memory bounded.
#![no_main]

use compliance_aws::terraform::scan_module_text;
use compliance_core::Scope;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["main.tf", "logs.tf", "policy.tf", "more.tf"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let files: Vec<(&str, &str)> = NAMES.iter().copied().zip(text.splitn(NAMES.len(), '\0')).collect();
    let collection = scan_module_text(&files, &Scope::all());
    let _ = serde_json::to_string(&collection.evidence);
    let _ = serde_json::to_string(&collection.gaps);
});
