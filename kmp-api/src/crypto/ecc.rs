//! NIST P-256 (secp256r1) ECDH and ECDSA with SHA-256.
//!
//! - Private scalars come from the injected [`RngHandle`] (32 octets, rejected and redrawn if 0
//!   or ≥ n, FIPS 186-4 B.4.2 "testing candidates"), so known-answer tests can fix them.
//! - Public keys travel as SEC 1 §2.3.3 uncompressed points (`04 ‖ x ‖ y`, 65 octets) or as the
//!   affine `x ‖ y` (64 octets) that IKEv2 (RFC 5903 §7) and HIP use.
//! - Peer points are validated (on the curve, not the point at infinity, coordinates < p) and
//!   rejected with [`CryptoError::InvalidPublicValue`].
//! - The ECDH shared secret is the x-coordinate of `d·Q` (SEC 1 §3.3.1, RFC 5903 §7), 32 octets.
//! - ECDSA hashes with SHA-256; signatures as DER `ECDSA-Sig-Value` or raw `r ‖ s` (64 octets).
//!   The per-signature nonce `k` comes from OpenSSL's CSPRNG.

use core::fmt;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use zeroize::Zeroize;

use super::hmac::sha256;
use super::{CryptoError, SecretKey};
use crate::rng::RngHandle;

/// Length of a scalar or a coordinate.
pub const SCALAR_LEN: usize = 32;
/// Length of an uncompressed SEC 1 point.
pub const UNCOMPRESSED_LEN: usize = 65;
/// Length of affine `x ‖ y`.
pub const XY_LEN: usize = 64;
/// Length of a raw `r ‖ s` signature.
pub const RAW_SIGNATURE_LEN: usize = 64;

/// How many candidate scalars to draw before giving up (each is rejected with probability
/// about 2^-32, so running out means the random source is broken).
const MAX_SCALAR_TRIES: usize = 64;

/// The P-256 group, built once per process (building it from the curve name allocates and
/// looks the curve up each time).
fn group() -> Result<&'static EcGroup, CryptoError> {
    static GROUP: std::sync::OnceLock<Option<EcGroup>> = std::sync::OnceLock::new();
    GROUP
        .get_or_init(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok())
        .as_ref()
        .ok_or_else(|| CryptoError::Library("P-256 unavailable in the crypto library".into()))
}

fn order(group: &EcGroup) -> Result<BigNum, CryptoError> {
    let mut ctx = BigNumContext::new()?;
    let mut n = BigNum::new()?;
    group.order(&mut n, &mut ctx)?;
    Ok(n)
}

/// A P-256 public key (a validated point).
#[derive(Clone)]
pub struct P256PublicKey {
    key: EcKey<Public>,
    uncompressed: [u8; UNCOMPRESSED_LEN],
}

impl P256PublicKey {
    /// Parses any SEC 1 §2.3.4 encoding (uncompressed `04…`, compressed `02…`/`03…`) and
    /// validates the point.
    pub fn from_sec1(bytes: &[u8]) -> Result<P256PublicKey, CryptoError> {
        let group = group()?;
        let mut ctx = BigNumContext::new()?;
        let point = EcPoint::from_bytes(group, bytes, &mut ctx)
            .map_err(|_| CryptoError::InvalidPublicValue("not a P-256 point encoding"))?;
        // An uncompressed input is already the encoding we keep (re-encoding would cost a
        // field inversion); decoding checked that its coordinates are below p.
        let encoded = <&[u8; UNCOMPRESSED_LEN]>::try_from(bytes)
            .ok()
            .filter(|b| b[0] == 0x04);
        P256PublicKey::check_point(group, &point, &mut ctx)?;
        match encoded {
            Some(e) => Ok(P256PublicKey {
                key: EcKey::from_public_key(group, &point)?,
                uncompressed: *e,
            }),
            None => Self::from_valid_point(group, &point, &mut ctx),
        }
    }

    /// Parses an uncompressed point (`04 ‖ x ‖ y`, 65 octets).
    pub fn from_uncompressed(bytes: &[u8]) -> Result<P256PublicKey, CryptoError> {
        if bytes.len() != UNCOMPRESSED_LEN || bytes[0] != 0x04 {
            return Err(CryptoError::InvalidPublicValue(
                "not an uncompressed P-256 point",
            ));
        }
        P256PublicKey::from_sec1(bytes)
    }

