//! A webhook receiver on loopback: collects the JSON bodies POSTed to it,
//! as a chat or paging service would.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A started receiver.
pub struct Sink {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    /// Starts one on a free port.
    pub async fn start() -> Result<Sink, Box<dyn std::error::Error>> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::Json<Value>| {
                let store = store.clone();
                async move {
                    store.lock().unwrap_or_else(|p| p.into_inner()).push(body.0);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url, received })
    }

    /// Every body received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
