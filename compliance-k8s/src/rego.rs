//! Rego policies (feature `rego`), evaluated with regorus: each policy file
//! is one check, judged on admission requests and on manifests wrapped as
//! admission requests.
//!
//! A policy's `deny` rule (a set of messages, as in OPA/Gatekeeper and the
//! blog post the project grew from) decides: no message is a pass, any message is a failure
//! with the messages. Metadata comes from an OPA `# METADATA` block; without
//! one the check is `rego.<package>`, severity medium, for workload kinds.
//!
//! ```
//! use compliance_core::Status;
//! use compliance_k8s::{RegoConfig, RegoPolicy};
//! let policy = RegoPolicy::from_source(r#"
//! ## METADATA
//! ## title: Images come from our registry
//! ## custom:
//! ##   check_id: acme.image.registry
//! ##   severity: high
//! ##   controls: {soc2: [CC8.1]}
//! package acme.images
//!
//! deny contains msg if {
//!   some c in input.request.object.spec.containers
//!   not startswith(c.image, "registry.acme.example/")
//!   msg := sprintf("container %v uses %v", [c.name, c.image])
//! }
//! "#, "images.rego", &RegoConfig::default())?;
//! assert_eq!(policy.check().id.as_str(), "acme.image.registry");
//! let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
//!     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}});
//! let verdict = policy.judge(&compliance_k8s::admission_input(&pod, None));
//! assert_eq!(verdict.status, Status::Fail);
//! assert_eq!(verdict.message, "container web uses nginx:1.27");
//! # Ok::<(), compliance_k8s::RegoError>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use compliance_core::{Check, CheckId, Evidence, ResourceRef, Scope, Severity, Status, Verdict};
use regorus::utils::limits::{
    ExecutionTimerConfig, fallback_execution_timer_config, set_fallback_execution_timer_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::workload::WorkloadKind;

/// How policies are read and bounded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RegoConfig {
    /// Longest time one evaluation may take; a policy that runs longer gives
    /// `error` evidence. regorus applies this limit to compiled policies
    /// process-wide: the first configuration loaded sets it.
    #[serde(with = "crate::serde_millis")]
    pub eval_limit: Duration,
    /// The syntax of the policy text.
    pub syntax: RegoSyntax,
}

impl Default for RegoConfig {
    fn default() -> Self {
        Self { eval_limit: Duration::from_secs(1), syntax: RegoSyntax::Auto }
    }
}

impl RegoConfig {
    /// Sets the evaluation limit.
    pub fn with_eval_limit(mut self, limit: Duration) -> Self {
        self.eval_limit = limit;
        self
    }

    /// Sets the syntax.
    pub fn with_syntax(mut self, syntax: RegoSyntax) -> Self {
        self.syntax = syntax;
        self
    }
}

/// Rego syntax versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RegoSyntax {
    /// Rego v1 (OPA 1.x: `deny contains msg if { … }`), else v0.
    Auto,
    /// Rego v0 (`deny[msg] { … }`). `in` is a keyword without
    /// `import future.keywords.in`, so that policies written for OPA 1.x in
    /// v0 compatibility mode, such as the blog post's policy, run as written.
    V0,
    /// Rego v1.
    V1,
}

/// A policy that could not be loaded. The others still load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegoError {
    /// The file cannot be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The policy does not compile, or its metadata is invalid.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: String,
        /// The line at fault, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// OPA's metadata annotation, the part we read.
#[derive(Debug, Default, Deserialize)]
struct Annotation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    custom: Custom,
}

#[derive(Debug, Default, Deserialize)]
struct Custom {
    #[serde(default)]
    check_id: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    controls: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    remediation: Option<String>,
}

/// Which objects a policy judges.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kinds {
    /// Kinds with a pod template, like the built-in checks.
    Workloads,
    /// Every kind but `Secret`.
    All,
    /// Exactly these.
    Named(Vec<String>),
}

/// One compiled policy: a check.
#[derive(Clone, Debug)]
pub struct RegoPolicy {
    check: Check,
    controls: BTreeMap<String, Vec<String>>,
    kinds: Kinds,
    source: String,
    entrypoint: String,
    syntax: RegoSyntax,
    compiled: regorus::CompiledPolicy,
}

