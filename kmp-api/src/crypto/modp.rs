//! Finite-field Diffie-Hellman in the 2048-bit MODP group of RFC 3526 §3 (IKEv2 group 14).
//!
//! - The prime `p = 2^2048 - 2^1984 - 1 + 2^64 · ([2^1918 π] + 124476)` is a safe prime
//!   (`p = 2q + 1`, `q` prime) and the generator is 2, which generates the subgroup of order `q`.
//! - Public values and shared secrets are [`MODP2048_LEN`] octets, big-endian, left-padded with
//!   zeros (the encoding IKEv2 and most other protocols use).
//! - Private exponents drawn by [`Modp2048KeyPair::generate`] are [`EXPONENT_LEN`] octets
//!   (256 bits, twice the ~112-bit strength of the group, as RFC 3526 §8 and NIST SP 800-56A
//!   ask) from the injected [`RngHandle`]; they live in OpenSSL's secure heap when it has one,
//!   are used in constant time and are cleared on drop.
//! - A peer's public value is validated before use ([`validate_public`]): 256 octets, in
//!   `2..=p-2`, and in the order-`q` subgroup (`y^q = 1 mod p`, SP 800-56A §5.6.2.3.1).

use std::cmp::Ordering;
use std::fmt;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use zeroize::Zeroize;

use super::{CryptoError, SecretBytes};
use crate::rng::RngHandle;

/// Length of a public value and of a shared secret in octets.
pub const MODP2048_LEN: usize = 256;
/// The generator of the group.
pub const GENERATOR: u32 = 2;
/// Length of the private exponents [`Modp2048KeyPair::generate`] draws, in octets.
pub const EXPONENT_LEN: usize = 32;
/// [`MODP2048_LEN`] as OpenSSL's padding argument wants it.
const MODP2048_LEN_I32: i32 = 256;
/// Attempts at drawing a usable exponent before giving up on the random source.
const MAX_EXPONENT_TRIES: usize = 16;

fn prime() -> Result<BigNum, CryptoError> {
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

/// The prime `p` of the group, [`MODP2048_LEN`] octets, big-endian.
pub fn prime_bytes() -> Result<Vec<u8>, CryptoError> {
    let p = prime()?;
    padded(&p)
}

/// Checks a peer's public value: [`MODP2048_LEN`] octets ([`CryptoError::Length`] otherwise),
/// in `2..=p-2` and in the order-`q` subgroup ([`CryptoError::InvalidPublicValue`] otherwise).
pub fn validate_public(peer: &[u8]) -> Result<(), CryptoError> {
    let p = prime()?;
    let mut ctx = BigNumContext::new()?;
    check_public(peer, &p, &mut ctx).map(|_| ())
}

/// [`validate_public`], returning the value as a number.
fn check_public(
    peer: &[u8],
    p: &BigNumRef,
    ctx: &mut BigNumContext,
) -> Result<BigNum, CryptoError> {
    if peer.len() != MODP2048_LEN {
        return Err(CryptoError::Length {
            what: "MODP-2048 KE data",
            len: peer.len(),
        });
    }
    let y = BigNum::from_slice(peer)?;
    let one = BigNum::from_u32(1)?;
    let mut p_minus_1 = BigNum::new()?;
    p_minus_1.checked_sub(p, &one)?;
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
    let mut check = BigNum::new()?;
    check.mod_exp(&y, &q, p, ctx)?;
    if check.ucmp(&one) != Ordering::Equal {
        return Err(CryptoError::InvalidPublicValue(
            "MODP public value not in the prime-order subgroup",
        ));
    }
    Ok(y)
}

/// A MODP-2048 private exponent `x` and its public value `g^x mod p`. The exponent is cleared
/// when dropped and never printed.
pub struct Modp2048KeyPair {
    x: BigNum,
    public: Vec<u8>,
}

impl Drop for Modp2048KeyPair {
    fn drop(&mut self) {
        self.x.clear();
    }
}

impl fmt::Debug for Modp2048KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Modp2048KeyPair").finish_non_exhaustive()
    }
}

impl Modp2048KeyPair {
    /// A fresh key pair with an [`EXPONENT_LEN`]-octet exponent from `rng` (redrawn if below 2),
    /// so a seeded or fixed [`RngHandle`] gives reproducible keys.
    pub fn generate(rng: &RngHandle) -> Result<Modp2048KeyPair, CryptoError> {
        for _ in 0..MAX_EXPONENT_TRIES {
            let mut candidate = [0u8; EXPONENT_LEN];
            rng.fill(&mut candidate)?;
            let key = Modp2048KeyPair::try_exponent(&candidate);
            candidate.zeroize();
            if let Some(key) = key? {
                return Ok(key);
            }
        }
        Err(CryptoError::Library(
            "no valid MODP exponent from the random source".into(),
        ))
    }

