//! Frameworks as data: the built-in SOC 2, ISO/IEC 27001:2022 and PCI DSS
//! v4.0 mappings, and frameworks users load from their own files (same
//! format).
//!
//! ```yaml
//! id: internal
//! name: Internal security baseline
//! version: "2026.1"
//! controls:
//!   - id: IB-1.2                 # letters, digits, '.', '-'; ends with a digit
//!     title: Containers do not run as root
//!     checks: [k8s.pod.run_as_non_root, k8s.pod.run_as_user]
//! unmapped:                      # built-in checks with no fitting control, and why
//!   k8s.container.cpu_limit: The baseline says nothing about capacity.
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use compliance_core::provider::ControlMapping;
use compliance_core::{CheckId, Control, Framework, FrameworkDef, Gap, GapKind};
use serde::{Deserialize, Serialize};

use crate::ReportError;

const BUILTIN: [(&str, &str); 3] = [
    ("frameworks/soc2.yaml", include_str!("../frameworks/soc2.yaml")),
    ("frameworks/iso27001.yaml", include_str!("../frameworks/iso27001.yaml")),
    ("frameworks/pci-dss.yaml", include_str!("../frameworks/pci-dss.yaml")),
];

/// AWS Config managed rules and the controls each supports, with sources.
const CONFIG_RULES: (&str, &str) =
    ("frameworks/aws-config-rules.yaml", include_str!("../frameworks/aws-config-rules.yaml"));

/// The prefix of the checks that AWS Config rules are (the AWS provider's
/// `CONFIG_PREFIX` without its dot).
pub const CONFIG_RULE_PREFIX: &str = "aws.config";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRulesFile {
    #[serde(default)]
    #[allow(dead_code)] // provenance, read by people
    sources: Vec<String>,
    rules: Vec<ConfigRuleEntry>,
    /// Framework id -> control id -> title, for controls a framework file lacks.
    controls: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRuleEntry {
    identifier: String,
    name: String,
    service: String,
    #[serde(default)]
    soc2: Vec<String>,
    #[serde(default)]
    iso27001: Vec<String>,
    #[serde(default, rename = "pci-dss")]
    pci_dss: Vec<String>,
    source: BTreeMap<String, String>,
    #[serde(default)]
    note: String,
}

/// One AWS Config managed rule: its identifier (`Source.SourceIdentifier`),
/// its default name, the check its results are filed under, and the
/// controls it supports per framework, with where each mapping comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfigRuleMapping {
    /// `S3_BUCKET_SSL_REQUESTS_ONLY`.
    pub identifier: String,
    /// The rule's default name (`s3-bucket-ssl-requests-only`); copies are often renamed.
    pub name: String,
    /// The AWS service it judges.
    pub service: String,
    /// `aws.config.s3-bucket-ssl-requests-only`, whatever the rule's name.
    pub check: CheckId,
    /// Framework id -> control ids.
    pub controls: BTreeMap<String, Vec<String>>,
    /// Framework id -> a URL of the AWS page the ids come from, or `judgement`.
    pub source: BTreeMap<String, String>,
    /// Why, where it was a judgement.
    pub note: String,
}

fn config_rules_file() -> Result<ConfigRulesFile, ReportError> {
    let (name, text) = CONFIG_RULES;
    let bad = |message: String| ReportError::Format { path: name.to_owned(), message };
    let stream = compliance_core::yaml::parse_documents(text, name);
    if let Some(e) = stream.error {
        return Err(bad(e.to_string()));
    }
    let value = stream.documents.into_iter().next().map(|d| d.value).unwrap_or_default();
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// The AWS Config managed rules the built-in frameworks map, from
/// `frameworks/aws-config-rules.yaml`.
///
/// ```
/// let rules = compliance_report::aws_config_rules()?;
/// let ssl = rules.iter().find(|r| r.identifier == "S3_BUCKET_SSL_REQUESTS_ONLY").expect("mapped");
/// assert_eq!(ssl.check.as_str(), "aws.config.s3-bucket-ssl-requests-only");
/// assert!(ssl.controls["pci-dss"].contains(&"4.2.1".to_owned()));
/// # Ok::<(), compliance_report::ReportError>(())
/// ```
pub fn aws_config_rules() -> Result<Vec<ConfigRuleMapping>, ReportError> {
    let (name, _) = CONFIG_RULES;
    let file = config_rules_file()?;
    let mut seen = HashSet::new();
    file.rules
        .into_iter()
        .map(|r| {
            let bad = |message: String| ReportError::Format {
                path: name.to_owned(),
                message: format!("rule {}: {message}", r.identifier),
            };
            if !seen.insert(r.identifier.clone()) {
                return Err(bad("listed more than once".into()));
            }
            let check = CheckId::derived(CONFIG_RULE_PREFIX, &r.identifier).map_err(|e| bad(e.to_string()))?;
            let controls: BTreeMap<String, Vec<String>> =
                [("soc2", r.soc2), ("iso27001", r.iso27001), ("pci-dss", r.pci_dss)]
                    .into_iter()
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(f, c)| (f.to_owned(), c))
                    .collect();
            Ok(ConfigRuleMapping {
                identifier: r.identifier,
                name: r.name,
                service: r.service,
                check,
                controls,
                source: r.source,
                note: r.note,
            })
        })
        .collect()
}

