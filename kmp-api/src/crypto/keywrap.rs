//! AES Key Wrap (RFC 3394, NIST SP 800-38F KW) with the default initial value `A6A6A6A6A6A6A6A6`.
//!
//! MKA distributes SAKs wrapped under the KEK with it (802.1X-2010 §9.8.1); other KMPs use it
//! for group key transport. The KEK is 16, 24 or 32 octets; the key data is a multiple of 8
//! octets, at least 16; the wrapped form is 8 octets longer.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::{CipherCtx, CipherCtxFlags};
use zeroize::Zeroize;

use super::{CryptoError, SecretBytes};

/// The longest key data accepted (far above any key; keeps OpenSSL's `int` lengths in range).
pub const MAX_KEY_DATA_LEN: usize = 1 << 20;

/// The integrity check value prepended by the wrap (RFC 3394 §2.2.3.1).
pub const DEFAULT_IV: [u8; 8] = [0xA6; 8];

fn wrap_cipher(kek_len: usize) -> Result<&'static CipherRef, CryptoError> {
    match kek_len {
        16 => Ok(super::fetched_cipher!(
            "AES-128-WRAP",
            Cipher::aes_128_wrap()
        )),
        24 => Ok(super::fetched_cipher!(
            "AES-192-WRAP",
            Cipher::aes_192_wrap()
        )),
        32 => Ok(super::fetched_cipher!(
            "AES-256-WRAP",
            Cipher::aes_256_wrap()
        )),
        n => Err(CryptoError::KeyLength(n)),
    }
}

fn run(kek: &[u8], input: &[u8], wrap: bool, out_len: usize) -> Result<Vec<u8>, CryptoError> {
    let cipher = wrap_cipher(kek.len())?;
    let mut ctx = CipherCtx::new()?;
    ctx.set_flags(CipherCtxFlags::FLAG_WRAP_ALLOW);
    if wrap {
        ctx.encrypt_init(Some(cipher), Some(kek), None)?;
    } else {
        ctx.decrypt_init(Some(cipher), Some(kek), None)?;
    }
    // The crate sizes the output of wrap ciphers itself; give it one spare block.
    let mut out = vec![0u8; out_len + 16];
    let result = ctx.cipher_update(input, Some(&mut out));
    match result {
        Ok(n) if n == out_len => {
            out.truncate(n);
            Ok(out)
        }
        Ok(n) => {
            out.zeroize();
            Err(CryptoError::Library(format!(
                "key wrap produced {n} octets, expected {out_len}"
            )))
        }
        Err(e) => {
            out.zeroize();
            Err(e.into())
        }
    }
}

/// Wraps `key_data` (16..=[`MAX_KEY_DATA_LEN`] octets, a multiple of 8) under `kek`
/// (RFC 3394 §2.2.1): returns `key_data.len() + 8` octets.
pub fn aes_key_wrap(kek: &[u8], key_data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if key_data.len() < 16 || !key_data.len().is_multiple_of(8) || key_data.len() > MAX_KEY_DATA_LEN
    {
        return Err(CryptoError::Length {
            what: "key data to wrap",
            len: key_data.len(),
        });
    }
    run(kek, key_data, true, key_data.len() + 8)
}

/// Unwraps `wrapped` under `kek` (RFC 3394 §2.2.2) and checks the integrity value
/// (§2.2.3): a wrong KEK or altered input is [`CryptoError::AuthenticationFailed`].
pub fn aes_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
    if wrapped.len() < 24
        || !wrapped.len().is_multiple_of(8)
        || wrapped.len() > MAX_KEY_DATA_LEN + 8
    {
        return Err(CryptoError::Length {
            what: "wrapped key",
            len: wrapped.len(),
        });
    }
    match run(kek, wrapped, false, wrapped.len() - 8) {
        Ok(v) => Ok(SecretBytes::new(v)),
        // With the lengths checked above, the only failure OpenSSL reports is the integrity
        // check.
        Err(CryptoError::Library(_)) => Err(CryptoError::AuthenticationFailed),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 3394 §4.1 (128-bit KEK, 128-bit key; also spec §8.3), §4.3 (256-bit KEK, 128-bit key)
    // and §4.6 (256-bit KEK, 256-bit key).
    #[test]
    fn rfc3394_section4() {
        let kek128 = h("000102030405060708090a0b0c0d0e0f");
        let kek256 = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let cases = [
            (
                &kek128,
                "00112233445566778899aabbccddeeff",
                "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5",
            ),
            (
                &kek256,
                "00112233445566778899aabbccddeeff",
                "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7",
            ),
            (
                &kek256,
                "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
                "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21",
            ),
        ];
        for (kek, key, wrapped) in cases {
            assert_eq!(aes_key_wrap(kek, &h(key)).unwrap(), h(wrapped));
            assert_eq!(aes_key_unwrap(kek, &h(wrapped)).unwrap().expose(), h(key));
        }
    }

    #[test]
    fn integrity_failures() {
        let kek = h("000102030405060708090a0b0c0d0e0f");
        let wrapped = h("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5");
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                aes_key_unwrap(&kek, &bad),
                Err(CryptoError::AuthenticationFailed)
            );
        }
        let mut other = kek.clone();
        other[0] ^= 1;
        assert_eq!(
            aes_key_unwrap(&other, &wrapped),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn length_checks() {
        let kek = [0u8; 16];
        assert!(matches!(
            aes_key_wrap(&kek, &[0; 8]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            aes_key_wrap(&kek, &[0; 20]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            aes_key_unwrap(&kek, &[0; 16]),
            Err(CryptoError::Length { .. })
        ));
        assert!(matches!(
            aes_key_unwrap(&kek, &[0; 25]),
            Err(CryptoError::Length { .. })
        ));
        assert_eq!(
            aes_key_wrap(&[0; 17], &[0; 16]),
            Err(CryptoError::KeyLength(17))
        );
        assert_eq!(
            aes_key_unwrap(&[0; 8], &[0; 24]),
            Err(CryptoError::KeyLength(8))
        );
    }
}
