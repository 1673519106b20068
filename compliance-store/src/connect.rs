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
    /// From a URL's scheme (in any case, as RFC 3986 allows).
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase())?;
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Create what is missing (a new SQLite file, the tables): a writer such
    /// as the monitor.
    Create,
    /// The store must exist, and it is written (decisions on stored plans).
    Existing,
    /// The store must exist, and it is only read: nothing is created or
    /// written, so a misspelt path is an error, not a new empty store.
    ReadOnly,
}

impl SqlStore {
    /// Opens (creating it when it is a new SQLite file) and migrates a store:
    /// `sqlite://PATH` or `postgres://user:password@host:port/db`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, OpenMode::Create).await
    }

    /// Opens a store that must already exist, for reading only.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, OpenMode::ReadOnly).await
    }

    /// Opens a store as `mode` says.
    pub async fn open_with(url: &str, mode: OpenMode) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        sqlx::any::install_default_drivers();
        // The drivers match the scheme in lower case only.
        let url = match url.split_once(':') {
            Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
            None => url.to_owned(),
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sqlite_mode = match mode {
                    OpenMode::Create => "rwc",
                    OpenMode::Existing => "rw",
                    OpenMode::ReadOnly => "ro",
                };
                format!("{url}{}mode={sqlite_mode}", if url.contains('?') { '&' } else { '?' })
            }
            _ => url,
        };
        // One connection first: an unreachable server or a bad password fails now, with its reason,
        // rather than after the pool's acquire timeout.
        let mut probe = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        if backend == Backend::Sqlite {
            // SQLite reads the file lazily: a file that is not a database
            // fails here at once, not after the pool's retries (30 s).
            if let Err(e) = sqlx::query("SELECT count(*) FROM sqlite_master").execute(&mut probe).await {
                return Err(StoreError::Damaged {
                    message: format!("{}: {e}", redact_url(&url)),
                    source: Some(Box::new(e)),
                });
            }
        }
        let _ = sqlx::Connection::close(probe).await;
        // A short restart of the server is waited out; a longer outage fails
        // the call (the monitor keeps the run and stores it later).
        let options = AnyPoolOptions::new().max_connections(4).acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            Backend::Sqlite => options.after_connect(move |conn, _| {
                Box::pin(async move {
                    // WAL: readers do not block the writer; the busy timeout serialises writers.
                    // A reader changes nothing, the journal mode included.
                    let writes = ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"];
                    let always = ["PRAGMA busy_timeout = 30000", "PRAGMA cache_size = -65536"];
                    let pragmas = if mode == OpenMode::ReadOnly { &always[..0] } else { &writes[..] };
                    for pragma in pragmas.iter().chain(&always) {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(&url).await.map_err(|e| StoreError::unavailable(redact_url(&url), e))?;
        let store = Self { pool, backend };
        if mode == OpenMode::Create {
            store.migrate().await?;
        } else {
            store.require_schema(&redact_url(&url)).await?;
            if mode == OpenMode::Existing {
                store.migrate().await?;
            }
        }
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

/// The URL without its secrets, for messages and logs: the password of the
/// user information, and the value of any query parameter whose name says it
/// is a secret (`password`, `sslpassword`, `token`, `secret`, `key`).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &base[..scheme + 3], &base[at..])
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "token", "secret", "key"].iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_do_not_reach_messages() {
        assert_eq!(redact_url("postgres://monitor:s3cret@db:5432/evidence"), "postgres://monitor:***@db:5432/evidence");
        assert_eq!(redact_url("sqlite://evidence.db"), "sqlite://evidence.db");
        assert_eq!(
            redact_url("postgres://db/evidence?user=monitor&password=s3cret&sslmode=require"),
            "postgres://db/evidence?user=monitor&password=***&sslmode=require"
        );
        assert_eq!(redact_url("Postgres://admin:s3cret@db/x"), "Postgres://admin:***@db/x");
    }

    #[tokio::test]
    async fn an_unsupported_or_capitalised_url_never_prints_its_password() {
        let err = SqlStore::open("mysql://admin:s3cret@db/x").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("mysql://admin:***@db/x") && !err.contains("s3cret"), "{err}");
        // A capital P is still PostgreSQL (schemes are case-insensitive): unreachable here, and redacted.
        let err = SqlStore::open("Postgres://admin:s3cret@127.0.0.1:1/x")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("store unavailable: postgres://admin:***@127.0.0.1:1/x"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = SqlStore::open("postgres://127.0.0.1:1/x?password=s3cret")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
