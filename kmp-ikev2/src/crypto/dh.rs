//! Diffie-Hellman groups (transform type 4): 19 (256-bit random ECP, RFC 5903) on kmp-api's
//! P-256, and 14 (2048-bit MODP, RFC 3526) on OpenSSL big numbers.

use std::cmp::Ordering;
use std::fmt;

use kmp_api::crypto::ecc::{P256KeyPair, P256PublicKey, XY_LEN};
use kmp_api::crypto::{CryptoError, SecretBytes};
use kmp_api::rng::RngHandle;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use zeroize::Zeroize;

/// Length of a MODP-2048 public value and shared secret in octets.
const MODP2048_LEN: usize = 256;
/// [`MODP2048_LEN`] as OpenSSL's padding argument wants it.
const MODP2048_LEN_I32: i32 = 256;
/// Length of the private exponent drawn for MODP-2048 (256 bits: twice the ~112-bit strength of
/// the group, as RFC 3526 §8 and NIST SP 800-56A ask).
const MODP_EXPONENT_LEN: usize = 32;
/// Attempts at drawing a usable exponent before giving up on the random source.
const MAX_EXPONENT_TRIES: usize = 16;

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
            DhGroup::Modp2048 => {
                for _ in 0..MAX_EXPONENT_TRIES {
                    let mut candidate = [0u8; MODP_EXPONENT_LEN];
                    rng.fill(&mut candidate)?;
                    let key = ModpKey::from_exponent(&candidate);
                    candidate.zeroize();
                    if let Some(key) = key? {
                        return Ok(DhPrivate {
                            inner: Inner::Modp2048(key),
                        });
                    }
                }
                Err(CryptoError::Library(
                    "no valid MODP exponent from the random source".into(),
                ))
            }
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
            DhGroup::Modp2048 => {
                if secret.is_empty() || secret.len() > MODP2048_LEN {
                    return Err(CryptoError::KeyLength(secret.len()));
                }
                match ModpKey::from_exponent(secret)? {
                    Some(key) => Ok(DhPrivate {
                        inner: Inner::Modp2048(key),
                    }),
                    None => Err(CryptoError::InvalidPublicValue("MODP exponent below 2")),
                }
            }
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
    Modp2048(ModpKey),
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
            Inner::Modp2048(key) => key.public.clone(),
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
            Inner::Modp2048(key) => key.shared(peer_ke_data),
        }
    }
}

/// A MODP-2048 exponent and its public value.
struct ModpKey {
    x: BigNum,
    public: Vec<u8>,
}

impl Drop for ModpKey {
    fn drop(&mut self) {
        self.x.clear();
    }
}

fn modp_prime() -> Result<BigNum, CryptoError> {
    Ok(BigNum::get_rfc3526_prime_2048()?)
}

fn secret_bignum(bytes: &[u8]) -> Result<BigNum, CryptoError> {
    let mut bn = BigNum::new_secure()?;
    bn.copy_from_slice(bytes)?;
    bn.set_const_time();
    Ok(bn)
}

fn padded(value: &BigNumRef) -> Result<Vec<u8>, CryptoError> {
    Ok(value.to_vec_padded(MODP2048_LEN_I32)?)
}

impl ModpKey {
    /// The key with exponent `bytes`, or `None` when the exponent is 0 or 1.
    fn from_exponent(bytes: &[u8]) -> Result<Option<ModpKey>, CryptoError> {
        let mut x = secret_bignum(bytes)?;
        if x.num_bits() < 2 {
            x.clear();
            return Ok(None);
        }
        let p = modp_prime()?;
        let g = BigNum::from_u32(2)?;
        let mut ctx = BigNumContext::new_secure()?;
        let mut y = BigNum::new()?;
        if let Err(e) = y.mod_exp(&g, &x, &p, &mut ctx) {
            x.clear();
            return Err(e.into());
        }
        let public = match padded(&y) {
            Ok(v) => v,
            Err(e) => {
                x.clear();
                return Err(e);
            }
        };
        Ok(Some(ModpKey { x, public }))
    }

    fn shared(&self, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer.len() != MODP2048_LEN {
            return Err(CryptoError::Length {
                what: "MODP-2048 KE data",
                len: peer.len(),
            });
        }
        let p = modp_prime()?;
        let y = BigNum::from_slice(peer)?;
        let one = BigNum::from_u32(1)?;
        let mut p_minus_1 = BigNum::new()?;
        p_minus_1.checked_sub(&p, &one)?;
        if y.ucmp(&one) != Ordering::Greater {
            return Err(CryptoError::InvalidPublicValue("MODP public value 0 or 1"));
        }
        if y.ucmp(&p_minus_1) != Ordering::Less {
            return Err(CryptoError::InvalidPublicValue(
                "MODP public value p-1 or not below p",
            ));
        }
        // p is a safe prime (p = 2q + 1) and 2 generates the order-q subgroup, so an honest
        // public value satisfies y^q = 1 (mod p).
        let mut q = BigNum::new()?;
        q.rshift1(&p_minus_1)?;
        let mut ctx = BigNumContext::new_secure()?;
        let mut check = BigNum::new()?;
        check.mod_exp(&y, &q, &p, &mut ctx)?;
        if check.ucmp(&one) != Ordering::Equal {
            return Err(CryptoError::InvalidPublicValue(
                "MODP public value not in the prime-order subgroup",
            ));
        }
        let mut z = BigNum::new_secure()?;
        let r = z.mod_exp(&y, &self.x, &p, &mut ctx);
        let out = r
            .map_err(CryptoError::from)
            .and_then(|()| {
                if z.num_bits() < 2 {
                    Err(CryptoError::InvalidPublicValue("MODP shared secret 0 or 1"))
                } else {
                    padded(&z)
                }
            })
            .map(SecretBytes::new);
        z.clear();
        out
    }
}
