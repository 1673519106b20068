//! Terraform plans (`terraform show -json`): planned values, with the
//! configuration's references to link a bucket to its settings.

use std::collections::{BTreeMap, HashMap};

use compliance_core::{Collection, Gap, GapKind, Scope};
use serde_json::Value;

use super::{DeclaredBucket, Unknown, judge};
use crate::s3::{Encryption, Logging, PublicAccessBlock, Versioning};

// ---- plans (terraform show -json) ----

fn plan_resources<'a>(module: &'a Value, out: &mut Vec<&'a Value>) {
    out.extend(module["resources"].as_array().into_iter().flatten());
    for child in module["child_modules"].as_array().into_iter().flatten() {
        plan_resources(child, out);
    }
}

/// `(address → references of its bucket argument)`, from the plan's configuration.
fn bucket_references(module: &Value, prefix: &str, out: &mut HashMap<String, Vec<String>>) {
    for r in module["resources"].as_array().into_iter().flatten() {
        let (Some(address), Some(refs)) = (r["address"].as_str(), r["expressions"]["bucket"]["references"].as_array())
        else {
            continue;
        };
        let refs = refs.iter().filter_map(Value::as_str).map(|s| format!("{prefix}{s}")).collect();
        out.insert(format!("{prefix}{address}"), refs);
    }
    for (name, call) in module["module_calls"].as_object().into_iter().flatten() {
        bucket_references(&call["module"], &format!("{prefix}module.{name}."), out);
    }
}

fn first<'a>(value: &'a Value, key: &str) -> &'a Value {
    match &value[key] {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

fn plan_encryption(rule: &Value) -> Option<Encryption> {
    let default = first(rule, "apply_server_side_encryption_by_default");
    Some(Encryption {
        algorithm: default["sse_algorithm"].as_str()?.to_owned(),
        kms_key_id: default["kms_master_key_id"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        bucket_key_enabled: rule["bucket_key_enabled"].as_bool(),
    })
}

/// Judges a plan in Terraform's JSON format (`terraform show -json PLAN`):
/// the planned values, linked to their bucket through the configuration's
/// references when the bucket's name is only known after apply.
pub fn scan_plan_text(text: &str, source_name: &str, scope: &Scope) -> Collection {
    let mut collection = Collection::default();
    let plan: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            collection.gaps.push(Gap::source(
                format!("{source_name}:{}", e.line()),
                GapKind::Unreadable,
                format!("not a Terraform plan in JSON: {e}"),
            ));
            return collection;
        }
    };
    if plan["format_version"].as_str().is_none() || !plan["planned_values"].is_object() {
        collection.gaps.push(Gap::source(
            source_name,
            GapKind::Unreadable,
            "not a Terraform plan in JSON: no format_version or planned_values (use `terraform show -json PLAN`)",
        ));
        return collection;
    }
    let mut resources = Vec::new();
    plan_resources(&plan["planned_values"]["root_module"], &mut resources);
    let mut references = HashMap::new();
    bucket_references(&plan["configuration"]["root_module"], "", &mut references);

    let mut buckets: BTreeMap<String, DeclaredBucket> = BTreeMap::new();
    for r in resources.iter().filter(|r| r["type"] == "aws_s3_bucket") {
        let address = r["address"].as_str().unwrap_or_default().to_owned();
        let values = &r["values"];
        let mut declared = DeclaredBucket {
            address: address.clone(),
            name: values["bucket"].as_str().map(str::to_owned),
            file: source_name.to_owned(),
            ..DeclaredBucket::default()
        };
        if let Some(v) = values["versioning"].as_array().and_then(|v| v.first()) {
            let on = v["enabled"].as_bool() == Some(true);
            let mfa = v["mfa_delete"].as_bool().map(|m| if m { "Enabled" } else { "Disabled" }.to_owned());
            declared.versioning = Some(Ok(Versioning { status: on.then(|| "Enabled".into()), mfa_delete: mfa }));
        }
        let sse = first(values, "server_side_encryption_configuration");
        declared.encryption = plan_encryption(first(sse, "rule")).map(Ok);
        let logging = first(values, "logging");
        declared.logging = logging["target_bucket"].as_str().map(|t| {
            Ok(Logging {
                target_bucket: t.to_owned(),
                target_prefix: logging["target_prefix"].as_str().unwrap_or_default().to_owned(),
            })
        });
        declared.policy = values["policy"].as_str().filter(|p| !p.is_empty()).map(|p| Ok(p.to_owned()));
        buckets.insert(address, declared);
    }
    for r in resources.iter().filter(|r| r["type"].as_str().is_some_and(|t| t.starts_with("aws_s3_bucket_"))) {
        let address = r["address"].as_str().unwrap_or_default();
        let values = &r["values"];
        // Module-local references name `aws_s3_bucket.x` (or `.id`); the bucket's address carries the module prefix.
        let module_prefix = address.rfind("aws_s3_bucket_").map_or("", |i| &address[..i]);
        let by_reference = references.get(address).into_iter().flatten().find_map(|reference| {
            let base = reference.strip_suffix(".id").or_else(|| reference.strip_suffix(".bucket")).unwrap_or(reference);
            buckets.contains_key(base).then(|| base.to_owned())
        });
        let by_name = values["bucket"].as_str().and_then(|name| {
            buckets
                .iter()
                .find(|(a, b)| a.starts_with(module_prefix) && b.name.as_deref() == Some(name))
                .map(|(a, _)| a.clone())
        });
        let Some(declared) = by_reference.or(by_name).and_then(|a| buckets.get_mut(&a)) else { continue };
        match r["type"].as_str().unwrap_or_default() {
            "aws_s3_bucket_public_access_block" => {
                let on = |k: &str| values[k].as_bool() == Some(true);
                declared.public_access_block = Some(Ok(PublicAccessBlock {
                    block_public_acls: on("block_public_acls"),
                    ignore_public_acls: on("ignore_public_acls"),
                    block_public_policy: on("block_public_policy"),
                    restrict_public_buckets: on("restrict_public_buckets"),
                }));
            }
            "aws_s3_bucket_versioning" => {
                let v = first(values, "versioning_configuration");
                declared.versioning = Some(Ok(Versioning {
                    status: v["status"].as_str().filter(|s| *s != "Disabled").map(str::to_owned),
                    mfa_delete: v["mfa_delete"].as_str().map(str::to_owned),
                }));
            }
            "aws_s3_bucket_server_side_encryption_configuration" => {
                declared.encryption = plan_encryption(first(values, "rule")).map(Ok);
            }
            "aws_s3_bucket_logging" => {
                declared.logging = values["target_bucket"].as_str().map(|t| {
                    Ok(Logging {
                        target_bucket: t.to_owned(),
                        target_prefix: values["target_prefix"].as_str().unwrap_or_default().to_owned(),
                    })
                });
            }
            "aws_s3_bucket_policy" => {
                declared.policy = Some(
                    values["policy"].as_str().map(str::to_owned).ok_or_else(|| Unknown(format!("{address}.policy"))),
                );
            }
            _ => {}
        }
    }
    for declared in buckets.values() {
        collection.evidence.extend(judge(declared, scope, "terraform"));
    }
    collection
}