static TIMER: Once = Once::new();

fn parse_error(path: &str, error: &anyhow::Error) -> RegoError {
    // regorus formats errors as "--> file:line:col", the source line, a caret, "error: message".
    let text = error.to_string();
    let line =
        text.split("--> ").nth(1).and_then(|rest| rest.split(':').nth(1)).and_then(|l| l.trim().parse::<usize>().ok());
    let message = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.trim().to_owned(), str::to_owned);
    RegoError::Invalid { path: path.to_owned(), line, message }
}

/// Deepest bracket nesting a policy may have. regorus 0.14 parses every `[`
/// and `{` twice (first as a comprehension, then as a collection), so its
/// parse time doubles with each level: 24 levels took 10 s, 26 took 50 s
/// (found by the `rego_metadata` fuzz target). Real policies nest a handful.
pub const MAX_REGO_NESTING: usize = 16;

/// The line where bracket nesting first exceeds [`MAX_REGO_NESTING`], outside
/// strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => {
                            line += usize::from(c == '\n');
                            break;
                        }
                        _ => {}
                    }
                }
            }
            '`' => {
                for c in chars.by_ref() {
                    match c {
                        '`' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '[' | '{' | '(' => {
                depth += 1;
                if depth > MAX_REGO_NESTING {
                    return Some(line);
                }
            }
            ']' | '}' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The `# METADATA` comment block before the package, if any: its YAML text
/// and the line it starts on.
fn metadata_block(text: &str) -> Option<(String, usize)> {
    let mut lines = text.lines().enumerate();
    let (start, _) = lines.by_ref().find(|(_, l)| l.trim() == "# METADATA")?;
    let yaml: Vec<&str> =
        lines.map_while(|(_, l)| l.trim_start().strip_prefix('#')).map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
    Some((yaml.join("\n"), start + 1))
}

fn package_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.trim().strip_prefix("package ")).map(|p| p.trim().to_owned())
}

/// `rego.<package>` with the characters check ids do not allow replaced.
fn default_check_id(package: &str) -> String {
    let cleaned: String = package
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' })
        .collect();
    format!("rego.{cleaned}")
}

fn compile(text: &str, path: &str, v0: bool) -> Result<regorus::CompiledPolicy, anyhow::Error> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(v0);
    let text = if v0 && !text.contains("future.keywords") {
        // On the package line, so line numbers in errors stay those of the file.
        match package_of(text) {
            Some(p) => text.replacen(&format!("package {p}"), &format!("package {p} import future.keywords.in"), 1),
            None => text.to_owned(),
        }
    } else {
        text.to_owned()
    };
    let package = engine.add_policy(path.to_owned(), text)?;
    engine.compile_with_entrypoint(&format!("{package}.deny").into())
}

