//! The Encrypted (SK) payload: encryption transforms (type 1), integrity transforms (type 3) and
//! [`SkCipher`], which seals and opens the payload body `IV ‖ ciphertext ‖ ICV`.
//!
//! - AES-CBC with HMAC-SHA-256-128 follows RFC 7296 §3.14: the plaintext is
//!   `payloads ‖ padding ‖ pad length`, padded to the AES block, and the ICV is the truncated
//!   HMAC over everything from the IKE header to the end of the ciphertext
//!   (`aad ‖ IV ‖ ciphertext`). It is checked, in constant time, before anything is decrypted.
//! - AES-CCM and AES-GCM follow RFC 5282: the key material is `key ‖ salt` (salt of 3 octets
//!   for CCM, 4 for GCM), the nonce is `salt ‖ IV` with an 8-octet explicit IV, the associated
//!   data is the IKE header through the Encrypted payload's generic header, and the
//!   `pad length` octet is still present but no block alignment is needed (this module sends no
//!   padding and accepts any pad length that fits).

use std::fmt;

use kmp_api::crypto::cbc::{cbc_decrypt, cbc_encrypt};
use kmp_api::crypto::ccm::{ccm_open, ccm_seal};
use kmp_api::crypto::gcm::{gcm_open, gcm_seal};
use kmp_api::crypto::hmac::hmac_sha256_parts;
use kmp_api::crypto::{CryptoError, SecretBytes, ct_eq};
use kmp_api::rng::RngHandle;
use zeroize::Zeroize;

/// AES-128 key length in octets.
const AES128_KEY_LEN: usize = 16;
/// AES block length in octets.
const AES_BLOCK_LEN: usize = 16;
/// Explicit IV of the AEAD transforms (RFC 5282 §4 / §8).
const AEAD_IV_LEN: usize = 8;
/// The longest AEAD nonce (GCM: 4-octet salt ‖ 8-octet IV).
const MAX_AEAD_NONCE_LEN: usize = 12;

/// An IKEv2 encryption transform (type 1), all with 128-bit AES keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncrAlg {
    /// `ENCR_AES_CCM_8` (ID 14, RFC 5282): 8-octet ICV, 3-octet salt.
    AesCcm8,
    /// `ENCR_AES_CCM_16` (ID 16, RFC 5282): 16-octet ICV, 3-octet salt.
    AesCcm16,
    /// `ENCR_AES_GCM_16` (ID 20, RFC 5282): 16-octet ICV, 4-octet salt.
    AesGcm16,
    /// `ENCR_AES_CBC` (ID 12, RFC 3602): needs an integrity transform.
    AesCbc,
}

impl EncrAlg {
    /// The only key size supported, in bits: the value of the Key Length attribute (14).
    pub const KEY_BITS: u16 = 128;

    /// The IKEv2 transform ID (14, 16, 20 or 12).
    pub const fn transform_id(self) -> u16 {
        match self {
            EncrAlg::AesCcm8 => 14,
            EncrAlg::AesCcm16 => 16,
            EncrAlg::AesGcm16 => 20,
            EncrAlg::AesCbc => 12,
        }
    }

    /// The value of the Key Length attribute this transform carries: always 128.
    pub const fn key_length_attr(self) -> u16 {
        EncrAlg::KEY_BITS
    }

    /// The transform with ID `id` and Key Length attribute `key_bits`, if supported. AES
    /// transforms must carry the attribute (RFC 7296 §3.3.5), so `None` is not accepted; a key
    /// length other than 128 is not supported.
    pub const fn from_transform_id(id: u16, key_bits: Option<u16>) -> Option<EncrAlg> {
        let alg = match id {
            14 => EncrAlg::AesCcm8,
            16 => EncrAlg::AesCcm16,
            20 => EncrAlg::AesGcm16,
            12 => EncrAlg::AesCbc,
            _ => return None,
        };
        match key_bits {
            Some(EncrAlg::KEY_BITS) => Some(alg),
            _ => None,
        }
    }

    /// Whether this is an authenticated-encryption transform (no integrity transform then).
    pub const fn is_aead(self) -> bool {
        !matches!(self, EncrAlg::AesCbc)
    }

    /// The AES key length in octets (16).
    pub const fn key_len(self) -> usize {
        AES128_KEY_LEN
    }

