//! The YAML reader (`compliance_core::yaml`): every manifest, waiver file,
//! monitor configuration and Rego metadata block goes through it.
//!
//! Any bytes (non-UTF-8 is replaced, as a lossy reader would): no panic, no
//! stack overflow (nesting is limited), no hang, memory bounded (aliases
//! are limited in nodes and in bytes).
#![no_main]

use compliance_core::yaml::parse_documents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let stream = parse_documents(&text, "fuzz.yaml");
    for doc in &stream.documents {
        // Documented: lines are 1-based (a scanner points at `file:line`).
        assert!(doc.line >= 1, "document lines are 1-based");
        // Walk the value the way reports do (recursively): it must stay
        // within the nesting the reader allows.
        let _ = serde_json::to_string(&doc.value);
    }
    // Errors and warnings are shown to people: formatting them must not panic.
    let _ = stream.error.as_ref().map(ToString::to_string);
});
