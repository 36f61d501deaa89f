//! The 802.1X key hierarchy (IEEE 802.1X-2010 §6.2, §9.3, §9.8): the KDF, CAK and CKN from an
//! EAP MSK or a pre-shared pair, and the KEK and ICK derived from the CAK.

use kmp_api::crypto::cmac::aes_cmac_parts;
use kmp_api::crypto::{CryptoError, SecretBytes};

use super::MkaError;

/// Longest CKN (802.1X-2010 §9.3.1: 1 to 32 octets).
pub const MAX_CKN_LEN: usize = 32;

/// The length of a CAK, SAK, KEK or ICK: AES-128 or AES-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum KeyLength {
    /// 16 octets.
    #[serde(rename = "128")]
    Aes128,
    /// 32 octets.
    #[serde(rename = "256")]
    Aes256,
}

impl KeyLength {
    /// Length in octets.
    pub const fn octets(self) -> usize {
        match self {
            KeyLength::Aes128 => 16,
            KeyLength::Aes256 => 32,
        }
    }

    /// Length in bits, as the KDF's `L` field carries it.
    pub const fn bits(self) -> u16 {
        match self {
            KeyLength::Aes128 => 128,
            KeyLength::Aes256 => 256,
        }
    }

    /// The length of a key of `octets` octets, if it is 16 or 32.
    pub const fn from_octets(octets: usize) -> Option<KeyLength> {
        match octets {
            16 => Some(KeyLength::Aes128),
            32 => Some(KeyLength::Aes256),
            _ => None,
        }
    }
}

/// The 802.1X KDF (802.1X-2010 §6.2.1): NIST SP 800-108 counter mode with AES-CMAC as the PRF
/// and an 8-bit counter. Block `i` (from 1) is `AES-CMAC(kdk, i ‖ label ‖ 0x00 ‖ context ‖ L)`
/// with `L` the output length in bits as two big-endian octets; the blocks are concatenated and
/// cut to `L` bits.
///
/// `kdk` is 16 or 32 octets (AES-128- or AES-256-CMAC); `out_bits` is a positive multiple of 8
/// of at most 255 blocks. Anything else is a [`CryptoError`].
pub fn kdf(
    kdk: &[u8],
    label: &[u8],
    context: &[u8],
    out_bits: u16,
) -> Result<SecretBytes, CryptoError> {
    let out_len = usize::from(out_bits / 8);
    if out_bits == 0 || !out_bits.is_multiple_of(8) {
        return Err(CryptoError::Length {
            what: "KDF output",
            len: out_len,
        });
    }
    let blocks = out_len.div_ceil(16);
    if blocks > 255 {
        return Err(CryptoError::OutputTooLong {
            requested: out_len,
            max: 255 * 16,
        });
    }
    let l = out_bits.to_be_bytes();
    let mut out = Vec::with_capacity(blocks * 16);
    for i in 1..=blocks {
        let counter = [u8::try_from(i).unwrap_or(u8::MAX)];
        let block = aes_cmac_parts(kdk, &[&counter, label, &[0], context, &l])?;
        out.extend_from_slice(&block);
    }
    out.truncate(out_len);
    Ok(SecretBytes::new(out))
}

/// A CAK Name (802.1X-2010 §9.3.1): 1 to 32 octets, public.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ckn(Vec<u8>);

impl Ckn {
    /// A CKN of 1 to [`MAX_CKN_LEN`] octets.
    pub fn new(bytes: &[u8]) -> Result<Ckn, MkaError> {
        if bytes.is_empty() || bytes.len() > MAX_CKN_LEN {
            return Err(MkaError::CknLength(bytes.len()));
        }
        Ok(Ckn(bytes.to_vec()))
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The KEK/ICK derivation context: the first 16 octets, zero-padded if shorter
    /// (802.1X-2010 §9.8.1, §9.3.3).
    fn context16(&self) -> [u8; 16] {
        let mut c = [0u8; 16];
        let n = self.0.len().min(16);
        c[..n].copy_from_slice(&self.0[..n]);
        c
    }
}

impl core::fmt::Debug for Ckn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ckn(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A Connectivity Association Key with its name, and the keys derived from it.
///
/// The KEK wraps distributed SAKs; the ICK computes MKPDU ICVs. Both have the CAK's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CakKeys {
    cak: SecretBytes,
    ckn: Ckn,
    kek: SecretBytes,
    ick: SecretBytes,
}

impl CakKeys {
    /// A pre-shared CAK (16 or 32 octets) and its CKN (1 to 32 octets), with the KEK and ICK
    /// derived from them: `KEK = KDF(CAK, "IEEE8021 KEK", CKN[0..16], |CAK|)`, likewise the ICK
    /// with `"IEEE8021 ICK"` (802.1X-2010 §9.3.3, §9.8.1; the CKN zero-padded to 16 octets).
    pub fn from_psk(cak: &[u8], ckn: &[u8]) -> Result<CakKeys, MkaError> {
        let len = KeyLength::from_octets(cak.len()).ok_or(MkaError::CakLength(cak.len()))?;
        let ckn = Ckn::new(ckn)?;
        let ctx = ckn.context16();
        let kek = kdf(cak, b"IEEE8021 KEK", &ctx, len.bits())?;
        let ick = kdf(cak, b"IEEE8021 ICK", &ctx, len.bits())?;
        Ok(CakKeys {
            cak: SecretBytes::from_slice(cak),
            ckn,
            kek,
            ick,
        })
    }

