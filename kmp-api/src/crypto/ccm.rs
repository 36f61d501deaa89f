//! AES-CCM (RFC 3610, NIST SP 800-38C) and CCM* (IEEE 802.15.4-2020 Annex B), for 802.15.4
//! frame security and for KMPs that protect messages with CCM.
//!
//! CCM* is CCM with one addition: a tag of length 0 (`M = 0`, security levels 4 `ENC`) which
//! only encrypts. For tag lengths 4..=16 the two are the same function. OpenSSL's EVP CCM cannot
//! produce a tag of length 0, so this module builds CCM itself from two cached OpenSSL contexts
//! whose key schedules are computed once, in [`AesCcm::new`]:
//!
//! - AES-CBC as the CBC-MAC over `B_0 ‖ encoded a ‖ padded m`. The context is never re-keyed or
//!   re-initialised: its chaining value after one message is remembered and XORed into the next
//!   message's `B_0`, which gives the same result as restarting from a zero IV, minus one
//!   `EVP_EncryptInit_ex` per message;
//! - AES-ECB over the counter blocks `A_i`, which yields the key stream `S_i` in one call
//!   (the `A_i` differ only in their counter field, so this is CTR mode with CCM's counter).
//!
//! A message up to 240 octets costs two calls into OpenSSL and no heap allocation.
//!
//! Parameters (RFC 3610 §2, SP 800-38C A.1):
//!
//! - nonce: 7..=13 octets; the length field then has `L = 15 - nonce.len()` octets and the
//!   message must be shorter than `2^(8L)` octets (65 535 for the 13-octet 802.15.4 nonce);
//! - tag (MIC): 0 (CCM* only), 4, 6, 8, 10, 12, 14 or 16 octets;
//! - additional data: any length, encoded as RFC 3610 §2.2 says.
//!
//! The 802.15.4 nonce is `source EUI-64 ‖ frame counter (4, big-endian) ‖ security level`
//! (13 octets); building it is the caller's business.

use openssl::cipher_ctx::CipherCtx;

use super::CryptoError;
use super::aes::{BLOCK_LEN, Block, Mode, encrypt_ctx};
use super::ct_eq;

/// Shortest nonce (L = 8).
pub const MIN_NONCE_LEN: usize = 7;
/// Longest nonce (L = 2); the 802.15.4 nonce has this length.
pub const MAX_NONCE_LEN: usize = 13;

/// Octets gathered on the stack before one call into OpenSSL; longer inputs take several calls.
const STAGE_LEN: usize = 256;

/// AES-CCM / CCM* under one key, with the OpenSSL contexts cached. Methods take `&mut self`:
/// use one per thread or put it behind a lock. Creating one costs two key schedules.
pub struct AesCcm {
    cbc: CipherCtx,
    ecb: CipherCtx,
    /// The chaining value the CBC context holds (its last output block), or `None` when it is
    /// unknown after a failed call and the context must be reset to a zero IV first.
    chain: Option<Block>,
}

impl AesCcm {
    /// Schedules `key`: 16 octets (AES-128, the 802.15.4 case); 24 and 32 are accepted too.
    pub fn new(key: &[u8]) -> Result<AesCcm, CryptoError> {
        Ok(AesCcm {
            cbc: encrypt_ctx(Mode::Cbc, key)?,
            ecb: encrypt_ctx(Mode::Ecb, key)?,
            chain: Some([0u8; BLOCK_LEN]),
        })
    }

    /// Encrypts `data` in place and writes the tag (MIC) into `tag`, whose length selects `M`.
    ///
    /// Fails with [`CryptoError::Length`] on a bad nonce or tag length or a message too long for
    /// the nonce; `data` is untouched then. After an OpenSSL failure its content is unspecified.
    pub fn seal_in_place(
        &mut self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        let l = check_params(nonce, data.len(), tag.len())?;
        if tag.is_empty() {
            return self.ctr_xor(nonce, l, None, data);
        }
        let mut block = self.cbc_mac(nonce, l, aad, data, tag.len())?;
        self.ctr_xor(nonce, l, Some(&mut block), data)?;
        tag.copy_from_slice(&block[..tag.len()]);
        Ok(())
    }

