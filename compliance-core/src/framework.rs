//! Frameworks: the controls an auditor asks about, and the checks behind them.

use serde::{Deserialize, Serialize};

use crate::check::CheckId;

/// One control of a framework, with the checks that support it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Control {
    /// The control's id exactly as the standard writes it (`CC6.1`, `A.8.9`, `8.2.6`).
    pub id: String,
    /// The control's title.
    pub title: String,
    /// Checks whose evidence supports the control.
    #[serde(default)]
    pub checks: Vec<CheckId>,
}

impl Control {
    /// A control.
    pub fn new(id: impl Into<String>, title: impl Into<String>, checks: Vec<CheckId>) -> Self {
        Self { id: id.into(), title: title.into(), checks }
    }
}

/// A compliance framework (SOC 2, ISO/IEC 27001, PCI DSS, an internal one).
/// Most frameworks are data ([`FrameworkDef`]); the trait lets one be code.
pub trait Framework: Send + Sync {
    /// Short stable id (`soc2`).
    fn id(&self) -> &str;
    /// Full name.
    fn name(&self) -> &str;
    /// Version of the standard.
    fn version(&self) -> &str;
    /// Its controls.
    fn controls(&self) -> &[Control];
    /// The controls a check supports.
    fn controls_for(&self, check: &CheckId) -> Vec<&Control> {
        self.controls().iter().filter(|c| c.checks.contains(check)).collect()
    }
}

/// A framework defined as data.
///
/// ```
/// use compliance_core::{Control, Framework, FrameworkDef};
/// let fw = FrameworkDef::new("internal", "Internal baseline", "2026", vec![
///     Control::new("IB-1", "Containers do not run as root", vec!["k8s.pod.run_as_non_root".parse()?]),
/// ]);
/// assert_eq!(fw.controls_for(&"k8s.pod.run_as_non_root".parse()?).len(), 1);
/// # Ok::<(), compliance_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FrameworkDef {
    /// Short stable id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Version of the standard.
    pub version: String,
    /// Its controls.
    pub controls: Vec<Control>,
}

impl FrameworkDef {
    /// A framework.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        controls: Vec<Control>,
    ) -> Self {
        Self { id: id.into(), name: name.into(), version: version.into(), controls }
    }
}

impl Framework for FrameworkDef {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn controls(&self) -> &[Control] {
        &self.controls
    }
}

/// A control that a data source declares for a check while collecting, not
/// known before the run: an AWS Config conformance pack gives each of its
/// rules a list of `Controls`.
///
/// `F:X` (`pci-dss:8.3.6`) names control `X` of framework `F`; a bare `X`
/// lands on the one loaded framework that has a control `X`. Ids compare
/// without regard to case. A bare id that several frameworks have (`2.2.2`
/// could be a CIS or a PCI DSS number) or that none has stays in the
/// evidence details only: a wrong mapping is worse than none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeclaredControl {
    /// The check whose evidence supports the control.
    pub check: CheckId,
    /// The control, as the source writes it.
    pub control: String,
    /// Who declared it (`AWS Config conformance pack pci-pack`).
    pub source: String,
}

impl DeclaredControl {
    /// A declaration.
    pub fn new(check: CheckId, control: impl Into<String>, source: impl Into<String>) -> Self {
        Self { check, control: control.into(), source: source.into() }
    }