impl RegoPolicy {
    /// Compiles one policy; `path` names it in errors and evidence.
    pub fn from_source(text: &str, path: &str, config: &RegoConfig) -> Result<Self, RegoError> {
        TIMER.call_once(|| {
            if fallback_execution_timer_config().is_none() {
                let limit = ExecutionTimerConfig { limit: config.eval_limit, check_interval: NonZeroU32::MIN };
                set_fallback_execution_timer_config(Some(limit));
            }
        });
        let invalid =
            |line: Option<usize>, message: String| RegoError::Invalid { path: path.to_owned(), line, message };
        let package = package_of(text).ok_or_else(|| invalid(None, "no `package` line".into()))?;
        if let Some(line) = too_deep(text) {
            return Err(invalid(
                Some(line),
                format!("brackets nest deeper than {MAX_REGO_NESTING} levels; the Rego parser would take too long"),
            ));
        }
        let (annotation, metadata_line) = match metadata_block(text) {
            Some((yaml, line)) => {
                let stream = compliance_core::yaml::parse_documents(&yaml, path);
                if let Some(e) = stream.error {
                    return Err(invalid(Some(line), format!("METADATA: {e}")));
                }
                let value = stream.documents.into_iter().next().map(|d| d.value).unwrap_or(Value::Null);
                let annotation: Annotation =
                    serde_json::from_value(value).map_err(|e| invalid(Some(line), format!("METADATA: {e}")))?;
                (annotation, Some(line))
            }
            None => (Annotation::default(), None),
        };
        let (compiled, syntax) = match config.syntax {
            RegoSyntax::V0 => (compile(text, path, true).map_err(|e| parse_error(path, &e))?, RegoSyntax::V0),
            RegoSyntax::V1 => (compile(text, path, false).map_err(|e| parse_error(path, &e))?, RegoSyntax::V1),
            RegoSyntax::Auto => match compile(text, path, false) {
                Ok(c) => (c, RegoSyntax::V1),
                // A v0 policy fails as v1 on its first rule head; anything else is a v1 policy's own error.
                Err(e) if e.to_string().contains("keyword is required") => {
                    (compile(text, path, true).map_err(|e| parse_error(path, &e))?, RegoSyntax::V0)
                }
                Err(e) => return Err(parse_error(path, &e)),
            },
        };
        let custom = annotation.custom;
        let id = custom.check_id.unwrap_or_else(|| default_check_id(&package));
        let severity = match custom.severity {
            Some(s) => s.parse::<Severity>().map_err(|e| invalid(metadata_line, format!("METADATA: {e}")))?,
            None => Severity::Medium,
        };
        let title = annotation.title.unwrap_or_else(|| format!("Rego policy {package}"));
        let mut check = Check::new(&id, title, severity, "KubernetesObject")
            .map_err(|e| invalid(metadata_line, format!("METADATA: {e}")))?
            .with_reference(format!("Rego policy {path}"));
        if let Some(d) = annotation.description {
            check = check.with_rationale(d);
        }
        if let Some(r) = custom.remediation {
            check = check.with_remediation(r);
        }
        let kinds = match custom.kinds.as_slice() {
            [] => Kinds::Workloads,
            [all] if all == "*" => Kinds::All,
            named => Kinds::Named(named.to_vec()),
        };
        Ok(Self {
            check,
            controls: custom.controls,
            kinds,
            source: path.to_owned(),
            entrypoint: format!("data.{package}.deny"),
            syntax,
            compiled,
        })
    }

    /// The check this policy is.
    pub fn check(&self) -> &Check {
        &self.check
    }

    /// Controls it supports, per framework id (`soc2: [CC6.1]`).
    pub fn controls(&self) -> &BTreeMap<String, Vec<String>> {
        &self.controls
    }

    /// The file it came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax it compiled as.
    pub fn syntax(&self) -> RegoSyntax {
        self.syntax
    }

    /// Whether it judges objects of this kind.
    pub fn judges(&self, api_version: &str, kind: &str) -> bool {
        match &self.kinds {
            Kinds::Workloads => WorkloadKind::from_type(api_version, kind).is_some(),
            Kinds::All => kind != "Secret",
            Kinds::Named(kinds) => kinds.iter().any(|k| k == kind),
        }
    }

    /// Evaluates the `deny` rule on an input (an `AdmissionReview`): pass
    /// without messages, fail with them, error when evaluation fails or
    /// runs past the limit.
    pub fn judge(&self, input: &Value) -> Verdict {
        self.judge_converted(regorus::Value::from(input.clone()))
    }

    /// [`RegoPolicy::judge`] on an input already converted (regorus values
    /// share their contents, so one conversion serves every policy).
    fn judge_converted(&self, input: regorus::Value) -> Verdict {
        let value = match self.compiled.eval_with_input(input) {
            Ok(v) => v,
            Err(e) => {
                warn!(policy = %self.source, "Rego evaluation failed: {e}");
                return Verdict::new(
                    Status::Error,
                    format!("policy {} could not be evaluated: {e}", self.source),
                    json!({ "policy": self.source }),
                );
            }
        };
        let messages: Vec<String> = match &value {
            regorus::Value::Set(items) => items.iter().map(message_text).collect(),
            regorus::Value::Array(items) => items.iter().map(message_text).collect(),
            regorus::Value::Undefined | regorus::Value::Null => Vec::new(),
            other => vec![message_text(other)],
        };
        let details = json!({ "policy": self.source, "rule": self.entrypoint, "messages": messages });
        if messages.is_empty() {
            Verdict::new(Status::Pass, format!("{} denies nothing", self.entrypoint), details)
        } else {
            Verdict::new(Status::Fail, messages.join("; "), details)
        }
    }
}

