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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use compliance_attest::checkpoint::{read_checkpoint_file, verify_checkpoints};
    use compliance_attest::{Keyring, SigningKey};
    use compliance_core::testkit::{InMemoryCollector, InMemoryStore, World, sample_check};
    use compliance_core::{CancellationToken, Engine};

    use super::CheckpointSigning;
    use crate::{Monitor, MonitorSettings};

    #[tokio::test]
    async fn every_run_is_followed_by_a_signed_checkpoint_copied_to_a_file_and_a_url()
    -> Result<(), Box<dyn std::error::Error>> {
        let sink = compliance_test_support::sink::Sink::start().await?;
        let dir = std::env::temp_dir().join(format!("monitor-checkpoints-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("checkpoints.jsonl");
        let world = World::default();
        world.set("db-1", "demo.db.backups", true);
        let collector = InMemoryCollector::new("demo", vec![sample_check("demo.db.backups")?], world);
        let store = Arc::new(InMemoryStore::default());
        let key = SigningKey::generate()?;
        let keyring = Keyring::single(key.public_key().clone());
        let signing = CheckpointSigning::new(key).with_file(&file).with_url(sink.url.clone());
        let settings = MonitorSettings::default().with_interval(Duration::from_millis(10));
        let monitor = Monitor::new(Engine::new().with_collector(Arc::new(collector)), store.clone(), settings)
            .with_checkpoints(signing);
        assert_eq!(monitor.run(CancellationToken::new(), Some(2)).await, 2);

        let copies = read_checkpoint_file(&file)?;
        assert_eq!(copies.len(), 2);
        let posted = sink.received();
        assert_eq!(posted.len(), 2);
        assert_eq!(posted[1], serde_json::to_value(&copies[1].1)?);
        let report = verify_checkpoints(store.as_ref(), &keyring, &copies).await?;
        assert_eq!((report.in_chain, report.external, report.unattested(), report.problem), (2, 2, 0, None));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
