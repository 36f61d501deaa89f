//! Ephemeral key exchange beyond P-256 ([`super::ecc`]): X25519 (RFC 7748) and P-384 ECDH
//! (SEC 1 §3.3.1, the groups TLS offers next to P-256).
//!
//! - Private keys come from the injected [`RngHandle`], so known-answer tests can fix them.
//! - X25519 public keys are the 32-octet u-coordinate; an all-zero shared secret (a small-order
//!   peer point, RFC 7748 §6.1) is [`CryptoError::InvalidPublicValue`].
//! - P-384 public keys are uncompressed SEC 1 points (`04 ‖ x ‖ y`, 97 octets), validated (on
//!   the curve, not infinity); the shared secret is the x-coordinate (48 octets).

use core::fmt;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use zeroize::Zeroize;

use super::{CryptoError, SecretBytes};
use crate::rng::RngHandle;

/// Length of an X25519 key or shared secret.
pub const X25519_LEN: usize = 32;
/// Length of a P-384 scalar, coordinate or shared secret.
pub const P384_SCALAR_LEN: usize = 48;
/// Length of an uncompressed P-384 point.
pub const P384_UNCOMPRESSED_LEN: usize = 97;

/// An X25519 private key and its public u-coordinate.
pub struct X25519KeyPair {
    key: PKey<Private>,
    public: [u8; X25519_LEN],
}

impl fmt::Debug for X25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519KeyPair(public {})", hex::encode(self.public))
    }
}

impl X25519KeyPair {
    /// A fresh key: 32 octets from `rng` (clamped by the X25519 function, RFC 7748 §5).
    pub fn generate(rng: &RngHandle) -> Result<X25519KeyPair, CryptoError> {
        let mut k = [0u8; X25519_LEN];
        rng.fill(&mut k)?;
        let pair = X25519KeyPair::from_private(&k);
        k.zeroize();
        pair
    }

    /// The key with private scalar octets `k` (RFC 7748 §5, before clamping).
    pub fn from_private(k: &[u8; X25519_LEN]) -> Result<X25519KeyPair, CryptoError> {
        let key = PKey::private_key_from_raw_bytes(k, Id::X25519)?;
        let raw = key.raw_public_key()?;
        let public: [u8; X25519_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Library("X25519 public key length".into()))?;
        Ok(X25519KeyPair { key, public })
    }

    /// The public u-coordinate.
    pub fn public_key(&self) -> &[u8; X25519_LEN] {
        &self.public
    }

    /// X25519(k, peer): 32 octets. A peer key of another length, or one that gives the
    /// all-zero secret, is [`CryptoError::InvalidPublicValue`].
    pub fn diffie_hellman(&self, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer.len() != X25519_LEN {
            return Err(CryptoError::InvalidPublicValue(
                "X25519 key of another length",
            ));
        }
        let invalid = |_| CryptoError::InvalidPublicValue("X25519 peer key refused");
        let peer = PKey::public_key_from_raw_bytes(peer, Id::X25519).map_err(invalid)?;
        let mut deriver = Deriver::new(&self.key)?;
        deriver.set_peer(&peer).map_err(invalid)?;
        // OpenSSL refuses the all-zero result itself.
        let mut z = deriver.derive_to_vec().map_err(invalid)?;
        let out = SecretBytes::from_slice(&z);
        z.zeroize();
        if out.expose().iter().all(|&b| b == 0) {
            return Err(CryptoError::InvalidPublicValue(
                "X25519 shared secret is zero",
            ));
        }
        Ok(out)
    }
}

fn p384() -> Result<&'static EcGroup, CryptoError> {
    static GROUP: OnceLock<Option<EcGroup>> = OnceLock::new();
    GROUP
        .get_or_init(|| EcGroup::from_curve_name(Nid::SECP384R1).ok())
        .as_ref()
        .ok_or_else(|| CryptoError::Library("P-384 unavailable in the crypto library".into()))
}

/// A P-384 private scalar and its public point, for ECDH.
pub struct P384KeyPair {
    key: EcKey<Private>,
    public: [u8; P384_UNCOMPRESSED_LEN],
}

impl fmt::Debug for P384KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P384KeyPair(public {})", hex::encode(self.public))
    }
}

/// How many candidate scalars to draw before giving up (each is rejected with probability
/// about 2^-190).
const MAX_SCALAR_TRIES: usize = 64;

impl P384KeyPair {
    /// A fresh key pair, the scalar drawn from `rng` (48 octets per candidate; 0 and ≥ n are
    /// redrawn).
    pub fn generate(rng: &RngHandle) -> Result<P384KeyPair, CryptoError> {
        for _ in 0..MAX_SCALAR_TRIES {
            let mut d = [0u8; P384_SCALAR_LEN];
            rng.fill(&mut d)?;
            let pair = P384KeyPair::from_scalar(&d);
            d.zeroize();
            match pair {
                Err(CryptoError::InvalidPublicValue(_)) => continue,
                other => return other,
            }
        }
        Err(CryptoError::Library(
            "no valid P-384 scalar from the random source".into(),
        ))
    }