    /// The key pair with exponent `x` (1..=[`MODP2048_LEN`] octets, big-endian, value at least
    /// 2). A wrong length is [`CryptoError::KeyLength`], a value below 2
    /// [`CryptoError::InvalidPublicValue`]. For known-answer tests and stored keys.
    pub fn from_exponent(x: &[u8]) -> Result<Modp2048KeyPair, CryptoError> {
        if x.is_empty() || x.len() > MODP2048_LEN {
            return Err(CryptoError::KeyLength(x.len()));
        }
        Modp2048KeyPair::try_exponent(x)?
            .ok_or(CryptoError::InvalidPublicValue("MODP exponent below 2"))
    }

    /// The key pair with exponent `bytes`, or `None` when the exponent is 0 or 1.
    fn try_exponent(bytes: &[u8]) -> Result<Option<Modp2048KeyPair>, CryptoError> {
        let mut x = secret_bignum(bytes)?;
        if x.num_bits() < 2 {
            x.clear();
            return Ok(None);
        }
        // From here on `x` is owned by the key pair, whose Drop clears it on every path.
        let mut key = Modp2048KeyPair {
            x,
            public: Vec::new(),
        };
        let p = prime()?;
        let g = BigNum::from_u32(GENERATOR)?;
        let mut ctx = BigNumContext::new_secure()?;
        let mut y = BigNum::new()?;
        y.mod_exp(&g, &key.x, &p, &mut ctx)?;
        key.public = padded(&y)?;
        Ok(Some(key))
    }