    /// Parses affine `x ‖ y` (64 octets, big-endian coordinates).
    pub fn from_xy(bytes: &[u8]) -> Result<P256PublicKey, CryptoError> {
        if bytes.len() != XY_LEN {
            return Err(CryptoError::Length {
                what: "P-256 x||y",
                len: bytes.len(),
            });
        }
        let mut sec1 = [0x04; UNCOMPRESSED_LEN];
        sec1[1..].copy_from_slice(bytes);
        P256PublicKey::from_sec1(&sec1)
    }

    /// Parses a DER `SubjectPublicKeyInfo` (RFC 5480) holding a P-256 key.
    pub fn from_spki_der(der: &[u8]) -> Result<P256PublicKey, CryptoError> {
        let pkey = PKey::public_key_from_der(der)
            .map_err(|_| CryptoError::InvalidPublicValue("not a SubjectPublicKeyInfo"))?;
        let ec = pkey
            .ec_key()
            .map_err(|_| CryptoError::InvalidPublicValue("not an EC key"))?;
        if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(CryptoError::InvalidPublicValue("EC key not on P-256"));
        }
        let group = group()?;
        let mut ctx = BigNumContext::new()?;
        P256PublicKey::from_point(group, ec.public_key(), &mut ctx)
    }

    fn from_point(
        group: &EcGroup,
        point: &openssl::ec::EcPointRef,
        ctx: &mut BigNumContext,
    ) -> Result<P256PublicKey, CryptoError> {
        P256PublicKey::check_point(group, point, ctx)?;
        Self::from_valid_point(group, point, ctx)
    }

    fn check_point(
        group: &EcGroup,
        point: &openssl::ec::EcPointRef,
        ctx: &mut BigNumContext,
    ) -> Result<(), CryptoError> {
        if point.is_infinity(group) {
            return Err(CryptoError::InvalidPublicValue("point at infinity"));
        }
        if !point.is_on_curve(group, ctx)? {
            return Err(CryptoError::InvalidPublicValue("point not on P-256"));
        }
        // SEC 1 §3.2.2.1: with cofactor 1, a point on the curve other than infinity is a valid
        // public key; the n·Q = O check (`EC_KEY_check_key`) would only cost a scalar
        // multiplication. Coordinates ≥ p never get here: decoding rejects them.
        Ok(())
    }

    /// A key from a point known to be valid (checked above, or computed as d·G by us).
    fn from_valid_point(
        group: &EcGroup,
        point: &openssl::ec::EcPointRef,
        ctx: &mut BigNumContext,
    ) -> Result<P256PublicKey, CryptoError> {
        let key = EcKey::from_public_key(group, point)?;
        let bytes = point.to_bytes(group, PointConversionForm::UNCOMPRESSED, ctx)?;
        let uncompressed: [u8; UNCOMPRESSED_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Library("P-256 point encoding length".into()))?;
        Ok(P256PublicKey { key, uncompressed })
    }

    /// `04 ‖ x ‖ y`.
    pub fn to_uncompressed(&self) -> [u8; UNCOMPRESSED_LEN] {
        self.uncompressed
    }

    /// `x ‖ y`.
    pub fn to_xy(&self) -> [u8; XY_LEN] {
        let mut xy = [0u8; XY_LEN];
        xy.copy_from_slice(&self.uncompressed[1..]);
        xy
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.key.public_key_to_der()?)
    }

    /// Verifies a raw `r ‖ s` ECDSA signature (64 octets) over SHA-256(`msg`).
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.verify_digest(&sha256(msg), signature)
    }

    /// Verifies a raw `r ‖ s` ECDSA signature over a SHA-256 `digest`.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), CryptoError> {
        if signature.len() != RAW_SIGNATURE_LEN {
            return Err(CryptoError::Length {
                what: "ECDSA r||s",
                len: signature.len(),
            });
        }
        let r = BigNum::from_slice(&signature[..SCALAR_LEN])?;
        let s = BigNum::from_slice(&signature[SCALAR_LEN..])?;
        let sig = EcdsaSig::from_private_components(r, s)?;
        self.check(&sig, digest)
    }

    /// Verifies a DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3) over SHA-256(`msg`). Only canonical
    /// DER is accepted.
    pub fn verify_der(&self, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let sig = EcdsaSig::from_der(signature).map_err(|_| CryptoError::AuthenticationFailed)?;
        if sig.to_der()? != signature {
            return Err(CryptoError::AuthenticationFailed);
        }
        self.check(&sig, &sha256(msg))
    }

    fn check(&self, sig: &EcdsaSig, digest: &[u8; 32]) -> Result<(), CryptoError> {
        match sig.verify(digest, &self.key) {
            Ok(true) => Ok(()),
            // OpenSSL reports r or s out of range as an error, a wrong signature as false.
            Ok(false) | Err(_) => Err(CryptoError::AuthenticationFailed),
        }
    }
}

