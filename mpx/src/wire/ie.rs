//! Information Elements (IEEE 802.15.4-2015 7.4).
//!
//! A header IE descriptor is a little-endian u16: bits 0–6 length, bits 7–14 element ID, bit 15
//! type = 0. A payload IE descriptor: bits 0–10 length, bits 11–14 group ID, bit 15 type = 1.
//! Lengths count the content only. Termination IEs (HT1, HT2, PT) are structure, not content:
//! the frame codec strips them on parse and adds them on emit by the rules of
//! spec/mpx-wire-format.md §1.6.

use super::{Error, Result, le16};

/// Header IE element ID of Header Termination 1 (payload IEs follow).
pub const HT1_ID: u8 = 0x7e;
/// Header IE element ID of Header Termination 2 (a raw MAC payload follows).
pub const HT2_ID: u8 = 0x7f;
/// Encoded HT1 (`00 3f`).
pub const HT1: [u8; 2] = [0x00, 0x3f];
/// Encoded HT2 (`80 3f`).
pub const HT2: [u8; 2] = [0x80, 0x3f];
/// Encoded Payload Termination IE (`00 f8`).
pub const PT: [u8; 2] = [0x00, 0xf8];
/// Largest header IE content.
pub const MAX_HEADER_IE_LEN: usize = 0x7f;
/// Largest payload IE content.
pub const MAX_PAYLOAD_IE_LEN: usize = 0x7ff;

/// Payload IE group IDs (802.15.4-2015 Table 7-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadIeGroup {
    /// 0x0: Encapsulated Service Data Unit.
    Esdu,
    /// 0x1: MLME (nested IEs).
    Mlme,
    /// 0x2: vendor specific.
    VendorSpecific,
    /// 0x3: MPX IE (IEEE 802.15.9).
    Mpx,
    /// 0x4: Wi-SUN WP-IE.
    WiSun,
    /// 0x5: IETF IE (RFC 8137).
    Ietf,
    /// 0xF: Payload Termination.
    Termination,
    /// 0x6–0xE: reserved.
    Reserved(u8),
}

impl PayloadIeGroup {
    /// From the 4-bit group ID.
    pub const fn from_id(id: u8) -> PayloadIeGroup {
        match id & 0xf {
            0x0 => PayloadIeGroup::Esdu,
            0x1 => PayloadIeGroup::Mlme,
            0x2 => PayloadIeGroup::VendorSpecific,
            0x3 => PayloadIeGroup::Mpx,
            0x4 => PayloadIeGroup::WiSun,
            0x5 => PayloadIeGroup::Ietf,
            0xf => PayloadIeGroup::Termination,
            other => PayloadIeGroup::Reserved(other),
        }
    }

    /// The 4-bit group ID.
    pub const fn id(self) -> u8 {
        match self {
            PayloadIeGroup::Esdu => 0x0,
            PayloadIeGroup::Mlme => 0x1,
            PayloadIeGroup::VendorSpecific => 0x2,
            PayloadIeGroup::Mpx => 0x3,
            PayloadIeGroup::WiSun => 0x4,
            PayloadIeGroup::Ietf => 0x5,
            PayloadIeGroup::Termination => 0xf,
            PayloadIeGroup::Reserved(v) => v & 0xf,
        }
    }
}

/// One header IE: element ID and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderIe<'a> {
    /// The 8-bit element ID.
    pub element_id: u8,
    /// The content (length ≤ 127).
    pub content: &'a [u8],
}

impl HeaderIe<'_> {
    /// Octets it takes on air.
    pub const fn buffer_len(&self) -> usize {
        2 + self.content.len()
    }

    /// Writes descriptor and content; returns the octets written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        emit_header_ie(self.element_id, self.content, buf)
    }
}

/// One payload IE: group and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadIe<'a> {
    /// The group.
    pub group: PayloadIeGroup,
    /// The content (length ≤ 2047).
    pub content: &'a [u8],
}

impl PayloadIe<'_> {
    /// Octets it takes on air.
    pub const fn buffer_len(&self) -> usize {
        2 + self.content.len()
    }

    /// Writes descriptor and content; returns the octets written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = emit_payload_ie_descriptor(self.group, self.content.len(), buf)?;
        buf[n..n + self.content.len()].copy_from_slice(self.content);
        Ok(n + self.content.len())
    }
}

/// Encodes a header IE descriptor.
#[allow(clippy::cast_possible_truncation)] // masked to the 7-bit length field
pub const fn header_ie_descriptor(element_id: u8, len: usize) -> [u8; 2] {
    // Length is masked to 7 bits; callers check `len <= MAX_HEADER_IE_LEN` first.
    let d = ((element_id as u16) << 7) | (len as u16 & 0x7f);
    d.to_le_bytes()
}

/// Encodes a payload IE descriptor.
#[allow(clippy::cast_possible_truncation)] // masked to the 11-bit length field
pub const fn payload_ie_descriptor(group: PayloadIeGroup, len: usize) -> [u8; 2] {
    // Length is masked to 11 bits; callers check `len <= MAX_PAYLOAD_IE_LEN` first.
    let d = 0x8000 | ((group.id() as u16) << 11) | (len as u16 & 0x7ff);
    d.to_le_bytes()
}

