//! Pseudo-random functions and the key derivation functions built on them: IKEv2 `prf+`
//! (RFC 7296 §2.13) and HKDF (RFC 5869).
//!
//! [`Prf`] names the PRFs the KMPs negotiate (IKEv2 transform type 2 IDs 2, 5, 6 and 8; HIPv2
//! and PANA use the same HMACs). Outputs are [`SecretBytes`] because they are key material.

use openssl::hash::MessageDigest;
use zeroize::Zeroize;

use super::cmac::aes_cmac_prf_128_parts;
use super::hmac::hmac_into;
use super::{CryptoError, SecretBytes};

/// The longest PRF output (HMAC-SHA-384).
const MAX_PRF_LEN: usize = 48;

/// A pseudo-random function `prf(key, data)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// HMAC-SHA-1 (RFC 2104; IKEv2 `PRF_HMAC_SHA1` = 2; MIKEY): 20 octets.
    HmacSha1,
    /// HMAC-SHA-256 (RFC 4868; IKEv2 `PRF_HMAC_SHA2_256` = 5): 32 octets.
    HmacSha256,
    /// HMAC-SHA-384 (RFC 4868; IKEv2 `PRF_HMAC_SHA2_384` = 6): 48 octets.
    HmacSha384,
    /// AES-CMAC-PRF-128 (RFC 4615; IKEv2 `PRF_AES128_CMAC` = 8): 16 octets, any key length.
    AesCmacPrf128,
}

impl Prf {
    /// Output length in octets.
    pub const fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::AesCmacPrf128 => 16,
        }
    }

    /// The preferred key length (RFC 7296 §2.13: `SK_d`, `SK_pi`, `SK_pr` have this length):
    /// the output length for HMAC, 16 for AES-CMAC-PRF-128.
    pub const fn key_len(self) -> usize {
        self.output_len()
    }

    /// The IKEv2 transform ID (IANA "Transform Type 2 - Pseudorandom Function Transform IDs").
    pub const fn ikev2_transform_id(self) -> u16 {
        match self {
            Prf::HmacSha1 => 2,
            Prf::HmacSha256 => 5,
            Prf::HmacSha384 => 6,
            Prf::AesCmacPrf128 => 8,
        }
    }

    /// The PRF with IKEv2 transform ID `id`, if it is one of these.
    pub const fn from_ikev2_transform_id(id: u16) -> Option<Prf> {
        match id {
            2 => Some(Prf::HmacSha1),
            5 => Some(Prf::HmacSha256),
            6 => Some(Prf::HmacSha384),
            8 => Some(Prf::AesCmacPrf128),
            _ => None,
        }
    }

    /// `prf(key, data)`.
    pub fn compute(self, key: &[u8], data: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.compute_parts(key, &[data])
    }

    /// `prf(key, parts[0] ‖ parts[1] ‖ …)` without concatenating first.
    pub fn compute_parts(self, key: &[u8], parts: &[&[u8]]) -> Result<SecretBytes, CryptoError> {
        let mut buf = [0u8; MAX_PRF_LEN];
        let n = self.output_len();
        let r = self.compute_into(key, parts, &mut buf[..n]);
        let out = r.map(|()| SecretBytes::from_slice(&buf[..n]));
        buf.zeroize();
        out
    }

    /// Writes `prf(key, parts…)` into `out`, which has exactly [`Prf::output_len`] octets.
    fn compute_into(self, key: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        match self.digest() {
            Some(md) => hmac_into(md, key, parts, out),
            None => {
                let mut mac = aes_cmac_prf_128_parts(key, parts)?;
                let r = if out.len() == mac.len() {
                    out.copy_from_slice(&mac);
                    Ok(())
                } else {
                    Err(CryptoError::Length {
                        what: "PRF output",
                        len: out.len(),
                    })
                };
                mac.zeroize();
                r
            }
        }
    }

    fn digest(self) -> Option<MessageDigest> {
        match self {
            Prf::HmacSha1 => Some(MessageDigest::sha1()),
            Prf::HmacSha256 => Some(MessageDigest::sha256()),
            Prf::HmacSha384 => Some(MessageDigest::sha384()),
            Prf::AesCmacPrf128 => None,
        }
    }
}

