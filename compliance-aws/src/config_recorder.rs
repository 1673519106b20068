//! `aws.config.recorder_enabled`: AWS Config records the region's
//! configuration. Auditors ask for it beside the rules (SOC 2 CC7.1, ISO
//! 27001 A.8.9, PCI DSS 10.2.1): without a recorder, Config rules judge
//! nothing new and changes leave no history. One evidence per region.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::Utc;
use compliance_core::{
    Catalogue, Check, CheckDef, CheckSpec, Collection, Collector, ResourceRef, Scope, Severity, Status, Verdict,
};
use serde_json::json;

use crate::AccountGuard;
use crate::api::ApiError;

/// The resource kind of the recorder check.
const KIND: &str = "AWS::Config::ConfigurationRecorder";

/// One configuration recorder and its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorder {
    /// Its name.
    pub name: String,
    /// `recordingGroup.allSupported`.
    pub all_supported: bool,
    /// `recordingGroup.includeGlobalResourceTypes` (IAM and other global types).
    pub include_global: bool,
    /// The resource types it records when not all.
    pub resource_types: Vec<String>,
    /// `recording`, from its status; `None` when it has no status.
    pub recording: Option<bool>,
    /// `lastStatus`: `Pending`, `Success` or `Failure`.
    pub last_status: Option<String>,
    /// `lastErrorCode` and `lastErrorMessage`.
    pub last_error: Option<String>,
}

/// What the check judges: the recorders of one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderState {
    /// The region.
    pub region: String,
    /// Its recorders (AWS allows one per region and account).
    pub recorders: Vec<Recorder>,
}

/// The region expected to record global resource types, when one is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderContext {
    /// Record global types (IAM) here; `None`: not judged, only reported.
    pub global_region: Option<String>,
}

/// Passes when a recorder of the region records every supported resource
/// type, is recording, and its last delivery did not fail; in the region
/// meant to record global types, those too.
pub fn judge_recorder(state: &RecorderState, context: &RecorderContext) -> Verdict {
    let region = &state.region;
    let Some(r) = state.recorders.first() else {
        return Verdict::new(
            Status::Fail,
            format!("no configuration recorder in {region}"),
            json!({ "region": region }),
        );
    };
    let details = json!({
        "region": region,
        "recorder": r.name,
        "all_supported": r.all_supported,
        "include_global_resource_types": r.include_global,
        "resource_types": r.resource_types,
        "recording": r.recording,
        "last_status": r.last_status,
        "last_error": r.last_error,
        "global_region": context.global_region,
    });
    let fail = |message: String| Verdict::new(Status::Fail, message, details.clone());
    if !r.all_supported {
        return fail(format!(
            "recorder {} records {} resource types, not all supported ones",
            r.name,
            r.resource_types.len()
        ));
    }
    if r.recording != Some(true) {
        return fail(format!("recorder {} is not recording", r.name));
    }
    if r.last_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure")) {
        let error = r.last_error.as_deref().unwrap_or("no error given");
        return fail(format!("recorder {}'s last recording failed: {error}", r.name));
    }
    if context.global_region.as_deref() == Some(region.as_str()) && !r.include_global {
        return fail(format!(
            "{region} is meant to record global resource types (IAM), but recorder {} does not",
            r.name
        ));
    }
    Verdict::new(Status::Pass, format!("recorder {} records every supported resource type", r.name), details)
}

fn recorder_enabled(state: &RecorderState, context: &RecorderContext) -> Option<Verdict> {
    Some(judge_recorder(state, context))
}

static DEFS: &[CheckDef<RecorderState, RecorderContext>] = &[CheckDef {
    spec: CheckSpec {
        id: "aws.config.recorder_enabled",
        title: "AWS Config records every supported resource type",
        severity: Severity::High,
        resource_kind: KIND,
        rationale: "Without a recording configuration recorder, configuration changes leave no history and AWS Config rules stop judging new resources.",
        remediation: "Create a configuration recorder recording all supported resource types (global ones in one region), with a delivery channel, and start it.",
        reference: "AWS Config Developer Guide: managing the configuration recorder",
        remediable: false,
    },
    judge: recorder_enabled,
}];

static CATALOGUE: LazyLock<Catalogue<RecorderState, RecorderContext>> = LazyLock::new(|| Catalogue::new(DEFS));

/// The recorder catalogue.
pub fn catalogue() -> &'static Catalogue<RecorderState, RecorderContext> {
    &CATALOGUE
}

/// The AWS Config calls the recorder check makes.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RecorderApi: Send + Sync {
    /// `config:DescribeConfigurationRecorders` and
    /// `config:DescribeConfigurationRecorderStatus`, joined by name.
    async fn recorders(&self) -> Result<Vec<Recorder>, ApiError>;
}

#[async_trait]
impl RecorderApi for crate::config_rules::SdkConfigService {
    async fn recorders(&self) -> Result<Vec<Recorder>, ApiError> {
        let client = self.client();
        let described = client
            .describe_configuration_recorders()
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("config:DescribeConfigurationRecorders", e))?;
        let statuses = client
            .describe_configuration_recorder_status()
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("config:DescribeConfigurationRecorderStatus", e))?;
        Ok(described
            .configuration_recorders()
            .iter()
            .map(|r| {
                let name = r.name().unwrap_or_default().to_owned();
                let group = r.recording_group();
                let status = statuses.configuration_recorders_status().iter().find(|s| s.name() == Some(name.as_str()));
                let error = status.and_then(|s| match (s.last_error_code(), s.last_error_message()) {
                    (None, None) => None,
                    (code, message) => Some(format!("{}: {}", code.unwrap_or("error"), message.unwrap_or(""))),
                });
                Recorder {
                    name,
                    all_supported: group.is_some_and(|g| g.all_supported()),
                    include_global: group.is_some_and(|g| g.include_global_resource_types()),
                    resource_types: group
                        .map(|g| g.resource_types().iter().map(|t| t.as_str().to_owned()).collect())
                        .unwrap_or_default(),
                    recording: status.map(|s| s.recording()),
                    last_status: status.and_then(|s| s.last_status()).map(|s| s.as_str().to_owned()),
                    last_error: error,
                }
            })
            .collect())
    }
}

