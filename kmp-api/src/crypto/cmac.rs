//! AES-CMAC (RFC 4493, NIST SP 800-38B) and AES-CMAC-PRF-128 (RFC 4615).
//!
//! AES-CMAC is the MAC of the 802.1X/MKA KDF and ICV, EAP-PSK and the AMIKEY candidate PRF;
//! AES-CMAC-PRF-128 is IKEv2 PRF 8 (`PRF_AES128_CMAC`) and the HIP DEX CKDF building block.

use zeroize::Zeroize;

use super::CryptoError;
use super::aes::{Block, Mode, encrypt_ctx, one_block};

/// CMAC output length in octets (the AES block).
pub const CMAC_LEN: usize = 16;

/// Doubling in GF(2^128) (RFC 4493 §2.3): shift left by one, XOR 0x87 into the last octet if
/// the top bit was set; constant time.
fn dbl(b: &Block) -> Block {
    let mut out = [0u8; 16];
    for i in 0..16 {
        let next = b.get(i + 1).map_or(0, |n| n >> 7);
        out[i] = (b[i] << 1) | next;
    }
    out[15] ^= 0x87 & 0u8.wrapping_sub(b[0] >> 7);
    out
}

/// A scheduled AES-CMAC key (RFC 4493): one AES-ECB context and the subkeys K1, K2, for
/// several MACs under the same key (EAX's three OMACs, MKA's ICVs). The subkeys are zeroized
/// on drop.
pub struct AesCmac {
    ctx: openssl::cipher_ctx::CipherCtx,
    k1: Block,
    k2: Block,
}

impl core::fmt::Debug for AesCmac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AesCmac(<secret>)")
    }
}

impl Drop for AesCmac {
    fn drop(&mut self) {
        self.k1.zeroize();
        self.k2.zeroize();
    }
}

impl AesCmac {
    /// Schedules `key` (16, 24 or 32 octets) and derives K1, K2 from L = AES(K, 0^128).
    ///
    /// Built here on one AES-ECB context: OpenSSL 3's `PKey::cmac` + `Signer` did provider
    /// lookups on every call, about 10 µs each (BENCHMARKS.md, "eap").
    pub fn new(key: &[u8]) -> Result<AesCmac, CryptoError> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::KeyLength(key.len()));
        }
        let mut ctx = encrypt_ctx(Mode::Ecb, key)?;
        let mut l = [0u8; 16];
        one_block(&mut ctx, &mut l)?;
        let k1 = dbl(&l);
        let k2 = dbl(&k1);
        l.zeroize();
        Ok(AesCmac { ctx, k1, k2 })
    }

    /// The full 128-bit tag of the concatenation of `parts` (RFC 4493 §2.4).
    pub fn mac_parts(&mut self, parts: &[&[u8]]) -> Result<[u8; CMAC_LEN], CryptoError> {
        // CBC-MAC over every block but the last, which is held back until the input ends.
        let mut x = [0u8; 16];
        let mut buf = [0u8; 16];
        let mut n = 0usize;
        let mut result = Ok(());
        for part in parts {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                if n == 16 {
                    for (xi, bi) in x.iter_mut().zip(&buf) {
                        *xi ^= bi;
                    }
                    if let Err(e) = one_block(&mut self.ctx, &mut x) {
                        result = Err(e);
                    }
                    n = 0;
                }
                let take = (16 - n).min(rest.len());
                buf[n..n + take].copy_from_slice(&rest[..take]);
                n += take;
                rest = &rest[take..];
            }
        }
        // The last block: complete (XOR K1) or padded with 10…0 (XOR K2); an empty message is
        // one padded block.
        let subkey = if n == 16 {
            &self.k1
        } else {
            buf[n] = 0x80;
            buf[n + 1..].fill(0);
            &self.k2
        };
        for ((xi, bi), ki) in x.iter_mut().zip(&buf).zip(subkey) {
            *xi ^= bi ^ ki;
        }
        let last = one_block(&mut self.ctx, &mut x);
        buf.zeroize();
        result.and(last)?;
        Ok(x)
    }
}

/// AES-CMAC of the concatenation of `parts` under `key` (16, 24 or 32 octets), full 128-bit tag
/// (RFC 4493 §2.4). Truncate the result for shorter tags (SP 800-38B §6.2 takes the leftmost
/// octets). One key schedule per call; [`AesCmac`] keeps it for several.
pub fn aes_cmac_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; CMAC_LEN], CryptoError> {
    AesCmac::new(key)?.mac_parts(parts)
}

/// AES-CMAC of `msg` under `key` (16, 24 or 32 octets): RFC 4493 with AES-128.
pub fn aes_cmac(key: &[u8], msg: &[u8]) -> Result<[u8; CMAC_LEN], CryptoError> {
    aes_cmac_parts(key, &[msg])
}