/// The feedback construction shared by IKEv2 `prf+` and HKDF-Expand:
/// `T1 = prf(K, S ‖ 0x01)`, `Tn = prf(K, Tn-1 ‖ S ‖ n)`, output `T1 ‖ T2 ‖ …` cut to `out_len`.
fn feedback_expand(
    prf: Prf,
    key: &[u8],
    seed: &[u8],
    out_len: usize,
) -> Result<SecretBytes, CryptoError> {
    let block = prf.output_len();
    let max = 255 * block;
    if out_len > max {
        return Err(CryptoError::OutputTooLong {
            requested: out_len,
            max,
        });
    }
    // Reserved up front so the vector never reallocates (which would leave a copy behind).
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut prev = [0u8; MAX_PRF_LEN];
    let mut cur = [0u8; MAX_PRF_LEN];
    let mut prev_len = 0;
    let mut counter: u8 = 1;
    let mut result = Ok(());
    while out.len() < out_len {
        result = prf.compute_into(
            key,
            &[&prev[..prev_len], seed, &[counter]],
            &mut cur[..block],
        );
        if result.is_err() {
            break;
        }
        let take = block.min(out_len - out.len());
        out.extend_from_slice(&cur[..take]);
        prev[..block].copy_from_slice(&cur[..block]);
        prev_len = block;
        counter = counter.wrapping_add(1);
    }
    prev.zeroize();
    cur.zeroize();
    match result {
        Ok(()) => Ok(SecretBytes::new(out)),
        Err(e) => {
            out.zeroize();
            Err(e)
        }
    }
}

/// IKEv2 `prf+(K, S)` (RFC 7296 §2.13): `out_len` octets of `T1 ‖ T2 ‖ …` with
/// `T1 = prf(K, S ‖ 0x01)` and `Tn = prf(K, Tn-1 ‖ S ‖ n)`.
///
/// The counter is one octet, so at most 255 blocks exist; asking for more is
/// [`CryptoError::OutputTooLong`]. Used for the IKE SA keys (`K = SKEYSEED`,
/// `S = Ni ‖ Nr ‖ SPIi ‖ SPIr`) and Child SA KEYMAT (`K = SK_d`, `S = [g^ir] ‖ Ni ‖ Nr`).
pub fn prf_plus(
    prf: Prf,
    key: &[u8],
    seed: &[u8],
    out_len: usize,
) -> Result<SecretBytes, CryptoError> {
    feedback_expand(prf, key, seed, out_len)
}

fn hkdf_prf(prf: Prf) -> Result<Prf, CryptoError> {
    match prf {
        Prf::AesCmacPrf128 => Err(CryptoError::Unsupported("HKDF is defined over HMAC only")),
        p => Ok(p),
    }
}

/// HKDF-Extract (RFC 5869 §2.2): `PRK = HMAC-Hash(salt, IKM)`. An empty `salt` is the
/// RFC's "not provided" (HashLen zeros, which HMAC treats the same as an empty key).
/// [`Prf::AesCmacPrf128`] is [`CryptoError::Unsupported`].
pub fn hkdf_extract(prf: Prf, salt: &[u8], ikm: &[u8]) -> Result<SecretBytes, CryptoError> {
    hkdf_prf(prf)?.compute(salt, ikm)
}

/// HKDF-Expand (RFC 5869 §2.3): `L = out_len` octets of `T(1) ‖ T(2) ‖ …`,
/// `T(n) = HMAC-Hash(PRK, T(n-1) ‖ info ‖ n)`; at most `255 * HashLen` octets.
pub fn hkdf_expand(
    prf: Prf,
    prk: &[u8],
    info: &[u8],
    out_len: usize,
) -> Result<SecretBytes, CryptoError> {
    feedback_expand(hkdf_prf(prf)?, prk, info, out_len)
}

