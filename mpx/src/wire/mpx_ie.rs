//! The MPX IE (IEEE 802.15.9 7.3; payload IE group 0x3).
//!
//! ```text
//! Transaction Control (1): bits 0-2 transfer type, bits 3-7 transaction ID
//!   (for type 1 the bits 3-7 carry the compressed Multiplex ID)
//! Fragment Number (0/1) | Total Upper-Layer Frame Size (0/2, LE) | Multiplex ID (0/2, LE)
//! | upper-layer data
//! ```
//!
//! | format | type | frag no. | total size | mux id |
//! |---|---|---|---|---|
//! | full frame | 0 | – | – | 2 |
//! | full frame, compressed Multiplex ID | 1 | – | – | in TC |
//! | first fragment | 2 | 0 | 2 | 2 |
//! | middle fragment | 2 | ≥ 1 | – | – |
//! | last fragment | 4 | ≥ 1 | – | – |
//! | abort | 6 | – | optional 2 (our maximum size) | – |

use kmp_api::id::{KmpId, KmpIdError, MultiplexId};

use super::{Error, Result, le16};

/// Transfer Type (802.15.9 Table "transfer types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// 0b000: full upper-layer frame.
    FullFrame,
    /// 0b001: full frame with the Multiplex ID compressed into the transaction ID bits.
    FullFrameCompressed,
    /// 0b010: first (number 0) or middle fragment.
    Fragment,
    /// 0b100: last fragment.
    LastFragment,
    /// 0b110: abort.
    Abort,
}

impl TransferType {
    /// From the 3-bit field; 3, 5 and 7 are reserved.
    pub const fn from_bits(bits: u8) -> Result<TransferType> {
        match bits & 7 {
            0 => Ok(TransferType::FullFrame),
            1 => Ok(TransferType::FullFrameCompressed),
            2 => Ok(TransferType::Fragment),
            4 => Ok(TransferType::LastFragment),
            6 => Ok(TransferType::Abort),
            other => Err(Error::ReservedTransferType(other)),
        }
    }

    /// The 3-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            TransferType::FullFrame => 0,
            TransferType::FullFrameCompressed => 1,
            TransferType::Fragment => 2,
            TransferType::LastFragment => 4,
            TransferType::Abort => 6,
        }
    }
}

/// Largest transaction ID (5 bits).
pub const MAX_TRANSACTION_ID: u8 = 31;

/// A zero-copy view of MPX IE content (the payload IE content, descriptor excluded).
#[derive(Debug, Clone, Copy)]
pub struct MpxIe<T: AsRef<[u8]>> {
    buffer: T,
    transfer_type: TransferType,
}

impl<T: AsRef<[u8]>> MpxIe<T> {
    /// Checks the content: a known transfer type and every field that type carries; a last
    /// fragment numbered 0 and an abort of other than 1 or 3 octets are malformed.
    pub fn new_checked(buffer: T) -> Result<MpxIe<T>> {
        let b = buffer.as_ref();
        let tc = *b.first().ok_or(Error::Truncated("transaction control"))?;
        let transfer_type = TransferType::from_bits(tc)?;
        match transfer_type {
            TransferType::FullFrame if b.len() < 3 => return Err(Error::Truncated("multiplex ID")),
            TransferType::Fragment | TransferType::LastFragment if b.len() < 2 => {
                return Err(Error::Truncated("fragment number"));
            }
            TransferType::Fragment if b[1] == 0 && b.len() < 6 => {
                return Err(Error::Truncated("first fragment header"));
            }
            TransferType::LastFragment if b[1] == 0 => return Err(Error::LastFragmentZero),
            TransferType::Abort if b.len() != 1 && b.len() != 3 => {
                return Err(Error::AbortLength(b.len()));
            }
            _ => {}
        }
        Ok(MpxIe {
            buffer,
            transfer_type,
        })
    }

    /// The transfer type.
    pub fn transfer_type(&self) -> TransferType {
        self.transfer_type
    }

    /// Bits 3–7 of the Transaction Control octet: the transaction ID, or for transfer type 1 the
    /// compressed Multiplex ID.
    pub fn transaction_id(&self) -> u8 {
        self.buffer.as_ref()[0] >> 3
    }

