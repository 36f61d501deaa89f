//! Errors of the PIB's write side and store.

use kmp_api::ExtendedAddress;

use crate::pib::CounterError;

/// Why a PIB write, the store, or opening the store failed. Nothing in the in-memory tables
/// changed when a write returns an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PibError {
    /// The store file could not be created or accessed.
    #[error("PIB store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The storage engine failed (I/O during a transaction, commit failure).
    #[error("PIB store: {0}")]
    Storage(#[source] Box<redb::Error>),
    /// Another process (or another `PibStore` in this one) has the store open.
    #[error("PIB store is in use by another process")]
    Locked,
    /// The store content does not decode or contradicts itself.
    #[error("PIB store is corrupt: {table}: {detail}")]
    Corrupt {
        /// Where: a table name, or `"file"` for the storage engine's own structures.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A record every initialised store has is missing.
    #[error("PIB store is missing {0}")]
    Missing(&'static str),
    /// The store was written by a newer (or unknown) format version.
    #[error("PIB store format {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// The version in the store.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },
    /// A `KeyInstall` (or another write) is invalid; nothing was stored.
    #[error("invalid PIB write: {0}")]
    Invalid(String),
    /// The device is not in the device table.
    #[error("device {0} is not in the device table")]
    UnknownDevice(ExtendedAddress),
    /// No outgoing frame counter can be reserved or handed out.
    #[error(transparent)]
    Counter(#[from] CounterError),
    /// All 2^32 − 1 key handles have been used.
    #[error("key handles exhausted")]
    KeyRefsExhausted,
}

impl PibError {
    pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> PibError {
        PibError::Corrupt {
            table,
            detail: detail.into(),
        }
    }
}

impl From<redb::Error> for PibError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::DatabaseAlreadyOpen => PibError::Locked,
            redb::Error::Corrupted(detail) => PibError::Corrupt {
                table: "file",
                detail,
            },
            redb::Error::TableTypeMismatch { table, .. } => PibError::Corrupt {
                table: "file",
                detail: format!("table {table} has the wrong type"),
            },
            other => PibError::Storage(Box::new(other)),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for PibError {
            fn from(e: $t) -> Self {
                PibError::from(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
