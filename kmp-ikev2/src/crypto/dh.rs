//! Diffie-Hellman groups (transform type 4): 19 (256-bit random ECP, RFC 5903) on kmp-api's
//! P-256, and 14 (2048-bit MODP, RFC 3526) on kmp-api's [`Modp2048KeyPair`].

use std::fmt;

use kmp_api::crypto::ecc::{P256KeyPair, P256PublicKey, XY_LEN};
use kmp_api::crypto::modp::{MODP2048_LEN, Modp2048KeyPair};
use kmp_api::crypto::{CryptoError, SecretBytes};
use kmp_api::rng::RngHandle;

/// An IKEv2 Diffie-Hellman group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 19, 256-bit random ECP (NIST P-256). KE data `x ‖ y` (64 octets), shared secret the
    /// x coordinate (32 octets), RFC 5903 §7.
    Ecp256,
    /// Group 14, 2048-bit MODP (RFC 3526 §3), generator 2. KE data and shared secret are 256
    /// octets, big-endian, left-padded with zeros (RFC 7296 §3.4, §2.14).
    Modp2048,
}

impl DhGroup {
    /// The IKEv2 transform ID (19 or 14), also the KE payload's group number.
    pub const fn transform_id(self) -> u16 {
        match self {
            DhGroup::Ecp256 => 19,
            DhGroup::Modp2048 => 14,
        }
    }

    /// The group with transform ID `id`, if supported.
    pub const fn from_transform_id(id: u16) -> Option<DhGroup> {
        match id {
            19 => Some(DhGroup::Ecp256),
            14 => Some(DhGroup::Modp2048),
            _ => None,
        }
    }

    /// The length of the KE payload's key exchange data: 64 or 256.
    pub const fn ke_len(self) -> usize {
        match self {
            DhGroup::Ecp256 => XY_LEN,
            DhGroup::Modp2048 => MODP2048_LEN,
        }
    }

    /// The length of the shared secret `g^ir`: 32 or 256.
    pub const fn shared_len(self) -> usize {
        match self {
            DhGroup::Ecp256 => 32,
            DhGroup::Modp2048 => MODP2048_LEN,
        }
    }

    /// A fresh private value drawn from `rng` (P-256: a scalar in 1..n; MODP-2048: a 256-bit
    /// exponent), so a seeded or fixed [`RngHandle`] gives reproducible keys.
    pub fn generate(&self, rng: &RngHandle) -> Result<DhPrivate, CryptoError> {
        match self {
            DhGroup::Ecp256 => Ok(DhPrivate {
                inner: Inner::Ecp256(P256KeyPair::generate(rng)?),
            }),
            DhGroup::Modp2048 => Ok(DhPrivate {
                inner: Inner::Modp2048(Modp2048KeyPair::generate(rng)?),
            }),
        }
    }

    /// The private value with the given secret: a P-256 scalar (32 octets, big-endian, in 1..n),
    /// or a MODP exponent (1..=256 octets, big-endian, at least 2). For known-answer tests and
    /// stored keys.
    pub fn from_secret(&self, secret: &[u8]) -> Result<DhPrivate, CryptoError> {
        match self {
            DhGroup::Ecp256 => Ok(DhPrivate {
                inner: Inner::Ecp256(P256KeyPair::from_scalar(secret)?),
            }),
            DhGroup::Modp2048 => Ok(DhPrivate {
                inner: Inner::Modp2048(Modp2048KeyPair::from_exponent(secret)?),
            }),
        }
    }
}

/// One side's ephemeral Diffie-Hellman private value and its public KE data. The secret is
/// cleared when dropped.
pub struct DhPrivate {
    inner: Inner,
}

enum Inner {
    Ecp256(P256KeyPair),
    Modp2048(Modp2048KeyPair),
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group())
            .finish_non_exhaustive()
    }
}

impl DhPrivate {
    /// The group.
    pub fn group(&self) -> DhGroup {
        match self.inner {
            Inner::Ecp256(_) => DhGroup::Ecp256,
            Inner::Modp2048(_) => DhGroup::Modp2048,
        }
    }

    /// The KE payload's key exchange data: `x ‖ y` (64 octets) for group 19, `g^x mod p`
    /// (256 octets, left-padded) for group 14.
    pub fn public(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ecp256(kp) => kp.public_key().to_xy().to_vec(),
            Inner::Modp2048(key) => key.public().to_vec(),
        }
    }

    /// The shared secret `g^ir` with the peer's KE data, after validating it: for group 19 the
    /// point must be 64 octets and on the curve, the result is its x coordinate (32 octets); for
    /// group 14 the value must be 256 octets, in 2..=p-2 and in the order-q subgroup
    /// (NIST SP 800-56A §5.6.2.3.1), the result is 256 octets, left-padded. Invalid values are
    /// [`CryptoError::Length`] or [`CryptoError::InvalidPublicValue`].
    pub fn shared(&self, peer_ke_data: &[u8]) -> Result<SecretBytes, CryptoError> {
        match &self.inner {
            Inner::Ecp256(kp) => {
                let peer = P256PublicKey::from_xy(peer_ke_data)?;
                Ok(kp.diffie_hellman(&peer)?.to_secret_bytes())
            }
            Inner::Modp2048(key) => key.diffie_hellman(peer_ke_data),
        }
    }
}
