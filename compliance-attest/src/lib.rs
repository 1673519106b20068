#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod checkpoint;
pub mod dsse;
mod error;
mod keyring;
mod keys;
pub mod package;
pub mod signed_report;
pub mod statement;

pub use checkpoint::{Checkpoint, CheckpointReport, verify_checkpoints};
pub use dsse::{Envelope, pae};
pub use error::{AttestError, Problem};
pub use keyring::{Keyring, KeyringEntry};
pub use keys::{PublicKey, SigningKey, read_key_file};
pub use statement::{Statement, Subject, sha256_hex};

/// The name and version written into every statement this crate signs.
pub const TOOL: &str = concat!("compliance-rs ", env!("CARGO_PKG_VERSION"));