    /// The CAK and CKN of an EAP exchange (802.1X-2010 §6.2.2), then the KEK and ICK:
    ///
    /// - `CAK = KDF(MSK[0..n], "IEEE8021 EAP CAK", mac1 ‖ mac2, 8n)`,
    /// - `CKN = KDF(MSK[0..n], "IEEE8021 EAP CKN", EAP-Session-Id ‖ mac1 ‖ mac2, 8n)`,
    ///
    /// with `n` the octets of `len` and `mac1` the numerically lower of the two addresses.
    /// The standard names 6-octet MAC addresses; over 802.15.9 pass the two EUI-64s (any equal
    /// lengths work, the order is by value). The CKN has the CAK's length, as the Rambus PAE
    /// does (spec §2.5); for 128-bit keys that is the standard's 128 bits.
    pub fn from_eap(
        msk: &[u8],
        eap_session_id: &[u8],
        addr_a: &[u8],
        addr_b: &[u8],
        len: KeyLength,
    ) -> Result<CakKeys, MkaError> {
        let n = len.octets();
        if msk.len() < n {
            return Err(MkaError::MskLength(msk.len()));
        }
        if addr_a.len() != addr_b.len() {
            return Err(MkaError::AddressLengths(addr_a.len(), addr_b.len()));
        }
        let (mac1, mac2) = if addr_a <= addr_b {
            (addr_a, addr_b)
        } else {
            (addr_b, addr_a)
        };
        let kdk = &msk[..n];
        let macs = [mac1, mac2].concat();
        let cak = kdf(kdk, b"IEEE8021 EAP CAK", &macs, len.bits())?;
        let ckn_ctx = [eap_session_id, &macs].concat();
        let ckn = kdf(kdk, b"IEEE8021 EAP CKN", &ckn_ctx, len.bits())?;
        CakKeys::from_psk(cak.expose(), ckn.expose())
    }

    /// The CAK.
    pub fn cak(&self) -> &SecretBytes {
        &self.cak
    }

    /// The CAK's name.
    pub fn ckn(&self) -> &Ckn {
        &self.ckn
    }

    /// The Key Encrypting Key.
    pub fn kek(&self) -> &SecretBytes {
        &self.kek
    }

    /// The ICV Key.
    pub fn ick(&self) -> &SecretBytes {
        &self.ick
    }

    /// The CAK's length.
    pub fn key_length(&self) -> KeyLength {
        if self.cak.len() == 32 {
            KeyLength::Aes256
        } else {
            KeyLength::Aes128
        }
    }

    /// A fresh SAK (802.1X-2010 §9.8.1):
    /// `KDF(CAK, "IEEE8021 SAK", KS-nonce ‖ MI-value list ‖ KN, |SAK|)`, with the KN as four
    /// big-endian octets (hostapd copies it in host order; see the module docs).
    pub fn derive_sak(
        &self,
        ks_nonce: &[u8],
        mi_list: &[[u8; 12]],
        kn: u32,
        len: KeyLength,
    ) -> Result<SecretBytes, CryptoError> {
        let mut ctx = Vec::with_capacity(ks_nonce.len() + mi_list.len() * 12 + 4);
        ctx.extend_from_slice(ks_nonce);
        for mi in mi_list {
            ctx.extend_from_slice(mi);
        }
        ctx.extend_from_slice(&kn.to_be_bytes());
        kdf(self.cak.expose(), b"IEEE8021 SAK", &ctx, len.bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn kdf_rejects_bad_lengths() {
        assert!(kdf(&[0; 16], b"x", b"", 0).is_err());
        assert!(kdf(&[0; 16], b"x", b"", 12).is_err());
        assert!(kdf(&[0; 15], b"x", b"", 128).is_err());
        assert_eq!(kdf(&[0; 16], b"x", b"", 136).unwrap().len(), 17);
    }

    #[test]
    fn kdf_blocks_chain_by_counter() {
        // Two blocks: the first 16 octets of a 256-bit output differ from a 128-bit output,
        // because L is part of every block's input.
        let a = kdf(&[7; 16], b"L", b"c", 256).unwrap();
        let b = kdf(&[7; 16], b"L", b"c", 128).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(&a.expose()[..16], b.expose());
        let block2 = aes_cmac_parts(&[7; 16], &[&[2], b"L", &[0], b"c", &[1, 0]]).unwrap();
        assert_eq!(&a.expose()[16..], &block2);
    }

    #[test]
    fn ckn_bounds() {
        assert!(Ckn::new(&[]).is_err());
        assert!(Ckn::new(&[1; 33]).is_err());
        assert_eq!(Ckn::new(&[1; 32]).unwrap().as_bytes().len(), 32);
        assert_eq!(Ckn::new(&[1, 2]).unwrap().context16()[..3], [1, 2, 0]);
    }

    #[test]
    fn psk_lengths() {
        assert!(matches!(
            CakKeys::from_psk(&[0; 20], &[1]),
            Err(MkaError::CakLength(20))
        ));
        let k = CakKeys::from_psk(&[3; 32], &[1; 32]).unwrap();
        assert_eq!(k.kek().len(), 32);
        assert_eq!(k.ick().len(), 32);
        assert_eq!(k.key_length(), KeyLength::Aes256);
        assert_ne!(k.kek(), k.ick());
        let _ = h("00");
    }
}