impl PartialEq for P256PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.uncompressed == other.uncompressed
    }
}

impl Eq for P256PublicKey {}

impl fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256PublicKey({})", hex::encode(self.uncompressed))
    }
}

/// A P-256 private scalar with its public point. The scalar lives inside OpenSSL, which clears
/// it when the key is dropped; `Debug` shows only the public part.
#[derive(Clone)]
pub struct P256KeyPair {
    key: EcKey<Private>,
    public: P256PublicKey,
}

impl P256KeyPair {
    /// A fresh key pair with the scalar drawn from `rng` (32 octets per candidate; candidates
    /// 0 and ≥ n are discarded and redrawn).
    pub fn generate(rng: &RngHandle) -> Result<P256KeyPair, CryptoError> {
        let group = group()?;
        let n = order(group)?;
        for _ in 0..MAX_SCALAR_TRIES {
            let mut candidate = [0u8; SCALAR_LEN];
            rng.fill(&mut candidate)?;
            let d = secret_bignum(&candidate);
            candidate.zeroize();
            let d = d?;
            if d.num_bits() != 0 && d.ucmp(&n) == core::cmp::Ordering::Less {
                return P256KeyPair::from_bignum(group, &d);
            }
        }
        Err(CryptoError::Library(
            "no valid P-256 scalar from the random source".into(),
        ))
    }

    /// The key pair with scalar `d` (32 octets, big-endian); `d` must be in 1..n
    /// ([`CryptoError::InvalidPublicValue`] otherwise).
    pub fn from_scalar(d: &[u8]) -> Result<P256KeyPair, CryptoError> {
        if d.len() != SCALAR_LEN {
            return Err(CryptoError::KeyLength(d.len()));
        }
        let group = group()?;
        let n = order(group)?;
        let d = secret_bignum(d)?;
        if d.num_bits() == 0 || d.ucmp(&n) != core::cmp::Ordering::Less {
            return Err(CryptoError::InvalidPublicValue("P-256 scalar out of range"));
        }
        P256KeyPair::from_bignum(group, &d)
    }

    fn from_bignum(group: &EcGroup, d: &BigNum) -> Result<P256KeyPair, CryptoError> {
        let mut ctx = BigNumContext::new()?;
        let mut q = EcPoint::new(group)?;
        q.mul_generator2(group, d, &mut ctx)?;
        // Q = d·G with d in 1..n was just computed here: it is on the curve and not infinity,
        // so the library's key check (two more scalar multiplications) adds nothing.
        let key = EcKey::from_private_components(group, d, &q)?;
        let public = P256PublicKey::from_valid_point(group, &q, &mut ctx)?;
        Ok(P256KeyPair { key, public })
    }

    /// The public key.
    pub fn public_key(&self) -> &P256PublicKey {
        &self.public
    }

    /// The private scalar, 32 octets big-endian (for storage or protocols that do scalar
    /// arithmetic, such as SAE).
    pub fn scalar(&self) -> Result<SecretKey<SCALAR_LEN>, CryptoError> {
        let mut v = self.key.private_key().to_vec_padded(32)?;
        let out = SecretKey::from_slice(&v);
        v.zeroize();
        out
    }

