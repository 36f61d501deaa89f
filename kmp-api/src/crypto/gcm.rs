//! AES-GCM (NIST SP 800-38D) authenticated encryption, one-shot.
//!
//! - key: 16, 24 or 32 octets (AES-128/192/256), else [`CryptoError::KeyLength`];
//! - nonce (IV): 1..=[`MAX_NONCE_LEN`] octets; 12 is the recommended length (SP 800-38D
//!   §5.2.1.1), other lengths go through GHASH as the standard says;
//! - tag: 4, 8 or 12..=16 octets (SP 800-38D §5.2.1.2), appended to the ciphertext;
//! - additional data: any length.
//!
//! [`gcm_seal`] returns `ciphertext ‖ tag`; [`gcm_open`] checks the tag and returns the
//! plaintext or [`CryptoError::AuthenticationFailed`]. No plaintext is released (and the
//! decrypted buffer is zeroized) when the tag does not match. A nonce must never repeat under
//! one key; choosing it is the caller's business.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroize;

use super::CryptoError;

/// The longest nonce accepted (OpenSSL's limit for GCM IVs).
pub const MAX_NONCE_LEN: usize = 128;
/// The longest (and recommended) tag length.
pub const MAX_TAG_LEN: usize = 16;
/// The recommended nonce length.
pub const NONCE_LEN: usize = 12;

/// The OpenSSL GCM cipher for a key of `key_len` octets.
fn cipher(key_len: usize) -> Result<&'static CipherRef, CryptoError> {
    match key_len {
        16 => Ok(super::fetched_cipher!("AES-128-GCM", Cipher::aes_128_gcm())),
        24 => Ok(super::fetched_cipher!("AES-192-GCM", Cipher::aes_192_gcm())),
        32 => Ok(super::fetched_cipher!("AES-256-GCM", Cipher::aes_256_gcm())),
        n => Err(CryptoError::KeyLength(n)),
    }
}

fn check_params(
    key: &[u8],
    nonce: &[u8],
    tag_len: usize,
) -> Result<&'static CipherRef, CryptoError> {
    let cipher = cipher(key.len())?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(CryptoError::Length {
            what: "GCM nonce",
            len: nonce.len(),
        });
    }
    if !matches!(tag_len, 4 | 8 | 12..=MAX_TAG_LEN) {
        return Err(CryptoError::Length {
            what: "GCM tag",
            len: tag_len,
        });
    }
    Ok(cipher)
}

/// A context keyed for `cipher` with `nonce`, `aad` already absorbed.
fn context(
    cipher: &CipherRef,
    encrypt: bool,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
) -> Result<CipherCtx, CryptoError> {
    let mut ctx = CipherCtx::new()?;
    if encrypt {
        ctx.encrypt_init(Some(cipher), None, None)?;
    } else {
        ctx.decrypt_init(Some(cipher), None, None)?;
    }
    if nonce.len() != NONCE_LEN {
        ctx.set_iv_length(nonce.len())?;
    }
    if encrypt {
        ctx.encrypt_init(None, Some(key), Some(nonce))?;
    } else {
        ctx.decrypt_init(None, Some(key), Some(nonce))?;
    }
    if !aad.is_empty() {
        ctx.cipher_update(aad, None)?;
    }
    Ok(ctx)
}

/// Runs `data` through `ctx` and finishes it; returns exactly `data.len()` octets.
fn run(ctx: &mut CipherCtx, data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
    // The openssl crate wants output room for the input plus one block.
    out.resize(data.len() + 16, 0);
    let mut n = if data.is_empty() {
        0
    } else {
        ctx.cipher_update(data, Some(out.as_mut_slice()))?
    };
    n += ctx.cipher_final(&mut out[n..])?;
    if n != data.len() {
        return Err(CryptoError::Library(format!(
            "AES-GCM wrote {n} of {} octets",
            data.len()
        )));
    }
    out.truncate(n);
    Ok(())
}

