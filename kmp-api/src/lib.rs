//! The contract every IEEE 802.15.9 Key Management Protocol (KMP) and plugin builds on.
//!
//! This crate is sans-IO: it has no sockets, threads, async runtime or wall clock. It defines
//!
//! - the identifiers of the MPX layer ([`KmpId`], [`MultiplexId`], [`Oui`]),
//! - 802.15.4 addressing and security parameters as types ([`addr`], [`security`]),
//! - the 802.15.9 service primitives (KMP-CREATE, KMP-FINISHED, KMP-DELETE, KMP-PURGE,
//!   MPX-DATA, MPX-PURGE) in [`primitives`],
//! - the sans-IO session contract ([`session::KmpSession`], [`session::Action`],
//!   [`session::Outcome`], [`session::KeyInstall`]) and the factory trait,
//! - the static registry of KMP factories ([`registry`], on `inventory`) and the C ABI and
//!   loader for dynamically loaded KMPs ([`plugin`]),
//! - project time ([`Instant`], [`Duration`], microseconds) and injectable randomness ([`rng`]),
//! - the one audited crypto module the KMPs use ([`crypto`], on OpenSSL).
//!
//! Everything a KMP hands to the outside world goes through these types, so a vendor plugin sees
//! exactly what a built-in KMP sees.

pub mod addr;
pub mod crypto;
pub mod id;
pub mod plugin;
pub mod primitives;
pub mod registry;
pub mod rng;
pub mod security;
pub mod session;
pub mod time;

pub use addr::{Address, AddressingMode, ExtendedAddress, PanId, ShortAddress};
pub use id::{KmpId, MultiplexId, Oui};
pub use registry::{KmpRegistration, Registry, RegistryError};
pub use rng::RngHandle;
pub use security::{KeyIdMode, KeyIdentifier, SecurityLevel};
pub use session::{
    Action, FailureReason, KeyInstall, KmpFactory, KmpSession, Outcome, Role, SessionContext,
    SessionError,
};
pub use time::{Duration, Instant};
