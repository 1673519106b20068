//! Signed checkpoints after every run, and their copies outside the
//! database: the chain's head signed with a key the database does not hold,
//! so that a chain rewritten as a whole is caught (`evidence verify
//! --public-key`).

use std::io::Write;
use std::path::PathBuf;

use compliance_attest::SigningKey;
use compliance_attest::checkpoint::{Checkpoint, append_checkpoint};
use compliance_core::store::EvidenceStore;
use tracing::info;

/// How the monitor signs its chain: the key, and where copies go.
#[derive(Debug)]
pub struct CheckpointSigning {
    key: SigningKey,
    file: Option<PathBuf>,
    url: Option<String>,
}

impl CheckpointSigning {
    /// Signs with `key`; the checkpoints are stored in the chain.
    pub fn new(key: SigningKey) -> Self {
        Self { key, file: None, url: None }
    }

    /// Also appends each checkpoint to this file, one JSON line each.
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Also POSTs each checkpoint (JSON) to this URL: a log server, a
    /// bucket's upload endpoint, a ticket.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Signs the head, appends the checkpoint, copies it out. A copy that
    /// fails is an error of the cycle; the checkpoint in the chain stays.
    pub(crate) async fn sign(&self, store: &dyn EvidenceStore) -> Result<Checkpoint, String> {
        let checkpoint =
            append_checkpoint(store, &self.key).await.map_err(|e| format!("checkpoint not stored: {e}"))?;
        info!(seq = checkpoint.seq, key = %checkpoint.key, "chain head signed");
        if let Some(path) = &self.file {
            let line = serde_json::to_string(&checkpoint).map_err(|e| e.to_string())?;
            let copy = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                file.write_all(format!("{line}\n").as_bytes())?;
                file.sync_data()
            };
            copy().map_err(|e| format!("checkpoint copy to {}: {e}", path.display()))?;
        }
        if let Some(url) = &self.url {
            let body = serde_json::to_value(&checkpoint).map_err(|e| e.to_string())?;
            crate::post_json(url, &body).await.map_err(|e| format!("checkpoint copy: {e}"))?;
        }
        Ok(checkpoint)
    }
}