    /// ECDH (SEC 1 §3.3.1): the x-coordinate of `d·Q_peer`, 32 octets.
    pub fn diffie_hellman(&self, peer: &P256PublicKey) -> Result<SecretKey<32>, CryptoError> {
        // The point multiplication directly (OpenSSL's constant-time P-256 code), without the
        // EVP key conversions and algorithm fetches of an `EVP_PKEY_derive` per call.
        let group = group()?;
        let mut ctx = BigNumContext::new_secure()?;
        let mut shared = EcPoint::new(group)?;
        shared.mul2(
            group,
            peer.key.public_key(),
            self.key.private_key(),
            &mut ctx,
        )?;
        if shared.is_infinity(group) {
            return Err(CryptoError::InvalidPublicValue(
                "ECDH result is the point at infinity",
            ));
        }
        let mut x = BigNum::new_secure()?;
        let mut y = BigNum::new()?;
        shared.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
        let mut z = x.to_vec_padded(32)?;
        let out = SecretKey::from_slice(&z);
        z.zeroize();
        x.clear();
        out
    }

    /// ECDSA over SHA-256(`msg`), raw `r ‖ s` (64 octets).
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; RAW_SIGNATURE_LEN], CryptoError> {
        self.sign_digest(&sha256(msg))
    }

    /// ECDSA over a SHA-256 `digest`, raw `r ‖ s`.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; RAW_SIGNATURE_LEN], CryptoError> {
        let sig = EcdsaSig::sign(digest, &self.key)?;
        let mut out = [0u8; RAW_SIGNATURE_LEN];
        out[..SCALAR_LEN].copy_from_slice(&sig.r().to_vec_padded(32)?);
        out[SCALAR_LEN..].copy_from_slice(&sig.s().to_vec_padded(32)?);
        Ok(out)
    }

    /// ECDSA over SHA-256(`msg`), DER `ECDSA-Sig-Value` (at most 72 octets).
    pub fn sign_der(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(EcdsaSig::sign(&sha256(msg), &self.key)?.to_der()?)
    }
}