    /// The salt length in octets: 3 for CCM, 4 for GCM (RFC 5282 §7.1 / §8.1), 0 for CBC.
    pub const fn salt_len(self) -> usize {
        match self {
            EncrAlg::AesCcm8 | EncrAlg::AesCcm16 => 3,
            EncrAlg::AesGcm16 => 4,
            EncrAlg::AesCbc => 0,
        }
    }

    /// The length of `SK_ei` / `SK_er` (and of each Child SA encryption key): key plus salt,
    /// i.e. 19 for CCM, 20 for GCM, 16 for CBC.
    pub const fn key_material_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// The IV length in the payload: 8 for CCM and GCM, 16 (one block) for CBC.
    pub const fn iv_len(self) -> usize {
        match self {
            EncrAlg::AesCbc => AES_BLOCK_LEN,
            _ => AEAD_IV_LEN,
        }
    }

    /// The ICV length of an AEAD transform: 8 for CCM-8, 16 for CCM-16 and GCM-16. For CBC it is
    /// 0 here: the ICV comes from the integrity transform ([`IntegAlg::icv_len`]).
    pub const fn icv_len(self) -> usize {
        match self {
            EncrAlg::AesCcm8 => 8,
            EncrAlg::AesCcm16 | EncrAlg::AesGcm16 => 16,
            EncrAlg::AesCbc => 0,
        }
    }

    /// The alignment `payloads ‖ padding ‖ pad length` must have: 16 for CBC, 1 for the AEADs.
    pub const fn block_len(self) -> usize {
        match self {
            EncrAlg::AesCbc => AES_BLOCK_LEN,
            _ => 1,
        }
    }
}

/// An IKEv2 integrity transform (type 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    /// `NONE` (ID 0): the only choice with an AEAD encryption transform.
    None,
    /// `AUTH_HMAC_SHA2_256_128` (ID 12, RFC 4868): 32-octet key, 16-octet ICV.
    HmacSha256_128,
}

impl IntegAlg {
    /// The IKEv2 transform ID (0 or 12).
    pub const fn transform_id(self) -> u16 {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacSha256_128 => 12,
        }
    }

    /// The transform with ID `id`, if supported.
    pub const fn from_transform_id(id: u16) -> Option<IntegAlg> {
        match id {
            0 => Some(IntegAlg::None),
            12 => Some(IntegAlg::HmacSha256_128),
            _ => None,
        }
    }

    /// The key length (`SK_ai`, `SK_ar`): 32 for HMAC-SHA-256-128, 0 for none.
    pub const fn key_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacSha256_128 => 32,
        }
    }

    /// The ICV length: 16 for HMAC-SHA-256-128, 0 for none.
    pub const fn icv_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacSha256_128 => 16,
        }
    }
}

/// Checks that `encr` and `integ` go together: an AEAD with no integrity transform, CBC with
/// one.
pub(crate) fn check_suite(encr: EncrAlg, integ: IntegAlg) -> Result<(), CryptoError> {
    match (encr.is_aead(), integ) {
        (true, IntegAlg::None) | (false, IntegAlg::HmacSha256_128) => Ok(()),
        (true, _) => Err(CryptoError::Unsupported(
            "an AEAD encryption transform with an integrity transform",
        )),
        (false, IntegAlg::None) => Err(CryptoError::Unsupported(
            "AES-CBC without an integrity transform",
        )),
    }
}

/// The nonce `salt ‖ IV` of an AEAD transform, and its length.
fn aead_nonce(
    encr: EncrAlg,
    key_material: &[u8],
    iv: &[u8],
) -> Result<([u8; MAX_AEAD_NONCE_LEN], usize), CryptoError> {
    if !encr.is_aead() {
        return Err(CryptoError::Unsupported("not an AEAD transform"));
    }
    if key_material.len() != encr.key_material_len() {
        return Err(CryptoError::KeyLength(key_material.len()));
    }
    if iv.len() != AEAD_IV_LEN {
        return Err(CryptoError::Length {
            what: "AEAD IV",
            len: iv.len(),
        });
    }
    let salt = &key_material[encr.key_len()..];
    let mut nonce = [0u8; MAX_AEAD_NONCE_LEN];
    nonce[..salt.len()].copy_from_slice(salt);
    nonce[salt.len()..salt.len() + AEAD_IV_LEN].copy_from_slice(iv);
    Ok((nonce, salt.len() + AEAD_IV_LEN))
}

