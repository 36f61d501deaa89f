//! AES-EAX authenticated encryption (Bellare, Rogaway, Wagner, "The EAX Mode of Operation",
//! FSE 2004), the cipher of the EAP-PSK protected channel (RFC 4764 §3.3).
//!
//! ```text
//! N' = OMAC_K^0(N)   H' = OMAC_K^1(H)   C = CTR_K^{N'}(M)   C' = OMAC_K^2(C)
//! Tag = first tag_len octets of N' xor C' xor H'
//! ```
//!
//! OMAC_K^t(X) is AES-CMAC (RFC 4493, [`super::cmac`]) of the 16-octet block holding `t`
//! big-endian, followed by X; CTR is AES-CTR ([`super::aes::AesCtr`]) with the whole block as
//! the counter. Nonce and header (associated data) may have any length; the tag is 1 to 16
//! octets (EAP-PSK uses 16).

use super::CryptoError;
use super::aes::{AesCtr, BLOCK_LEN, Block};
use super::cmac::AesCmac;

/// The longest (and EAP-PSK's) tag: one AES block.
pub const MAX_TAG_LEN: usize = BLOCK_LEN;

/// AES-EAX under one key (16, 24 or 32 octets).
pub struct AesEax {
    cmac: AesCmac,
    ctr: AesCtr,
}

impl AesEax {
    /// Schedules `key` (16, 24 or 32 octets).
    pub fn new(key: &[u8]) -> Result<AesEax, CryptoError> {
        Ok(AesEax {
            ctr: AesCtr::new(key)?,
            cmac: AesCmac::new(key)?,
        })
    }

    fn omac(&mut self, t: u8, data: &[u8]) -> Result<Block, CryptoError> {
        let mut prefix = [0u8; BLOCK_LEN];
        prefix[BLOCK_LEN - 1] = t;
        self.cmac.mac_parts(&[&prefix, data])
    }

    fn tag(&mut self, n: &Block, header: &[u8], ciphertext: &[u8]) -> Result<Block, CryptoError> {
        let h = self.omac(1, header)?;
        let c = self.omac(2, ciphertext)?;
        let mut tag = *n;
        for ((t, h), c) in tag.iter_mut().zip(h).zip(c) {
            *t ^= h ^ c;
        }
        Ok(tag)
    }

    /// Encrypts `data` in place and returns the tag of `tag_len` octets (1..=16) over `nonce`,
    /// `header` and the ciphertext.
    pub fn seal_in_place(
        &mut self,
        nonce: &[u8],
        header: &[u8],
        data: &mut [u8],
        tag_len: usize,
    ) -> Result<Vec<u8>, CryptoError> {
        check_tag_len(tag_len)?;
        let n = self.omac(0, nonce)?;
        self.ctr.apply_keystream(&n, data)?;
        let tag = self.tag(&n, header, data)?;
        Ok(tag[..tag_len].to_vec())
    }

    /// Checks `tag` (1..=16 octets) in constant time and, if it is right, decrypts `data` in
    /// place. On [`CryptoError::AuthenticationFailed`] `data` is left as it was.
    pub fn open_in_place(
        &mut self,
        nonce: &[u8],
        header: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        check_tag_len(tag.len())?;
        let n = self.omac(0, nonce)?;
        let expected = self.tag(&n, header, data)?;
        if !super::ct_eq(&expected[..tag.len()], tag) {
            return Err(CryptoError::AuthenticationFailed);
        }
        self.ctr.apply_keystream(&n, data)
    }

