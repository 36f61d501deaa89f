//! Key derivation and protection of the 4-way and group-key handshakes (802.11-2020 12.7.1).
//!
//! Wi-SUN puts EUI-64s where 802.11 has 6-octet MAC addresses: every address below is the
//! 8-octet EUI-64 in display order (most significant octet first, [`ExtendedAddress::0`]), not
//! the reversed on-air order.

use kmp_api::addr::ExtendedAddress;
use kmp_api::crypto::cmac::aes_cmac_parts;
use kmp_api::crypto::hmac::{hmac_sha1_parts, hmac_sha256_parts, sha256_parts};
use kmp_api::crypto::keywrap::{aes_key_unwrap, aes_key_wrap};
use kmp_api::crypto::{CryptoError, ct_eq};
use kmp_api::session::SecretBytes;

use crate::eapol::{KEY_MIC_LEN, KEY_MIC_RANGE_IN_PDU};

/// Octets of a PMK (802.11 PMK for AKMs 1/2, and the Wi-SUN PMK).
pub const PMK_LEN: usize = 32;
/// Octets of a PMKID / PTKID.
pub const PMKID_LEN: usize = 16;
/// Octets of a nonce.
pub const NONCE_LEN: usize = 32;

/// The Key Descriptor Version of the handshakes (802.11-2020 12.7.2 b.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DescriptorVersion {
    /// 2: HMAC-SHA1-128 MIC, AES key wrap, PTK from the SHA-1 PRF (what Wi-SUN uses).
    HmacSha1Aes,
    /// 3: AES-128-CMAC MIC, AES key wrap, PTK from the SHA-256 KDF.
    AesCmac,
}

impl DescriptorVersion {
    /// The value in Key Information bits 0–2.
    pub const fn to_u8(self) -> u8 {
        match self {
            DescriptorVersion::HmacSha1Aes => 2,
            DescriptorVersion::AesCmac => 3,
        }
    }

    /// From Key Information bits 0–2; `None` for 0, 1 (HMAC-MD5/RC4) and 4–7.
    pub const fn from_u8(v: u8) -> Option<DescriptorVersion> {
        match v {
            2 => Some(DescriptorVersion::HmacSha1Aes),
            3 => Some(DescriptorVersion::AesCmac),
            _ => None,
        }
    }
}

/// The 802.11 PRF (12.7.1.2): `PRF-bits(K, A, B)` from HMAC-SHA-1 over `A ‖ 0 ‖ B ‖ i`.
/// `out.len()` octets are produced (the PRF-n length, n = 8·len); at most 255 blocks.
pub fn prf_sha1(key: &[u8], label: &[u8], data: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let i = u8::try_from(i).map_err(|_| CryptoError::OutputTooLong {
            requested: out_len_hint(i),
            max: 255 * 20,
        })?;
        let block = hmac_sha1_parts(key, &[label, &[0], data, &[i]])?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

fn out_len_hint(blocks: usize) -> usize {
    blocks.saturating_mul(20)
}

/// The 802.11 KDF with HMAC-SHA-256 (12.7.1.7.2): `KDF-Hash-Length(K, label, context)`,
/// iterations `i ‖ label ‖ context ‖ Length`, both counters 16-bit little-endian, Length in
/// bits.
pub fn kdf_sha256(
    key: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let too_long = CryptoError::OutputTooLong {
        requested: out.len(),
        max: 8191,
    };
    let bits = u16::try_from(out.len() * 8).map_err(|_| too_long.clone())?;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let i = u16::try_from(i + 1).map_err(|_| too_long.clone())?;
        let block = hmac_sha256_parts(
            key,
            &[&i.to_le_bytes(), label, context, &bits.to_le_bytes()],
        )?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

/// PMKID = HMAC-SHA1-128(PMK, "PMK Name" ‖ AA ‖ SPA) (802.11-2020 12.7.1.3), EUI-64s for AA
/// and SPA (Wi-SUN FAN 6.5.2.2).
pub fn pmkid(
    pmk: &[u8],
    aa: ExtendedAddress,
    spa: ExtendedAddress,
) -> Result<[u8; PMKID_LEN], CryptoError> {
    let h = hmac_sha1_parts(pmk, &[b"PMK Name", &aa.0, &spa.0])?;
    let mut id = [0u8; PMKID_LEN];
    id.copy_from_slice(&h[..PMKID_LEN]);
    Ok(id)
}

/// The Wi-SUN PTKID = HMAC-SHA1-128(PTK, "PTK Name" ‖ AA ‖ SPA) (Wi-SUN FAN 6.5.2.2), which a
/// supplicant sends in its key request so the authenticator can tell whether their PTKs match.
pub fn ptkid(
    ptk: &Ptk,
    aa: ExtendedAddress,
    spa: ExtendedAddress,
) -> Result<[u8; PMKID_LEN], CryptoError> {
    let h = hmac_sha1_parts(ptk.as_bytes(), &[b"PTK Name", &aa.0, &spa.0])?;
    let mut id = [0u8; PMKID_LEN];
    id.copy_from_slice(&h[..PMKID_LEN]);
    Ok(id)
}

/// The Wi-SUN GAK = Truncate-128(SHA-256(Network Name ‖ GTK)) (Wi-SUN FAN 6.5.4.1.1): the key
/// 802.15.4 frames are actually protected with when a network name is configured.
pub fn wisun_gak(network_name: &[u8], gtk: &[u8]) -> SecretBytes {
    let h = sha256_parts(&[network_name, gtk]);
    SecretBytes::from_slice(&h[..16])
}

/// A pairwise transient key: KCK (16) ‖ KEK (16) ‖ TK (16), zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Ptk(SecretBytes);

impl core::fmt::Debug for Ptk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ptk(..)")
    }
}

