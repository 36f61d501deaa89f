//! The elliptic-curve groups Dragonfly runs over (IANA "Group Description" 19, 20, 21: NIST
//! P-256, P-384, P-521), their hash functions, and the octet encodings of scalars and elements.
//!
//! Everything here is on OpenSSL ([`openssl::ec`], [`openssl::bn`]). Encodings follow IEEE
//! 802.11-2020 12.4.7.2 as hostapd implements them: a scalar is the big-endian integer padded to
//! the length of the order, an element is `x || y`, each coordinate padded to the length of the
//! prime. The point at infinity has no encoding.

use std::cmp::Ordering;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcPoint, EcPointRef};
use openssl::nid::Nid;
use zeroize::Zeroizing;

use crate::keys::DragonflyError;

/// A Dragonfly group, by its IANA / IEEE 802.11 "finite cyclic group" number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupId {
    /// Group 19: NIST P-256 (secp256r1), SHA-256.
    P256,
    /// Group 20: NIST P-384 (secp384r1), SHA-384 for hash-to-element.
    P384,
    /// Group 21: NIST P-521 (secp521r1), SHA-512 for hash-to-element.
    P521,
}

impl GroupId {
    /// The group number (IANA "IKEv2 Transform Type 4", reused by 802.11 SAE): 19, 20 or 21.
    pub const fn number(self) -> u16 {
        match self {
            GroupId::P256 => 19,
            GroupId::P384 => 20,
            GroupId::P521 => 21,
        }
    }

    /// The group with number `n`, if it is one of 19, 20, 21.
    pub fn from_number(n: u16) -> Option<GroupId> {
        match n {
            19 => Some(GroupId::P256),
            20 => Some(GroupId::P384),
            21 => Some(GroupId::P521),
            _ => None,
        }
    }

    fn nid(self) -> Nid {
        match self {
            GroupId::P256 => Nid::X9_62_PRIME256V1,
            GroupId::P384 => Nid::SECP384R1,
            GroupId::P521 => Nid::SECP521R1,
        }
    }

    /// `|Z|` of the simplified SWU map (`Z` is negative: -10, -12, -4), RFC 9380 §8.2–8.4, as
    /// IEEE 802.11-2020 12.4.4.2.3 uses it.
    pub(crate) fn sswu_z(self) -> u32 {
        match self {
            GroupId::P256 => 10,
            GroupId::P384 => 12,
            GroupId::P521 => 4,
        }
    }
}

/// A hash function of the Dragonfly key schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Digest length in octets.
    pub(crate) const fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The hash whose digest is `len` octets long (how hostapd picks the confirm HMAC from the
    /// KCK length).
    pub(crate) fn from_len(len: usize) -> Option<HashAlg> {
        match len {
            32 => Some(HashAlg::Sha256),
            48 => Some(HashAlg::Sha384),
            64 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// HMAC over the concatenation of `parts` (RFC 2104), from `kmp_api::crypto::hmac`.
    pub(crate) fn hmac(
        self,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        use kmp_api::crypto::hmac::{hmac_sha256_parts, hmac_sha384_parts, hmac_sha512_parts};
        Ok(match self {
            HashAlg::Sha256 => Zeroizing::new(hmac_sha256_parts(key, parts)?.to_vec()),
            HashAlg::Sha384 => Zeroizing::new(hmac_sha384_parts(key, parts)?.to_vec()),
            HashAlg::Sha512 => Zeroizing::new(hmac_sha512_parts(key, parts)?.to_vec()),
        })
    }

    /// The IEEE 802.11-2020 12.7.1.6.2 KDF ("KDF-Hash-Length", hostapd `sha256_prf_bits`):
    /// `HMAC(key, i || label || context || L)` for `i = 1, 2, …` (both `i` and `L` little-endian
    /// 16-bit, `L` the output length in bits), concatenated and truncated to `bits`; when `bits`
    /// is not a multiple of 8 the unused low-order bits of the last octet are cleared.
    pub(crate) fn kdf(
        self,
        key: &[u8],
        label: &[u8],
        context: &[u8],
        bits: usize,
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        let bits16 =
            u16::try_from(bits).map_err(|_| DragonflyError::Library("KDF length".into()))?;
        let len = bits.div_ceil(8);
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.len()));
        let mut i: u16 = 1;
        while out.len() < len {
            let block = self.hmac(
                key,
                &[&i.to_le_bytes(), label, context, &bits16.to_le_bytes()],
            )?;
            out.extend_from_slice(&block);
            i = i
                .checked_add(1)
                .ok_or_else(|| DragonflyError::Library("KDF counter".into()))?;
        }
        out.truncate(len);
        let spare = bits % 8;
        if spare != 0
            && let Some(last) = out.last_mut()
        {
            *last &= 0xffu8 << (8 - spare);
        }
        Ok(out)
    }

    /// The plain digest of the concatenation of `parts`.
    pub(crate) fn digest(self, parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        use kmp_api::crypto::hmac::{sha256_parts, sha384_parts, sha512_parts};
        Ok(Zeroizing::new(match self {
            HashAlg::Sha256 => sha256_parts(parts).to_vec(),
            HashAlg::Sha384 => sha384_parts(parts).to_vec(),
            HashAlg::Sha512 => sha512_parts(parts).to_vec(),
        }))
    }

    /// HKDF-Extract (RFC 5869 §2.2): `HMAC(salt, ikm)`.
    pub(crate) fn hkdf_extract(
        self,
        salt: &[u8],
        ikm: &[&[u8]],
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        self.hmac(salt, ikm)
    }

    /// HKDF-Expand (RFC 5869 §2.3).
    pub(crate) fn hkdf_expand(
        self,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.len()));
        let mut t = Zeroizing::new(Vec::new());
        let mut i: u8 = 1;
        while out.len() < len {
            t = self.hmac(prk, &[&t, info, &[i]])?;
            out.extend_from_slice(&t);
            i = i
                .checked_add(1)
                .ok_or_else(|| DragonflyError::Library("HKDF length".into()))?;
        }
        out.truncate(len);
        Ok(out)
    }
}