/// Writes a header IE (descriptor + content).
pub fn emit_header_ie(element_id: u8, content: &[u8], buf: &mut [u8]) -> Result<usize> {
    if content.len() > MAX_HEADER_IE_LEN {
        return Err(Error::FieldOverflow("header IE length"));
    }
    let n = 2 + content.len();
    let out = buf.get_mut(..n).ok_or(Error::BufferTooShort)?;
    out[..2].copy_from_slice(&header_ie_descriptor(element_id, content.len()));
    out[2..].copy_from_slice(content);
    Ok(n)
}

/// Writes only a payload IE descriptor for `len` content octets (the caller writes the content).
pub fn emit_payload_ie_descriptor(
    group: PayloadIeGroup,
    len: usize,
    buf: &mut [u8],
) -> Result<usize> {
    if len > MAX_PAYLOAD_IE_LEN {
        return Err(Error::FieldOverflow("payload IE length"));
    }
    let out = buf.get_mut(..2 + len).ok_or(Error::BufferTooShort)?;
    out[..2].copy_from_slice(&payload_ie_descriptor(group, len));
    Ok(2)
}

/// How the header IE list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderTermination {
    /// The list ran to the end of the frame (no payload IEs, no payload).
    None,
    /// HT1: payload IEs follow.
    Ht1,
    /// HT2: a raw MAC payload follows.
    Ht2,
}

/// Result of scanning a header IE region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderScan {
    /// Length of the header IEs, termination excluded.
    pub ies_len: usize,
    /// Length including the termination IE.
    pub total_len: usize,
    /// How the list ended.
    pub termination: HeaderTermination,
}

/// Scans header IEs at the start of `b` until HT1/HT2 or the end of `b`.
pub(crate) fn scan_header_ies(b: &[u8]) -> Result<HeaderScan> {
    let mut at = 0;
    while b.len() - at >= 2 {
        let d = le16(b, at);
        if d & 0x8000 != 0 {
            return Err(Error::IeType);
        }
        let id = ((d >> 7) & 0xff) as u8;
        let len = usize::from(d & 0x7f);
        if id == HT1_ID || id == HT2_ID {
            // Termination IEs have no content; a non-zero length is skipped like content so a
            // sloppy sender does not desynchronise us.
            let total = at + 2 + len;
            if total > b.len() {
                return Err(Error::IeLength);
            }
            let termination = if id == HT1_ID {
                HeaderTermination::Ht1
            } else {
                HeaderTermination::Ht2
            };
            return Ok(HeaderScan {
                ies_len: at,
                total_len: total,
                termination,
            });
        }
        at += 2 + len;
        if at > b.len() {
            return Err(Error::IeLength);
        }
    }
    if at != b.len() {
        return Err(Error::Truncated("header IE descriptor"));
    }
    Ok(HeaderScan {
        ies_len: at,
        total_len: at,
        termination: HeaderTermination::None,
    })
}

/// Result of scanning a payload IE region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadScan {
    /// Length of the payload IEs, PT excluded.
    pub ies_len: usize,
    /// Length including PT, if present.
    pub total_len: usize,
    /// Whether a PT ended the list.
    pub terminated: bool,
}

/// Scans payload IEs at the start of `b` until PT or the end of `b`. One trailing octet that
/// cannot hold a descriptor is an error.
pub(crate) fn scan_payload_ies(b: &[u8]) -> Result<PayloadScan> {
    let mut at = 0;
    while b.len() - at >= 2 {
        let d = le16(b, at);
        if d & 0x8000 == 0 {
            return Err(Error::IeType);
        }
        let group = ((d >> 11) & 0xf) as u8;
        let len = usize::from(d & 0x7ff);
        if group == 0xf {
            let total = at + 2 + len;
            if total > b.len() {
                return Err(Error::IeLength);
            }
            return Ok(PayloadScan {
                ies_len: at,
                total_len: total,
                terminated: true,
            });
        }
        at += 2 + len;
        if at > b.len() {
            return Err(Error::IeLength);
        }
    }
    if at != b.len() {
        return Err(Error::Truncated("payload IE descriptor"));
    }
    Ok(PayloadScan {
        ies_len: at,
        total_len: at,
        terminated: false,
    })
}

/// Iterator over a validated header IE list (termination excluded).
#[derive(Debug, Clone)]
pub struct HeaderIeIter<'a>(&'a [u8]);

impl<'a> HeaderIeIter<'a> {
    /// Iterates over `b`, which must come from a parsed frame or repr (validated); on invalid
    /// input the iterator simply stops.
    pub fn new(b: &'a [u8]) -> HeaderIeIter<'a> {
        HeaderIeIter(b)
    }
}

impl<'a> Iterator for HeaderIeIter<'a> {
    type Item = HeaderIe<'a>;
    fn next(&mut self) -> Option<HeaderIe<'a>> {
        if self.0.len() < 2 {
            return None;
        }
        let d = le16(self.0, 0);
        let len = usize::from(d & 0x7f);
        let content = self.0.get(2..2 + len)?;
        let ie = HeaderIe {
            element_id: ((d >> 7) & 0xff) as u8,
            content,
        };
        self.0 = &self.0[2 + len..];
        Some(ie)
    }
}

