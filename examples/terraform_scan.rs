//! The S3 bucket checks on Terraform before it is applied: a module's
//! `.tf` files (split resources and inline blocks) and a plan in JSON.
//!
//! ```text
//! cargo run -p compliance-examples --example terraform_scan
//! ```

use compliance_rs::aws::terraform::scan_paths;
use compliance_rs::{Scope, Status};

fn main() {
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform");
    let collection = scan_paths(&[module], &Scope::all());
    for gap in &collection.gaps {
        println!("gap: {}: {}", gap.source.as_deref().unwrap_or("-"), gap.reason);
    }
    for e in &collection.evidence {
        let at = format!("{}:{}", e.resource.file.as_deref().unwrap_or("?"), e.resource.line.unwrap_or(0));
        let mark = match e.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            _ => "ERROR",
        };
        println!("{mark:5} {:<28} {:<22} {at}  {}", e.check_id, e.resource.name, e.message);
    }
}
