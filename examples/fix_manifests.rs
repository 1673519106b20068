//! Plan fixes for a manifest and write the fixed copy to a new file; the
//! input is never overwritten.
//!
//! ```text
//! cargo run -p compliance-examples --example fix_manifests -- examples/manifests/legacy-worker.yaml
//! ```

use compliance_rs::Scope;
use compliance_rs::k8s::{FixDefaults, fix_manifest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/legacy-worker.yaml");
    let input = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or(default);
    let text = std::fs::read_to_string(&input)?;
    let fix = fix_manifest(
        &text,
        &input.display().to_string(),
        &Scope::all(),
        &FixDefaults::default().with_memory_limit("256Mi"),
    )?;
    for (object, changes) in &fix.changes {
        println!("{object}");
        for c in changes {
            println!("  {}: {} -> {}", c.target, c.before, c.after);
        }
    }
    let output = std::env::temp_dir().join("compliance-fixed.yaml");
    std::fs::write(&output, &fix.text)?;
    println!("fixed copy: {} ({} objects still failing a fixable check)", output.display(), fix.still_failing.len());
    Ok(())
}
