//! A Rego policy file: its `# METADATA` block (YAML in comments: title,
//! check id, severity, controls, kinds) and its package line, then
//! compilation by regorus (`RegoPolicy::from_source`, what `--rego-policy`
//! loads).
//!
//! Any text: no panic, no hang, memory bounded; a policy that loads has a
//! valid check id and its error messages can be formatted.
#![no_main]

use compliance_k8s::{RegoConfig, RegoPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match RegoPolicy::from_source(&text, "fuzz.rego", &RegoConfig::default()) {
        Ok(policy) => {
            let _ = policy.check().id.to_string();
            let _ = policy.controls().len();
            let _ = policy.judges("v1", "Pod");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