impl Ptk {
    /// Octets of a PTK for CCMP-128 (PRF-384).
    pub const LEN: usize = 48;

    /// From 48 octets.
    pub fn from_bytes(bytes: &[u8]) -> Option<Ptk> {
        (bytes.len() == Self::LEN).then(|| Ptk(SecretBytes::from_slice(bytes)))
    }

    /// Derives the PTK (802.11-2020 12.7.1.3): label "Pairwise key expansion", data
    /// Min(AA,SPA) ‖ Max(AA,SPA) ‖ Min(ANonce,SNonce) ‖ Max(ANonce,SNonce); PRF-384 for
    /// descriptor version 2, KDF-SHA256-384 for version 3.
    pub fn derive(
        version: DescriptorVersion,
        pmk: &[u8],
        aa: ExtendedAddress,
        spa: ExtendedAddress,
        anonce: &[u8; NONCE_LEN],
        snonce: &[u8; NONCE_LEN],
    ) -> Result<Ptk, CryptoError> {
        let (a1, a2) = if aa.0 <= spa.0 { (aa, spa) } else { (spa, aa) };
        let (n1, n2) = if anonce <= snonce {
            (anonce, snonce)
        } else {
            (snonce, anonce)
        };
        let mut data = Vec::with_capacity(2 * 8 + 2 * NONCE_LEN);
        data.extend_from_slice(&a1.0);
        data.extend_from_slice(&a2.0);
        data.extend_from_slice(n1);
        data.extend_from_slice(n2);
        let mut out = vec![0u8; Self::LEN];
        let label = b"Pairwise key expansion";
        let r = match version {
            DescriptorVersion::HmacSha1Aes => prf_sha1(pmk, label, &data, &mut out),
            DescriptorVersion::AesCmac => kdf_sha256(pmk, label, &data, &mut out),
        };
        let ptk = Ptk(SecretBytes::new(out));
        r.map(|()| ptk)
    }

    /// All 48 octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.expose()
    }
    /// Key Confirmation Key (octets 0–15): the MIC key.
    pub fn kck(&self) -> &[u8] {
        &self.0.expose()[..16]
    }
    /// Key Encryption Key (octets 16–31): wraps the key data.
    pub fn kek(&self) -> &[u8] {
        &self.0.expose()[16..32]
    }
    /// Temporal Key (octets 32–47): the pairwise link key.
    pub fn tk(&self) -> &[u8] {
        &self.0.expose()[32..48]
    }
}

/// The Key MIC of a whole EAPOL-Key PDU whose MIC field is zero (12.7.2 h): HMAC-SHA1-128 or
/// AES-128-CMAC under the KCK.
pub fn compute_mic(
    version: DescriptorVersion,
    kck: &[u8],
    pdu_with_zero_mic: &[u8],
) -> Result<[u8; KEY_MIC_LEN], CryptoError> {
    let mut mic = [0u8; KEY_MIC_LEN];
    match version {
        DescriptorVersion::HmacSha1Aes => {
            mic.copy_from_slice(&hmac_sha1_parts(kck, &[pdu_with_zero_mic])?[..KEY_MIC_LEN]);
        }
        DescriptorVersion::AesCmac => mic = aes_cmac_parts(kck, &[pdu_with_zero_mic])?,
    }
    Ok(mic)
}