/// The raw AEAD transform of RFC 5282 (as RFC 4106 / RFC 4309 define it for ESP): encrypts
/// `plaintext` under `key_material` = `key ‖ salt` with nonce `salt ‖ iv` (8-octet `iv`) and
/// returns `ciphertext ‖ ICV`. No IKE padding is added; [`SkCipher`] does that.
pub fn aead_seal(
    encr: EncrAlg,
    key_material: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (nonce, nonce_len) = aead_nonce(encr, key_material, iv)?;
    let key = &key_material[..encr.key_len()];
    let nonce = &nonce[..nonce_len];
    match encr {
        EncrAlg::AesGcm16 => gcm_seal(key, nonce, aad, plaintext, encr.icv_len()),
        _ => ccm_seal(key, nonce, aad, plaintext, encr.icv_len()),
    }
}

/// The inverse of [`aead_seal`]: checks the ICV at the end of `sealed` and returns the
/// plaintext, or [`CryptoError::AuthenticationFailed`].
pub fn aead_open(
    encr: EncrAlg,
    key_material: &[u8],
    iv: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (nonce, nonce_len) = aead_nonce(encr, key_material, iv)?;
    let key = &key_material[..encr.key_len()];
    let nonce = &nonce[..nonce_len];
    if sealed.len() < encr.icv_len() {
        return Err(CryptoError::Length {
            what: "AEAD ciphertext",
            len: sealed.len(),
        });
    }
    match encr {
        EncrAlg::AesGcm16 => gcm_open(key, nonce, aad, sealed, encr.icv_len())
            .map_err(|_| CryptoError::AuthenticationFailed),
        _ => ccm_open(key, nonce, aad, sealed, encr.icv_len()),
    }
}

/// The cipher of one direction of an IKE SA (or of anything else shaped like the Encrypted
/// payload): seals and opens `IV ‖ encrypted(payloads ‖ padding ‖ pad length) ‖ ICV`.
///
/// Use one per direction: `SK_ei`/`SK_ai` to send as initiator, `SK_er`/`SK_ar` to receive.
#[derive(Clone)]
pub struct SkCipher {
    encr: EncrAlg,
    integ: IntegAlg,
    encr_key: SecretBytes,
    integ_key: SecretBytes,
}

impl fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkCipher")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

impl SkCipher {
    /// A cipher with `encr_key` ([`EncrAlg::key_material_len`] octets: key ‖ salt for the AEADs)
    /// and `integ_key` ([`IntegAlg::key_len`] octets; empty for [`IntegAlg::None`]).
    ///
    /// An AEAD with an integrity transform, CBC without one
    /// ([`CryptoError::Unsupported`]) and wrong key lengths ([`CryptoError::KeyLength`]) are
    /// rejected.
    pub fn new(
        encr: EncrAlg,
        integ: IntegAlg,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Result<SkCipher, CryptoError> {
        check_suite(encr, integ)?;
        if encr_key.len() != encr.key_material_len() {
            return Err(CryptoError::KeyLength(encr_key.len()));
        }
        if integ_key.len() != integ.key_len() {
            return Err(CryptoError::KeyLength(integ_key.len()));
        }
        Ok(SkCipher {
            encr,
            integ,
            encr_key: SecretBytes::from_slice(encr_key),
            integ_key: SecretBytes::from_slice(integ_key),
        })
    }

    /// The encryption transform.
    pub fn encr(&self) -> EncrAlg {
        self.encr
    }

    /// The integrity transform.
    pub fn integ(&self) -> IntegAlg {
        self.integ
    }

    /// The IV length in the payload body.
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    /// The ICV length at the end of the payload body (from the AEAD, or from the integrity
    /// transform for CBC).
    pub fn icv_len(&self) -> usize {
        if self.encr.is_aead() {
            self.encr.icv_len()
        } else {
            self.integ.icv_len()
        }
    }

    /// The length of `payloads ‖ padding ‖ pad length` for `plaintext_len` octets of payloads:
    /// the pad length octet is always there; CBC pads to the block.
    fn padded_len(&self, plaintext_len: usize) -> usize {
        let block = self.encr.block_len();
        let with_pad_octet = plaintext_len.saturating_add(1);
        with_pad_octet.div_ceil(block).saturating_mul(block)
    }

    /// The length of the sealed body (`IV ‖ ciphertext ‖ ICV`, the Encrypted payload without
    /// its generic header) for `plaintext_len` octets of inner payloads.
    pub fn sealed_len(&self, plaintext_len: usize) -> usize {
        self.iv_len()
            .saturating_add(self.padded_len(plaintext_len))
            .saturating_add(self.icv_len())
    }

    /// Seals `plaintext` (the inner payloads) with a fresh IV from `rng`. `aad` is the message
    /// from the first octet of the IKE header to the end of the Encrypted payload's generic
    /// header, with the final lengths already in place ([`SkCipher::sealed_len`] gives them).
    /// Returns exactly `sealed_len(plaintext.len())` octets.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &RngHandle,
    ) -> Result<Vec<u8>, CryptoError> {
        let iv = rng.vec(self.iv_len())?;
        self.seal_with_iv(aad, &iv, plaintext)
    }