/// AES-GCM encryption: `ciphertext ‖ tag` (tag of `tag_len` octets) of `plaintext` under `key`
/// and `nonce`, authenticating `aad` as well.
pub fn gcm_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = check_params(key, nonce, tag_len)?;
    let mut ctx = context(cipher, true, key, nonce, aad)?;
    let mut out = Vec::with_capacity(plaintext.len() + 16 + tag_len);
    run(&mut ctx, plaintext, &mut out)?;
    let mut tag = [0u8; MAX_TAG_LEN];
    ctx.tag(&mut tag[..tag_len])?;
    out.extend_from_slice(&tag[..tag_len]);
    Ok(out)
}

/// AES-GCM decryption of `sealed` = `ciphertext ‖ tag` (tag of `tag_len` octets): the plaintext,
/// or [`CryptoError::AuthenticationFailed`] when the tag does not match `key`, `nonce`, `aad`
/// and the ciphertext. `sealed` shorter than the tag is [`CryptoError::Length`].
pub fn gcm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = check_params(key, nonce, tag_len)?;
    let Some(split) = sealed.len().checked_sub(tag_len) else {
        return Err(CryptoError::Length {
            what: "GCM ciphertext",
            len: sealed.len(),
        });
    };
    let (ct, tag) = sealed.split_at(split);
    let mut ctx = context(cipher, false, key, nonce, aad)?;
    ctx.set_tag(tag)?;
    let mut out = Vec::with_capacity(ct.len() + 16);
    match run(&mut ctx, ct, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => {
            out.zeroize();
            Err(CryptoError::AuthenticationFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const K: &str = "feffe9928665731c6d6a8f9467308308";
    const IV: &str = "cafebabefacedbaddecaf888";
    const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    const P64: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                       1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";

    /// McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B (the test
    /// cases NIST publishes with SP 800-38D): (case, key, iv, plaintext, aad, ciphertext, tag).
    fn vectors() -> Vec<(u32, String, String, String, String, String, String)> {
        let p60 = &P64[..120];
        let k192 = format!("{K}{}", &K[..16]);
        let k256 = format!("{K}{K}");
        let iv60 = "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728\
                    c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b";
        let raw: Vec<(u32, &str, &str, &str, &str, &str, &str)> = vec![
            (
                1,
                "00000000000000000000000000000000",
                "000000000000000000000000",
                "",
                "",
                "",
                "58e2fccefa7e3061367f1d57a4e7455a",
            ),
            (
                2,
                "00000000000000000000000000000000",
                "000000000000000000000000",
                "00000000000000000000000000000000",
                "",
                "0388dace60b6a392f328c2b971b2fe78",
                "ab6e47d42cec13bdf53a67b21257bddf",
            ),
            (
                3,
                K,
                IV,
                P64,
                "",
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
                "4d5c2af327cd64a62cf35abd2ba6fab4",
            ),
            (
                4,
                K,
                IV,
                p60,
                AAD,
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                11,
                &k192,
                "cafebabefacedbad",
                p60,
                AAD,
                "0f10f599ae14a154ed24b36e25324db8c566632ef2bbb34f8347280fc4507057\
              fddc29df9a471f75c66541d4d4dad1c9e93a19a58e8b473fa0f062f7",
                "65dcc57fcf623a24094fcca40d3533f8",
            ),
            (
                12,
                &k192,
                iv60,
                p60,
                AAD,
                "d27e88681ce3243c4830165a8fdcf9ff1de9a1d8e6b447ef6ef7b79828666e45\
              81e79012af34ddd9e2f037589b292db3e67c036745fa22e7e9b7373b",
                "dcf566ff291c25bbb8568fc3d376a6d9",
            ),
            (
                13,
                "0000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000",
                "",
                "",
                "",
                "530f8afbc74536b9a963b4f1c4cb738b",
            ),
            (
                14,
                "0000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000",
                "00000000000000000000000000000000",
                "",
                "cea7403d4d606b6e074ec5d3baf39d18",
                "d0d1c8a799996bf0265b98b5d48ab919",
            ),
            (
                15,
                &k256,
                IV,
                P64,
                "",
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
              8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
                "b094dac5d93471bdec1a502270e3cc6c",
            ),
            (
                16,
                &k256,
                IV,
                p60,
                AAD,
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
              8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
            (
                17,
                &k256,
                "cafebabefacedbad",
                p60,
                AAD,
                "c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0\
              feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f",
                "3a337dbf46a792c45e454913fe2ea8f2",
            ),
            (
                18,
                &k256,
                iv60,
                p60,
                AAD,
                "5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf4\
              0fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f",
                "a44a8266ee1c8eb0c8b5d4cf5ae9f19a",
            ),
        ];
        raw.into_iter()
            .map(|(n, k, iv, p, a, c, t)| {
                (
                    n,
                    k.into(),
                    iv.into(),
                    p.into(),
                    a.into(),
                    c.into(),
                    t.into(),
                )
            })
            .collect()
    }

    #[test]
    fn mcgrew_viega_test_cases() {
        for (n, k, iv, p, a, c, t) in vectors() {
            let (k, iv, p, a, c, t) = (h(&k), h(&iv), h(&p), h(&a), h(&c), h(&t));
            let mut expected = c.clone();
            expected.extend_from_slice(&t);
            let sealed = gcm_seal(&k, &iv, &a, &p, 16).unwrap();
            assert_eq!(sealed, expected, "test case {n} seal");
            assert_eq!(
                gcm_open(&k, &iv, &a, &sealed, 16).unwrap(),
                p,
                "test case {n} open"
            );
            // A truncated tag is the leading octets of the full one (SP 800-38D §6.5 step 8).
            let short = gcm_seal(&k, &iv, &a, &p, 12).unwrap();
            assert_eq!(
                short,
                expected[..expected.len() - 4],
                "test case {n} 96-bit tag"
            );
            assert_eq!(gcm_open(&k, &iv, &a, &short, 12).unwrap(), p);
        }
    }

    #[test]
    fn wrong_tag_aad_or_ciphertext_fails() {
        let (k, iv, a, p) = (h(K), h(IV), h(AAD), h(&P64[..120]));
        let sealed = gcm_seal(&k, &iv, &a, &p, 16).unwrap();
        for i in [0, sealed.len() - 16, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                gcm_open(&k, &iv, &a, &bad, 16),
                Err(CryptoError::AuthenticationFailed),
                "flipped octet {i}"
            );
        }
        assert_eq!(
            gcm_open(&k, &iv, b"other aad", &sealed, 16),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut other_iv = iv.clone();
        other_iv[11] ^= 1;
        assert_eq!(
            gcm_open(&k, &other_iv, &a, &sealed, 16),
            Err(CryptoError::AuthenticationFailed)
        );
        // The same bytes read with a shorter tag are a different (wrong) split.
        assert_eq!(
            gcm_open(&k, &iv, &a, &sealed, 12),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let (k, iv) = (h(K), h(IV));
        assert_eq!(
            gcm_seal(&k[..15], &iv, b"", b"x", 16),
            Err(CryptoError::KeyLength(15))
        );
        assert_eq!(
            gcm_open(&[0; 20], &iv, b"", &[0; 16], 16),
            Err(CryptoError::KeyLength(20))
        );
        assert_eq!(
            gcm_seal(&k, &[], b"", b"x", 16),
            Err(CryptoError::Length {
                what: "GCM nonce",
                len: 0
            })
        );
        assert!(gcm_seal(&k, &[0; MAX_NONCE_LEN + 1], b"", b"x", 16).is_err());
        for bad_tag in [0, 1, 3, 5, 9, 11, 17] {
            assert_eq!(
                gcm_seal(&k, &iv, b"", b"x", bad_tag),
                Err(CryptoError::Length {
                    what: "GCM tag",
                    len: bad_tag
                })
            );
        }
        assert_eq!(
            gcm_open(&k, &iv, b"", &[0; 15], 16),
            Err(CryptoError::Length {
                what: "GCM ciphertext",
                len: 15
            })
        );
    }
}