/// Judges the configuration recorder of one region.
#[derive(Clone)]
pub struct ConfigRecorderCollector {
    api: Arc<dyn RecorderApi>,
    region: String,
    context: RecorderContext,
    account: AccountGuard,
}

impl ConfigRecorderCollector {
    /// Through the SDK, in the SDK configuration's region; evidence names
    /// the credentials' account.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        Self::with_api(Arc::new(crate::config_rules::SdkConfigService::new(sdk)), region)
            .with_account(AccountGuard::of_credentials(sdk))
    }

    /// Through any [`RecorderApi`].
    pub fn with_api(api: Arc<dyn RecorderApi>, region: impl Into<String>) -> Self {
        Self { api, region: region.into(), context: RecorderContext::default(), account: AccountGuard::unchecked() }
    }

    /// The region meant to record global resource types.
    pub fn with_global_region(mut self, region: impl Into<String>) -> Self {
        self.context.global_region = Some(region.into());
        self
    }

    /// The account evidence names.
    pub fn with_account(mut self, account: AccountGuard) -> Self {
        self.account = account;
        self
    }
}

#[async_trait]
impl Collector for ConfigRecorderCollector {
    fn name(&self) -> &str {
        "aws-config-recorder"
    }

    fn checks(&self) -> Vec<Check> {
        CATALOGUE.checks()
    }

    async fn collect(&self, scope: &Scope) -> compliance_core::Result<Collection> {
        if !CATALOGUE.any_wanted(scope) {
            return Ok(Collection::default());
        }
        let now = Utc::now();
        let account = self.account.account().await.ok().flatten();
        let resource = |name: &str| {
            ResourceRef::new(
                "aws",
                KIND,
                format!(
                    "arn:aws:config:{}:{}:configuration-recorder/{name}",
                    self.region,
                    account.as_deref().unwrap_or("")
                ),
                name,
            )
            .with_account_region(account.clone(), Some(self.region.clone()))
        };
        let evidence = match self.api.recorders().await {
            Ok(recorders) => {
                let name = recorders.first().map_or("(none)", |r| r.name.as_str()).to_owned();
                let state = RecorderState { region: self.region.clone(), recorders };
                CATALOGUE.judge(&state, &self.context, resource(&name), scope, now)
            }
            // A denied or failed read is error evidence naming the permission, never a pass.
            Err(e) => CATALOGUE.unreadable(resource("(unread)"), &e.explain(), scope, now, |_| true),
        };
        Ok(evidence.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(recorder: Option<Recorder>) -> RecorderState {
        RecorderState { region: "eu-west-1".into(), recorders: recorder.into_iter().collect() }
    }

    fn healthy() -> Recorder {
        Recorder {
            name: "default".into(),
            all_supported: true,
            include_global: true,
            recording: Some(true),
            last_status: Some("SUCCESS".into()),
            ..Recorder::default()
        }
    }

    #[test]
    fn a_recorder_passes_only_recording_everything_without_failure() {
        let context = RecorderContext::default();
        assert_eq!(judge_recorder(&state(Some(healthy())), &context).status, Status::Pass);
        assert_eq!(judge_recorder(&state(None), &context).message, "no configuration recorder in eu-west-1");
        let partial = Recorder { all_supported: false, resource_types: vec!["AWS::S3::Bucket".into()], ..healthy() };
        assert!(judge_recorder(&state(Some(partial)), &context).message.contains("records 1 resource types"));
        let stopped = Recorder { recording: Some(false), ..healthy() };
        assert!(judge_recorder(&state(Some(stopped)), &context).message.ends_with("is not recording"));
        let failing = Recorder {
            last_status: Some("FAILURE".into()),
            last_error: Some("AccessDenied: bucket".into()),
            ..healthy()
        };
        assert!(judge_recorder(&state(Some(failing)), &context).message.contains("AccessDenied: bucket"));
        let no_global = Recorder { include_global: false, ..healthy() };
        assert_eq!(
            judge_recorder(&state(Some(no_global.clone())), &context).status,
            Status::Pass,
            "not judged without a global region"
        );
        let global_here = RecorderContext { global_region: Some("eu-west-1".into()) };
        assert_eq!(judge_recorder(&state(Some(no_global)), &global_here).status, Status::Fail);
    }

    #[tokio::test]
    async fn a_denied_read_is_error_evidence_naming_the_permission() -> compliance_core::Result<()> {
        let mut api = MockRecorderApi::new();
        api.expect_recorders().returning(|| {
            Err(ApiError::new("config:DescribeConfigurationRecorders", Some("AccessDeniedException"), "no", Some(400)))
        });
        let c = ConfigRecorderCollector::with_api(Arc::new(api), "eu-west-1").collect(&Scope::all()).await?;
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].status, Status::Error);
        assert!(
            c.evidence[0].message.contains("config:DescribeConfigurationRecorders permission"),
            "{}",
            c.evidence[0].message
        );
        Ok(())
    }
}
