//! The IKEv2 PRF transforms (transform type 2) this crate negotiates.

use kmp_api::crypto::{CryptoError, Prf, SecretBytes, prf_plus};

/// An IKEv2 pseudo-random function (transform type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrfAlg {
    /// `PRF_HMAC_SHA2_256` (transform ID 5, RFC 4868): 32-octet output and preferred key.
    HmacSha256,
    /// `PRF_AES128_CMAC` (transform ID 8, RFC 4615): AES-CMAC-PRF-128, 16-octet output and key;
    /// keys of any other length are first reduced with AES-CMAC under the zero key.
    Aes128Cmac,
}

impl PrfAlg {
    /// The IKEv2 transform ID (5 or 8).
    pub const fn transform_id(self) -> u16 {
        match self {
            PrfAlg::HmacSha256 => 5,
            PrfAlg::Aes128Cmac => 8,
        }
    }

    /// The PRF with transform ID `id`, if this crate supports it.
    pub const fn from_transform_id(id: u16) -> Option<PrfAlg> {
        match id {
            5 => Some(PrfAlg::HmacSha256),
            8 => Some(PrfAlg::Aes128Cmac),
            _ => None,
        }
    }

    /// The preferred key length in octets, which is the length of `SK_d`, `SK_pi` and `SK_pr`
    /// (RFC 7296 §2.14): 32 for HMAC-SHA-256, 16 for AES128-CMAC.
    pub const fn key_len(self) -> usize {
        match self {
            PrfAlg::HmacSha256 => 32,
            PrfAlg::Aes128Cmac => 16,
        }
    }

    /// The output length in octets: 32 for HMAC-SHA-256, 16 for AES128-CMAC.
    pub const fn out_len(self) -> usize {
        match self {
            PrfAlg::HmacSha256 => 32,
            PrfAlg::Aes128Cmac => 16,
        }
    }

    /// Whether the PRF takes a fixed-size key, so SKEYSEED is keyed with the first half of the
    /// key size from each nonce (RFC 7296 §2.14).
    pub const fn fixed_key_size(self) -> bool {
        matches!(self, PrfAlg::Aes128Cmac)
    }

    /// The kmp-api PRF that computes this transform.
    pub const fn as_prf(self) -> Prf {
        match self {
            PrfAlg::HmacSha256 => Prf::HmacSha256,
            PrfAlg::Aes128Cmac => Prf::AesCmacPrf128,
        }
    }

    /// `prf(key, data)`; any key length is accepted (RFC 2104 for HMAC, RFC 4615 §3 for CMAC).
    pub fn prf(&self, key: &[u8], data: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.as_prf().compute(key, data)
    }

    /// `prf(key, parts[0] ‖ parts[1] ‖ …)` without concatenating first.
    pub fn prf_parts(&self, key: &[u8], parts: &[&[u8]]) -> Result<SecretBytes, CryptoError> {
        self.as_prf().compute_parts(key, parts)
    }

    /// `prf+(key, seed)` cut to `len` octets (RFC 7296 §2.13); more than 255 blocks is
    /// [`CryptoError::OutputTooLong`].
    pub fn prf_plus(
        &self,
        key: &[u8],
        seed: &[u8],
        len: usize,
    ) -> Result<SecretBytes, CryptoError> {
        prf_plus(self.as_prf(), key, seed, len)
    }
}