/// Iterator over a validated payload IE list (PT excluded).
#[derive(Debug, Clone)]
pub struct PayloadIeIter<'a>(&'a [u8]);

impl<'a> PayloadIeIter<'a> {
    /// Iterates over `b`, which must come from a parsed frame or repr (validated); on invalid
    /// input the iterator simply stops.
    pub fn new(b: &'a [u8]) -> PayloadIeIter<'a> {
        PayloadIeIter(b)
    }
}

impl<'a> Iterator for PayloadIeIter<'a> {
    type Item = PayloadIe<'a>;
    fn next(&mut self) -> Option<PayloadIe<'a>> {
        if self.0.len() < 2 {
            return None;
        }
        let d = le16(self.0, 0);
        let len = usize::from(d & 0x7ff);
        let content = self.0.get(2..2 + len)?;
        let ie = PayloadIe {
            group: PayloadIeGroup::from_id(((d >> 11) & 0xf) as u8),
            content,
        };
        self.0 = &self.0[2 + len..];
        Some(ie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        assert_eq!(header_ie_descriptor(HT1_ID, 0), HT1);
        assert_eq!(header_ie_descriptor(HT2_ID, 0), HT2);
        assert_eq!(payload_ie_descriptor(PayloadIeGroup::Termination, 0), PT);
        assert_eq!(payload_ie_descriptor(PayloadIeGroup::Mpx, 8), [0x08, 0x98]);
        assert_eq!(
            payload_ie_descriptor(PayloadIeGroup::Mpx, 0x17d),
            [0x7d, 0x99]
        );
        assert_eq!(header_ie_descriptor(0x2a, 5), [0x05, 0x15]);
    }

    #[test]
    fn scan_header() {
        let b = [0x05, 0x15, 1, 6, 0, 0, 0, 0x00, 0x3f, 0xaa];
        let s = scan_header_ies(&b).unwrap();
        assert_eq!(
            s,
            HeaderScan {
                ies_len: 7,
                total_len: 9,
                termination: HeaderTermination::Ht1
            }
        );
        let ies: Vec<_> = HeaderIeIter::new(&b[..s.ies_len]).collect();
        assert_eq!(
            ies,
            vec![HeaderIe {
                element_id: 0x2a,
                content: &[1, 6, 0, 0, 0]
            }]
        );
        // Runs to the end without termination.
        let s = scan_header_ies(&b[..7]).unwrap();
        assert_eq!(s.termination, HeaderTermination::None);
        // Negative cases.
        assert_eq!(scan_header_ies(&b[..6]), Err(Error::IeLength));
        assert_eq!(
            scan_header_ies(&[0x00, 0x3f, 0x01]).unwrap().termination,
            HeaderTermination::Ht1
        );
        assert_eq!(
            scan_header_ies(&[0x01]),
            Err(Error::Truncated("header IE descriptor"))
        );
        assert_eq!(scan_header_ies(&[0x00, 0x98]), Err(Error::IeType));
        assert_eq!(scan_header_ies(&[0x01, 0x3f]), Err(Error::IeLength));
    }

    #[test]
    fn scan_payload() {
        let b = [0x02, 0x98, 0xaa, 0xbb, 0x00, 0xf8, 0x01];
        let s = scan_payload_ies(&b).unwrap();
        assert_eq!(
            s,
            PayloadScan {
                ies_len: 4,
                total_len: 6,
                terminated: true
            }
        );
        let ies: Vec<_> = PayloadIeIter::new(&b[..4]).collect();
        assert_eq!(
            ies,
            vec![PayloadIe {
                group: PayloadIeGroup::Mpx,
                content: &[0xaa, 0xbb]
            }]
        );
        assert!(!scan_payload_ies(&b[..4]).unwrap().terminated);
        assert_eq!(scan_payload_ies(&b[..3]), Err(Error::IeLength));
        assert_eq!(
            scan_payload_ies(&b[..5]),
            Err(Error::Truncated("payload IE descriptor"))
        );
        assert_eq!(scan_payload_ies(&[0x00, 0x3f]), Err(Error::IeType));
    }

    #[test]
    fn emit_limits() {
        let mut buf = [0u8; 300];
        assert_eq!(
            emit_header_ie(1, &[0; 128], &mut buf),
            Err(Error::FieldOverflow("header IE length"))
        );
        assert_eq!(
            emit_header_ie(1, &[0; 10], &mut buf[..5]),
            Err(Error::BufferTooShort)
        );
        let ie = PayloadIe {
            group: PayloadIeGroup::Ietf,
            content: &[1, 2, 3],
        };
        assert_eq!(ie.emit(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], &[0x03, 0xa8, 1, 2, 3]);
        assert_eq!(ie.emit(&mut buf[..4]), Err(Error::BufferTooShort));
        for g in 0..16u8 {
            assert_eq!(PayloadIeGroup::from_id(g).id(), g);
        }
    }
}
