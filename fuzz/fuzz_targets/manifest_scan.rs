//! Manifest decoding to workloads, and judging: what `compliance scan
//! --k8s-manifests` does with each file (`compliance_k8s::scan_text`, the
//! built-in checks, every check in scope).
//!
//! Any bytes: no panic, no stack overflow, no hang, memory bounded. Text
//! that opens like JSON is also read as a `.json` file (serde_json's path).
#![no_main]

use std::sync::LazyLock;

use compliance_core::Scope;
use compliance_k8s::{CheckConfig, scan_text};
use libfuzzer_sys::fuzz_target;

static CONFIG: LazyLock<CheckConfig> = LazyLock::new(CheckConfig::default);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scope = Scope::all();
    let collection = scan_text(&text, "fuzz.yaml", &CONFIG, &scope);
    // Reports serialise evidence and gaps: that must hold for any input.
    let _ = serde_json::to_string(&collection.evidence);
    let _ = serde_json::to_string(&collection.gaps);
    if text.trim_start().starts_with(['{', '[']) {
        let collection = scan_text(&text, "fuzz.json", &CONFIG, &scope);
        let _ = serde_json::to_string(&collection.evidence);
    }
});
