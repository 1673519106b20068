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
