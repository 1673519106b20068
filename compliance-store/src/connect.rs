//! Opening a store: the backend a URL names, the connection pool, and
//! URLs without their password for messages.

use std::time::Duration;

use compliance_core::StoreError;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use tracing::info;

use crate::SqlStore;

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// From a URL's scheme.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

impl SqlStore {
    /// Opens (creating it when it is a new SQLite file) and migrates a store:
    /// `sqlite://PATH` or `postgres://user:password@host:port/db`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        sqlx::any::install_default_drivers();
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        // One connection first: an unreachable server or a bad password fails now, with its reason,
        // rather than after the pool's acquire timeout.
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        let _ = sqlx::Connection::close(probe).await;
        let options = AnyPoolOptions::new().max_connections(4).acquire_timeout(Duration::from_secs(30));
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers do not block the writer; the busy timeout serialises writers.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA cache_size = -65536",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(&url).await.map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        let store = Self { pool, backend };
        store.migrate().await?;
        info!(backend = ?backend, "evidence store open");
        Ok(store)
    }

    /// The database behind it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_do_not_reach_messages() {
        assert_eq!(redact_url("postgres://monitor:s3cret@db:5432/evidence"), "postgres://monitor:***@db:5432/evidence");
        assert_eq!(redact_url("sqlite://evidence.db"), "sqlite://evidence.db");
    }
}
