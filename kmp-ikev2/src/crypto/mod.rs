//! IKEv2 cryptographic transforms and key schedule (RFC 7296 §2.13–2.17, RFC 5282, RFC 4615).
//!
//! Everything here is a thin IKEv2-shaped layer over [`kmp_api::crypto`] (PRFs, `prf+`,
//! AES-CCM, AES-GCM, AES-CBC, HMAC, P-256, MODP-2048); no primitive is implemented here.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`prf`] | [`PrfAlg`]: PRF transforms 5 (HMAC-SHA-256) and 8 (AES128-CMAC) | RFC 4868, RFC 4615 |
//! | [`sk`] | [`EncrAlg`], [`IntegAlg`], [`SkCipher`]: the Encrypted (SK) payload | RFC 7296 §3.14, RFC 5282 |
//! | [`dh`] | [`DhGroup`], [`DhPrivate`]: groups 19 (ECP-256) and 14 (MODP-2048) | RFC 5903, RFC 3526 |
//! | [`keys`] | SKEYSEED, `SK_*`, Child SA KEYMAT, rekeying, shared-key AUTH | RFC 7296 §2.14, §2.17, §2.18, §2.15 |
//!
//! Keys are [`SecretBytes`] (zeroized on drop). No function panics on any input; failures are
//! [`CryptoError`].

pub mod dh;
pub mod keys;
pub mod prf;
pub mod sk;

pub use self::dh::{DhGroup, DhPrivate};
pub use self::keys::{
    IkeSaKeys, child_keymat, derive_ike_sa_keys, ike_sa_keys_from_skeyseed, psk_auth,
    rekey_skeyseed, signed_octets, skeyseed,
};
pub use self::prf::PrfAlg;
pub use self::sk::{EncrAlg, IntegAlg, SkCipher, aead_open, aead_seal};
pub use kmp_api::crypto::CryptoError;
pub use kmp_api::session::SecretBytes;
