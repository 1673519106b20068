//! Fixed copies of manifest files: every fixable failure of a file fixed in
//! one new YAML stream, each object re-judged.

use compliance_core::{Change, CheckId, Scope, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::patch::{FixDefaults, fixable, merge_patch, plan_patch, wrap_for_object};
use crate::config::CheckConfig;
use crate::rules::evaluate;
use crate::workload::Workload;

/// What fixing one manifest file produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestFix {
    /// The fixed YAML stream (every document, fixed or not).
    pub text: String,
    /// Per changed object (`file#doc/...` id), the changes made.
    pub changes: Vec<(String, Vec<Change>)>,
    /// Objects whose fixes still left a check failing, with the check.
    pub still_failing: Vec<(String, CheckId)>,
}

/// Fixes the failures of the fixable checks in `scope` in one manifest text
/// and returns the fixed stream, to be written to a new file. Comments are
/// not kept, and keys come out in alphabetical order.
///
/// The emitted text is read back the way Kubernetes reads it before
/// anything is claimed: a document whose YAML would not read back as the
/// same values (a string such as `"0o17"` or `"1_000"` that a YAML 1.1
/// reader takes for a number) is written as JSON, which YAML reads
/// exactly, and every fixed object is re-judged from the text read back.
pub fn fix_manifest(
    text: &str,
    source_name: &str,
    scope: &Scope,
    defaults: &FixDefaults,
) -> Result<ManifestFix, compliance_core::Error> {
    let stream = compliance_core::yaml::parse_documents(text, source_name);
    if let Some(error) = stream.error {
        return Err(error);
    }
    let config = CheckConfig::default();
    let mut out = ManifestFix { text: String::new(), changes: Vec::new(), still_failing: Vec::new() };
    let mut documents = Vec::with_capacity(stream.documents.len());
    // (document index, object id, resource) of every workload, to re-judge.
    let mut judged = Vec::new();
    for doc in stream.documents {
        let mut value = doc.value;
        if let Ok(Some(workload)) = Workload::from_object(value.clone()) {
            let id = format!("{source_name}#{}/{}/{}", doc.index, workload.kind.as_str(), workload.name);
            let resource = std::sync::Arc::new(compliance_core::ResourceRef::new(
                "k8s",
                workload.kind.as_str(),
                id.clone(),
                workload.name.clone(),
            ));
            let mut changes = Vec::new();
            let mut current = workload;
            for e in evaluate(&current, std::sync::Arc::clone(&resource), &config, scope) {
                if e.status != Status::Fail || !fixable(&e.check_id) {
                    continue;
                }
                let operation = format!("write {source_name} (fixed copy)");
                if let Some((patch, c)) = plan_patch(&current, &e.check_id, defaults, &operation) {
                    merge_patch(&mut value, &wrap_for_object(&current, patch));
                    changes.extend(c);
                    if let Ok(Some(next)) = Workload::from_object(value.clone()) {
                        current = next;
                    }
                }
            }
            if !changes.is_empty() {
                out.changes.push((id.clone(), changes));
            }
            judged.push((documents.len(), id, resource));
        }
        documents.push(value);
    }
    out.text = to_yaml_stream(&documents);
    // Judge what was written, not what was meant to be written.
    let written = compliance_core::yaml::parse_documents(&out.text, source_name);
    if let Some(error) = written.error {
        return Err(error);
    }
    let read_back: Vec<Value> = written.documents.into_iter().map(|d| d.value).collect();
    if read_back != documents {
        return Err(compliance_core::Error::remediation(
            "k8s-manifests",
            format!("{source_name}: the fixed copy does not read back as written; nothing is claimed"),
        ));
    }
    for (index, id, resource) in judged {
        let Ok(Some(workload)) = Workload::from_object(read_back[index].clone()) else {
            return Err(compliance_core::Error::remediation(
                "k8s-manifests",
                format!("{id}: the fixed object no longer reads as a workload; nothing is claimed"),
            ));
        };
        for e in evaluate(&workload, resource, &config, scope) {
            if e.status == Status::Fail && fixable(&e.check_id) {
                out.still_failing.push((id.clone(), e.check_id));
            }
        }
    }
    Ok(out)
}

fn to_yaml(value: &Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(to_yaml).collect()),
        Value::Object(map) => Yaml::Hash(map.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect()),
    }
}

/// Each document as YAML when it reads back as the same values, else as
/// JSON (a YAML reader takes JSON as it is; every string stays quoted).
fn to_yaml_stream(documents: &[Value]) -> String {
    let mut text = String::new();
    for doc in documents {
        let mut one = String::new();
        let mut emitter = yaml_rust2::YamlEmitter::new(&mut one);
        let reads_back = emitter.dump(&to_yaml(doc)).is_ok() && {
            let back = compliance_core::yaml::parse_documents(&one, "fixed copy");
            back.error.is_none() && back.documents.len() == 1 && back.documents[0].value == *doc
        };
        if reads_back {
            text.push_str(&one);
        } else {
            text.push_str("---\n");
            text.push_str(&serde_json::to_string_pretty(doc).unwrap_or_default());
        }
        text.push('\n');
    }
    text
}
