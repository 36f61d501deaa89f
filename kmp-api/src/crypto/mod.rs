//! The one audited place where KMPs get their cryptography, on OpenSSL.
//!
//! Every primitive is tested against a public vector in its module. Secrets are held in types
//! that zeroize on drop ([`SecretKey`], [`SecretBytes`]), and comparisons of secrets and MACs are
//! constant-time ([`ct_eq`]).
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`aes`] | AES-128/192/256 single block, AES-CTR | FIPS 197, SP 800-38A |
//! | [`ccm`] | AES-CCM and CCM* (802.15.4 frame security) | RFC 3610, SP 800-38C, 802.15.4 Annex B |
//! | [`gcm`] | AES-GCM | SP 800-38D |
//! | [`cbc`] | AES-CBC without padding | SP 800-38A |
//! | [`cmac`] | AES-CMAC, AES-CMAC-PRF-128 | RFC 4493, RFC 4615 |
//! | [`eax`] | AES-EAX (the EAP-PSK protected channel) | Bellare–Rogaway–Wagner 2004 |
//! | [`hmac`] | SHA-1/256/384/512, MD5 (RADIUS only), HMAC | FIPS 180-4, RFC 1321, RFC 2104 |
//! | [`prf`] | [`Prf`], IKEv2 `prf+`, HKDF | RFC 7296 §2.13, RFC 5869 |
//! | [`keywrap`] | AES key wrap | RFC 3394 |
//! | [`ecc`] | P-256 ECDH and ECDSA | SEC 1, FIPS 186-4, RFC 5903 |
//! | [`kx`] | X25519 and P-384 ECDH (TLS key exchange) | RFC 7748, RFC 5903 |
//! | [`modp`] | 2048-bit MODP Diffie-Hellman | RFC 3526 §3, SP 800-56A |
//! | [`sig`] | RSA (PKCS#1 v1.5, PSS) and ECDSA signatures with a named hash, Ed25519 | RFC 8017, FIPS 186-4, RFC 8032 |
//! | [`x509`] | certificate chains and fields | RFC 5280 |
//!
//! All functions are sans-IO: randomness comes from a [`crate::rng::RngHandle`], the time of a
//! certificate check is an argument. No function panics on its input; misuse and failures come
//! back as [`CryptoError`].

/// An OpenSSL cipher fetched from its provider once per process (`EVP_CIPHER_fetch`), as a
/// `&'static CipherRef`. OpenSSL 3 looks a legacy `EVP_aes_*()` cipher up again on every
/// `EVP_CipherInit_ex` (a name lookup under locks, about half of a short AES operation); a
/// fetched one skips that. Falls back to the legacy object if the fetch fails.
macro_rules! fetched_cipher {
    ($name:literal, $legacy:expr) => {{
        static FETCHED: std::sync::OnceLock<Option<openssl::cipher::Cipher>> =
            std::sync::OnceLock::new();
        match FETCHED.get_or_init(|| openssl::cipher::Cipher::fetch(None, $name, None).ok()) {
            Some(c) => {
                let c: &'static openssl::cipher::CipherRef = c;
                c
            }
            None => $legacy,
        }
    }};
}
pub(crate) use fetched_cipher;

pub mod aes;
pub mod cbc;
pub mod ccm;
pub mod cmac;
pub mod eax;
pub mod ecc;
pub mod gcm;
pub mod hmac;
pub mod key;
pub mod keywrap;
pub mod kx;
pub mod modp;
pub mod prf;
pub mod sig;
pub mod x509;

pub use self::aes::{AesBlockCipher, AesCtr};
pub use self::ccm::AesCcm;
pub use self::ecc::{P256KeyPair, P256PublicKey};
pub use self::key::{Key128, Key256, SecretKey};
pub use self::modp::Modp2048KeyPair;
pub use self::prf::{Prf, prf_plus};
pub use self::sig::{KeyKind, SigHash, SigScheme, SigningKey, VerifyingKey};
pub use crate::session::SecretBytes;

use crate::rng::RngError;

/// A crypto primitive failed or was misused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key of the wrong length.
    #[error("invalid key length {0}")]
    KeyLength(usize),
    /// A nonce, IV or tag of the wrong length.
    #[error("invalid {what} length {len}")]
    Length {
        /// Which parameter.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Authentication (MIC, tag, signature, unwrap integrity check) failed.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A point or scalar is invalid (not on the curve, out of range).
    #[error("invalid public value: {0}")]
    InvalidPublicValue(&'static str),
    /// Certificate or chain verification failed.
    #[error("certificate verification failed: {0}")]
    Certificate(String),
    /// OpenSSL reported an error.
    #[error("openssl: {0}")]
    Library(String),
    /// More output was asked of a key derivation function than it can give (`prf+` and HKDF
    /// stop at 255 blocks).
    #[error("requested {requested} octets, at most {max} possible")]
    OutputTooLong {
        /// Octets requested.
        requested: usize,
        /// The most the function can produce with this PRF.
        max: usize,
    },
    /// The combination of algorithm and operation is not defined (HKDF over a CMAC PRF, …).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The random source failed (scalar generation).
    #[error(transparent)]
    Rng(#[from] RngError),
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CryptoError::Library(e.to_string())
    }
}

/// Constant-time equality of two octet strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn crypto_state_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AesCcm>();
        send_sync::<P256KeyPair>();
        send_sync::<P256PublicKey>();
        send_sync::<Key128>();
        send_sync::<x509::Certificate>();
        send_sync::<Modp2048KeyPair>();
        send_sync::<SigningKey>();
        send_sync::<VerifyingKey>();
    }
}