    /// The fragment number (fragments only).
    pub fn fragment_number(&self) -> Option<u8> {
        match self.transfer_type {
            TransferType::Fragment | TransferType::LastFragment => Some(self.buffer.as_ref()[1]),
            _ => None,
        }
    }

    fn is_first_fragment(&self) -> bool {
        self.transfer_type == TransferType::Fragment && self.buffer.as_ref()[1] == 0
    }

    /// Total Upper-Layer Frame Size (first fragment), or the abort's maximum size.
    pub fn total_size(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        if self.is_first_fragment() {
            Some(le16(b, 2))
        } else if self.transfer_type == TransferType::Abort && b.len() == 3 {
            Some(le16(b, 1))
        } else {
            None
        }
    }

    /// The Multiplex ID (full frames and first fragments).
    pub fn multiplex_id(&self) -> Option<MultiplexId> {
        let b = self.buffer.as_ref();
        match self.transfer_type {
            TransferType::FullFrame => Some(MultiplexId::from_u16(le16(b, 1))),
            TransferType::FullFrameCompressed => {
                Some(MultiplexId::from_u16(u16::from(self.transaction_id())))
            }
            TransferType::Fragment if b[1] == 0 => Some(MultiplexId::from_u16(le16(b, 4))),
            _ => None,
        }
    }

    /// Offset of the upper-layer data.
    pub fn data_offset(&self) -> usize {
        match self.transfer_type {
            TransferType::FullFrame => 3,
            TransferType::FullFrameCompressed => 1,
            TransferType::Fragment if self.is_first_fragment() => 6,
            TransferType::Fragment | TransferType::LastFragment => 2,
            TransferType::Abort => self.buffer.as_ref().len(),
        }
    }

    /// The upper-layer data (frame or fragment) this IE carries.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[self.data_offset()..]
    }
}

/// High-level representation of an MPX IE's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpxIeRepr<'a> {
    /// Transfer type 0: a whole upper-layer frame.
    FullFrame {
        /// Transaction ID (we send 0; ignored on receipt).
        transaction_id: u8,
        /// Who owns the frame.
        multiplex_id: MultiplexId,
        /// The upper-layer frame.
        data: &'a [u8],
    },
    /// Transfer type 1: a whole upper-layer frame, Multiplex ID < 32 in the TC octet.
    FullFrameCompressed {
        /// Who owns the frame (must be compressible).
        multiplex_id: MultiplexId,
        /// The upper-layer frame.
        data: &'a [u8],
    },
    /// Transfer type 2, fragment number 0.
    FirstFragment {
        /// Transaction ID shared by the fragments.
        transaction_id: u8,
        /// Length of the whole upper-layer frame.
        total_size: u16,
        /// Who owns the frame.
        multiplex_id: MultiplexId,
        /// The first octets of the frame.
        data: &'a [u8],
    },
    /// Transfer type 2, fragment number ≥ 1.
    MiddleFragment {
        /// Transaction ID.
        transaction_id: u8,
        /// Fragment number (≥ 1).
        fragment_number: u8,
        /// The fragment.
        data: &'a [u8],
    },
    /// Transfer type 4.
    LastFragment {
        /// Transaction ID.
        transaction_id: u8,
        /// Fragment number (≥ 1).
        fragment_number: u8,
        /// The final fragment.
        data: &'a [u8],
    },
    /// Transfer type 6.
    Abort {
        /// The transaction being aborted.
        transaction_id: u8,
        /// The largest upper-layer frame the aborting side can accept, if it says.
        max_size: Option<u16>,
    },
}