    /// The key pair with scalar `d` (48 octets, big-endian, in 1..n).
    pub fn from_scalar(d: &[u8]) -> Result<P384KeyPair, CryptoError> {
        if d.len() != P384_SCALAR_LEN {
            return Err(CryptoError::KeyLength(d.len()));
        }
        let group = p384()?;
        let mut ctx = BigNumContext::new()?;
        let mut n = BigNum::new()?;
        group.order(&mut n, &mut ctx)?;
        let mut d = BigNum::from_slice(d)?;
        if d.num_bits() == 0 || d.ucmp(&n) != core::cmp::Ordering::Less {
            d.clear();
            return Err(CryptoError::InvalidPublicValue("P-384 scalar out of range"));
        }
        let mut q = EcPoint::new(group)?;
        q.mul_generator2(group, &d, &mut ctx)?;
        let key = EcKey::from_private_components(group, &d, &q)?;
        d.clear();
        let bytes = q.to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
        let public = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Library("P-384 point length".into()))?;
        Ok(P384KeyPair { key, public })
    }

    /// The public point, uncompressed.
    pub fn public_key(&self) -> &[u8; P384_UNCOMPRESSED_LEN] {
        &self.public
    }

    /// ECDH with an uncompressed peer point: the x-coordinate of d·Q (48 octets). A point of
    /// another length or form, off the curve, or giving infinity is
    /// [`CryptoError::InvalidPublicValue`].
    pub fn diffie_hellman(&self, peer: &[u8]) -> Result<SecretBytes, CryptoError> {
        if peer.len() != P384_UNCOMPRESSED_LEN || peer[0] != 4 {
            return Err(CryptoError::InvalidPublicValue(
                "P-384 point not uncompressed",
            ));
        }
        let group = p384()?;
        let mut ctx = BigNumContext::new_secure()?;
        let q = EcPoint::from_bytes(group, peer, &mut ctx)
            .map_err(|_| CryptoError::InvalidPublicValue("P-384 point not on the curve"))?;
        let mut shared = EcPoint::new(group)?;
        shared.mul2(group, &q, self.key.private_key(), &mut ctx)?;
        if shared.is_infinity(group) {
            return Err(CryptoError::InvalidPublicValue(
                "ECDH result is the point at infinity",
            ));
        }
        let mut x = BigNum::new_secure()?;
        let mut y = BigNum::new()?;
        shared.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
        let mut z = x.to_vec_padded(48)?;
        let out = SecretBytes::from_slice(&z);
        z.zeroize();
        x.clear();
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    /// RFC 7748 §6.1: Alice's and Bob's keys and their shared secret, both ways.
    #[test]
    fn x25519_rfc7748_section_6_1() {
        let a = X25519KeyPair::from_private(
            &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let b = X25519KeyPair::from_private(
            &h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
                .try_into()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            a.public_key().to_vec(),
            h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            b.public_key().to_vec(),
            h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(
            a.diffie_hellman(b.public_key()).unwrap().expose(),
            &shared[..]
        );
        assert_eq!(
            b.diffie_hellman(a.public_key()).unwrap().expose(),
            &shared[..]
        );
        // A small-order point (u = 0) and a short key are refused.
        assert!(a.diffie_hellman(&[0u8; 32]).is_err());
        assert!(a.diffie_hellman(&[9u8; 31]).is_err());
        // Fresh keys agree.
        let rng = RngHandle::os();
        let (c, d) = (
            X25519KeyPair::generate(&rng).unwrap(),
            X25519KeyPair::generate(&rng).unwrap(),
        );
        assert_eq!(
            c.diffie_hellman(d.public_key()).unwrap(),
            d.diffie_hellman(c.public_key()).unwrap()
        );
    }

    /// RFC 5903 §8.2 (384-bit random ECP group): both public keys and the shared secret.
    #[test]
    fn p384_rfc5903_section_8_2() {
        let i = P384KeyPair::from_scalar(&h("099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F16\
             0647B67414DCE655E35B538041E649EE3FAEF896783AB194"))
        .unwrap();
        let r = P384KeyPair::from_scalar(&h("41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060\
             855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC"))
        .unwrap();
        let gi = h(
            "04 667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6\
             DE3AC808ACB4BDB4C88732AEE95F41AA 9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144AD\
             A024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
        );
        let gr = h(
            "04 E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D\
             0D1AC43A0336DEF96FDA41D0774A3571 DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416\
             DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
        );
        assert_eq!(i.public_key().to_vec(), gi);
        assert_eq!(r.public_key().to_vec(), gr);
        let z = h(
            "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4\
             D603135569B9E9D09CF5D4A270F59746",
        );
        assert_eq!(i.diffie_hellman(&gr).unwrap().expose(), &z[..]);
        assert_eq!(r.diffie_hellman(&gi).unwrap().expose(), &z[..]);
        // Off the curve, compressed, short: refused. Scalars 0 and ≥ n: refused.
        let mut off = gr.clone();
        off[96] ^= 1;
        for bad in [off, gr[..49].to_vec(), vec![4u8; 97]] {
            assert!(i.diffie_hellman(&bad).is_err());
        }
        assert!(P384KeyPair::from_scalar(&[0u8; 48]).is_err());
        assert!(P384KeyPair::from_scalar(&[0xffu8; 48]).is_err());
        assert!(P384KeyPair::from_scalar(&[1u8; 47]).is_err());
        let rng = RngHandle::os();
        let (a, b) = (
            P384KeyPair::generate(&rng).unwrap(),
            P384KeyPair::generate(&rng).unwrap(),
        );
        assert_eq!(
            a.diffie_hellman(b.public_key()).unwrap(),
            b.diffie_hellman(a.public_key()).unwrap()
        );
    }
}