/// Checks a (possibly truncated, 4..=16 octets) AES-CMAC tag in constant time; a mismatch is
/// [`CryptoError::AuthenticationFailed`].
pub fn aes_cmac_verify(key: &[u8], msg: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    if !(4..=CMAC_LEN).contains(&tag.len()) {
        return Err(CryptoError::Length {
            what: "CMAC tag",
            len: tag.len(),
        });
    }
    let mac = aes_cmac(key, msg)?;
    if super::ct_eq(&mac[..tag.len()], tag) {
        Ok(())
    } else {
        Err(CryptoError::AuthenticationFailed)
    }
}

/// AES-CMAC-PRF-128 (RFC 4615 §3) of the concatenation of `parts`: a key of any length (empty
/// included) is first turned into a 128-bit key with AES-CMAC under the zero key unless it is
/// exactly 16 octets.
pub fn aes_cmac_prf_128_parts(key: &[u8], parts: &[&[u8]]) -> Result<[u8; CMAC_LEN], CryptoError> {
    if key.len() == CMAC_LEN {
        aes_cmac_parts(key, parts)
    } else {
        let mut derived = aes_cmac(&[0u8; CMAC_LEN], key)?;
        let out = aes_cmac_parts(&derived, parts);
        zeroize::Zeroize::zeroize(&mut derived);
        out
    }
}

/// AES-CMAC-PRF-128 (RFC 4615) of `msg` under a key of any length.
pub fn aes_cmac_prf_128(key: &[u8], msg: &[u8]) -> Result<[u8; CMAC_LEN], CryptoError> {
    aes_cmac_prf_128_parts(key, &[msg])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const M64: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                       30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    // RFC 4493 §4 examples 1-4 (spec §8.1).
    #[test]
    fn rfc4493_section4() {
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let m = h(M64);
        for (len, tag) in [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ] {
            assert_eq!(
                aes_cmac(&key, &m[..len]).unwrap().to_vec(),
                h(tag),
                "len {len}"
            );
            aes_cmac_verify(&key, &m[..len], &h(tag)).unwrap();
            aes_cmac_verify(&key, &m[..len], &h(tag)[..8]).unwrap();
        }
        // One scheduled key for all four examples, in any order: the same tags.
        let mut cmac = AesCmac::new(&key).unwrap();
        for (len, tag) in [
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
            (0, "bb1d6929e95937287fa37d129b756746"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        ] {
            assert_eq!(cmac.mac_parts(&[&m[..len]]).unwrap().to_vec(), h(tag));
        }
        assert_eq!(
            AesCmac::new(&key[..15]).err(),
            Some(CryptoError::KeyLength(15))
        );
        // Split input gives the same MAC as contiguous input.
        let (a, b) = m.split_at(23);
        assert_eq!(
            aes_cmac_parts(&key, &[a, b]).unwrap(),
            aes_cmac(&key, &m).unwrap()
        );
        let mut bad = h("51f0bebf7e3b9d92fc49741779363cfe");
        bad[15] ^= 1;
        assert_eq!(
            aes_cmac_verify(&key, &m, &bad),
            Err(CryptoError::AuthenticationFailed)
        );
        assert!(matches!(
            aes_cmac_verify(&key, &m, &bad[..3]),
            Err(CryptoError::Length { .. })
        ));
    }

    // Every split of every prefix of the RFC 4493 message into three parts gives the MAC of the
    // whole: the held-back last block is right wherever the part boundaries fall (the four
    // lengths above are checked against the RFC).
    #[test]
    fn parts_at_any_boundary() {
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let m = h(M64);
        for len in 0..=m.len() {
            let whole = aes_cmac(&key, &m[..len]).unwrap();
            for i in 0..=len {
                for j in i..=len {
                    let parts = [&m[..i], &m[i..j], &m[j..len]];
                    assert_eq!(
                        aes_cmac_parts(&key, &parts).unwrap(),
                        whole,
                        "{len} {i} {j}"
                    );
                }
            }
        }
        assert_eq!(
            aes_cmac_parts(&key, &[]).unwrap().to_vec(),
            h("bb1d6929e95937287fa37d129b756746")
        );
    }

    // NIST SP 800-38B Appendix D.3 (AES-256), the example with the 128-bit message.
    #[test]
    fn sp800_38b_aes256() {
        let key = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let tag = aes_cmac(&key, &h(M64)[..16]).unwrap();
        assert_eq!(tag.to_vec(), h("28a7023f452e8f82bd4bf28d8c37c35c"));
        assert_eq!(aes_cmac(&[0u8; 15], b"x"), Err(CryptoError::KeyLength(15)));
    }

    // RFC 4615 §4 test vectors (spec §8.2).
    #[test]
    fn rfc4615_section4() {
        let m = h("000102030405060708090a0b0c0d0e0f10111213");
        for (key, out) in [
            (
                "000102030405060708090a0b0c0d0e0fedcb",
                "84a348a4a45d235babfffc0d2b4da09a",
            ),
            (
                "000102030405060708090a0b0c0d0e0f",
                "980ae87b5f4c9c5214f5b6a8455e4c2d",
            ),
            ("00010203040506070809", "290d9e112edb09ee141fcf64c0b72f3d"),
        ] {
            assert_eq!(
                aes_cmac_prf_128(&h(key), &m).unwrap().to_vec(),
                h(out),
                "key {key}"
            );
        }
    }
}
