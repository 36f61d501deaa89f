//! Dragonfly, the password-authenticated key exchange of IEEE 802.15.9 (KMP ID 5, Annex E).
//!
//! - [`group`], [`pwe`], [`keys`]: the math (ECC groups 19/20/21 on OpenSSL, the password element
//!   by hunting-and-pecking or hash-to-element, commit/confirm and the key schedule), in the
//!   `ieee80211` (SAE) or `rfc7664` (CFRG) flavour.
//! - [`wire`]: the messages over MPX (project-defined framing, docs/DECISIONS.md).
//! - [`session`]: the sans-IO exchange ([`session::DragonflySession`]) and its factory, registered
//!   for KMP ID 5 with `inventory`.
//! - [`config`]: the TOML configuration.

pub mod config;
pub mod group;
pub mod keys;
pub mod pwe;
pub mod session;
pub mod wire;
