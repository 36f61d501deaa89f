//! The IEEE 802.11-style 4-way handshake (KMP ID 6) and group-key handshake (KMP ID 7) as
//! Wi-SUN FAN sends them (EAPOL-Key frames, RSN key descriptor, 802.11-2020 12.7.6 / 12.7.7).
//!
//! - [`keys`]: PRF-384 / KDF-SHA256, PTK, PMKID, PTKID, GAK, MIC and key-data wrapping.
//! - [`cache`]: the [`PmkCache`] (PMKSA per pair of EUI-64s, filled by KMP ID 1 from the MSK)
//!   and the authenticator's [`GtkSet`].
//! - [`config`]: the TOML configuration.
//! - [`session`]: the sessions and [`HandshakeFactory`], registered for KMP IDs 6 and 7.
//! - [`request`]: the EAPOL-Key request a Wi-SUN supplicant sends under KMP ID 1.
//!
//! Keys into the PIB: the TK as a pairwise key (key identifier mode 0, direction both), each
//! GTK (or the Wi-SUN GAK derived from it) as a group key with key identifier mode 1 and key
//! index `GTK key ID + 1`.

pub mod cache;
pub mod config;
pub mod keys;
pub mod request;
pub mod session;

pub use cache::{Gtk, GtkSet, PaeRole, PmkCache, PmkEntry};
pub use config::HandshakeConfig;
pub use request::KeyRequest;
pub use session::{HandshakeFactory, HandshakeSession};