fn message_text(value: &regorus::Value) -> String {
    match value {
        regorus::Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// A set of policies, each a check; load them once, evaluate many inputs.
#[derive(Clone, Debug, Default)]
pub struct RegoPolicies {
    policies: Vec<Arc<RegoPolicy>>,
}

impl PartialEq for RegoPolicies {
    fn eq(&self, other: &Self) -> bool {
        self.policies.len() == other.policies.len()
            && self.policies.iter().zip(&other.policies).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for RegoPolicies {}

impl RegoPolicies {
    /// Loads `.rego` files from files and folders (recursively, in name
    /// order; `_test.rego` files are skipped, as OPA does). Returns the
    /// policies that compiled and an error for each one that did not.
    pub fn load<P: AsRef<Path>>(paths: &[P], config: &RegoConfig) -> (Self, Vec<RegoError>) {
        let mut unreadable = Vec::new();
        let files = compliance_core::files::files_under(paths, is_policy_file, &mut unreadable);
        let mut errors: Vec<RegoError> = unreadable
            .into_iter()
            .map(|g| RegoError::Read { path: g.source.unwrap_or_default(), message: g.reason })
            .collect();
        let mut set = Self::default();
        for file in files {
            let name = file.display().to_string();
            let loaded = std::fs::read_to_string(&file)
                .map_err(|e| RegoError::Read { path: name.clone(), message: format!("cannot read: {e}") })
                .and_then(|text| RegoPolicy::from_source(&text, &name, config));
            match loaded.and_then(|p| set.push(p)) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            }
        }
        (set, errors)
    }

    /// Adds a policy; its check id must be new.
    pub fn push(&mut self, policy: RegoPolicy) -> Result<(), RegoError> {
        if let Some(other) = self.policies.iter().find(|p| p.check.id == policy.check.id) {
            return Err(RegoError::Invalid {
                path: policy.source.clone(),
                line: None,
                message: format!("check id {} is already used by {}", policy.check.id, other.source),
            });
        }
        debug!(policy = %policy.source, check = %policy.check.id, "Rego policy loaded");
        self.policies.push(Arc::new(policy));
        Ok(())
    }

    /// The policies.
    pub fn policies(&self) -> &[Arc<RegoPolicy>] {
        &self.policies
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Their checks.
    pub fn checks(&self) -> Vec<Check> {
        self.policies.iter().map(|p| p.check.clone()).collect()
    }

    /// True when some policy judges objects of this type.
    pub fn judges(&self, api_version: &str, kind: &str) -> bool {
        self.policies.iter().any(|p| p.judges(api_version, kind))
    }

    /// Judges one object (as an admission input) with every policy in
    /// `scope` that judges its kind: one evidence per policy.
    pub fn evaluate(&self, object: &Value, input: &Value, resource: &Arc<ResourceRef>, scope: &Scope) -> Vec<Evidence> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let wanted: Vec<&Arc<RegoPolicy>> =
            self.policies.iter().filter(|p| scope.wants(&p.check.id) && p.judges(api_version, kind)).collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let input = regorus::Value::from(input.clone());
        let now = chrono::Utc::now();
        wanted
            .into_iter()
            .map(|p| p.judge_converted(input.clone()).into_evidence(&p.check, resource.clone(), now))
            .collect()
    }

    /// The check ids, for validation of framework files.
    pub fn check_ids(&self) -> HashSet<CheckId> {
        self.policies.iter().map(|p| p.check.id.clone()).collect()
    }
}

/// `.rego` files, except OPA's `_test.rego` test files.
fn is_policy_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rego")
        && !path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("_test.rego"))
}
