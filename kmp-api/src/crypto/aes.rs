//! AES (FIPS 197) single-block operations and AES-CTR (NIST SP 800-38A §6.5).
//!
//! Keys are 16, 24 or 32 octets (AES-128/192/256); anything else is
//! [`CryptoError::KeyLength`]. The types here keep their OpenSSL cipher contexts, so the key
//! schedule is computed once per key, not once per call.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;

use super::CryptoError;

/// The AES block length in octets.
pub const BLOCK_LEN: usize = 16;

/// One AES block.
pub type Block = [u8; BLOCK_LEN];

/// The largest input handed to one `EVP_CipherUpdate` call (its length is a C `int`).
const MAX_UPDATE: usize = 1 << 30;

/// Which AES mode an OpenSSL context is set up for.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Ecb,
    Cbc,
    Ctr,
}

/// The OpenSSL cipher for `mode` with a key of `key_len` octets.
pub(crate) fn cipher_for(mode: Mode, key_len: usize) -> Result<&'static CipherRef, CryptoError> {
    Ok(match (mode, key_len) {
        (Mode::Ecb, 16) => super::fetched_cipher!("AES-128-ECB", Cipher::aes_128_ecb()),
        (Mode::Ecb, 24) => super::fetched_cipher!("AES-192-ECB", Cipher::aes_192_ecb()),
        (Mode::Ecb, 32) => super::fetched_cipher!("AES-256-ECB", Cipher::aes_256_ecb()),
        (Mode::Cbc, 16) => super::fetched_cipher!("AES-128-CBC", Cipher::aes_128_cbc()),
        (Mode::Cbc, 24) => super::fetched_cipher!("AES-192-CBC", Cipher::aes_192_cbc()),
        (Mode::Cbc, 32) => super::fetched_cipher!("AES-256-CBC", Cipher::aes_256_cbc()),
        (Mode::Ctr, 16) => super::fetched_cipher!("AES-128-CTR", Cipher::aes_128_ctr()),
        (Mode::Ctr, 24) => super::fetched_cipher!("AES-192-CTR", Cipher::aes_192_ctr()),
        (Mode::Ctr, 32) => super::fetched_cipher!("AES-256-CTR", Cipher::aes_256_ctr()),
        (_, n) => return Err(CryptoError::KeyLength(n)),
    })
}

/// An encrypting context for `mode` with `key` scheduled, padding off. CBC and CTR contexts
/// start with an all-zero IV; re-initialise them with `encrypt_init(None, None, Some(iv))`.
pub(crate) fn encrypt_ctx(mode: Mode, key: &[u8]) -> Result<CipherCtx, CryptoError> {
    let cipher = cipher_for(mode, key.len())?;
    let mut ctx = CipherCtx::new()?;
    let iv = [0u8; BLOCK_LEN];
    let iv = match mode {
        Mode::Ecb => None,
        Mode::Cbc | Mode::Ctr => Some(&iv[..]),
    };
    ctx.encrypt_init(Some(cipher), Some(key), iv)?;
    ctx.set_padding(false);
    Ok(ctx)
}

/// XORs the key stream of a CTR context, already positioned, into `data` in place.
fn ctr_xor_in_place(ctx: &mut CipherCtx, data: &mut [u8]) -> Result<(), CryptoError> {
    for chunk in data.chunks_mut(MAX_UPDATE) {
        let n = chunk.len();
        let written = ctx.cipher_update_inplace(chunk, n)?;
        if written != n {
            return Err(CryptoError::Library(format!(
                "AES-CTR wrote {written} of {n} octets"
            )));
        }
    }
    Ok(())
}

/// AES encryption and decryption of single 16-octet blocks (the raw block cipher, FIPS 197 §5),
/// with the key schedule kept between calls.
pub struct AesBlockCipher {
    enc: CipherCtx,
    /// Scheduled on the first decryption: most users only encrypt (key derivations, CMAC).
    dec: Option<CipherCtx>,
    key: super::SecretBytes,
}

impl AesBlockCipher {
    /// Schedules `key` (16, 24 or 32 octets) for encryption; decryption is scheduled when
    /// first used.
    pub fn new(key: &[u8]) -> Result<AesBlockCipher, CryptoError> {
        let enc = encrypt_ctx(Mode::Ecb, key)?;
        Ok(AesBlockCipher {
            enc,
            dec: None,
            key: super::SecretBytes::from_slice(key),
        })
    }

    /// Replaces `block` by its encryption.
    pub fn encrypt_block(&mut self, block: &mut Block) -> Result<(), CryptoError> {
        one_block(&mut self.enc, block)
    }

    /// Replaces `block` by its decryption.
    pub fn decrypt_block(&mut self, block: &mut Block) -> Result<(), CryptoError> {
        let dec = match &mut self.dec {
            Some(d) => d,
            slot => {
                let key = self.key.expose();
                let mut d = CipherCtx::new()?;
                d.decrypt_init(Some(cipher_for(Mode::Ecb, key.len())?), Some(key), None)?;
                d.set_padding(false);
                slot.insert(d)
            }
        };
        one_block(dec, block)
    }
}