impl<'a> MpxIeRepr<'a> {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(ie: &MpxIe<&'a T>) -> MpxIeRepr<'a> {
        let b: &'a [u8] = ie.buffer.as_ref();
        let tid = b[0] >> 3;
        let data = &b[ie.data_offset()..];
        match ie.transfer_type {
            TransferType::FullFrame => MpxIeRepr::FullFrame {
                transaction_id: tid,
                multiplex_id: MultiplexId::from_u16(le16(b, 1)),
                data,
            },
            TransferType::FullFrameCompressed => MpxIeRepr::FullFrameCompressed {
                multiplex_id: MultiplexId::from_u16(u16::from(tid)),
                data,
            },
            TransferType::Fragment if b[1] == 0 => MpxIeRepr::FirstFragment {
                transaction_id: tid,
                total_size: le16(b, 2),
                multiplex_id: MultiplexId::from_u16(le16(b, 4)),
                data,
            },
            TransferType::Fragment => MpxIeRepr::MiddleFragment {
                transaction_id: tid,
                fragment_number: b[1],
                data,
            },
            TransferType::LastFragment => MpxIeRepr::LastFragment {
                transaction_id: tid,
                fragment_number: b[1],
                data,
            },
            TransferType::Abort => MpxIeRepr::Abort {
                transaction_id: tid,
                max_size: (b.len() == 3).then(|| le16(b, 1)),
            },
        }
    }

    /// Parses MPX IE content in one step.
    pub fn parse_bytes(content: &'a [u8]) -> Result<MpxIeRepr<'a>> {
        let ie = MpxIe::new_checked(content)?;
        Ok(Self::parse(&ie))
    }

    /// The transfer type.
    pub const fn transfer_type(&self) -> TransferType {
        match self {
            MpxIeRepr::FullFrame { .. } => TransferType::FullFrame,
            MpxIeRepr::FullFrameCompressed { .. } => TransferType::FullFrameCompressed,
            MpxIeRepr::FirstFragment { .. } | MpxIeRepr::MiddleFragment { .. } => {
                TransferType::Fragment
            }
            MpxIeRepr::LastFragment { .. } => TransferType::LastFragment,
            MpxIeRepr::Abort { .. } => TransferType::Abort,
        }
    }

    /// Header octets before the data for this format.
    pub const fn header_len(&self) -> usize {
        match self {
            MpxIeRepr::FullFrame { .. } => 3,
            MpxIeRepr::FullFrameCompressed { .. } => 1,
            MpxIeRepr::FirstFragment { .. } => 6,
            MpxIeRepr::MiddleFragment { .. } | MpxIeRepr::LastFragment { .. } => 2,
            MpxIeRepr::Abort { max_size: None, .. } => 1,
            MpxIeRepr::Abort {
                max_size: Some(_), ..
            } => 3,
        }
    }

    /// The upper-layer data carried.
    pub const fn data(&self) -> &'a [u8] {
        match self {
            MpxIeRepr::FullFrame { data, .. }
            | MpxIeRepr::FullFrameCompressed { data, .. }
            | MpxIeRepr::FirstFragment { data, .. }
            | MpxIeRepr::MiddleFragment { data, .. }
            | MpxIeRepr::LastFragment { data, .. } => data,
            MpxIeRepr::Abort { .. } => &[],
        }
    }

    /// The transaction ID (0 for the compressed form, which has none).
    pub const fn transaction_id(&self) -> u8 {
        match self {
            MpxIeRepr::FullFrameCompressed { .. } => 0,
            MpxIeRepr::FullFrame { transaction_id, .. }
            | MpxIeRepr::FirstFragment { transaction_id, .. }
            | MpxIeRepr::MiddleFragment { transaction_id, .. }
            | MpxIeRepr::LastFragment { transaction_id, .. }
            | MpxIeRepr::Abort { transaction_id, .. } => *transaction_id,
        }
    }

    /// The Multiplex ID, for the formats that carry one.
    pub const fn multiplex_id(&self) -> Option<MultiplexId> {
        match self {
            MpxIeRepr::FullFrame { multiplex_id, .. }
            | MpxIeRepr::FullFrameCompressed { multiplex_id, .. }
            | MpxIeRepr::FirstFragment { multiplex_id, .. } => Some(*multiplex_id),
            _ => None,
        }
    }

    /// For a full frame or first fragment with Multiplex ID 1: the KMP ID at the start of the
    /// data. `None` when there is no KMP ID to read here.
    pub fn kmp_id(&self) -> Option<core::result::Result<KmpId, KmpIdError>> {
        if self.multiplex_id() != Some(MultiplexId::Kmp) {
            return None;
        }
        Some(KmpId::parse_prefix(self.data()).map(|(id, _)| id))
    }

    /// Content length (the payload IE length).
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.data().len()
    }