    /// The public value `g^x mod p`, [`MODP2048_LEN`] octets, left-padded.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret `peer^x mod p` ([`MODP2048_LEN`] octets, left-padded) after
    /// [`validate_public`] accepts `peer`. A result of 0 or 1 (impossible for a valid peer
    /// value) is [`CryptoError::InvalidPublicValue`].
    pub fn diffie_hellman(&self, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        let p = prime()?;
        let mut ctx = BigNumContext::new_secure()?;
        let y = check_public(peer, &p, &mut ctx)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3526 §3, the 2048-bit MODP group's prime as the RFC prints it.
    const RFC3526_P2048: &str = "
        FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
        29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
        EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
        E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
        EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
        C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
        83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
        670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
        E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
        DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
        15728E5A 8AACAA68 FFFFFFFF FFFFFFFF";

    fn rfc_prime() -> Vec<u8> {
        let s: String = RFC3526_P2048.split_whitespace().collect();
        hex::decode(s).unwrap()
    }

    /// `2^k` as a 256-octet big-endian value (k < 2048).
    fn pow2(k: usize) -> Vec<u8> {
        let mut v = vec![0u8; MODP2048_LEN];
        v[MODP2048_LEN - 1 - k / 8] = 1 << (k % 8);
        v
    }

    /// `2^2048 - p` (that is, `2^2048 mod p`), by two's complement negation of `p`.
    fn two_pow_2048_mod_p() -> Vec<u8> {
        let mut v: Vec<u8> = rfc_prime().iter().map(|b| !b).collect();
        for b in v.iter_mut().rev() {
            let (s, carry) = b.overflowing_add(1);
            *b = s;
            if !carry {
                break;
            }
        }
        v
    }

    /// `x` as a big-endian exponent.
    fn exponent(x: u16) -> Vec<u8> {
        x.to_be_bytes().to_vec()
    }

    #[test]
    fn prime_is_rfc3526_group_14() {
        let p = rfc_prime();
        assert_eq!(p.len(), MODP2048_LEN);
        assert_eq!(prime_bytes().unwrap(), p);
        // p = 2^2048 - 2^1984 - 1 + 2^64·(...): the top and bottom 64 bits are all ones.
        assert!(p[..8].iter().all(|&b| b == 0xff));
        assert!(p[MODP2048_LEN - 8..].iter().all(|&b| b == 0xff));
        // A safe prime: p and q = (p-1)/2 are both prime.
        let mut ctx = BigNumContext::new().unwrap();
        let p = BigNum::from_slice(&p).unwrap();
        assert!(p.is_prime(64, &mut ctx).unwrap());
        let mut q = BigNum::new().unwrap();
        q.rshift1(&p).unwrap();
        assert!(q.is_prime(64, &mut ctx).unwrap());
        // 2 generates the order-q subgroup: 2^q = 1 (mod p).
        let mut r = BigNum::new().unwrap();
        r.mod_exp(&BigNum::from_u32(GENERATOR).unwrap(), &q, &p, &mut ctx)
            .unwrap();
        assert_eq!(r, BigNum::from_u32(1).unwrap());
    }

    /// Small exponents give public values that can be written down without the library:
    /// `2^x` for x < 2048, and `2^2048 mod p = 2^2048 - p`.
    #[test]
    fn public_values_of_known_exponents() {
        for x in [2u16, 3, 8, 1000, 2047] {
            let kp = Modp2048KeyPair::from_exponent(&exponent(x)).unwrap();
            assert_eq!(kp.public(), pow2(usize::from(x)), "g^{x}");
        }
        let kp = Modp2048KeyPair::from_exponent(&exponent(2048)).unwrap();
        assert_eq!(kp.public(), two_pow_2048_mod_p());
        // Shared secret with a known peer value: (2^2047)^2 = 2^4094 = 2^2046 · 2^2048; with
        // exponent 2 and peer 2^1000 the secret is 2^2000.
        let kp = Modp2048KeyPair::from_exponent(&exponent(2)).unwrap();
        let z = kp.diffie_hellman(&pow2(1000)).unwrap();
        assert_eq!(z.expose(), pow2(2000));
    }

    #[test]
    fn agreement() {
        let rng = RngHandle::seeded(7);
        let a = Modp2048KeyPair::generate(&rng).unwrap();
        let b = Modp2048KeyPair::generate(&rng).unwrap();
        assert_ne!(a.public(), b.public());
        validate_public(a.public()).unwrap();
        validate_public(b.public()).unwrap();
        let za = a.diffie_hellman(b.public()).unwrap();
        let zb = b.diffie_hellman(a.public()).unwrap();
        assert_eq!(za.expose(), zb.expose());
        assert_eq!(za.len(), MODP2048_LEN);
        // Fixed exponents: (g^a)^b = (g^b)^a = g^(ab), and g^(ab) for ab = 6 · 300 = 1800 is
        // 2^1800.
        let a = Modp2048KeyPair::from_exponent(&exponent(6)).unwrap();
        let b = Modp2048KeyPair::from_exponent(&exponent(300)).unwrap();
        assert_eq!(a.diffie_hellman(b.public()).unwrap().expose(), pow2(1800));
        assert_eq!(b.diffie_hellman(a.public()).unwrap().expose(), pow2(1800));
        assert_eq!(format!("{a:?}"), "Modp2048KeyPair { .. }");
    }

    #[test]
    fn bad_public_values_are_rejected() {
        let kp = Modp2048KeyPair::from_exponent(&exponent(12345)).unwrap();
        let p = rfc_prime();
        let minus = |k: u8| {
            let mut v = p.clone();
            v[MODP2048_LEN - 1] -= k;
            v
        };
        let mut one = vec![0u8; MODP2048_LEN];
        one[MODP2048_LEN - 1] = 1;
        let cases = [
            (vec![0u8; MODP2048_LEN], "MODP public value 0 or 1"),
            (one, "MODP public value 0 or 1"),
            (minus(1), "MODP public value p-1 or not below p"),
            (p.clone(), "MODP public value p-1 or not below p"),
            (
                vec![0xff; MODP2048_LEN],
                "MODP public value p-1 or not below p",
            ),
            // -2 is not a square mod p (p = 7 mod 8), so not in the order-q subgroup.
            (
                minus(2),
                "MODP public value not in the prime-order subgroup",
            ),
        ];
        for (value, why) in cases {
            assert_eq!(
                validate_public(&value),
                Err(CryptoError::InvalidPublicValue(why))
            );
            assert_eq!(
                kp.diffie_hellman(&value).map(|_| ()),
                Err(CryptoError::InvalidPublicValue(why))
            );
        }
        for len in [0, 255, 257] {
            assert_eq!(
                kp.diffie_hellman(&vec![2u8; len]).map(|_| ()),
                Err(CryptoError::Length {
                    what: "MODP-2048 KE data",
                    len
                })
            );
        }
    }

    #[test]
    fn bad_exponents_are_rejected() {
        assert_eq!(
            Modp2048KeyPair::from_exponent(&[]).map(|_| ()),
            Err(CryptoError::KeyLength(0))
        );
        assert_eq!(
            Modp2048KeyPair::from_exponent(&[1; 257]).map(|_| ()),
            Err(CryptoError::KeyLength(257))
        );
        for x in [&[0u8][..], &[1], &[0, 0, 1]] {
            assert_eq!(
                Modp2048KeyPair::from_exponent(x).map(|_| ()),
                Err(CryptoError::InvalidPublicValue("MODP exponent below 2"))
            );
        }
    }
}
