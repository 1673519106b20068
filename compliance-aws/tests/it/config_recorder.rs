//! The AWS Config recorder check against moto.

use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup, ResourceType};
use compliance_aws::config_recorder::ConfigRecorderCollector;
use compliance_core::testkit::check_collector;
use compliance_core::{Collector, Scope, Status};

use crate::{TestResult, moto, sdk};

async fn status_of(collector: &ConfigRecorderCollector) -> Result<(Status, String), Box<dyn std::error::Error>> {
    let collection = check_collector(collector, &Scope::all()).await?;
    let [evidence] = collection.evidence.as_slice() else {
        return Err(format!("expected one evidence, got {}", collection.evidence.len()).into());
    };
    assert_eq!(evidence.resource.region.as_deref(), Some("eu-west-1"));
    assert_eq!(evidence.resource.account.as_deref(), Some("123456789012"));
    Ok((evidence.status, evidence.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto server: scripts/test installs it"]
async fn the_recorder_passes_only_when_it_records_everything() -> TestResult {
    let moto = moto()?;
    let sdk = sdk(&moto, "eu-west-1").await;
    let config = aws_sdk_config::Client::new(&sdk);
    let collector = ConfigRecorderCollector::new(&sdk);
    assert_eq!(collector.checks().len(), 1);
    assert_eq!(status_of(&collector).await?, (Status::Fail, "no configuration recorder in eu-west-1".into()));

    // Only buckets recorded.
    let some =
        RecordingGroup::builder().all_supported(false).resource_types(ResourceType::from("AWS::S3::Bucket")).build();
    let recorder = |group: RecordingGroup| {
        ConfigurationRecorder::builder()
            .name("default")
            .role_arn("arn:aws:iam::123456789012:role/config")
            .recording_group(group)
            .build()
    };
    config.put_configuration_recorder().configuration_recorder(recorder(some)).send().await?;
    let (status, message) = status_of(&collector).await?;
    assert_eq!(status, Status::Fail);
    assert!(message.contains("records 1 resource types"), "{message}");

    // Everything, but not started.
    let all = RecordingGroup::builder().all_supported(true).include_global_resource_types(true).build();
    config.put_configuration_recorder().configuration_recorder(recorder(all)).send().await?;
    let (status, message) = status_of(&collector).await?;
    assert_eq!(status, Status::Fail);
    assert!(message.ends_with("is not recording"), "{message}");

    // Started, with a delivery channel.
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let eu = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    s3.create_bucket().bucket("config-history").create_bucket_configuration(eu).send().await?;
    let channel = DeliveryChannel::builder().name("default").s3_bucket_name("config-history").build();
    config.put_delivery_channel().delivery_channel(channel).send().await?;
    config.start_configuration_recorder().configuration_recorder_name("default").send().await?;
    let (status, message) = status_of(&collector).await?;
    assert_eq!(status, Status::Pass, "{message}");

    // The region meant to record global types (IAM) must record them.
    let without_global = RecordingGroup::builder().all_supported(true).include_global_resource_types(false).build();
    config.put_configuration_recorder().configuration_recorder(recorder(without_global)).send().await?;
    assert_eq!(status_of(&collector).await?.0, Status::Pass, "not judged without a global region");
    let elsewhere = ConfigRecorderCollector::new(&sdk).with_global_region("us-east-1");
    assert_eq!(status_of(&elsewhere).await?.0, Status::Pass, "global types are recorded in another region");
    let here = ConfigRecorderCollector::new(&sdk).with_global_region("eu-west-1");
    let (status, message) = status_of(&here).await?;
    assert_eq!(status, Status::Fail);
    assert!(message.contains("meant to record global resource types"), "{message}");
    Ok(())
}
