//! The one HTTP client of the command: webhook notifications (http and
//! https, the system's root certificates).

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// POSTs a JSON body; an answer outside 2xx is an error with its status.
pub async fn post_json(url: &str, body: &serde_json::Value) -> Result<(), String> {
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
        .map_err(|e| format!("{url}: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status().is_success() { Ok(()) } else { Err(format!("{url}: HTTP {}", response.status())) }
}