pub(crate) fn one_block(ctx: &mut CipherCtx, block: &mut Block) -> Result<(), CryptoError> {
    // The crate wants room for one more block than the input, whatever the padding setting.
    let mut out = [0u8; 2 * BLOCK_LEN];
    let n = ctx.cipher_update(block, Some(&mut out))?;
    if n != BLOCK_LEN {
        return Err(CryptoError::Library(format!(
            "AES-ECB wrote {n} of 16 octets"
        )));
    }
    block.copy_from_slice(&out[..BLOCK_LEN]);
    Ok(())
}

/// One-shot AES encryption of one block under `key` (16, 24 or 32 octets).
pub fn aes_encrypt_block(key: &[u8], block: &Block) -> Result<Block, CryptoError> {
    let mut b = *block;
    one_block(&mut encrypt_ctx(Mode::Ecb, key)?, &mut b)?;
    Ok(b)
}

/// One-shot AES decryption of one block under `key` (16, 24 or 32 octets).
pub fn aes_decrypt_block(key: &[u8], block: &Block) -> Result<Block, CryptoError> {
    let mut b = *block;
    AesBlockCipher::new(key)?.decrypt_block(&mut b)?;
    Ok(b)
}

/// AES in counter mode (SP 800-38A §6.5) with the whole 16-octet block as a big-endian counter,
/// as OpenSSL's `aes-*-ctr` does. Encryption and decryption are the same operation.
///
/// Callers whose counter field is shorter than 128 bits (CCM's L octets) must keep the message
/// short enough that the counter never carries into the nonce.
pub struct AesCtr {
    ctx: CipherCtx,
}

impl AesCtr {
    /// Schedules `key` (16, 24 or 32 octets).
    pub fn new(key: &[u8]) -> Result<AesCtr, CryptoError> {
        Ok(AesCtr {
            ctx: encrypt_ctx(Mode::Ctr, key)?,
        })
    }

    /// XORs the key stream that starts at `initial_counter` into `data` (any length). Each call
    /// starts again from `initial_counter`.
    pub fn apply_keystream(
        &mut self,
        initial_counter: &Block,
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.ctx.encrypt_init(None, None, Some(initial_counter))?;
        ctr_xor_in_place(&mut self.ctx, data)
    }
}

/// One-shot AES-CTR: XORs the key stream of `key` from `initial_counter` into `data`.
pub fn aes_ctr(key: &[u8], initial_counter: &Block, data: &mut [u8]) -> Result<(), CryptoError> {
    AesCtr::new(key)?.apply_keystream(initial_counter, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn block(s: &str) -> Block {
        h(s).try_into().unwrap()
    }

    // FIPS 197 Appendix C.1 (AES-128), C.2 (AES-192) and C.3 (AES-256).
    #[test]
    fn fips197_appendix_c() {
        let pt = block("00112233445566778899aabbccddeeff");
        let cases = [
            (
                "000102030405060708090a0b0c0d0e0f",
                "69c4e0d86a7b0430d8cdb78070b4c55a",
            ),
            (
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "dda97ca4864cdfe06eaf70a0ec0d7191",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8ea2b7ca516745bfeafc49904b496089",
            ),
        ];
        for (key, ct) in cases {
            let key = h(key);
            assert_eq!(aes_encrypt_block(&key, &pt).unwrap(), block(ct));
            assert_eq!(aes_decrypt_block(&key, &block(ct)).unwrap(), pt);
            let mut cipher = AesBlockCipher::new(&key).unwrap();
            for _ in 0..3 {
                let mut b = pt;
                cipher.encrypt_block(&mut b).unwrap();
                assert_eq!(b, block(ct));
                cipher.decrypt_block(&mut b).unwrap();
                assert_eq!(b, pt);
            }
        }
    }

    // NIST SP 800-38A Appendix F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256.Encrypt).
    #[test]
    fn sp800_38a_f5() {
        let ctr = block("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let pt = h(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                    30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        let cases = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff\
                 5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5\
                 2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
            ),
        ];
        for (key, ct) in cases {
            let key = h(key);
            let mut data = pt.clone();
            aes_ctr(&key, &ctr, &mut data).unwrap();
            assert_eq!(data, h(ct));
            // A cached context restarts from the given counter on every call; odd lengths
            // are fine.
            let mut ctx = AesCtr::new(&key).unwrap();
            let mut part = pt[..37].to_vec();
            ctx.apply_keystream(&ctr, &mut part).unwrap();
            assert_eq!(part, h(ct)[..37]);
            ctx.apply_keystream(&ctr, &mut data).unwrap();
            assert_eq!(data, pt);
        }
    }

    #[test]
    fn bad_key_lengths() {
        assert_eq!(
            AesBlockCipher::new(&[0; 15]).err(),
            Some(CryptoError::KeyLength(15))
        );
        assert_eq!(AesCtr::new(&[0; 0]).err(), Some(CryptoError::KeyLength(0)));
        assert_eq!(
            aes_encrypt_block(&[0; 33], &[0; 16]),
            Err(CryptoError::KeyLength(33))
        );
    }
}