/// Computes the MIC of `pdu` (an EAPOL-Key PDU whose MIC field is zero) and writes it in place.
pub fn sign_pdu(version: DescriptorVersion, kck: &[u8], pdu: &mut [u8]) -> Result<(), CryptoError> {
    let mic = compute_mic(version, kck, pdu)?;
    pdu.get_mut(KEY_MIC_RANGE_IN_PDU)
        .ok_or(CryptoError::Length {
            what: "EAPOL-Key PDU",
            len: 0,
        })?
        .copy_from_slice(&mic);
    Ok(())
}

/// Checks the MIC of a received EAPOL-Key PDU in constant time; a mismatch is
/// [`CryptoError::AuthenticationFailed`].
pub fn verify_pdu_mic(
    version: DescriptorVersion,
    kck: &[u8],
    pdu: &[u8],
) -> Result<(), CryptoError> {
    let received = pdu.get(KEY_MIC_RANGE_IN_PDU).ok_or(CryptoError::Length {
        what: "EAPOL-Key PDU",
        len: pdu.len(),
    })?;
    let zeroed = crate::eapol::zero_mic(pdu).ok_or(CryptoError::AuthenticationFailed)?;
    let mic = compute_mic(version, kck, &zeroed)?;
    if ct_eq(&mic, received) {
        Ok(())
    } else {
        Err(CryptoError::AuthenticationFailed)
    }
}

/// Pads plaintext key data per 802.11-2020 12.7.2 j (0xDD then zeros up to a multiple of 8,
/// at least 16 octets) and wraps it under the KEK (RFC 3394).
pub fn wrap_key_data(kek: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut p = zeroize::Zeroizing::new(plain.to_vec());
    if p.len() < 16 || !p.len().is_multiple_of(8) {
        p.push(crate::eapol::KDE_TYPE);
        while p.len() < 16 || !p.len().is_multiple_of(8) {
            p.push(0);
        }
    }
    aes_key_wrap(kek, &p)
}

