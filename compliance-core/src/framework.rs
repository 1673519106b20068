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
/// It supports control `X` of framework `F` when `control` is `X` itself, or
/// `F:X` (`pci-dss:8.3.6`) to name the framework; a control no loaded
/// framework has stays in the evidence details only.
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

    /// Whether it names `control` of `framework`.
    pub fn names(&self, framework: &str, control: &str) -> bool {
        let declared = self.control.trim();
        declared == control
            || declared
                .split_once(':')
                .is_some_and(|(f, c)| f.trim().eq_ignore_ascii_case(framework) && c.trim() == control)
    }
}

/// The frameworks with the declared controls merged in: a framework some
/// declaration names is copied with those checks added to its controls;
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
    frameworks
        .iter()
        .map(|framework| {
            let adds = |c: &Control| {
                declared.iter().filter(|d| d.names(framework.id(), &c.id) && !c.checks.contains(&d.check)).count()
            };
            if declared.is_empty() || framework.controls().iter().all(|c| adds(c) == 0) {
                return std::sync::Arc::clone(framework);
            }
            let controls = framework
                .controls()
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    for d in declared.iter().filter(|d| d.names(framework.id(), &c.id)) {
                        if !c.checks.contains(&d.check) {
                            c.checks.push(d.check.clone());
                        }
                    }
                    c
                })
                .collect();
            let merged = FrameworkDef::new(framework.id(), framework.name(), framework.version(), controls);
            std::sync::Arc::new(merged) as std::sync::Arc<dyn Framework>
        })
        .collect()
}