/// HKDF-Extract then HKDF-Expand with `prf` (RFC 5869 §2).
pub fn hkdf(
    prf: Prf,
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out_len: usize,
) -> Result<SecretBytes, CryptoError> {
    let prk = hkdf_extract(prf, salt, ikm)?;
    hkdf_expand(prf, prk.expose(), info, out_len)
}

/// HKDF with HMAC-SHA-256 (RFC 5869).
pub fn hkdf_sha256(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out_len: usize,
) -> Result<SecretBytes, CryptoError> {
    hkdf(Prf::HmacSha256, salt, ikm, info, out_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    #[test]
    fn prf_lengths_and_ids() {
        for prf in [
            Prf::HmacSha1,
            Prf::HmacSha256,
            Prf::HmacSha384,
            Prf::AesCmacPrf128,
        ] {
            assert_eq!(prf.compute(b"k", b"d").unwrap().len(), prf.output_len());
            assert_eq!(
                Prf::from_ikev2_transform_id(prf.ikev2_transform_id()),
                Some(prf)
            );
        }
        assert_eq!(Prf::from_ikev2_transform_id(4), None);
        // RFC 4231 test case 2 and RFC 4615 §4 through the enum.
        assert_eq!(
            Prf::HmacSha256
                .compute(b"Jefe", b"what do ya want for nothing?")
                .unwrap()
                .expose(),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            Prf::AesCmacPrf128
                .compute(
                    &h("00010203040506070809"),
                    &h("000102030405060708090a0b0c0d0e0f10111213")
                )
                .unwrap()
                .expose(),
            h("290d9e112edb09ee141fcf64c0b72f3d")
        );
    }

    // NIST ACVP IKEv2 KDF known answer, HMAC-SHA-256 (spec §8.4; usnistgov ACVP server unit
    // test `IkeV2Tests.ShouldIkeV2Correctly`, case "IKEv2 SHA2-256").
    #[test]
    fn acvp_ikev2_sha256() {
        let ni = h("0a58fea9c1d4fee2e74e1aad6fb02dd5f318eb127465a112be8dc3c04d5dba62eae708f9dc1b2362afd6ba4bda3cf500
                    0f4979fbcbadbcfda9291593829c4e905c21db0c2ee15175ce77a8a0dadf25c7f175bc53fd91b636a9b3c50b203de9b9
                    d6dc463dcb4048f101e26498ceaed3afbcd931394a7e099392dfff82e5d6fa85c2e8a8ab90ad363a66795dc32798847e
                    405acd87988140f973058917273a6b0bafb962c75e2b1a21e79c08beeb82168bf8b4b57f3dce867bf7862a7b8acbc21b
                    e838021913daf64340c055ed17aaf7b6e1d0ca33ae890ddbdb83f4e615aad5e3bff58c3db70bac81a0dfbabe5391fc62
                    bca4659e22a0741e01d8d06e67d9bb41");
        let nr = h("e4fdfa68df6171d9eaff8b7b5ad31e7c6098d259f3397c9854cbefe7449b0864c1df16ddece8b26567560f8d59182a44
                    c19149c2d0d72606a160021ade3d23c7c6936c91a4b6bec37adf38cfc84b851c68dcee06f81306f63abbefc07e231e30
                    58c49437a557df617eac01663593d2a3e594699284c0a35eae6931492ccb2a43db72a600a3899205d681d2b76b1280e4
                    56339bb10e0c584aecfdae31c77a4c40dbcb345f782ac32835d4c220c1e97254ded6a40075dd717b00b69c86a49e8017
                    73026536ae02d58a649827f1ba67610ee936dffd11c9d5a9156631916a0a0046ec0ba42f56f2a18de83d5d71a985b0cc
                    9eec2c06b3d907ca58454419f374069d");
        let gir = h("9d469de41b4739c7dd01f19aa94f17e48150ae9dbede94832142db19");
        let gir_new = h("c2987b0767006c3b9aea491bfed1646a3d7194639492b8d45b23b383");
        let spii = h("c8de93111750e409");
        let spir = h("32d51b33508997fa");
        let prf = Prf::HmacSha256;

        let ni_nr = [ni.as_slice(), nr.as_slice()].concat();
        let skeyseed = prf.compute(&ni_nr, &gir).unwrap();
        assert_eq!(
            skeyseed.expose(),
            h("eec13ac67c2e072abb684ab4e7b6ce3e7f400af8b96bed48e113497ed337f8d4")
        );

        let seed = [ni.as_slice(), &nr, &spii, &spir].concat();
        let dkm = prf_plus(prf, skeyseed.expose(), &seed, 3072 / 8).unwrap();
        assert_eq!(dkm.len(), 384);
        let sk_d = &dkm.expose()[..32];
        assert_eq!(
            sk_d,
            h("bc83518f63b762874ac57947cdfae33a8d9724df0b83ee4b6df38c23fc2ad829")
        );
        assert_eq!(&dkm.expose()[32..48], h("f4d70b5a68dd1f5a52416f09758638ae"));

        let child = prf_plus(prf, sk_d, &ni_nr, 64).unwrap();
        assert_eq!(
            &child.expose()[..32],
            h("c725012285d56e53244a9baaaf95abfca543708d333a3f3a86ba660e00edd4d4")
        );
        let child_dh = prf_plus(prf, sk_d, &[gir_new.as_slice(), &ni, &nr].concat(), 64).unwrap();
        assert_eq!(
            &child_dh.expose()[..32],
            h("140a1f2a3c94318ece6edfa8c63f37d8d45982de8b6cbfe34011150db0253e34")
        );
        let rekey = prf.compute_parts(sk_d, &[&gir_new, &ni, &nr]).unwrap();
        assert_eq!(
            rekey.expose(),
            h("05f796c8df322a7e33283ae5fa2f376d8d5efa0ac3745fc548e430031424c121")
        );

        // A prefix of prf+ output is the same whatever the requested length.
        let short = prf_plus(prf, skeyseed.expose(), &seed, 45).unwrap();
        assert_eq!(short.expose(), &dkm.expose()[..45]);
    }

    #[test]
    fn prf_plus_limit() {
        assert_eq!(
            prf_plus(Prf::HmacSha1, b"k", b"s", 255 * 20).unwrap().len(),
            5100
        );
        assert_eq!(
            prf_plus(Prf::HmacSha1, b"k", b"s", 255 * 20 + 1).err(),
            Some(CryptoError::OutputTooLong {
                requested: 5101,
                max: 5100
            })
        );
        assert_eq!(
            prf_plus(Prf::AesCmacPrf128, b"k", b"s", 0).unwrap().len(),
            0
        );
        assert_eq!(
            prf_plus(Prf::AesCmacPrf128, b"key", b"s", 33)
                .unwrap()
                .len(),
            33
        );
    }

    // RFC 5869 Appendix A.1 (test case 1, SHA-256; spec §8.6) and A.3 (test case 3, no salt
    // and no info).
    #[test]
    fn rfc5869() {
        let ikm = [0x0b; 22];
        let salt = h("000102030405060708090a0b0c");
        let info = h("f0f1f2f3f4f5f6f7f8f9");
        let prk = hkdf_extract(Prf::HmacSha256, &salt, &ikm).unwrap();
        assert_eq!(
            prk.expose(),
            h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
        let okm = hkdf_sha256(&salt, &ikm, &info, 42).unwrap();
        assert_eq!(
            okm.expose(),
            h(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
        let okm3 = hkdf_sha256(b"", &ikm, b"", 42).unwrap();
        assert_eq!(
            okm3.expose(),
            h(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
            )
        );
        assert_eq!(
            hkdf(Prf::AesCmacPrf128, b"", b"", b"", 1).err(),
            Some(CryptoError::Unsupported("HKDF is defined over HMAC only"))
        );
        assert!(matches!(
            hkdf_expand(Prf::HmacSha256, prk.expose(), b"", 255 * 32 + 1),
            Err(CryptoError::OutputTooLong { .. })
        ));
    }
}