/// Adds the AWS Config rules' controls to the built-in frameworks; a
/// control a framework file lacks is added with the title the rules file
/// gives it. An error names the rule and control that cannot be placed.
fn merge_config_rules(frameworks: &mut [(&'static str, MappedFramework)]) -> Result<(), ReportError> {
    let (name, _) = CONFIG_RULES;
    let titles = config_rules_file()?.controls;
    for rule in aws_config_rules()? {
        for (framework_id, controls) in &rule.controls {
            let Some((_, framework)) = frameworks.iter_mut().find(|(_, f)| f.framework.id == *framework_id) else {
                continue;
            };
            for control in controls {
                let bad = |message: String| ReportError::Format {
                    path: name.to_owned(),
                    message: format!("rule {}: {framework_id} {control}: {message}", rule.identifier),
                };
                if !framework.framework.controls.iter().any(|c| &c.id == control) {
                    let title = titles
                        .get(framework_id)
                        .and_then(|t| t.get(control))
                        .ok_or_else(|| bad("not in the framework file, and no title under `controls`".into()))?;
                    if !valid_control_id(control) {
                        return Err(bad("malformed control id".into()));
                    }
                    framework.framework.controls.push(Control::new(control.clone(), title.clone(), Vec::new()));
                }
                framework.map_check(rule.check.clone(), control)?;
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkFile {
    id: String,
    name: String,
    version: String,
    controls: Vec<ControlEntry>,
    #[serde(default)]
    unmapped: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlEntry {
    id: String,
    title: String,
    #[serde(default)]
    checks: Vec<String>,
}

/// A framework loaded from data, with the checks it says have no fitting
/// control (and why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MappedFramework {
    /// The framework.
    pub framework: FrameworkDef,
    /// Checks without a fitting control, with the reason.
    pub unmapped: BTreeMap<CheckId, String>,
}

impl Framework for MappedFramework {
    fn id(&self) -> &str {
        &self.framework.id
    }
    fn name(&self) -> &str {
        &self.framework.name
    }
    fn version(&self) -> &str {
        &self.framework.version
    }
    fn controls(&self) -> &[Control] {
        &self.framework.controls
    }
}

impl MappedFramework {
    /// Adds a check to one of its controls: how a check defined outside
    /// the built-in catalogue (a Rego policy) says which controls it
    /// supports. An unknown control is an error naming it.
    ///
    /// ```
    /// use compliance_core::Framework;
    /// let (_, mut soc2) = compliance_report::builtin_mappings().remove(0);
    /// soc2.map_check("rego.acme.images".parse()?, "CC8.1")?;
    /// assert!(soc2.controls_for(&"rego.acme.images".parse()?).iter().any(|c| c.id == "CC8.1"));
    /// assert!(soc2.map_check("rego.acme.images".parse()?, "CC99.1").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_check(&mut self, check: CheckId, control: &str) -> Result<(), ReportError> {
        let framework = &mut self.framework;
        let Some(entry) = framework.controls.iter_mut().find(|c| c.id == control) else {
            return Err(ReportError::Format {
                path: framework.id.clone(),
                message: format!("no control {control:?} in {} {}", framework.name, framework.version),
            });
        };
        if !entry.checks.contains(&check) {
            entry.checks.push(check.clone());
        }
        self.unmapped.remove(&check);
        Ok(())
    }
}

/// Merges the controls that configured checks declare (a provider's
/// `Wiring::mappings`, such as a Rego policy's METADATA) into the frameworks
/// of those ids. A mapping to a control that does not exist is a gap naming
/// where it was declared; mappings to a framework not loaded are ignored.
pub fn apply_mappings(frameworks: &mut [MappedFramework], mappings: &[ControlMapping]) -> Vec<Gap> {
    let mut gaps = Vec::new();
    for mapping in mappings {
        let Some(framework) = frameworks.iter_mut().find(|f| f.framework.id == mapping.framework) else {
            continue;
        };
        if let Err(e) = framework.map_check(mapping.check.clone(), &mapping.control) {
            gaps.push(Gap::source(mapping.source.clone(), GapKind::Unreadable, format!("METADATA controls: {e}")));
        }
    }
    gaps
}

/// A control id as standards write them: letters, digits, `.` and `-`,
/// starting with a letter or digit and ending with a digit, no empty part.
fn valid_control_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !id.is_empty()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && !id.contains("..")
        && !id.contains("--")
}

/// Reads and checks a framework file (YAML or JSON). Errors name the file
/// and, where it applies, the control: a duplicated or malformed control id,
/// a control without a title or without checks, a malformed check id.
pub fn parse_framework(text: &str, source_name: &str) -> Result<MappedFramework, ReportError> {
    let bad = |message: String| ReportError::Format { path: source_name.to_owned(), message };
    let stream = compliance_core::yaml::parse_documents(text, source_name);
    if let Some(e) = stream.error {
        return Err(bad(e.to_string()));
    }
    let [document] = stream.documents.as_slice() else {
        return Err(bad(format!("expected one framework document, found {}", stream.documents.len())));
    };
    let file: FrameworkFile = serde_json::from_value(document.value.clone()).map_err(|e| bad(e.to_string()))?;
    for (field, value) in [("id", &file.id), ("name", &file.name), ("version", &file.version)] {
        if value.trim().is_empty() {
            return Err(bad(format!("{field} must not be empty")));
        }
    }
    if file.controls.is_empty() {
        return Err(bad("a framework needs at least one control".into()));
    }
    let mut seen = HashSet::new();
    let mut mapped = HashSet::new();
    let mut controls = Vec::with_capacity(file.controls.len());
    for c in file.controls {
        let at = |message: &str| bad(format!("control {:?}: {message}", c.id));
        if !valid_control_id(&c.id) {
            return Err(at("malformed control id"));
        }
        if !seen.insert(c.id.clone()) {
            return Err(at("control id is used more than once"));
        }
        if c.title.trim().is_empty() {
            return Err(at("a control needs a title"));
        }
        if c.checks.is_empty() {
            return Err(at("no check supports this control; leave it out rather than show it covered"));
        }
        let mut checks = Vec::with_capacity(c.checks.len());
        for id in &c.checks {
            let check: CheckId = id.parse().map_err(|e| at(&format!("{e}")))?;
            mapped.insert(check.clone());
            checks.push(check);
        }
        controls.push(Control::new(c.id, c.title, checks));
    }
    let mut unmapped = BTreeMap::new();
    for (id, reason) in file.unmapped {
        let check: CheckId = id.parse().map_err(|e| bad(format!("unmapped: {e}")))?;
        if mapped.contains(&check) {
            return Err(bad(format!("unmapped: {check} is mapped to a control too")));
        }
        if reason.trim().is_empty() {
            return Err(bad(format!("unmapped: {check} needs a reason")));
        }
        unmapped.insert(check, reason);
    }
    Ok(MappedFramework { framework: FrameworkDef::new(file.id, file.name, file.version, controls), unmapped })
}

/// Checks every check a framework names against the checks that exist
/// (`is_known`); returns the first unknown one as an error naming the control.
pub fn check_known(
    framework: &MappedFramework,
    source_name: &str,
    is_known: impl Fn(&CheckId) -> bool,
) -> Result<(), ReportError> {
    for control in framework.controls() {
        if let Some(unknown) = control.checks.iter().find(|c| !is_known(c)) {
            return Err(ReportError::Format {
                path: source_name.to_owned(),
                message: format!("control {:?}: unknown check {unknown}", control.id),
            });
        }
    }
    if let Some(unknown) = framework.unmapped.keys().find(|c| !is_known(c)) {
        return Err(ReportError::Format {
            path: source_name.to_owned(),
            message: format!("unmapped: unknown check {unknown}"),
        });
    }
    Ok(())
}

/// The built-in mappings, with their file names.
pub fn builtin_mappings() -> Vec<(&'static str, MappedFramework)> {
    let mut frameworks: Vec<(&'static str, MappedFramework)> = BUILTIN
        .iter()
        .filter_map(|(name, text)| match parse_framework(text, name) {
            Ok(f) => Some((*name, f)),
            Err(e) => {
                // Covered by a test: a broken built-in file cannot ship.
                tracing::error!("built-in framework {name}: {e}");
                None
            }
        })
        .collect();
    // Covered by a test too: every rule's every control is placed.
    if let Err(e) = merge_config_rules(&mut frameworks) {
        tracing::error!("built-in AWS Config rule mappings: {e}");
    }
    frameworks
}

/// The built-in frameworks: SOC 2, ISO/IEC 27001:2022 Annex A, PCI DSS v4.0.
///
/// ```
/// let frameworks = compliance_report::builtin_frameworks();
/// let ids: Vec<&str> = frameworks.iter().map(|f| f.id()).collect();
/// assert_eq!(ids, ["soc2", "iso27001", "pci-dss"]);
/// ```
pub fn builtin_frameworks() -> Vec<Arc<dyn Framework>> {
    builtin_mappings().into_iter().map(|(_, f)| Arc::new(f) as Arc<dyn Framework>).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_files_parse_and_use_each_standards_own_id_form() {
        let all = builtin_mappings();
        assert_eq!(all.len(), BUILTIN.len(), "every built-in file parses");
        for (name, f) in &all {
            for c in f.controls() {
                let ok = match f.id() {
                    // CC6.1, A1.2, C1.1: a series, then exactly two numbers; no invented suffixes.
                    "soc2" => {
                        let (series, rest) = c.id.split_at(c.id.find(|ch: char| ch.is_ascii_digit()).unwrap_or(0));
                        ["CC", "A", "C", "PI", "P"].contains(&series) && rest.split('.').count() == 2
                    }
                    "iso27001" => {
                        c.id.starts_with("A.")
                            && c.id.split('.').count() == 3
                            && ["5", "6", "7", "8"].contains(&c.id.split('.').nth(1).unwrap_or(""))
                    }
                    // 8.3.6, and the appendices' A1.1.1 to A3.5.1.
                    "pci-dss" => {
                        let id =
                            c.id.strip_prefix('A').filter(|rest| rest.starts_with(['1', '2', '3'])).unwrap_or(&c.id);
                        (2..=4).contains(&id.split('.').count()) && id.split('.').all(|p| p.parse::<u32>().is_ok())
                    }
                    _ => false,
                };
                assert!(ok, "{name}: {} is not a {} control id", c.id, f.id());
            }
        }
        let iso = &all[1].1;
        assert!(iso.controls().iter().all(|c| c.id != "A.8.11"), "data masking is not encryption");
    }

    #[test]
    fn every_config_rule_maps_onto_controls_that_exist_or_are_added_with_their_title() {
        let mut all: Vec<(&'static str, MappedFramework)> =
            BUILTIN.iter().filter_map(|(n, t)| parse_framework(t, n).ok().map(|f| (*n, f))).collect();
        assert_eq!(merge_config_rules(&mut all).err().map(|e| e.to_string()), None);
        let rules = aws_config_rules().unwrap_or_default();
        assert!(rules.len() >= 80, "{} rules", rules.len());
        let services: HashSet<&str> = rules.iter().map(|r| r.service.as_str()).collect();
        for service in
            ["iam", "s3", "cloudtrail", "kms", "ec2", "ebs", "rds", "lambda", "elb", "guardduty", "securityhub"]
        {
            assert!(services.contains(service), "no rule of {service}");
        }
        let frameworks = builtin_mappings();
        for rule in &rules {
            assert!(
                rule.identifier.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                rule.identifier
            );
            for (framework, controls) in &rule.controls {
                assert!(rule.source.contains_key(framework), "{}: no source for {framework}", rule.identifier);
                let (_, f) = frameworks.iter().find(|(_, f)| f.id() == framework).expect("a built-in framework");
                for control in controls {
                    let placed = f.controls().iter().find(|c| &c.id == control).expect("merged");
                    assert!(placed.checks.contains(&rule.check), "{} not on {framework} {control}", rule.check);
                }
            }
        }
    }

    #[test]
    fn malformed_files_are_refused_with_the_control_named() {
        let base = "id: x\nname: X\nversion: '1'\ncontrols:\n";
        let cases = [
            (
                "  - {id: 'CC6.1', title: T, checks: [a.b]}\n  - {id: 'CC6.1', title: U, checks: [a.b]}\n",
                "used more than once",
            ),
            ("  - {id: 'CC6.1.', title: T, checks: [a.b]}\n", "malformed control id"),
            ("  - {id: 'CC 6.1', title: T, checks: [a.b]}\n", "malformed control id"),
            ("  - {id: 'CC6.1', title: '', checks: [a.b]}\n", "needs a title"),
            ("  - {id: 'CC6.1', title: T, checks: []}\n", "no check supports"),
            ("  - {id: 'CC6.1', title: T, checks: [Not.A.Check]}\n", "invalid check id"),
            ("  - {id: 'CC6.1', title: T, checks: [a.b], owner: me}\n", "unknown field"),
        ];
        for (controls, expected) in cases {
            let err = parse_framework(&format!("{base}{controls}"), "mine.yaml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("mine.yaml: "), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let f = parse_framework(&format!("{base}  - {{id: 'X-1', title: T, checks: [a.b]}}\n"), "mine.yaml");
        let f = f.map_err(|e| e.to_string());
        assert!(f.is_ok(), "{f:?}");
        if let Ok(f) = f {
            let err =
                check_known(&f, "mine.yaml", |c| c.as_str() != "a.b").err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(err, "mine.yaml: control \"X-1\": unknown check a.b");
        }
    }
}