    /// [`SkCipher::seal`] with a given IV ([`SkCipher::iv_len`] octets). The IV must never repeat
    /// under one key (for the AEADs a repeat is fatal); for CBC it must also be unpredictable.
    /// Meant for known-answer tests and for senders that keep an IV counter.
    pub fn seal_with_iv(
        &self,
        aad: &[u8],
        iv: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if iv.len() != self.iv_len() {
            return Err(CryptoError::Length {
                what: "IV",
                len: iv.len(),
            });
        }
        let padded = self.padded_len(plaintext.len());
        let pad = padded - plaintext.len() - 1;
        let pad_octet = u8::try_from(pad).map_err(|_| CryptoError::Length {
            what: "padding",
            len: pad,
        })?;
        let mut inner = Vec::with_capacity(padded);
        inner.extend_from_slice(plaintext);
        inner.resize(padded - 1, 0);
        inner.push(pad_octet);

        let mut out = Vec::with_capacity(self.sealed_len(plaintext.len()));
        out.extend_from_slice(iv);
        let result = if self.encr.is_aead() {
            aead_seal(self.encr, self.encr_key.expose(), iv, aad, &inner)
                .map(|sealed| out.extend_from_slice(&sealed))
        } else {
            cbc_encrypt(self.encr_key.expose(), iv, &inner).and_then(|ct| {
                out.extend_from_slice(&ct);
                let icv = self.cbc_icv(aad, &out)?;
                out.extend_from_slice(&icv[..self.integ.icv_len()]);
                Ok(())
            })
        };
        inner.zeroize();
        result.map(|()| out)
    }

    /// HMAC-SHA-256 over `aad ‖ IV ‖ ciphertext` (untruncated).
    fn cbc_icv(&self, aad: &[u8], iv_and_ct: &[u8]) -> Result<[u8; 32], CryptoError> {
        hmac_sha256_parts(self.integ_key.expose(), &[aad, iv_and_ct])
    }

    /// Opens a sealed body (`IV ‖ ciphertext ‖ ICV`) under `aad` (see [`SkCipher::seal`]) and
    /// returns the inner payloads with padding and pad length stripped.
    ///
    /// A body too short or (CBC) not block-aligned is [`CryptoError::Length`]; a wrong ICV is
    /// [`CryptoError::AuthenticationFailed`] (for CBC checked in constant time before
    /// decrypting); a pad length larger than the decrypted data is [`CryptoError::Length`] with
    /// `what = "pad length"`.
    pub fn open(&self, aad: &[u8], body: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let min = iv_len + icv_len + self.encr.block_len();
        if body.len() < min {
            return Err(CryptoError::Length {
                what: "Encrypted payload body",
                len: body.len(),
            });
        }
        let (iv, rest) = body.split_at(iv_len);
        let mut inner = if self.encr.is_aead() {
            aead_open(self.encr, self.encr_key.expose(), iv, aad, rest)?
        } else {
            let split = body.len() - icv_len;
            let (iv_and_ct, icv) = body.split_at(split);
            let ct = &iv_and_ct[iv_len..];
            if !ct.len().is_multiple_of(AES_BLOCK_LEN) {
                return Err(CryptoError::Length {
                    what: "AES-CBC ciphertext",
                    len: ct.len(),
                });
            }
            let mac = self.cbc_icv(aad, iv_and_ct)?;
            if !ct_eq(&mac[..icv_len], icv) {
                return Err(CryptoError::AuthenticationFailed);
            }
            cbc_decrypt(self.encr_key.expose(), iv, ct)?
        };
        let pad = inner.last().copied().map_or(0, usize::from);
        match inner.len().checked_sub(pad + 1) {
            Some(len) => {
                inner[len..].zeroize();
                inner.truncate(len);
                Ok(inner)
            }
            None => {
                inner.zeroize();
                Err(CryptoError::Length {
                    what: "pad length",
                    len: pad,
                })
            }
        }
    }
}