/// One of the Dragonfly groups with its parameters, ready for arithmetic. Immutable; share it
/// between sessions (`Send + Sync`).
pub struct Group {
    id: GroupId,
    ec: EcGroup,
    p: BigNum,
    a: BigNum,
    b: BigNum,
    q: BigNum,
    prime_len: usize,
    prime_bits: usize,
    scalar_len: usize,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("id", &self.id).finish()
    }
}

fn usize_of(n: i32) -> Result<usize, DragonflyError> {
    usize::try_from(n).map_err(|_| DragonflyError::Library("negative length".into()))
}

impl Group {
    /// The group with IANA number `n`, or [`DragonflyError::UnsupportedGroup`].
    pub fn from_number(n: u16) -> Result<Group, DragonflyError> {
        Group::new(GroupId::from_number(n).ok_or(DragonflyError::UnsupportedGroup(n))?)
    }

    /// Loads the curve parameters of `id` from OpenSSL.
    ///
    /// Fails with [`DragonflyError::Library`] only if OpenSSL lacks the curve.
    pub fn new(id: GroupId) -> Result<Group, DragonflyError> {
        let ec = EcGroup::from_curve_name(id.nid())?;
        let mut ctx = BigNumContext::new()?;
        let (mut p, mut a, mut b, mut q) = (
            BigNum::new()?,
            BigNum::new()?,
            BigNum::new()?,
            BigNum::new()?,
        );
        ec.components_gfp(&mut p, &mut a, &mut b, &mut ctx)?;
        ec.order(&mut q, &mut ctx)?;
        let prime_len = usize_of(p.num_bytes())?;
        let prime_bits = usize_of(p.num_bits())?;
        let scalar_len = usize_of(q.num_bytes())?;
        Ok(Group {
            id,
            ec,
            p,
            a,
            b,
            q,
            prime_len,
            prime_bits,
            scalar_len,
        })
    }

    /// Which group this is.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Length of the prime `p` in octets: 32, 48 or 66.
    pub fn prime_len(&self) -> usize {
        self.prime_len
    }

    /// Length of the order `q` in octets, the length of an encoded scalar: 32, 48 or 66.
    pub fn scalar_len(&self) -> usize {
        self.scalar_len
    }

    /// Length of an encoded element `x || y`: twice [`Group::prime_len`].
    pub fn element_len(&self) -> usize {
        2 * self.prime_len
    }

    /// Length of `p` in bits (256, 384, 521).
    pub(crate) fn prime_bits(&self) -> usize {
        self.prime_bits
    }

    /// The hash IEEE 802.11-2020 Table 12-1 assigns by prime length (hostapd
    /// `sae_ecc_prime_len_2_hash_len`): SHA-256 up to 256 bits, SHA-384 up to 384, else SHA-512.
    pub(crate) fn hash(&self) -> HashAlg {
        match self.id {
            GroupId::P256 => HashAlg::Sha256,
            GroupId::P384 => HashAlg::Sha384,
            GroupId::P521 => HashAlg::Sha512,
        }
    }

    pub(crate) fn ec(&self) -> &EcGroup {
        &self.ec
    }

    pub(crate) fn p(&self) -> &BigNumRef {
        &self.p
    }

    pub(crate) fn a(&self) -> &BigNumRef {
        &self.a
    }

    pub(crate) fn b(&self) -> &BigNumRef {
        &self.b
    }

    pub(crate) fn q(&self) -> &BigNumRef {
        &self.q
    }

