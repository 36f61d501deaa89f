//! Fixed-size secret keys that zeroize on drop.
//!
//! Variable-length secrets (MSKs, `prf+` output, KEYMAT) use [`SecretBytes`]; keys whose size the
//! algorithm fixes (a 128-bit link key, a 256-bit ECDH shared secret) use [`SecretKey<N>`], so a
//! wrong length is a type error rather than a runtime one.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{CryptoError, SecretBytes, ct_eq};
use crate::rng::RngHandle;

/// `N` secret octets, zeroized when dropped. `Debug` prints only the length; equality is
/// constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey<const N: usize>([u8; N]);

/// A 128-bit key (AES-128, 802.15.4 link keys, CMAC).
pub type Key128 = SecretKey<16>;

/// A 256-bit key (AES-256, HMAC-SHA-256 keys, P-256 ECDH shared secrets).
pub type Key256 = SecretKey<32>;

impl<const N: usize> SecretKey<N> {
    /// Length in octets.
    pub const LEN: usize = N;

    /// Takes ownership of `bytes`.
    pub fn new(bytes: [u8; N]) -> SecretKey<N> {
        SecretKey(bytes)
    }

    /// Copies `bytes`, which must be exactly `N` octets long ([`CryptoError::KeyLength`]
    /// otherwise).
    pub fn from_slice(bytes: &[u8]) -> Result<SecretKey<N>, CryptoError> {
        let array: [u8; N] = bytes
            .try_into()
            .map_err(|_| CryptoError::KeyLength(bytes.len()))?;
        Ok(SecretKey(array))
    }

    /// `N` fresh octets from `rng`.
    pub fn random(rng: &RngHandle) -> Result<SecretKey<N>, CryptoError> {
        let mut key = SecretKey([0u8; N]);
        rng.fill(&mut key.0)?;
        Ok(key)
    }

    /// The secret octets.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// A variable-length copy (for APIs such as [`crate::session::LinkKey`]).
    pub fn to_secret_bytes(&self) -> SecretBytes {
        SecretBytes::from_slice(&self.0)
    }
}

impl<const N: usize> From<[u8; N]> for SecretKey<N> {
    fn from(bytes: [u8; N]) -> Self {
        SecretKey(bytes)
    }
}

impl<const N: usize> TryFrom<&SecretBytes> for SecretKey<N> {
    type Error = CryptoError;

    fn try_from(bytes: &SecretBytes) -> Result<Self, CryptoError> {
        SecretKey::from_slice(bytes.expose())
    }
}

impl<const N: usize> PartialEq for SecretKey<N> {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl<const N: usize> Eq for SecretKey<N> {}

impl<const N: usize> fmt::Debug for SecretKey<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey<{N}>(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_material_and_lengths_are_checked() {
        let k = Key128::new([0x42; 16]);
        let dbg = format!("{k:?}");
        assert_eq!(dbg, "SecretKey<16>(..)");
        assert!(!dbg.contains("42"));
        assert_eq!(
            Key128::from_slice(&[0u8; 15]),
            Err(CryptoError::KeyLength(15))
        );
        assert_eq!(Key256::from_slice(&[7u8; 32]).unwrap().expose(), &[7u8; 32]);
        assert_eq!(Key128::LEN, 16);
    }

    #[test]
    fn random_uses_injected_rng_and_eq_compares_content() {
        let rng = RngHandle::fixed((0u8..16).collect::<Vec<_>>());
        let k = Key128::random(&rng).unwrap();
        assert_eq!(k.expose().to_vec(), (0u8..16).collect::<Vec<_>>());
        assert!(Key128::random(&rng).is_err());
        assert_eq!(k, k.clone());
        assert_ne!(k, Key128::new([0; 16]));
        let sb = k.to_secret_bytes();
        assert_eq!(Key128::try_from(&sb).unwrap(), k);
    }
}