    /// Encrypts `plaintext`: returns the ciphertext followed by a `tag_len`-octet tag.
    pub fn seal(
        &mut self,
        nonce: &[u8],
        header: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = plaintext.to_vec();
        let tag = self.seal_in_place(nonce, header, &mut out, tag_len)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts the output of [`AesEax::seal`] (ciphertext followed by a `tag_len`-octet tag).
    pub fn open(
        &mut self,
        nonce: &[u8],
        header: &[u8],
        sealed: &[u8],
        tag_len: usize,
    ) -> Result<Vec<u8>, CryptoError> {
        check_tag_len(tag_len)?;
        let Some(split) = sealed.len().checked_sub(tag_len) else {
            return Err(CryptoError::Length {
                what: "EAX ciphertext",
                len: sealed.len(),
            });
        };
        let (ct, tag) = sealed.split_at(split);
        let mut out = ct.to_vec();
        self.open_in_place(nonce, header, &mut out, tag)?;
        Ok(out)
    }
}

fn check_tag_len(tag_len: usize) -> Result<(), CryptoError> {
    if (1..=MAX_TAG_LEN).contains(&tag_len) {
        Ok(())
    } else {
        Err(CryptoError::Length {
            what: "EAX tag",
            len: tag_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // The EAX paper's test vectors #1 and #2 (spec §8.7).
    const VECTORS: [(&str, &str, &str, &str, &str); 2] = [
        (
            "233952DEE4D5ED5F9B9C6D6FF80FF478",
            "62EC67F9C3A4A407FCB2A8C49031A8B3",
            "6BFB914FD07EAE6B",
            "",
            "E037830E8389F27B025A2D6527E79D01",
        ),
        (
            "91945D3F4DCBEE0BF45EF52255F095A4",
            "BECAF043B0A23D843194BA972C66DEBD",
            "FA3BFD4806EB53FA",
            "F7FB",
            "19DD5C4C9331049D0BDAB0277408F67967E5",
        ),
    ];

    #[test]
    fn eax_paper_vectors() {
        for (k, n, hd, m, ct) in VECTORS {
            let (k, n, hd, m, ct) = (h(k), h(n), h(hd), h(m), h(ct));
            let mut eax = AesEax::new(&k).unwrap();
            assert_eq!(eax.seal(&n, &hd, &m, 16).unwrap(), ct);
            assert_eq!(eax.open(&n, &hd, &ct, 16).unwrap(), m);
            // A truncated tag is the prefix of the full one.
            let short = eax.seal(&n, &hd, &m, 8).unwrap();
            assert_eq!(short, ct[..m.len() + 8]);
            assert_eq!(eax.open(&n, &hd, &short, 8).unwrap(), m);
        }
    }

    #[test]
    fn eax_rejects_any_change() {
        let (k, n, hd, m, ct) = VECTORS[1];
        let (k, n, hd, m, ct) = (h(k), h(n), h(hd), h(m), h(ct));
        let mut eax = AesEax::new(&k).unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                eax.open(&n, &hd, &bad, 16),
                Err(CryptoError::AuthenticationFailed),
                "octet {i}"
            );
        }
        let mut bad_n = n.clone();
        bad_n[0] ^= 1;
        assert_eq!(
            eax.open(&bad_n, &hd, &ct, 16),
            Err(CryptoError::AuthenticationFailed)
        );
        assert_eq!(
            eax.open(&n, &hd[..7], &ct, 16),
            Err(CryptoError::AuthenticationFailed)
        );
        let mut other = AesEax::new(&[0u8; 16]).unwrap();
        assert_eq!(
            other.open(&n, &hd, &ct, 16),
            Err(CryptoError::AuthenticationFailed)
        );
        // open_in_place leaves the data alone on failure.
        let mut data = ct[..2].to_vec();
        let mut tag = ct[2..].to_vec();
        tag[0] ^= 1;
        assert!(eax.open_in_place(&n, &hd, &mut data, &tag).is_err());
        assert_eq!(data, ct[..2]);
        assert_eq!(m, h("F7FB"));
    }

    #[test]
    fn eax_parameter_errors() {
        assert_eq!(
            AesEax::new(&[0u8; 15]).err(),
            Some(CryptoError::KeyLength(15))
        );
        let mut eax = AesEax::new(&[7u8; 16]).unwrap();
        for bad in [0, 17] {
            assert!(matches!(
                eax.seal(b"n", b"h", b"m", bad),
                Err(CryptoError::Length {
                    what: "EAX tag",
                    ..
                })
            ));
        }
        assert!(matches!(
            eax.open(b"n", b"h", &[0u8; 15], 16),
            Err(CryptoError::Length { .. })
        ));
        // Long messages over several blocks round-trip, with keys of every size.
        for key_len in [16, 24, 32] {
            let mut eax = AesEax::new(&vec![3u8; key_len]).unwrap();
            let m: Vec<u8> = (0..=255).collect();
            let sealed = eax.seal(&[1, 2, 3], b"header", &m, 16).unwrap();
            assert_ne!(sealed[..256], m[..]);
            assert_eq!(eax.open(&[1, 2, 3], b"header", &sealed, 16).unwrap(), m);
        }
    }
}