    /// `x` as a big-endian octet string of exactly `len` octets.
    pub(crate) fn to_fixed(
        x: &BigNumRef,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        let len = i32::try_from(len).map_err(|_| DragonflyError::Library("length".into()))?;
        Ok(Zeroizing::new(x.to_vec_padded(len)?))
    }

    /// `x` as a field element of [`Group::prime_len`] octets.
    pub(crate) fn fe_bytes(&self, x: &BigNumRef) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        Group::to_fixed(x, self.prime_len)
    }

    /// `x` as a scalar of [`Group::scalar_len`] octets.
    pub(crate) fn scalar_bytes(&self, x: &BigNumRef) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        Group::to_fixed(x, self.scalar_len)
    }

    /// Parses a scalar of exactly [`Group::scalar_len`] octets with `1 < s < q`.
    pub(crate) fn parse_scalar(&self, bytes: &[u8]) -> Result<BigNum, DragonflyError> {
        if bytes.len() != self.scalar_len {
            return Err(DragonflyError::InvalidScalar);
        }
        let s = BigNum::from_slice(bytes)?;
        if s.num_bits() <= 1 || s.ucmp(&self.q) != Ordering::Less {
            return Err(DragonflyError::InvalidScalar);
        }
        Ok(s)
    }

    /// Parses `x || y`: exactly [`Group::element_len`] octets, both coordinates `< p`, the point
    /// on the curve (so not the point at infinity, which has no affine coordinates).
    pub(crate) fn parse_element(
        &self,
        bytes: &[u8],
        ctx: &mut BigNumContext,
    ) -> Result<EcPoint, DragonflyError> {
        if bytes.len() != self.element_len() {
            return Err(DragonflyError::InvalidElement);
        }
        let (xb, yb) = bytes.split_at(self.prime_len);
        let x = BigNum::from_slice(xb)?;
        let y = BigNum::from_slice(yb)?;
        if x.ucmp(&self.p) != Ordering::Less || y.ucmp(&self.p) != Ordering::Less {
            return Err(DragonflyError::InvalidElement);
        }
        let mut point = EcPoint::new(&self.ec)?;
        point
            .set_affine_coordinates_gfp(&self.ec, &x, &y, ctx)
            .map_err(|_| DragonflyError::InvalidElement)?;
        if point.is_infinity(&self.ec) || !point.is_on_curve(&self.ec, ctx)? {
            return Err(DragonflyError::InvalidElement);
        }
        Ok(point)
    }

    /// Encodes a point as `x || y`; the point at infinity is [`DragonflyError::InvalidElement`].
    pub(crate) fn element_bytes(
        &self,
        point: &EcPointRef,
        ctx: &mut BigNumContext,
    ) -> Result<Zeroizing<Vec<u8>>, DragonflyError> {
        if point.is_infinity(&self.ec) {
            return Err(DragonflyError::InvalidElement);
        }
        let mut x = BigNum::new()?;
        let mut y = BigNum::new()?;
        point.affine_coordinates_gfp(&self.ec, &mut x, &mut y, ctx)?;
        let mut out = self.fe_bytes(&x)?;
        out.extend_from_slice(&self.fe_bytes(&y)?);
        x.clear();
        y.clear();
        Ok(out)
    }

    /// `x^3 + a*x + b mod p`.
    pub(crate) fn y_squared(
        &self,
        x: &BigNumRef,
        ctx: &mut BigNumContext,
    ) -> Result<BigNum, DragonflyError> {
        let mut t = BigNum::new()?;
        let mut r = BigNum::new()?;
        t.mod_sqr(x, &self.p, ctx)?;
        r.mod_mul(&t, x, &self.p, ctx)?;
        t.mod_mul(&self.a, x, &self.p, ctx)?;
        let mut s = BigNum::new()?;
        s.mod_add(&r, &t, &self.p, ctx)?;
        r.mod_add(&s, &self.b, &self.p, ctx)?;
        t.clear();
        s.clear();
        Ok(r)
    }

    /// A square root of `v` modulo `p` (all three primes are 3 mod 4: `v^((p+1)/4)`).
    pub(crate) fn sqrt(
        &self,
        v: &BigNumRef,
        ctx: &mut BigNumContext,
    ) -> Result<BigNum, DragonflyError> {
        let mut e = BigNum::new()?;
        let one = BigNum::from_u32(1)?;
        e.checked_add(&self.p, &one)?;
        let mut e4 = BigNum::new()?;
        e4.rshift(&e, 2)?;
        // The flag on the exponent sends BN_mod_exp down BN_mod_exp_mont_consttime.
        e4.set_const_time();
        let mut r = BigNum::new()?;
        r.mod_exp(v, &e4, &self.p, ctx)?;
        Ok(r)
    }

    /// A uniformly random integer in `1..bound`, by rejection sampling from `rng`.
    pub(crate) fn random_below(
        bound: &BigNumRef,
        rng: &kmp_api::rng::RngHandle,
    ) -> Result<BigNum, DragonflyError> {
        let bits = usize_of(bound.num_bits())?;
        let len = bits.div_ceil(8);
        let spare = len * 8 - bits;
        for _ in 0..1000 {
            let mut buf = Zeroizing::new(rng.vec(len)?);
            if let Some(first) = buf.first_mut() {
                *first &= 0xffu8 >> spare;
            }
            let v = BigNum::from_slice(&buf)?;
            if v.num_bits() > 0 && v.ucmp(bound) == Ordering::Less {
                return Ok(v);
            }
        }
        Err(DragonflyError::Library(
            "random scalar: too many rejections".into(),
        ))
    }
}