    /// Octets of the whole payload IE: the 2-octet descriptor plus [`MpxIeRepr::buffer_len`].
    pub const fn payload_ie_len(&self) -> usize {
        2 + self.buffer_len()
    }

    /// Writes the whole payload IE (group 0x3 descriptor and content) into
    /// `buf[..self.payload_ie_len()]`: what goes into `FrameRepr::payload_ies`.
    pub fn emit_payload_ie(&self, buf: &mut [u8]) -> Result<usize> {
        let at = super::ie::emit_payload_ie_descriptor(
            super::ie::PayloadIeGroup::Mpx,
            self.buffer_len(),
            buf,
        )?;
        Ok(at + self.emit(&mut buf[at..])?)
    }

    /// [`MpxIeRepr::emit_payload_ie`] into a new vector.
    pub fn to_payload_ie(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.payload_ie_len()];
        self.emit_payload_ie(&mut out)?;
        Ok(out)
    }

    /// Writes the content into `buf[..self.buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.buffer_len();
        let out = buf.get_mut(..n).ok_or(Error::BufferTooShort)?;
        let tid = self.transaction_id();
        if tid > MAX_TRANSACTION_ID {
            return Err(Error::FieldOverflow("transaction ID"));
        }
        let tc = |id: u8| (id << 3) | self.transfer_type().bits();
        match *self {
            MpxIeRepr::FullFrame { multiplex_id, .. } => {
                out[0] = tc(tid);
                out[1..3].copy_from_slice(&multiplex_id.to_u16().to_le_bytes());
            }
            MpxIeRepr::FullFrameCompressed { multiplex_id, .. } => {
                let id = u8::try_from(multiplex_id.to_u16())
                    .ok()
                    .filter(|&v| v <= MAX_TRANSACTION_ID)
                    .ok_or(Error::FieldOverflow("compressed multiplex ID"))?;
                out[0] = tc(id);
            }
            MpxIeRepr::FirstFragment {
                total_size,
                multiplex_id,
                ..
            } => {
                out[0] = tc(tid);
                out[1] = 0;
                out[2..4].copy_from_slice(&total_size.to_le_bytes());
                out[4..6].copy_from_slice(&multiplex_id.to_u16().to_le_bytes());
            }
            MpxIeRepr::MiddleFragment {
                fragment_number, ..
            }
            | MpxIeRepr::LastFragment {
                fragment_number, ..
            } => {
                if fragment_number == 0 {
                    return Err(Error::FieldOverflow("fragment number 0 after the first"));
                }
                out[0] = tc(tid);
                out[1] = fragment_number;
            }
            MpxIeRepr::Abort { max_size, .. } => {
                out[0] = tc(tid);
                if let Some(m) = max_size {
                    out[1..3].copy_from_slice(&m.to_le_bytes());
                }
            }
        }
        let h = self.header_len();
        out[h..].copy_from_slice(self.data());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(repr: MpxIeRepr<'_>, bytes: &[u8]) {
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(&buf[..n], bytes);
        assert_eq!(MpxIeRepr::parse_bytes(bytes).unwrap(), repr);
    }

    #[test]
    fn formats_from_the_spec_examples() {
        // spec/mpx-wire-format.md §6, Ex 1 (full), Ex 2 (compressed), Ex 3a-3d (fragments, abort).
        round_trip(
            MpxIeRepr::FullFrame {
                transaction_id: 0,
                multiplex_id: MultiplexId::Kmp,
                data: &[1, 3, 1, 0, 0],
            },
            &[0x00, 0x01, 0x00, 1, 3, 1, 0, 0],
        );
        round_trip(
            MpxIeRepr::FullFrameCompressed {
                multiplex_id: MultiplexId::Kmp,
                data: &[1, 3, 1, 0, 0],
            },
            &[0x09, 1, 3, 1, 0, 0],
        );
        round_trip(
            MpxIeRepr::FirstFragment {
                transaction_id: 5,
                total_size: 16,
                multiplex_id: MultiplexId::Kmp,
                data: &[6, 3, 3, 0, 0x0b, 0x10],
            },
            &[0x2a, 0x00, 0x10, 0x00, 0x01, 0x00, 6, 3, 3, 0, 0x0b, 0x10],
        );
        round_trip(
            MpxIeRepr::MiddleFragment {
                transaction_id: 5,
                fragment_number: 1,
                data: &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16],
            },
            &[0x2a, 0x01, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16],
        );
        round_trip(
            MpxIeRepr::LastFragment {
                transaction_id: 5,
                fragment_number: 2,
                data: &[0x17, 0x18, 0x19, 0x1a],
            },
            &[0x2c, 0x02, 0x17, 0x18, 0x19, 0x1a],
        );
        round_trip(
            MpxIeRepr::Abort {
                transaction_id: 5,
                max_size: Some(1024),
            },
            &[0x2e, 0x00, 0x04],
        );
        round_trip(
            MpxIeRepr::Abort {
                transaction_id: 31,
                max_size: None,
            },
            &[0xfe],
        );
    }

    #[test]
    fn kmp_id_of_first_fragment_and_full_frame() {
        let r = MpxIeRepr::parse_bytes(&[0x2a, 0, 0x10, 0, 1, 0, 6, 3]).unwrap();
        assert_eq!(r.kmp_id(), Some(Ok(KmpId::Ieee80211FourWay)));
        let r = MpxIeRepr::parse_bytes(&[0x00, 0xed, 0xa0, 0x41]).unwrap();
        assert_eq!(r.multiplex_id(), Some(MultiplexId::LOWPAN));
        assert_eq!(r.kmp_id(), None);
        let r = MpxIeRepr::parse_bytes(&[0x00, 0x01, 0x00]).unwrap();
        assert_eq!(r.kmp_id(), Some(Err(KmpIdError::Empty)));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            MpxIe::new_checked(&[][..]).err(),
            Some(Error::Truncated("transaction control"))
        );
        for t in [3u8, 5, 7] {
            assert_eq!(
                MpxIe::new_checked(&[t, 0, 0][..]).err(),
                Some(Error::ReservedTransferType(t))
            );
        }
        assert_eq!(
            MpxIe::new_checked(&[0x00, 0x01][..]).err(),
            Some(Error::Truncated("multiplex ID"))
        );
        assert_eq!(
            MpxIe::new_checked(&[0x02][..]).err(),
            Some(Error::Truncated("fragment number"))
        );
        assert_eq!(
            MpxIe::new_checked(&[0x02, 0, 1, 0, 1][..]).err(),
            Some(Error::Truncated("first fragment header"))
        );
        assert_eq!(
            MpxIe::new_checked(&[0x04, 0, 1][..]).err(),
            Some(Error::LastFragmentZero)
        );
        assert_eq!(
            MpxIe::new_checked(&[0x06, 0][..]).err(),
            Some(Error::AbortLength(2))
        );
        assert_eq!(
            MpxIe::new_checked(&[0x06, 0, 0, 0][..]).err(),
            Some(Error::AbortLength(4))
        );
        // Emitting impossible values fails cleanly.
        let mut buf = [0u8; 16];
        let bad = MpxIeRepr::FullFrameCompressed {
            multiplex_id: MultiplexId::LOWPAN,
            data: &[],
        };
        assert!(bad.emit(&mut buf).is_err());
        let bad = MpxIeRepr::Abort {
            transaction_id: 32,
            max_size: None,
        };
        assert!(bad.emit(&mut buf).is_err());
        let bad = MpxIeRepr::LastFragment {
            transaction_id: 1,
            fragment_number: 0,
            data: &[],
        };
        assert!(bad.emit(&mut buf).is_err());
        let ok = MpxIeRepr::FullFrame {
            transaction_id: 0,
            multiplex_id: MultiplexId::Kmp,
            data: &[1; 20],
        };
        assert_eq!(ok.emit(&mut buf), Err(Error::BufferTooShort));
    }
}