    /// Checks `tag` and decrypts `data` in place.
    ///
    /// With a tag of length 0 (CCM* `ENC` levels) nothing is authenticated and this only
    /// decrypts. On [`CryptoError::AuthenticationFailed`] (and on any other failure after
    /// decryption began) `data` is zeroed, so unauthenticated plaintext never leaks out. The tag
    /// comparison is constant-time.
    pub fn open_in_place(
        &mut self,
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let l = check_params(nonce, data.len(), tag.len())?;
        let result = self.open_checked(nonce, l, aad, data, tag);
        if result.is_err() {
            data.fill(0);
        }
        result
    }

    fn open_checked(
        &mut self,
        nonce: &[u8],
        l: usize,
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        if tag.is_empty() {
            return self.ctr_xor(nonce, l, None, data);
        }
        // Decrypting the received tag with S_0 gives the CBC-MAC the sender computed.
        let mut expected = [0u8; BLOCK_LEN];
        expected[..tag.len()].copy_from_slice(tag);
        self.ctr_xor(nonce, l, Some(&mut expected), data)?;
        let mac = self.cbc_mac(nonce, l, aad, data, tag.len())?;
        if ct_eq(&mac[..tag.len()], &expected[..tag.len()]) {
            Ok(())
        } else {
            Err(CryptoError::AuthenticationFailed)
        }
    }

