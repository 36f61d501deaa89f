//! AES-CBC (NIST SP 800-38A §6.2) over whole blocks, without padding.
//!
//! The key is 16, 24 or 32 octets ([`CryptoError::KeyLength`] otherwise), the IV one block
//! (16 octets), and the data a multiple of the block length (else [`CryptoError::Length`] with
//! `what = "AES-CBC data"`). Padding, if a protocol wants one, is the caller's business; so is
//! integrity (CBC alone has none) and an unpredictable IV.

use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroize;

use super::CryptoError;
use super::aes::{BLOCK_LEN, Mode, cipher_for};

fn cbc(encrypt: bool, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = cipher_for(Mode::Cbc, key.len())?;
    if iv.len() != BLOCK_LEN {
        return Err(CryptoError::Length {
            what: "AES-CBC IV",
            len: iv.len(),
        });
    }
    if !data.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::Length {
            what: "AES-CBC data",
            len: data.len(),
        });
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let mut ctx = CipherCtx::new()?;
    if encrypt {
        ctx.encrypt_init(Some(cipher), Some(key), Some(iv))?;
    } else {
        ctx.decrypt_init(Some(cipher), Some(key), Some(iv))?;
    }
    ctx.set_padding(false);
    // The openssl crate wants output room for the input plus one block.
    let mut out = vec![0u8; data.len() + BLOCK_LEN];
    let result = ctx
        .cipher_update(data, Some(&mut out))
        .and_then(|n| Ok(n + ctx.cipher_final(&mut out[n..])?));
    match result {
        Ok(n) if n == data.len() => {
            out.truncate(n);
            Ok(out)
        }
        Ok(n) => {
            out.zeroize();
            Err(CryptoError::Library(format!(
                "AES-CBC wrote {n} of {} octets",
                data.len()
            )))
        }
        Err(e) => {
            out.zeroize();
            Err(e.into())
        }
    }
}

/// AES-CBC encryption of `plaintext` (a whole number of blocks) under `key` and `iv`.
pub fn cbc_encrypt(key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    cbc(true, key, iv, plaintext)
}

/// AES-CBC decryption of `ciphertext` (a whole number of blocks) under `key` and `iv`.
pub fn cbc_decrypt(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    cbc(false, key, iv, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    /// The plaintext of SP 800-38A Appendix F (four blocks).
    const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    /// NIST SP 800-38A F.2.1/F.2.2 (CBC-AES128) and F.2.5/F.2.6 (CBC-AES256).
    #[test]
    fn sp800_38a_f2() {
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                 73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                 39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
            ),
        ];
        for (key, ct) in cases {
            let (key, iv, pt, ct) = (h(key), h(IV), h(PLAIN), h(ct));
            assert_eq!(cbc_encrypt(&key, &iv, &pt).unwrap(), ct);
            assert_eq!(cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
            // Block by block: each ciphertext block is the IV of the next.
            assert_eq!(cbc_encrypt(&key, &iv, &pt[..16]).unwrap(), ct[..16]);
            assert_eq!(cbc_decrypt(&key, &ct[16..32], &ct[32..]).unwrap(), pt[32..]);
        }
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = h(IV);
        assert_eq!(
            cbc_encrypt(&key, &iv, &[0; 15]),
            Err(CryptoError::Length {
                what: "AES-CBC data",
                len: 15
            })
        );
        assert_eq!(
            cbc_decrypt(&key, &iv, &[0; 33]),
            Err(CryptoError::Length {
                what: "AES-CBC data",
                len: 33
            })
        );
        assert_eq!(
            cbc_encrypt(&key, &iv[..8], &[0; 16]),
            Err(CryptoError::Length {
                what: "AES-CBC IV",
                len: 8
            })
        );
        assert_eq!(
            cbc_encrypt(&key[..10], &iv, &[0; 16]),
            Err(CryptoError::KeyLength(10))
        );
        assert_eq!(cbc_encrypt(&key, &iv, &[]).unwrap(), Vec::<u8>::new());
    }
}