    /// Where it lands among `frameworks`: the framework's index and the
    /// control's id as the framework writes it; `None` when nowhere or
    /// ambiguous.
    pub fn placement(&self, frameworks: &[std::sync::Arc<dyn Framework>]) -> Option<(usize, String)> {
        let declared = self.control.trim();
        let (named, control) = match declared.split_once(':') {
            Some((framework, control)) => (Some(framework.trim()), control.trim()),
            None => (None, declared),
        };
        let mut found = frameworks.iter().enumerate().filter_map(|(i, f)| {
            if named.is_some_and(|n| !f.id().eq_ignore_ascii_case(n)) {
                return None;
            }
            f.controls().iter().find(|c| c.id.eq_ignore_ascii_case(control)).map(|c| (i, c.id.clone()))
        });
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

/// The frameworks with the declared controls merged in: a framework some
/// declaration lands on is copied with those checks added to its controls;
/// the others are returned as they are.
///
/// ```
/// use std::sync::Arc;
/// use compliance_core::framework::{DeclaredControl, with_declared_controls};
/// use compliance_core::{Control, Framework, FrameworkDef};
/// let pci: Arc<dyn Framework> = Arc::new(FrameworkDef::new("pci-dss", "PCI DSS", "4.0", vec![
///     Control::new("8.3.6", "Passwords are strong", vec![]),
/// ]));
/// let check = "aws.config.iam-password-policy".parse()?;
/// let declared = [DeclaredControl::new(check, "pci-dss:8.3.6", "AWS Config conformance pack pci")];
/// let merged = with_declared_controls(&[pci], &declared);
/// assert_eq!(merged[0].controls_for(&"aws.config.iam-password-policy".parse()?).len(), 1);
/// # Ok::<(), compliance_core::Error>(())
/// ```
pub fn with_declared_controls(
    frameworks: &[std::sync::Arc<dyn Framework>],
    declared: &[DeclaredControl],
) -> Vec<std::sync::Arc<dyn Framework>> {
    let placed: Vec<(usize, String, &CheckId)> =
        declared.iter().filter_map(|d| d.placement(frameworks).map(|(i, control)| (i, control, &d.check))).collect();
    frameworks
        .iter()
        .enumerate()
        .map(|(i, framework)| {
            let here: Vec<(&String, &CheckId)> =
                placed.iter().filter(|(f, _, _)| *f == i).map(|(_, id, check)| (id, *check)).collect();
            let new = |c: &Control| here.iter().any(|(id, check)| **id == c.id && !c.checks.contains(check));
            if !framework.controls().iter().any(new) {
                return std::sync::Arc::clone(framework);
            }
            let controls = framework
                .controls()
                .iter()
                .map(|c| {
                    let mut merged = c.clone();
                    for (_, check) in here.iter().filter(|(id, _)| **id == c.id) {
                        if !merged.checks.contains(check) {
                            merged.checks.push((*check).clone());
                        }
                    }
                    merged
                })
                .collect();
            let merged = FrameworkDef::new(framework.id(), framework.name(), framework.version(), controls);
            std::sync::Arc::new(merged) as std::sync::Arc<dyn Framework>
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn framework(id: &str, controls: &[&str]) -> Arc<dyn Framework> {
        Arc::new(FrameworkDef::new(id, id, "1", controls.iter().map(|c| Control::new(*c, "t", vec![])).collect()))
    }

    #[test]
    fn declared_controls_land_on_one_control_or_nowhere() -> crate::Result<()> {
        let frameworks =
            [framework("pci-dss", &["2.2.2", "8.3.6"]), framework("cis", &["2.2.2"]), framework("soc2", &["CC6.1"])];
        let at = |control: &str| -> crate::Result<Option<(usize, String)>> {
            Ok(DeclaredControl::new("aws.config.x".parse()?, control, "test").placement(&frameworks))
        };
        assert_eq!(at("pci-dss:8.3.6")?, Some((0, "8.3.6".into())), "named");
        assert_eq!(at("8.3.6")?, Some((0, "8.3.6".into())), "bare, one framework has it");
        assert_eq!(at("cc6.1")?, Some((2, "CC6.1".into())), "case does not matter");
        assert_eq!(at(" SOC2 : CC6.1 ")?, Some((2, "CC6.1".into())));
        assert_eq!(at("2.2.2")?, None, "bare and ambiguous");
        assert_eq!(at("cis:2.2.2")?, Some((1, "2.2.2".into())), "named, no longer ambiguous");
        assert_eq!(at("soc2:8.3.6")?, None, "the named framework lacks it");
        assert_eq!(at("ACME-7")?, None);

        let check: CheckId = "aws.config.x".parse()?;
        let declared = [
            DeclaredControl::new(check.clone(), "8.3.6", "test"),
            DeclaredControl::new(check.clone(), "2.2.2", "test"),
        ];
        let merged = with_declared_controls(&frameworks, &declared);
        assert_eq!(merged[0].controls_for(&check).iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["8.3.6"]);
        assert!(Arc::ptr_eq(&merged[1], &frameworks[1]), "untouched frameworks are shared, not copied");
        assert!(frameworks[0].controls_for(&check).is_empty(), "the originals do not change");
        Ok(())
    }
}