impl fmt::Debug for P256KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A BigNum that OpenSSL clears when freeing it.
fn secret_bignum(bytes: &[u8]) -> Result<BigNum, CryptoError> {
    let mut bn = BigNum::new_secure()?;
    bn.copy_from_slice(bytes)?;
    bn.set_const_time();
    Ok(bn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 5903 §8.1 (256-bit random ECP group): i, g^i, r, g^r, g^ir.
    const I: &str = "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433";
    const GI: &str = "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180\
                      5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3";
    const R: &str = "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53";
    const GR: &str = "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63\
                      56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab";
    const GIR_X: &str = "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de";

    #[test]
    fn rfc5903_ecdh() {
        // Scalars injected through the RNG, as a KMP session would get them.
        let rng = RngHandle::fixed([h(I), h(R)].concat());
        let i = P256KeyPair::generate(&rng).unwrap();
        let r = P256KeyPair::generate(&rng).unwrap();
        assert_eq!(i.public_key().to_xy().to_vec(), h(GI));
        assert_eq!(r.public_key().to_xy().to_vec(), h(GR));
        assert_eq!(
            i.public_key().to_uncompressed().to_vec(),
            [vec![4], h(GI)].concat()
        );
        assert_eq!(i.scalar().unwrap().expose().to_vec(), h(I));

        let gr = P256PublicKey::from_xy(&h(GR)).unwrap();
        let gi = P256PublicKey::from_uncompressed(&[vec![4], h(GI)].concat()).unwrap();
        assert_eq!(i.diffie_hellman(&gr).unwrap().expose().to_vec(), h(GIR_X));
        assert_eq!(r.diffie_hellman(&gi).unwrap().expose().to_vec(), h(GIR_X));
        assert_eq!(P256KeyPair::from_scalar(&h(I)).unwrap().public_key(), &gi);
    }

    #[test]
    fn scalar_rejection_redraws() {
        let n = h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        // 0, then n, then 2^256-1, then the RFC 5903 scalar: the first three are discarded.
        let rng = RngHandle::fixed([vec![0; 32], n.clone(), vec![0xff; 32], h(I)].concat());
        let k = P256KeyPair::generate(&rng).unwrap();
        assert_eq!(k.public_key().to_xy().to_vec(), h(GI));
        assert!(matches!(
            P256KeyPair::from_scalar(&n),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        assert!(matches!(
            P256KeyPair::from_scalar(&[0; 32]),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        assert_eq!(
            P256KeyPair::from_scalar(&[1; 31]).err(),
            Some(CryptoError::KeyLength(31))
        );
        // A dry source is an RNG error, not a panic.
        assert!(matches!(
            P256KeyPair::generate(&RngHandle::fixed(vec![1; 10])),
            Err(CryptoError::Rng(_))
        ));
    }

    // RFC 6979 Appendix A.2.5: the P-256 key and the SHA-256 signatures of "sample" and
    // "test" (deterministic k there; any valid signature must verify here).
    #[test]
    fn rfc6979_a25_signatures_verify() {
        let x = h("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
        let u = h(
            "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
                   7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
        );
        let key = P256KeyPair::from_scalar(&x).unwrap();
        assert_eq!(key.public_key().to_xy().to_vec(), u);
        let public = P256PublicKey::from_xy(&u).unwrap();
        let sample = h(
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
                        f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        );
        let test = h(
            "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367\
                      019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
        );
        public.verify(b"sample", &sample).unwrap();
        public.verify(b"test", &test).unwrap();
        assert_eq!(
            public.verify(b"test", &sample),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut bad = sample.clone();
        bad[63] ^= 1;
        assert_eq!(
            public.verify(b"sample", &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        // r = 0 and s = n are out of range: a failure, not an error or panic.
        assert_eq!(
            public.verify(b"sample", &[0; 64]),
            Err(CryptoError::AuthenticationFailed)
        );
        // The DER form of the same signature.
        let der = h(
            "3046022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
                     022100f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        );
        public.verify_der(b"sample", &der).unwrap();
        assert_eq!(
            public.verify_der(b"sample", &der[..70]),
            Err(CryptoError::AuthenticationFailed)
        );
        // A non-minimal length encoding of the same value is refused.
        let mut long_form = vec![0x30, 0x81, 0x46];
        long_form.extend_from_slice(&der[2..]);
        assert_eq!(
            public.verify_der(b"sample", &long_form),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn sign_verify_round_trips() {
        let rng = RngHandle::seeded(256);
        let key = P256KeyPair::generate(&rng).unwrap();
        let other = P256KeyPair::generate(&rng).unwrap();
        let sig = key.sign(b"IKE_AUTH octets").unwrap();
        key.public_key().verify(b"IKE_AUTH octets", &sig).unwrap();
        assert!(other.public_key().verify(b"IKE_AUTH octets", &sig).is_err());
        let der = key.sign_der(b"HIP I2").unwrap();
        key.public_key().verify_der(b"HIP I2", &der).unwrap();
        assert!(key.public_key().verify_der(b"HIP R2", &der).is_err());
        let spki = key.public_key().to_spki_der().unwrap();
        assert_eq!(
            &P256PublicKey::from_spki_der(&spki).unwrap(),
            key.public_key()
        );
        assert!(format!("{key:?}").starts_with("P256KeyPair { public: P256PublicKey(04"));
        assert_eq!(
            key.diffie_hellman(other.public_key()).unwrap(),
            other.diffie_hellman(key.public_key()).unwrap()
        );
    }

    #[test]
    fn invalid_points_are_rejected() {
        let mut off_curve = h(GR);
        off_curve[63] ^= 1;
        assert!(matches!(
            P256PublicKey::from_xy(&off_curve),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        // The point at infinity in SEC 1 is the single octet 00.
        assert!(matches!(
            P256PublicKey::from_sec1(&[0]),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        assert!(matches!(
            P256PublicKey::from_xy(&[0; 64]),
            Err(CryptoError::InvalidPublicValue(_))
        ));
        // x = p is out of range even though it reduces to a valid coordinate.
        let p = h("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
        assert!(P256PublicKey::from_xy(&[p.clone(), h(GR)[32..].to_vec()].concat()).is_err());
        assert!(matches!(
            P256PublicKey::from_xy(&[1; 63]),
            Err(CryptoError::Length { .. })
        ));
        let mut wrong_prefix = [vec![4], h(GR)].concat();
        wrong_prefix[0] = 0x05;
        assert!(P256PublicKey::from_uncompressed(&wrong_prefix).is_err());
        assert!(P256PublicKey::from_uncompressed(&h(GR)).is_err());
        assert!(P256PublicKey::from_spki_der(b"not der").is_err());
        // Compressed input is accepted by from_sec1 and decompresses to the same point.
        let gr = P256PublicKey::from_xy(&h(GR)).unwrap();
        let y_odd = h(GR)[63] & 1;
        let compressed = [vec![0x02 | y_odd], h(GR)[..32].to_vec()].concat();
        assert_eq!(P256PublicKey::from_sec1(&compressed).unwrap(), gr);
    }
}