/// Unwraps encrypted key data under the KEK; the padding stays (the KDE parser stops at it).
pub fn unwrap_key_data(kek: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
    aes_key_unwrap(kek, wrapped)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// IEEE 802.11-2020 Annex J.3 (802.11i-2004 H.3) PRF test vectors.
    #[test]
    fn prf_annex_j3_vectors() {
        type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a str);
        let cases: [Case<'_>; 4] = [
            (
                &[0x0b; 20],
                b"prefix",
                b"Hi There",
                "bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606",
            ),
            (
                b"Jefe",
                b"prefix-2",
                b"what do ya want for nothing?",
                "47c4908e30c947521ad20be9053450ecbea23d3aa604b77326d8b3825ff7475c",
            ),
            (
                &[0xaa; 80],
                b"prefix-3",
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "0ab6c33ccf70d0d736f4b04c8a7373255511abc5073713163bd0b8c9eeb7e195\
                 6fa066820a73ddee3f6d3bd407e0682a",
            ),
            (
                &[0x0b; 20],
                b"prefix-4",
                b"Hi There Again",
                "248cfbc532ab38ffa483c8a2e40bf170eb542a2e0916d7bf6d97da2c4c5ca877\
                 736c53a65b03fa4b3745ce7613f6ad68e0e4a798b7cf691c96176fd634a59a49",
            ),
        ];
        for (key, prefix, data, want) in cases {
            let want = h(want);
            let mut out = vec![0u8; want.len()];
            prf_sha1(key, prefix, data, &mut out).unwrap();
            assert_eq!(out, want, "{}", String::from_utf8_lossy(prefix));
        }
    }

    const AA: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
    const SPA: ExtendedAddress = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x02]);

    /// Expected values from an independent computation with Python's `hmac`/`hashlib`
    /// (the formulas of 802.11-2020 12.7.1.3 with 8-octet EUI-64s; no published sample uses
    /// EUI-64s).
    #[test]
    fn ptk_and_pmkid_match_an_independent_computation() {
        let pmk: Vec<u8> = (0u8..32).collect();
        let anonce: [u8; 32] = core::array::from_fn(|i| 0x20 + u8::try_from(i).unwrap());
        let snonce: [u8; 32] = core::array::from_fn(|i| 0x40 + u8::try_from(i).unwrap());
        let ptk = Ptk::derive(
            DescriptorVersion::HmacSha1Aes,
            &pmk,
            AA,
            SPA,
            &anonce,
            &snonce,
        )
        .unwrap();
        assert_eq!(hex::encode(ptk.as_bytes()), PTK_V2);
        // Order independence: the supplicant computes with the same AA/SPA and swapped roles
        // of nothing; swapping nonces does not change the result either.
        let again = Ptk::derive(
            DescriptorVersion::HmacSha1Aes,
            &pmk,
            SPA,
            AA,
            &snonce,
            &anonce,
        )
        .unwrap();
        assert_eq!(again, ptk);
        let v3 = Ptk::derive(DescriptorVersion::AesCmac, &pmk, AA, SPA, &anonce, &snonce).unwrap();
        assert_eq!(hex::encode(v3.as_bytes()), PTK_V3);
        assert_eq!(hex::encode(pmkid(&pmk, AA, SPA).unwrap()), PMKID);
        assert_eq!(hex::encode(ptkid(&ptk, AA, SPA).unwrap()), PTKID);
        assert_eq!(hex::encode(wisun_gak(b"WiSUN", &[0x11; 16]).expose()), GAK);
    }

    const PTK_V2: &str = "aa5f64077423fdd2e6db24d6c3f5873c3a875788800c522321ed0228f7ac1dca6a733ecccce3c945db76a5cae97de136";
    const PTK_V3: &str = "08be76941d3ba3897b37d83835a0b5fcb66d1339bb5a7dd31ef7e78446269fb78f87cca55a7177248137a156a3454499";
    const PMKID: &str = "3642829075ac90ed1785ade22c7a0218";
    const PTKID: &str = "64cdcdfdb48b4c1696674b56a312bbc4";
    const GAK: &str = "08a3980ea0b5bad1222b3d6f5bfe2328";

    #[test]
    fn mic_and_key_wrap() {
        let kck = [0x11u8; 16];
        let mut kd = crate::eapol::KeyDescriptor::new(crate::eapol::KeyInformation(0x010a));
        kd.replay_counter = 7;
        let mut pdu = kd.to_pdu(crate::eapol::ProtocolVersion::V2010).unwrap();
        for v in [DescriptorVersion::HmacSha1Aes, DescriptorVersion::AesCmac] {
            let mut p = pdu.clone();
            sign_pdu(v, &kck, &mut p).unwrap();
            verify_pdu_mic(v, &kck, &p).unwrap();
            assert_eq!(
                verify_pdu_mic(v, &[0x12; 16], &p),
                Err(CryptoError::AuthenticationFailed)
            );
            p[10] ^= 1;
            assert_eq!(
                verify_pdu_mic(v, &kck, &p),
                Err(CryptoError::AuthenticationFailed)
            );
        }
        // HMAC-SHA1-128 of the zero-MIC PDU, from Python.
        sign_pdu(DescriptorVersion::HmacSha1Aes, &kck, &mut pdu).unwrap();
        assert_eq!(hex::encode(&pdu[KEY_MIC_RANGE_IN_PDU]), MIC_V2);
        assert!(verify_pdu_mic(DescriptorVersion::HmacSha1Aes, &kck, &pdu[..20]).is_err());

        let kek = [0x22u8; 16];
        for n in [0usize, 1, 7, 8, 15, 16, 17, 24, 40] {
            let plain = vec![0x5a; n];
            let w = wrap_key_data(&kek, &plain).unwrap();
            assert!(w.len() >= 24 && w.len().is_multiple_of(8), "{n}");
            let u = unwrap_key_data(&kek, &w).unwrap();
            assert_eq!(&u.expose()[..n], &plain[..]);
            if n < 16 || n % 8 != 0 {
                assert_eq!(u.expose()[n], 0xdd);
                assert!(u.expose()[n + 1..].iter().all(|&b| b == 0));
            } else {
                assert_eq!(u.len(), n);
            }
        }
        assert!(unwrap_key_data(&[0x23; 16], &wrap_key_data(&kek, &[1; 16]).unwrap()).is_err());
    }

    const MIC_V2: &str = "986992e6073003adf22985d0bbdd6565";
}