    /// XORs the CCM key stream into `tag_block` (`S_0`, when there is a tag) and `data`
    /// (`S_1`, `S_2`, …), with `S_i = E(K, A_i)` and
    /// `A_i = flags (L' = L - 1) ‖ nonce ‖ i in L octets` (RFC 3610 §2.3).
    fn ctr_xor(
        &mut self,
        nonce: &[u8],
        l: usize,
        mut tag_block: Option<&mut Block>,
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        let mut a = [0u8; BLOCK_LEN];
        a[0] = l_prime(l);
        a[1..=nonce.len()].copy_from_slice(nonce);
        // check_params guarantees every counter value used fits in L octets.
        let mut counter: u64 = if tag_block.is_some() { 0 } else { 1 };
        let mut stage = [0u8; STAGE_LEN + BLOCK_LEN];
        let mut rest = data;
        loop {
            let tag_blocks = usize::from(tag_block.is_some());
            let take = rest.len().min(STAGE_LEN - tag_blocks * BLOCK_LEN);
            let blocks = tag_blocks + take.div_ceil(BLOCK_LEN);
            if blocks == 0 {
                return Ok(());
            }
            for block in stage[..blocks * BLOCK_LEN].chunks_exact_mut(BLOCK_LEN) {
                block.copy_from_slice(&a);
                block[BLOCK_LEN - l..].copy_from_slice(&counter.to_be_bytes()[8 - l..]);
                counter += 1;
            }
            encrypt_blocks(&mut self.ecb, &mut stage, blocks * BLOCK_LEN)?;
            let mut stream = &stage[..blocks * BLOCK_LEN];
            if let Some(t) = tag_block.take() {
                xor(t, &stream[..BLOCK_LEN]);
                stream = &stream[BLOCK_LEN..];
            }
            let (chunk, tail) = rest.split_at_mut(take);
            xor(chunk, &stream[..take]);
            rest = tail;
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// The CBC-MAC `X_{n+1}` of RFC 3610 §2.2 over `B_0 ‖ encoded aad ‖ padded data`.
    fn cbc_mac(
        &mut self,
        nonce: &[u8],
        l: usize,
        aad: &[u8],
        data: &[u8],
        tag_len: usize,
    ) -> Result<Block, CryptoError> {
        let chain = match self.chain.take() {
            Some(chain) => chain,
            None => {
                let zero = [0u8; BLOCK_LEN];
                self.cbc.encrypt_init(None, None, Some(&zero))?;
                zero
            }
        };
        let mut mac = CbcMac::new(&mut self.cbc);

        // B_0 = flags ‖ nonce ‖ l(m) in L octets. Flags: Adata (bit 6), M' = (M - 2) / 2
        // (bits 5..3), L' = L - 1 (bits 2..0).
        let mut b0 = [0u8; BLOCK_LEN];
        let adata = if aad.is_empty() { 0 } else { 0x40 };
        b0[0] = adata | m_prime(tag_len) << 3 | l_prime(l);
        b0[1..=nonce.len()].copy_from_slice(nonce);
        let len = (data.len() as u64).to_be_bytes();
        b0[1 + nonce.len()..].copy_from_slice(&len[8 - l..]);
        // The context continues from `chain`; cancelling it makes this a fresh CBC-MAC.
        xor(&mut b0, &chain);
        mac.absorb(&b0)?;

        if !aad.is_empty() {
            let mut enc = [0u8; 10];
            mac.absorb(encode_aad_len(aad.len(), &mut enc))?;
            mac.absorb(aad)?;
            mac.pad()?;
        }
        mac.absorb(data)?;
        let x = mac.finish()?;
        // Only a call that went through leaves the context in a known state.
        self.chain = Some(x);
        Ok(x)
    }
}

/// ECB-encrypts `buf[..len]` in place (`len` a multiple of the block length, `buf` at least one
/// block longer, as the openssl crate asks of in-place updates).
fn encrypt_blocks(ctx: &mut CipherCtx, buf: &mut [u8], len: usize) -> Result<(), CryptoError> {
    let written = ctx.cipher_update_inplace(buf, len)?;
    if written == len {
        Ok(())
    } else {
        Err(CryptoError::Library(format!(
            "AES wrote {written} of {len} octets"
        )))
    }
}

fn xor(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// Validates the parameters and returns `L`.
fn check_params(nonce: &[u8], data_len: usize, tag_len: usize) -> Result<usize, CryptoError> {
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) {
        return Err(CryptoError::Length {
            what: "CCM nonce",
            len: nonce.len(),
        });
    }
    if !matches!(tag_len, 0 | 4 | 6 | 8 | 10 | 12 | 14 | 16) {
        return Err(CryptoError::Length {
            what: "CCM tag",
            len: tag_len,
        });
    }
    let l = 15 - nonce.len();
    // l(m) < 2^(8L); for L = 8 every usize fits.
    if l < 8 && (data_len as u64) >> (8 * l) != 0 {
        return Err(CryptoError::Length {
            what: "CCM message",
            len: data_len,
        });
    }
    Ok(l)
}

/// `L' = L - 1` for `L` in 2..=8 (as `check_params` guarantees).
fn l_prime(l: usize) -> u8 {
    u8::try_from(l.saturating_sub(1) & 0x07).unwrap_or(0)
}

/// `M' = (M - 2) / 2` for `M` in 4..=16, 0 for CCM*'s `M = 0`.
fn m_prime(m: usize) -> u8 {
    u8::try_from((m.saturating_sub(2) / 2) & 0x07).unwrap_or(0)
}

/// RFC 3610 §2.2 encoding of `l(a) > 0` into `buf`; returns the used prefix.
fn encode_aad_len(len: usize, buf: &mut [u8; 10]) -> &[u8] {
    let len = len as u64;
    if len < 0xFF00 {
        buf[..2].copy_from_slice(&len.to_be_bytes()[6..]);
        &buf[..2]
    } else if len <= u64::from(u32::MAX) {
        buf[..2].copy_from_slice(&[0xFF, 0xFE]);
        buf[2..6].copy_from_slice(&len.to_be_bytes()[4..]);
        &buf[..6]
    } else {
        buf[..2].copy_from_slice(&[0xFF, 0xFF]);
        buf[2..10].copy_from_slice(&len.to_be_bytes());
        &buf[..10]
    }
}

/// Feeds a CBC context from a stack buffer, block-aligned, and keeps the last output block.
struct CbcMac<'a> {
    ctx: &'a mut CipherCtx,
    // One extra block: the openssl crate wants output room for input + one block.
    stage: [u8; STAGE_LEN + BLOCK_LEN],
    len: usize,
    last: Block,
}

impl<'a> CbcMac<'a> {
    fn new(ctx: &'a mut CipherCtx) -> CbcMac<'a> {
        CbcMac {
            ctx,
            stage: [0u8; STAGE_LEN + BLOCK_LEN],
            len: 0,
            last: [0u8; BLOCK_LEN],
        }
    }

    fn absorb(&mut self, mut input: &[u8]) -> Result<(), CryptoError> {
        while !input.is_empty() {
            let n = (STAGE_LEN - self.len).min(input.len());
            self.stage[self.len..self.len + n].copy_from_slice(&input[..n]);
            self.len += n;
            input = &input[n..];
            if self.len == STAGE_LEN {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Zero-pads to the next block boundary (nothing if already aligned).
    fn pad(&mut self) -> Result<(), CryptoError> {
        let rem = self.len % BLOCK_LEN;
        if rem != 0 {
            let end = self.len + BLOCK_LEN - rem;
            self.stage[self.len..end].fill(0);
            self.len = end;
            if self.len == STAGE_LEN {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CryptoError> {
        if self.len == 0 {
            return Ok(());
        }
        let n = self.len;
        let written = self.ctx.cipher_update_inplace(&mut self.stage, n)?;
        if written != n {
            return Err(CryptoError::Library(format!(
                "AES-CBC wrote {written} of {n} octets"
            )));
        }
        self.last.copy_from_slice(&self.stage[n - BLOCK_LEN..n]);
        self.len = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Block, CryptoError> {
        self.pad()?;
        self.flush()?;
        Ok(self.last)
    }
}

/// One-shot CCM / CCM* encryption: returns `ciphertext ‖ tag` with a tag of `tag_len` octets.
pub fn ccm_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; plaintext.len() + tag_len];
    let (data, tag) = out.split_at_mut(plaintext.len());
    data.copy_from_slice(plaintext);
    AesCcm::new(key)?.seal_in_place(nonce, aad, data, tag)?;
    Ok(out)
}

/// One-shot CCM / CCM* decryption of `ciphertext ‖ tag` (tag of `tag_len` octets): returns the
/// plaintext or [`CryptoError::AuthenticationFailed`].
pub fn ccm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let Some(split) = sealed.len().checked_sub(tag_len) else {
        return Err(CryptoError::Length {
            what: "CCM ciphertext",
            len: sealed.len(),
        });
    };
    let (ct, tag) = sealed.split_at(split);
    let mut data = ct.to_vec();
    AesCcm::new(key)?.open_in_place(nonce, aad, &mut data, tag)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::cipher::Cipher;

    /// OpenSSL's own EVP AES-CCM as the oracle. The tag length is set before the key, as
    /// OpenSSL 3 requires (`openssl::symm::encrypt_aead` sets it after, which only works for
    /// the default 12-octet tag).
    fn evp_ccm_seal(key: &[u8], nonce: &[u8], aad: &[u8], pt: &[u8], tag_len: usize) -> Vec<u8> {
        let cipher = if key.len() == 32 {
            Cipher::aes_256_ccm()
        } else {
            Cipher::aes_128_ccm()
        };
        let mut ctx = CipherCtx::new().unwrap();
        ctx.encrypt_init(Some(cipher), None, None).unwrap();
        ctx.set_iv_length(nonce.len()).unwrap();
        ctx.set_tag_length(tag_len).unwrap();
        ctx.encrypt_init(None, Some(key), Some(nonce)).unwrap();
        ctx.set_data_len(pt.len()).unwrap();
        ctx.cipher_update(aad, None).unwrap();
        let mut out = vec![0u8; pt.len() + 16];
        let n = ctx.cipher_update(pt, Some(&mut out)).unwrap();
        let n = n + ctx.cipher_final(&mut out[n..]).unwrap();
        out.truncate(n);
        let mut tag = vec![0u8; tag_len];
        ctx.tag(&mut tag).unwrap();
        [out, tag].concat()
    }

    /// OpenSSL's EVP AES-CCM decryption; `None` when the tag does not verify.
    fn evp_ccm_open(
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        sealed: &[u8],
        tag_len: usize,
    ) -> Option<Vec<u8>> {
        let (ct, tag) = sealed.split_at(sealed.len() - tag_len);
        let mut ctx = CipherCtx::new().unwrap();
        ctx.decrypt_init(Some(Cipher::aes_128_ccm()), None, None)
            .unwrap();
        ctx.set_iv_length(nonce.len()).unwrap();
        ctx.set_tag(tag).unwrap();
        ctx.decrypt_init(None, Some(key), Some(nonce)).unwrap();
        ctx.set_data_len(ct.len()).unwrap();
        ctx.cipher_update(aad, None).unwrap();
        let mut out = vec![0u8; ct.len() + 16];
        let n = ctx.cipher_update(ct, Some(&mut out)).ok()?;
        out.truncate(n);
        Some(out)
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// Checks one vector both ways through one shared context and the one-shot helpers.
    fn check(ccm: &mut AesCcm, key: &[u8], nonce: &str, aad: &str, pt: &str, sealed: &str) {
        let (nonce, aad, pt, sealed) = (h(nonce), h(aad), h(pt), h(sealed));
        let tag_len = sealed.len() - pt.len();
        let mut data = pt.clone();
        let mut tag = vec![0u8; tag_len];
        ccm.seal_in_place(&nonce, &aad, &mut data, &mut tag)
            .unwrap();
        assert_eq!([data.clone(), tag.clone()].concat(), sealed);
        ccm.open_in_place(&nonce, &aad, &mut data, &tag).unwrap();
        assert_eq!(data, pt);
        assert_eq!(ccm_seal(key, &nonce, &aad, &pt, tag_len).unwrap(), sealed);
        assert_eq!(ccm_open(key, &nonce, &aad, &sealed, tag_len).unwrap(), pt);
    }

    // RFC 3610 §8, packet vectors #1, #2, #3 (M = 8, L = 2) and #7, #8 (M = 10). The RFC
    // writes each packet as `header ‖ payload` with the first 8 (or 12) octets as header.
    #[test]
    fn rfc3610_packet_vectors() {
        let key = h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
        let mut ccm = AesCcm::new(&key).unwrap();
        check(
            &mut ccm,
            &key,
            "00000003020100a0a1a2a3a4a5",
            "0001020304050607",
            "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
            "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0",
        );
        // A context whose CBC chaining value is unknown (as after an OpenSSL failure) resets
        // itself and still computes the right MAC.
        ccm.chain = None;
        check(
            &mut ccm,
            &key,
            "00000004030201a0a1a2a3a4a5",
            "0001020304050607",
            "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916",
        );
        check(
            &mut ccm,
            &key,
            "00000005040302a0a1a2a3a4a5",
            "0001020304050607",
            "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
            "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5",
        );
    }

    // NIST SP 800-38C Appendix C, examples C.1 (tag 4, nonce 7), C.2 (tag 6, nonce 8) and
    // C.3 (tag 8, nonce 12).
    #[test]
    fn sp800_38c_appendix_c() {
        let key = h("404142434445464748494a4b4c4d4e4f");
        let mut ccm = AesCcm::new(&key).unwrap();
        check(
            &mut ccm,
            &key,
            "10111213141516",
            "0001020304050607",
            "20212223",
            "7162015b4dac255d",
        );
        check(
            &mut ccm,
            &key,
            "1011121314151617",
            "000102030405060708090a0b0c0d0e0f",
            "202122232425262728292a2b2c2d2e2f",
            "d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd",
        );
        check(
            &mut ccm,
            &key,
            "101112131415161718191a1b",
            "000102030405060708090a0b0c0d0e0f10111213",
            "202122232425262728292a2b2c2d2e2f3031323334353637",
            "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951",
        );
    }

    // IEEE 802.15.4-2006 Annex C.2 CCM* frame vectors (also in 802.15.4-2011/2015 Annex C and
    // IEEE doc 15-04-0537r2), as carried by RIOT-OS tests/unittests/tests-crypto (CCM* tests
    // "IEEE 0537r2" 1..3), OpenThread tests/unit/test_aes.cpp (C.2.1, C.2.3) and Contiki
    // examples/llsec/ccm-star-tests. Key C0..CF; nonce = source EUI-64 ‖ frame counter 5 ‖
    // security level; a = the MAC header (and for the beacon, the beacon payload).
    #[test]
    fn ieee802154_annex_c_ccm_star() {
        let key = h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
        let mut ccm = AesCcm::new(&key).unwrap();
        // C.2.1 beacon frame, security level 2 (MIC-64): authentication only.
        check(
            &mut ccm,
            &key,
            "acde480000000001 00000005 02",
            "08d0842143010000000048deac020500000055cf000051525354",
            "",
            "223bc1ec841ab553",
        );
        // C.2.2 data frame, security level 4 (ENC): CCM* with M = 0, encryption only.
        check(
            &mut ccm,
            &key,
            "acde480000000001 00000005 04",
            "69dc842143 0200000000 48deac 0100000000 48deac 04 05000000",
            "61626364",
            "d43e022b",
        );
        // C.2.3 MAC command frame, security level 6 (ENC-MIC-64).
        check(
            &mut ccm,
            &key,
            "acde480000000001 00000005 06",
            "2bdc842143 0200000000 48deac ffff 0100000000 48deac 06 05000000 01",
            "ce",
            "d84fde529061f9c6f1",
        );
    }

    /// Random inputs against OpenSSL's own EVP AES-CCM, tag lengths 4, 8 and 16.
    #[test]
    fn cross_check_against_openssl_evp_ccm() {
        let rng = crate::rng::RngHandle::seeded(0x15_4ccb);
        for round in 0..120 {
            let key = rng.vec(16).unwrap();
            let nonce_len = 7 + usize::try_from(rng.below(7).unwrap()).unwrap();
            let nonce = rng.vec(nonce_len).unwrap();
            let aad_len = usize::try_from(rng.below(300).unwrap()).unwrap();
            let aad = rng.vec(aad_len).unwrap();
            let pt_len = usize::try_from(rng.below(600).unwrap()).unwrap();
            let pt = rng.vec(pt_len).unwrap();
            let tag_len = [4, 8, 16][round % 3];

            let expected = evp_ccm_seal(&key, &nonce, &aad, &pt, tag_len);

            let mut ccm = AesCcm::new(&key).unwrap();
            let mut data = pt.clone();
            let mut tag = vec![0u8; tag_len];
            ccm.seal_in_place(&nonce, &aad, &mut data, &mut tag)
                .unwrap();
            let sealed = [data.clone(), tag.clone()].concat();
            assert_eq!(sealed, expected, "round {round}");

            // OpenSSL opens ours, and rejects it once tampered; we open OpenSSL's.
            assert_eq!(
                evp_ccm_open(&key, &nonce, &aad, &sealed, tag_len).unwrap(),
                pt
            );
            let mut tampered = sealed.clone();
            let at = usize::try_from(rng.below(tampered.len() as u64).unwrap()).unwrap();
            tampered[at] ^= 0x20;
            assert_eq!(evp_ccm_open(&key, &nonce, &aad, &tampered, tag_len), None);
            let (ct, t) = tampered.split_at(pt.len());
            let mut buf = ct.to_vec();
            assert_eq!(
                ccm.open_in_place(&nonce, &aad, &mut buf, t),
                Err(CryptoError::AuthenticationFailed)
            );
            ccm.open_in_place(&nonce, &aad, &mut data, &tag).unwrap();
            assert_eq!(data, pt);
        }
    }

    #[test]
    fn long_aad_uses_the_six_octet_length_encoding() {
        // 0xFF00 octets of aad: RFC 3610 §2.2 switches to 0xFFFE ‖ 4 octets here.
        let key = [7u8; 16];
        let nonce = [1u8; 13];
        let aad = vec![0x5a; 0xFF00];
        let pt = vec![0xa5; 100];
        let sealed = ccm_seal(&key, &nonce, &aad, &pt, 8).unwrap();
        assert_eq!(sealed, evp_ccm_seal(&key, &nonce, &aad, &pt, 8));
    }

    #[test]
    fn tampering_fails_and_zeroes_the_plaintext() {
        let key = h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
        let nonce = h("acde480000000001 00000005 06");
        let aad = b"mac header".to_vec();
        let pt = b"a frame payload of some length".to_vec();
        let sealed = ccm_seal(&key, &nonce, &aad, &pt, 8).unwrap();
        let mut ccm = AesCcm::new(&key).unwrap();
        let n = pt.len();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let mut data = bad[..n].to_vec();
            let r = ccm.open_in_place(&nonce, &aad, &mut data, &bad[n..]);
            assert_eq!(r, Err(CryptoError::AuthenticationFailed), "flip at {i}");
            assert!(data.iter().all(|&b| b == 0));
        }
        let mut bad_aad = aad.clone();
        bad_aad[0] ^= 0x80;
        assert_eq!(
            ccm_open(&key, &nonce, &bad_aad, &sealed, 8),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut bad_nonce = nonce.clone();
        bad_nonce[12] = 0x05;
        assert_eq!(
            ccm_open(&key, &bad_nonce, &aad, &sealed, 8),
            Err(CryptoError::AuthenticationFailed)
        );
        // The untouched frame still opens with the same context.
        assert_eq!(ccm_open(&key, &nonce, &aad, &sealed, 8).unwrap(), pt);
    }

    #[test]
    fn parameter_checks() {
        let mut ccm = AesCcm::new(&[0u8; 16]).unwrap();
        let mut data = [0u8; 4];
        for bad_nonce in [6usize, 14] {
            let r = ccm.seal_in_place(&vec![0; bad_nonce], b"", &mut data, &mut [0u8; 8]);
            assert_eq!(
                r,
                Err(CryptoError::Length {
                    what: "CCM nonce",
                    len: bad_nonce
                })
            );
        }
        for bad_tag in [1usize, 2, 3, 5, 17] {
            let r = ccm.seal_in_place(&[0; 13], b"", &mut data, &mut vec![0; bad_tag]);
            assert_eq!(
                r,
                Err(CryptoError::Length {
                    what: "CCM tag",
                    len: bad_tag
                })
            );
        }
        // L = 2 allows at most 65 535 octets.
        let mut big = vec![0u8; 0x1_0000];
        let r = ccm.seal_in_place(&[0; 13], b"", &mut big, &mut [0u8; 4]);
        assert_eq!(
            r,
            Err(CryptoError::Length {
                what: "CCM message",
                len: 0x1_0000
            })
        );
        assert!(
            ccm.seal_in_place(&[0; 12], b"", &mut big, &mut [0u8; 4])
                .is_ok()
        );
        assert_eq!(
            ccm_open(&[0; 16], &[0; 13], b"", &[0; 3], 4).err(),
            Some(CryptoError::Length {
                what: "CCM ciphertext",
                len: 3
            })
        );
        assert_eq!(
            AesCcm::new(&[0; 20]).err(),
            Some(CryptoError::KeyLength(20))
        );
        // AES-256 keys work too (checked against OpenSSL).
        let key = [9u8; 32];
        let expected = evp_ccm_seal(&key, &[3; 11], b"hdr", b"body", 16);
        assert_eq!(
            ccm_seal(&key, &[3; 11], b"hdr", b"body", 16).unwrap(),
            expected
        );
    }

    #[test]
    fn length_encoding_boundaries() {
        let mut buf = [0u8; 10];
        assert_eq!(encode_aad_len(1, &mut buf), &[0x00, 0x01]);
        assert_eq!(encode_aad_len(0xFEFF, &mut buf), &[0xFE, 0xFF]);
        assert_eq!(
            encode_aad_len(0xFF00, &mut buf),
            &[0xFF, 0xFE, 0x00, 0x00, 0xFF, 0x00]
        );
        assert_eq!(
            encode_aad_len(0x1_0000_0000, &mut buf),
            &[0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(m_prime(0), 0);
        assert_eq!(m_prime(4), 1);
        assert_eq!(m_prime(16), 7);
        assert_eq!(l_prime(2), 1);
        assert_eq!(l_prime(8), 7);
    }
}
