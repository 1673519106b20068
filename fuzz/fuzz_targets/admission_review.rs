//! AdmissionReview bodies, as the webhook reads them: the request body
//! through `serde_json::from_slice` (what `Webhook::handle` does first; a
//! body that is not JSON stops there), then `review_with_evidence` with the
//! built-in checks and the example Rego policy (examples/policies), as the
//! README runs the webhook.
//!
//! Any bytes: no panic, no hang, memory bounded, and the answer is an
//! AdmissionReview whose `allowed` is a boolean.
#![no_main]

use std::sync::LazyLock;

use compliance_k8s::{AdmissionConfig, CheckConfig, RegoConfig, RegoPolicies, RegoPolicy, review_with_evidence};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const POLICY: &str = include_str!("../../examples/policies/soc2-workloads.rego");

static CONFIG: LazyLock<AdmissionConfig> = LazyLock::new(|| {
    let mut policies = RegoPolicies::default();
    // The example policy compiles (CI runs it): if it stopped compiling,
    // fuzzing without it would silently cover less, so stop here.
    let policy = RegoPolicy::from_source(POLICY, "soc2-workloads.rego", &RegoConfig::default())
        .unwrap_or_else(|e| panic!("the example policy does not compile: {e}"));
    policies.push(policy).unwrap_or_else(|e| panic!("{e}"));
    AdmissionConfig::default().with_checks(CheckConfig::default().with_policies(policies))
});

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match review_with_evidence(&body, &CONFIG) {
        Ok((answer, evidence)) => {
            assert!(answer["response"]["allowed"].is_boolean(), "an answer says allowed or not: {answer}");
            // The webhook serialises the answer and counts the evidence.
            let _ = serde_json::to_vec(&answer);
            let _ = serde_json::to_string(&evidence);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
