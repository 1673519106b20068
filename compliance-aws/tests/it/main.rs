//! compliance-aws against a real AWS API emulator (patched moto server) over
//! HTTP, through the real SDK clients. One binary: the SDK links slowly.

mod cloudtrail;
mod config_recorder;
mod config_rules;
mod fleet;
mod iam;
mod iam_posture;
mod policies;
mod s3;
mod s3_account;
#[cfg(feature = "terraform")]
mod terraform;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use compliance_test_support::moto::Moto;

/// Result of a test that uses `?`.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Starts moto. Every test that calls this is `#[ignore]`d with the reason:
/// `scripts/test` provisions moto and runs them.
pub fn moto() -> Result<Moto, Box<dyn std::error::Error>> {
    Ok(Moto::start()?)
}

/// The SDK configuration for moto: static test credentials, its endpoint.
pub async fn sdk(moto: &Moto, region: &str) -> SdkConfig {
    // S3 Control calls <account>.127.0.0.1 (moto listens on loopback), as `sdk_config` sets up for the CLI.
    let hosts = compliance_aws::endpoint::AccountHosts::new(std::net::Ipv4Addr::LOCALHOST);
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(compliance_aws::endpoint::http_client(hosts))
        .region(Region::new(region.to_owned()))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await
}

/// An RFC 3339 time `days` ago.
pub fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Puts a managed AWS Config rule of this name and identifier.
pub async fn config_rule(config: &aws_sdk_config::Client, name: &str, identifier: &str) -> TestResult {
    use aws_sdk_config::types::{ConfigRule, Owner, Source};
    let source = Source::builder().owner(Owner::Aws).source_identifier(identifier).build()?;
    config
        .put_config_rule()
        .config_rule(ConfigRule::builder().config_rule_name(name).source(source).build())
        .send()
        .await?;
    Ok(())
}
