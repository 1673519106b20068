//! Drift notifications: at most one per interval, changes in between merged
//! into the next, a failed delivery kept for the next cycle.

use std::time::{Duration, Instant};

use compliance_report::notify::Notification;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::{info, warn};

use crate::settings::{AlertConfig, AlertFormat};

/// Posts notifications, at most one per interval; held changes are merged.
pub(crate) struct Alerter {
    pub(crate) config: AlertConfig,
    held: Option<Notification>,
    last_sent: Option<Instant>,
}

impl Alerter {
    pub(crate) fn new(config: AlertConfig) -> Self {
        Self { config, held: None, last_sent: None }
    }

    pub(crate) async fn offer(&mut self, notification: Option<Notification>) {
        if let Some(n) = notification {
            info!(target: "compliance::alert", "{}", n.summary());
            for c in &n.changes {
                info!(target: "compliance::alert", kind = ?c.kind, check = %c.check_id, severity = %c.severity, resource = %c.resource, "{}", c.message);
            }
            match &mut self.held {
                Some(held) => held.merge(n),
                None => self.held = Some(n),
            }
        }
        if self.last_sent.is_some_and(|t| t.elapsed() < self.config.min_interval) {
            return;
        }
        let Some(n) = self.held.take() else { return };
        let body = match self.config.format {
            AlertFormat::Json => n.to_json(),
            AlertFormat::Slack => n.to_slack(20),
        };
        match post_json(&self.config.webhook_url, &body).await {
            Ok(()) => {
                self.last_sent = Some(Instant::now());
                info!("alert sent: {}", n.summary());
            }
            Err(e) => {
                warn!("alert not delivered ({e}); kept for the next cycle");
                self.held = Some(n);
            }
        }
    }
}

/// Where a webhook URL points, without what may be a secret: incoming-webhook
/// URLs carry their token in the path or the query (Slack's
/// `/services/T…/B…/token`), so messages and logs name the host only.
pub fn endpoint_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".to_owned(),
    }
}

/// POSTs a JSON body (http or https, the system's root certificates); an
/// answer outside 2xx is an error with its status. Errors name the endpoint
/// by its host only ([`endpoint_of`]).
pub async fn post_json(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let shown = endpoint_of(url);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("compliance/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("{shown}: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| format!("{shown}: no answer within 10 s"))?
        .map_err(|e| format!("{shown}: {e}"))?;
    if response.status().is_success() { Ok(()) } else { Err(format!("{shown}: HTTP {}", response.status())) }
}

#[cfg(test)]
mod tests {
    use compliance_core::Severity;
    use compliance_report::notify::{ChangeKind, NotifiedChange};

    use super::*;

    #[tokio::test]
    async fn a_webhook_token_never_reaches_errors() {
        let url = "http://127.0.0.1:1/services/T0/B0/s3cr3tT0ken?key=abc";
        let err = post_json(url, &serde_json::json!({})).await.err().unwrap_or_default();
        assert!(err.starts_with("http://127.0.0.1:1/…: "), "{err}");
        assert!(!err.contains("s3cr3tT0ken") && !err.contains("abc"), "{err}");
        assert_eq!(endpoint_of("https://user:pw@hooks.example.com/x"), "https://hooks.example.com/…");
    }

    #[tokio::test]
    async fn alerts_are_rate_limited_and_held_changes_are_merged_not_lost() -> Result<(), Box<dyn std::error::Error>> {
        let sink = compliance_test_support::sink::Sink::start().await?;
        let notification = |run: &str, check: &str| {
            let change = NotifiedChange::new(ChangeKind::NewFailure, check, Severity::High, "r", "m");
            Notification::new(run, chrono::Utc::now(), vec![change])
        };
        let mut config = AlertConfig::new(sink.url.clone());
        config.min_interval = Duration::from_millis(300);
        let mut alerter = Alerter::new(config);
        alerter.offer(Some(notification("r1", "a.b.one"))).await;
        alerter.offer(Some(notification("r2", "a.b.two"))).await; // within the interval: held
        assert_eq!(sink.received().len(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        alerter.offer(None).await; // the next cycle, nothing new: the held change goes out
        let list = sink.received();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1]["run_id"], "r2");
        assert_eq!(list[1]["changes"][0]["check_id"], "a.b.two");
        Ok(())
    }
}