/// 0xff if `a == b` (same length), else 0x00, without branching on the content.
pub(crate) fn ct_eq_mask(a: &[u8], b: &[u8]) -> u8 {
    if a.len() != b.len() {
        return 0;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // diff == 0 -> 0xff; otherwise 0x00.
    let is_zero = u16::from(diff).wrapping_sub(1).to_be_bytes()[0] & 1; // 1 iff diff == 0
    0u8.wrapping_sub(is_zero)
}

/// 0xff if the big-endian `a < b` (same length), else 0x00, in time independent of content.
pub(crate) fn ct_lt_mask(a: &[u8], b: &[u8]) -> u8 {
    let mut lt = 0u8; // 0xff once decided "less"
    let mut decided = 0u8; // 0xff once the first differing octet was seen
    for (x, y) in a.iter().zip(b) {
        let x = u16::from(*x);
        let y = u16::from(*y);
        // 0xff if x < y, 0xff if x > y (separately), from the borrow of the subtraction.
        let x_lt_y = 0u8.wrapping_sub(x.wrapping_sub(y).to_be_bytes()[0] >> 7);
        let y_lt_x = 0u8.wrapping_sub(y.wrapping_sub(x).to_be_bytes()[0] >> 7);
        lt |= !decided & x_lt_y;
        decided |= x_lt_y | y_lt_x;
    }
    lt
}

/// `out = if mask == 0xff { a } else { b }`, octet by octet with masks.
pub(crate) fn ct_select(mask: u8, a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = (mask & x) | (!mask & y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_lengths() {
        for (id, n, plen) in [
            (GroupId::P256, 19, 32),
            (GroupId::P384, 20, 48),
            (GroupId::P521, 21, 66),
        ] {
            assert_eq!(id.number(), n);
            assert_eq!(GroupId::from_number(n), Some(id));
            let g = Group::new(id).unwrap();
            assert_eq!(g.id(), id);
            assert_eq!(g.prime_len(), plen);
            assert_eq!(g.scalar_len(), plen);
            assert_eq!(g.element_len(), 2 * plen);
        }
        assert_eq!(GroupId::from_number(1), None);
        assert!(matches!(
            Group::from_number(22),
            Err(DragonflyError::UnsupportedGroup(22))
        ));
        assert_eq!(Group::from_number(20).unwrap().id(), GroupId::P384);
        assert_eq!(Group::new(GroupId::P521).unwrap().prime_bits(), 521);
    }

    #[test]
    fn group_is_send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Group>();
    }

    #[test]
    fn ct_helpers() {
        assert_eq!(ct_eq_mask(b"ab", b"ab"), 0xff);
        assert_eq!(ct_eq_mask(b"ab", b"ac"), 0);
        assert_eq!(ct_lt_mask(&[1, 2], &[1, 3]), 0xff);
        assert_eq!(ct_lt_mask(&[1, 3], &[1, 3]), 0);
        assert_eq!(ct_lt_mask(&[2, 0], &[1, 0xff]), 0);
        assert_eq!(ct_lt_mask(&[0, 0xff], &[1, 0]), 0xff);
        let mut out = [0u8; 2];
        ct_select(0xff, &[1, 2], &[3, 4], &mut out);
        assert_eq!(out, [1, 2]);
        ct_select(0, &[1, 2], &[3, 4], &mut out);
        assert_eq!(out, [3, 4]);
    }

    // RFC 4231 §4.3 test case 2 (HMAC-SHA-512 with key "Jefe").
    #[test]
    fn hmac_sha512_rfc4231() {
        let mac = HashAlg::Sha512
            .hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"])
            .unwrap();
        assert_eq!(
            hex::encode(&*mac),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn kdf_bit_trimming() {
        let full = HashAlg::Sha256.kdf(b"k", b"l", b"c", 528).unwrap();
        let trimmed = HashAlg::Sha256.kdf(b"k", b"l", b"c", 521).unwrap();
        assert_eq!(full.len(), 66);
        assert_eq!(trimmed.len(), 66);
        assert_eq!(trimmed[65] & 0x7f, 0);
    }
}
