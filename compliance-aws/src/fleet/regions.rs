//! The regions enabled for an account.
//!
//! `account:ListRegions` is the lightest way to learn them: one paged call
//! to a small API (the AWS Account service), in the account itself, that
//! answers exactly "enabled or not" per region, opt-in regions included.
//! EC2 `DescribeRegions` answers the same but needs the EC2 SDK, by far the
//! largest AWS crate to build; probing each region with a call costs one
//! call per region and tells a disabled region from a denied one poorly.

use async_trait::async_trait;

use crate::api::ApiError;

/// The call that lists an account's enabled regions.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RegionsApi: Send + Sync {
    /// `account:ListRegions` (`ENABLED` and `ENABLED_BY_DEFAULT`), every page.
    async fn enabled_regions(&self) -> Result<Vec<String>, ApiError>;
}

/// [`RegionsApi`] over the AWS SDK, for the account of the credentials.
#[derive(Clone, Debug)]
pub struct SdkRegions {
    client: aws_sdk_account::Client,
}

impl SdkRegions {
    /// From an SDK configuration (the account's own credentials).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_account::Client::new(sdk) }
    }
}

#[async_trait]
impl RegionsApi for SdkRegions {
    async fn enabled_regions(&self) -> Result<Vec<String>, ApiError> {
        use aws_sdk_account::types::RegionOptStatus;
        let mut regions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_regions()
                .region_opt_status_contains(RegionOptStatus::Enabled)
                .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                .max_results(50)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("account:ListRegions", e))?;
            regions.extend(out.regions().iter().filter_map(|r| r.region_name().map(str::to_owned)));
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() == Some(t) => {
                    return Err(ApiError::new("account:ListRegions", None, "the same NextToken twice", None));
                }
                Some(t) => token = Some(t.to_owned()),
                None => {
                    regions.sort();
                    regions.dedup();
                    return Ok(regions);
                }
            }
        }
    }
}
