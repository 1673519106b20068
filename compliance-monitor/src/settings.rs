//! What the monitor does besides scanning: its interval, alerts,
//! remediation policy, retention and watching, as serde types.

use std::collections::BTreeMap;
use std::time::Duration;

use compliance_core::Severity;
use compliance_core::store::Retention;
use serde::{Deserialize, Serialize};

/// The monitor's settings, as a configuration file holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MonitorSettings {
    /// Time between scans (`30s`, `5m`, `1h`).
    #[serde(deserialize_with = "duration", serialize_with = "as_seconds")]
    pub interval: Duration,
    /// Drift notifications.
    pub alerts: Option<AlertConfig>,
    /// What the monitor may fix.
    pub remediation: RemediationConfig,
    /// How much history to keep.
    pub retention: Retention,
    /// Follow the providers' watchers (a live cluster) and judge each change
    /// within seconds, between scans.
    pub watch: bool,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            alerts: None,
            remediation: RemediationConfig::default(),
            retention: Retention::default(),
            watch: false,
        }
    }
}

impl MonitorSettings {
    /// Sets the interval.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the alerts.
    pub fn with_alerts(mut self, alerts: AlertConfig) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Sets the remediation policy.
    pub fn with_remediation(mut self, remediation: RemediationConfig) -> Self {
        self.remediation = remediation;
        self
    }
}

/// `250ms`, `30s`, `5m`, `1h`, `1d`, or a number of seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(compliance_monitor::parse_duration("5m"), Ok(Duration::from_secs(300)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (30s, 5m, 1h)"))?;
    let unit = match unit.trim() {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86_400),
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d)")),
    };
    unit.checked_mul(u32::try_from(n).map_err(|_| format!("{text:?} is too long"))?)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Reads a duration written as people write them, or a number of seconds.
pub fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Text(String),
    }
    match Text::deserialize(d)? {
        Text::Seconds(s) => Ok(Duration::from_secs(s)),
        Text::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_millis()))
}

/// Drift notifications to a webhook. Its `Debug` names the endpoint's host
/// only: the URL usually carries a token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertConfig {
    /// Where to POST.
    pub webhook_url: String,
    /// Body form.
    #[serde(default)]
    pub format: AlertFormat,
    /// At most one notification per this interval; changes in between are
    /// grouped into the next one.
    #[serde(default = "default_min_interval", deserialize_with = "duration", serialize_with = "as_seconds")]
    pub min_interval: Duration,
    /// New failures below this severity are not notified (resolutions and gaps always are).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

impl AlertConfig {
    /// Alerts to `webhook_url`, JSON, at most one a minute, from low severity up.
    pub fn new(webhook_url: impl Into<String>) -> Self {
        Self {
            webhook_url: webhook_url.into(),
            format: AlertFormat::Json,
            min_interval: default_min_interval(),
            min_severity: default_min_severity(),
        }
    }
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("webhook_url", &crate::alert::endpoint_of(&self.webhook_url))
            .field("format", &self.format)
            .field("min_interval", &self.min_interval)
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

fn default_min_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_min_severity() -> Severity {
    Severity::Low
}

/// Webhook body forms.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// `{"summary", "run_id", "changes": [...]}`.
    #[default]
    Json,
    /// Slack incoming webhook: `{"text": ...}`.
    Slack,
}

/// What the monitor may do about a failing check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemediationMode {
    /// Never touch it.
    #[default]
    Never,
    /// Store a plan and wait for an approval.
    Ask,
    /// Apply low-risk plans (stored first, verified after); ask for the others.
    Auto,
}

/// Per check (glob patterns), with a default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RemediationConfig {
    /// For checks no pattern matches.
    #[serde(default)]
    pub default: RemediationMode,
    /// `check pattern: never|ask|auto`; the longest matching pattern wins.
    #[serde(default)]
    pub checks: BTreeMap<String, RemediationMode>,
}

impl RemediationConfig {
    /// The mode for one check.
    pub fn mode(&self, check: &str) -> RemediationMode {
        self.checks
            .iter()
            .filter(|(pattern, _)| compliance_core::waiver::glob_match(pattern, check))
            .max_by_key(|(pattern, _)| pattern.len())
            .map_or(self.default, |(_, mode)| *mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 minutes").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_longest_matching_pattern_decides_remediation() {
        let config: RemediationConfig = serde_json::from_value(serde_json::json!({
            "default": "never",
            "checks": {"k8s.*": "ask", "k8s.container.memory_limit": "auto"}
        }))
        .unwrap_or_default();
        assert_eq!(config.mode("k8s.container.memory_limit"), RemediationMode::Auto);
        assert_eq!(config.mode("k8s.pod.run_as_non_root"), RemediationMode::Ask);
        assert_eq!(config.mode("aws.iam.user_inactive"), RemediationMode::Never);
    }
}
