//! Auxiliary Security Header (IEEE 802.15.4-2015 9.4).
//!
//! ```text
//! Security Control (1) | Frame Counter (0/4, LE) | Key Source (0/4/8) | Key Index (0/1)
//! Security Control: bits 0-2 level, 3-4 key identifier mode, 5 frame counter suppression,
//!                   6 ASN in nonce, 7 reserved
//! ```

use kmp_api::security::{KeyIdMode, KeyIdentifier, KeySource, SecurityLevel};

use super::{Error, Result, le32};

mod field {
    pub(super) const FC_SUPPRESSION: u8 = 1 << 5;
    pub(super) const ASN_IN_NONCE: u8 = 1 << 6;
}

/// A zero-copy view of an auxiliary security header at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct AuxSecurityHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AuxSecurityHeader<T> {
    /// Wraps a buffer and checks that it holds the whole header.
    pub fn new_checked(buffer: T) -> Result<AuxSecurityHeader<T>> {
        let h = AuxSecurityHeader { buffer };
        let b = h.buffer.as_ref();
        let first = *b.first().ok_or(Error::Truncated("security control"))?;
        if b.len() < header_len(first) {
            return Err(Error::Truncated("auxiliary security header"));
        }
        Ok(h)
    }

    fn control(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// The security level.
    pub fn security_level(&self) -> SecurityLevel {
        SecurityLevel::from_bits(self.control())
    }

    /// The key identifier mode.
    pub fn key_id_mode(&self) -> KeyIdMode {
        KeyIdMode::from_bits(self.control() >> 3)
    }

    /// Whether the frame counter is suppressed (2015 only).
    pub fn frame_counter_suppressed(&self) -> bool {
        self.control() & field::FC_SUPPRESSION != 0
    }

    /// Whether the nonce uses the ASN instead of the frame counter (TSCH).
    pub fn asn_in_nonce(&self) -> bool {
        self.control() & field::ASN_IN_NONCE != 0
    }

    /// The frame counter, unless suppressed.
    pub fn frame_counter(&self) -> Option<u32> {
        if self.frame_counter_suppressed() {
            None
        } else {
            Some(le32(self.buffer.as_ref(), 1))
        }
    }

    /// Length of this header in octets.
    pub fn header_len(&self) -> usize {
        header_len(self.control())
    }

    /// The key identifier.
    pub fn key_identifier(&self) -> KeyIdentifier {
        let b = self.buffer.as_ref();
        let at = if self.frame_counter_suppressed() {
            1
        } else {
            5
        };
        match self.key_id_mode() {
            KeyIdMode::Implicit => KeyIdentifier::Implicit,
            KeyIdMode::Index => KeyIdentifier::Index(b[at]),
            KeyIdMode::Source4Index => KeyIdentifier::SourceIndex(
                KeySource::Four([b[at], b[at + 1], b[at + 2], b[at + 3]]),
                b[at + 4],
            ),
            KeyIdMode::Source8Index => {
                let mut s = [0u8; 8];
                s.copy_from_slice(&b[at..at + 8]);
                KeyIdentifier::SourceIndex(KeySource::Eight(s), b[at + 8])
            }
        }
    }
}

/// Length of an auxiliary security header from its Security Control octet.
pub const fn header_len(control: u8) -> usize {
    let fc = if control & field::FC_SUPPRESSION != 0 {
        0
    } else {
        4
    };
    1 + fc + KeyIdMode::from_bits(control >> 3).key_identifier_len()
}

/// High-level representation of an auxiliary security header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuxSecurityHeaderRepr {
    /// Security level.
    pub level: SecurityLevel,
    /// Key identifier (mode, key source, key index).
    pub key_id: KeyIdentifier,
    /// The frame counter, or `None` when suppressed (2015 frame-counter suppression).
    pub frame_counter: Option<u32>,
    /// ASN in nonce (TSCH).
    pub asn_in_nonce: bool,
}

impl AuxSecurityHeaderRepr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(h: &AuxSecurityHeader<T>) -> AuxSecurityHeaderRepr {
        AuxSecurityHeaderRepr {
            level: h.security_level(),
            key_id: h.key_identifier(),
            frame_counter: h.frame_counter(),
            asn_in_nonce: h.asn_in_nonce(),
        }
    }

    /// The Security Control octet.
    pub fn control(&self) -> u8 {
        let mut c = self.level.bits() | (self.key_id.mode().bits() << 3);
        if self.frame_counter.is_none() {
            c |= field::FC_SUPPRESSION;
        }
        if self.asn_in_nonce {
            c |= field::ASN_IN_NONCE;
        }
        c
    }

    /// Octets on air.
    pub fn buffer_len(&self) -> usize {
        header_len(self.control())
    }

    /// Writes the header; `buf` must hold `buffer_len()` octets.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.buffer_len();
        let out = buf.get_mut(..n).ok_or(Error::BufferTooShort)?;
        out[0] = self.control();
        let mut at = 1;
        if let Some(fc) = self.frame_counter {
            out[1..5].copy_from_slice(&fc.to_le_bytes());
            at = 5;
        }
        if let Some(src) = self.key_id.key_source() {
            let s = src.as_bytes();
            out[at..at + s.len()].copy_from_slice(s);
            at += s.len();
        }
        if let Some(i) = self.key_id.key_index() {
            out[at] = i;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            AuxSecurityHeaderRepr {
                level: SecurityLevel::EncMic32,
                key_id: KeyIdentifier::Index(1),
                frame_counter: Some(5),
                asn_in_nonce: false,
            },
            AuxSecurityHeaderRepr {
                level: SecurityLevel::EncMic64,
                key_id: KeyIdentifier::Implicit,
                frame_counter: None,
                asn_in_nonce: true,
            },
            AuxSecurityHeaderRepr {
                level: SecurityLevel::Mic128,
                key_id: KeyIdentifier::SourceIndex(KeySource::Eight([1, 2, 3, 4, 5, 6, 7, 8]), 9),
                frame_counter: Some(0xdead_beef),
                asn_in_nonce: false,
            },
            AuxSecurityHeaderRepr {
                level: SecurityLevel::Enc,
                key_id: KeyIdentifier::SourceIndex(KeySource::Four([1, 2, 3, 4]), 0xff),
                frame_counter: Some(0),
                asn_in_nonce: false,
            },
        ];
        for repr in cases {
            let mut buf = [0u8; 14];
            let n = repr.emit(&mut buf).unwrap();
            assert_eq!(n, repr.buffer_len());
            let view = AuxSecurityHeader::new_checked(&buf[..n]).unwrap();
            assert_eq!(AuxSecurityHeaderRepr::parse(&view), repr);
            assert!(AuxSecurityHeader::new_checked(&buf[..n - 1]).is_err());
        }
    }

    #[test]
    fn known_bytes() {
        // spec/interop-peers.md §1.2 frame 7: level 5, key id mode 1, frame counter 5, index 1.
        let b = [0x0d, 5, 0, 0, 0, 1];
        let v = AuxSecurityHeader::new_checked(&b[..]).unwrap();
        assert_eq!(v.security_level(), SecurityLevel::EncMic32);
        assert_eq!(v.frame_counter(), Some(5));
        assert_eq!(v.key_identifier(), KeyIdentifier::Index(1));
        assert_eq!(
            AuxSecurityHeader::new_checked(&[][..]).err(),
            Some(Error::Truncated("security control"))
        );
    }
}
