//! Providers built from configuration, the way the command line and the
//! monitor build them: one section per provider, handed to the registry of
//! every provider compiled in. A section of a provider this build lacks, or
//! a field that is wrong, is an error naming it.
//!
//! ```text
//! cargo run -p compliance-examples --example providers
//! ```

use compliance_rs::{Scope, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = compliance_rs::registry();
    for provider in registry.providers() {
        println!("provider {}: {} built-in checks", provider.name(), provider.checks().len());
    }
    let root = env!("CARGO_MANIFEST_DIR");
    // One section per provider, keyed by its name; here as JSON.
    let sections: compliance_rs::provider::Sections = serde_json::from_value(serde_json::json!({
        "k8s": { "manifests": [format!("{root}/manifests")], "rego_policies": [format!("{root}/policies")] },
        "aws": { "terraform": [format!("{root}/terraform")] },
    }))?;
    let wiring = registry.build(&sections).await?;
    println!(
        "{} collectors, {} configured checks (Rego), {} gaps",
        wiring.collectors.len(),
        wiring.checks.len(),
        wiring.gaps.len()
    );
    let run = wiring.engine().run(&Scope::all()).await;
    let failing = run.evidence.iter().filter(|e| e.status == Status::Fail).count();
    println!("{} evidence, {failing} failing, {} gaps", run.evidence.len(), run.gaps.len());
    assert!(run.gaps.is_empty());

    // A wrong field is an error that names it.
    let bad: compliance_rs::provider::Sections =
        serde_json::from_value(serde_json::json!({ "k8s": { "manifest": ["typo"] } }))?;
    let error = registry.build(&bad).await.err().map(|e| e.to_string()).unwrap_or_default();
    println!("a typo: {error}");
    assert!(error.starts_with("k8s.manifest: unknown field `manifest`"), "{error}");
    Ok(())
}
