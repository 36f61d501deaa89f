//! IEEE 802.15.4 MAC frames (IEEE 802.15.4-2015 7.2, 7.3).
//!
//! [`Frame`] is a zero-copy view that parses the whole layout once in
//! [`Frame::new_checked`]: addressing (every mode, the 2015 PAN ID compression table and the
//! 2003/2006 rule), sequence number suppression, the auxiliary security header, header IEs and
//! their termination, the private payload, MIC and FCS. It understands every frame type at
//! header level; [`FrameRepr`] describes beacon, data, ack and MAC command frames completely.
//!
//! ```text
//! FCF (2) | Seq (0/1) | Dst PAN (0/2) | Dst Addr (0/2/8) | Src PAN (0/2) | Src Addr (0/2/8)
//!   | Aux Security Header (0/5–14) | Header IEs [+ HT1/HT2] | Payload IEs [+ PT] | Payload
//!   | MIC (0/4/8/16) | FCS (0/2/4)
//! ```
//! Secured frames authenticate everything up to and including the header termination IE and
//! encrypt what follows (the payload IEs and the payload), 802.15.4-2015 9.3.5.

use core::ops::Range;

use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId, ShortAddress};

use super::aux_sec::{AuxSecurityHeader, AuxSecurityHeaderRepr};
use super::fcs::{self, FcsLen};
use super::ie::{self, HeaderIeIter, HeaderTermination, PayloadIeIter};
use super::{Error, Result, le16};

mod field {
    pub(super) const SECURITY: u16 = 1 << 3;
    pub(super) const PENDING: u16 = 1 << 4;
    pub(super) const AR: u16 = 1 << 5;
    pub(super) const PANC: u16 = 1 << 6;
    pub(super) const SNS: u16 = 1 << 8;
    pub(super) const IE_PRESENT: u16 = 1 << 9;
    pub(super) const DST_MODE_SHIFT: u16 = 10;
    pub(super) const VERSION_SHIFT: u16 = 12;
    pub(super) const SRC_MODE_SHIFT: u16 = 14;
    // Multipurpose frames (7.3.5): byte 0 bit 3 selects the long (2-octet) frame control.
    pub(super) const MP_LONG: u16 = 1 << 3;
    pub(super) const MP_DST_SHIFT: u16 = 4;
    pub(super) const MP_SRC_SHIFT: u16 = 6;
    pub(super) const MP_PAN_PRESENT: u16 = 1 << 8;
    pub(super) const MP_SECURITY: u16 = 1 << 9;
    pub(super) const MP_SNS: u16 = 1 << 10;
    pub(super) const MP_PENDING: u16 = 1 << 11;
    pub(super) const MP_VERSION_SHIFT: u16 = 12;
    pub(super) const MP_AR: u16 = 1 << 14;
    pub(super) const MP_IE_PRESENT: u16 = 1 << 15;
}

/// Frame Type (802.15.4-2015 Table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// 0b000 Beacon.
    Beacon,
    /// 0b001 Data.
    Data,
    /// 0b010 Acknowledgment.
    Ack,
    /// 0b011 MAC command.
    MacCommand,
    /// 0b101 Multipurpose.
    Multipurpose,
    /// 0b110 Fragment or Frak (LECIM); only the type is decoded.
    Fragment,
    /// 0b111 Extended; only the type is decoded.
    Extended,
}

impl FrameType {
    /// From the 3-bit field; 0b100 is reserved.
    pub const fn from_bits(bits: u8) -> Option<FrameType> {
        Some(match bits & 7 {
            0 => FrameType::Beacon,
            1 => FrameType::Data,
            2 => FrameType::Ack,
            3 => FrameType::MacCommand,
            5 => FrameType::Multipurpose,
            6 => FrameType::Fragment,
            7 => FrameType::Extended,
            _ => return None,
        })
    }

    /// The 3-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            FrameType::Beacon => 0,
            FrameType::Data => 1,
            FrameType::Ack => 2,
            FrameType::MacCommand => 3,
            FrameType::Multipurpose => 5,
            FrameType::Fragment => 6,
            FrameType::Extended => 7,
        }
    }

    /// A lowercase name (`"data"`, `"ack"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            FrameType::Beacon => "beacon",
            FrameType::Data => "data",
            FrameType::Ack => "ack",
            FrameType::MacCommand => "mac_command",
            FrameType::Multipurpose => "multipurpose",
            FrameType::Fragment => "fragment",
            FrameType::Extended => "extended",
        }
    }

    /// Whether the frame uses the general MHR layout (beacon, data, ack, command).
    pub const fn is_general(self) -> bool {
        matches!(
            self,
            FrameType::Beacon | FrameType::Data | FrameType::Ack | FrameType::MacCommand
        )
    }
}

/// Frame Version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameVersion {
    /// 0b00: IEEE 802.15.4-2003.
    V2003,
    /// 0b01: IEEE 802.15.4-2006.
    V2006,
    /// 0b10: IEEE 802.15.4-2015 (and 2020): IEs, sequence number suppression.
    V2015,
}

impl FrameVersion {
    /// From the 2-bit field; 0b11 is reserved.
    pub const fn from_bits(bits: u8) -> Option<FrameVersion> {
        match bits & 3 {
            0 => Some(FrameVersion::V2003),
            1 => Some(FrameVersion::V2006),
            2 => Some(FrameVersion::V2015),
            _ => None,
        }
    }

    /// The 2-bit field value.
    pub const fn bits(self) -> u8 {
        self as u8
    }
}

/// Which PAN IDs are present for frame version 2 (802.15.4-2015 Table 7-2). Every combination
/// of non-reserved addressing modes and PAN ID Compression bit is a row of the table.
const fn pan_presence_v2(dst: AddressingMode, src: AddressingMode, panc: bool) -> (bool, bool) {
    use AddressingMode::{Extended as E, None as N};
    match (dst, src, panc) {
        (N, N, false) => (false, false),
        (N, N, true) => (true, false),
        (_, N, false) => (true, false),
        (_, N, true) => (false, false),
        (N, _, false) => (false, true),
        (N, _, true) => (false, false),
        (E, E, false) => (true, false),
        (E, E, true) => (false, false),
        (_, _, false) => (true, true),
        (_, _, true) => (true, false),
    }
}

/// PAN ID presence for frame versions 0 and 1 (802.15.4-2006 7.2.1.1.5).
const fn pan_presence_legacy(dst: AddressingMode, src: AddressingMode, panc: bool) -> (bool, bool) {
    let dst_present = !matches!(dst, AddressingMode::None);
    let src_present = !matches!(src, AddressingMode::None);
    (dst_present, src_present && !(panc && dst_present))
}

/// Offsets found by [`Frame::new_checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    frame_type: FrameType,
    version: FrameVersion,
    fcf: u16,
    security: bool,
    pending: bool,
    ack_request: bool,
    ie_present: bool,
    seq: Option<u8>,
    dst_mode: AddressingMode,
    src_mode: AddressingMode,
    // Offsets as u16 keep the layout small enough to move in registers; frames are at most
    // 2047 octets on every PHY and `new_checked` refuses buffers longer than 65535.
    dst_pan_at: Option<u16>,
    dst_addr_at: u16,
    src_pan_at: Option<u16>,
    src_addr_at: u16,
    aux_at: u16,
    aux_len: u16,
    ies_at: u16,
    header_ies_len: u16,
    termination: HeaderTermination,
    private_at: u16,
    mic_at: u16,
    fcs_at: u16,
}

/// Narrows an offset that is at most the buffer length (checked to fit u16 on entry).
#[allow(clippy::cast_possible_truncation)]
const fn o(x: usize) -> u16 {
    x as u16
}

/// A zero-copy view of an 802.15.4 frame, FCS included unless the view was made with
/// [`FcsLen::None`].
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
    fcs: FcsLen,
    layout: Layout,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks the layout of the frame in `buffer`. After this no accessor panics. The FCS value
    /// is not checked here: see [`Frame::fcs_ok`].
    pub fn new_checked(buffer: T, fcs: FcsLen) -> Result<Frame<T>> {
        let layout = Self::layout(buffer.as_ref(), fcs)?;
        Ok(Frame {
            buffer,
            fcs,
            layout,
        })
    }

    fn layout(b: &[u8], fcs: FcsLen) -> Result<Layout> {
        if b.len() > usize::from(u16::MAX) {
            return Err(Error::FieldOverflow("frame length"));
        }
        let end = b
            .len()
            .checked_sub(fcs.len())
            .ok_or(Error::Truncated("FCS"))?;
        let first = *b.first().ok_or(Error::Truncated("frame control"))?;
        let frame_type = FrameType::from_bits(first & 7).ok_or(Error::ReservedFrameType)?;
        let mode = |bits: u16| {
            AddressingMode::from_bits((bits & 3) as u8).ok_or(Error::ReservedAddressingMode)
        };
        let fcf_len;
        let fcf;
        let version;
        let (security, pending, ack_request, ie_present, seq_present);
        let (dst_mode, src_mode);
        let (dst_pan_present, src_pan_present);
        match frame_type {
            FrameType::Multipurpose => {
                if u16::from(first) & field::MP_LONG != 0 {
                    if b.len() < 2 {
                        return Err(Error::Truncated("frame control"));
                    }
                    fcf = le16(b, 0);
                    fcf_len = 2;
                    version = FrameVersion::from_bits((fcf >> field::MP_VERSION_SHIFT) as u8)
                        .ok_or(Error::ReservedFrameVersion)?;
                    security = fcf & field::MP_SECURITY != 0;
                    pending = fcf & field::MP_PENDING != 0;
                    ack_request = fcf & field::MP_AR != 0;
                    ie_present = fcf & field::MP_IE_PRESENT != 0;
                    seq_present = fcf & field::MP_SNS == 0;
                } else {
                    fcf = u16::from(first);
                    fcf_len = 1;
                    version = FrameVersion::V2015;
                    (security, pending, ack_request, ie_present) = (false, false, false, false);
                    seq_present = true;
                }
                dst_mode = mode(fcf >> field::MP_DST_SHIFT)?;
                src_mode = mode(fcf >> field::MP_SRC_SHIFT)?;
                // One PAN ID field at most: it belongs to the destination if there is one.
                let pan = fcf_len == 2 && fcf & field::MP_PAN_PRESENT != 0;
                let dst = !matches!(dst_mode, AddressingMode::None);
                (dst_pan_present, src_pan_present) = (pan && dst, pan && !dst);
            }
            FrameType::Fragment | FrameType::Extended => {
                // The rest of these headers depends on the PHY (LECIM); expose the type only.
                return Ok(Layout {
                    frame_type,
                    version: FrameVersion::V2015,
                    fcf: u16::from(first),
                    security: false,
                    pending: false,
                    ack_request: false,
                    ie_present: false,
                    seq: None,
                    dst_mode: AddressingMode::None,
                    src_mode: AddressingMode::None,
                    dst_pan_at: None,
                    dst_addr_at: 1,
                    src_pan_at: None,
                    src_addr_at: 1,
                    aux_at: 1,
                    aux_len: 0,
                    ies_at: 1,
                    header_ies_len: 0,
                    termination: HeaderTermination::None,
                    private_at: o(1.min(end)),
                    mic_at: o(end),
                    fcs_at: o(end),
                });
            }
            _ => {
                if b.len() < 2 {
                    return Err(Error::Truncated("frame control"));
                }
                fcf = le16(b, 0);
                fcf_len = 2;
                version = FrameVersion::from_bits((fcf >> field::VERSION_SHIFT) as u8)
                    .ok_or(Error::ReservedFrameVersion)?;
                security = fcf & field::SECURITY != 0;
                pending = fcf & field::PENDING != 0;
                ack_request = fcf & field::AR != 0;
                let v2 = version == FrameVersion::V2015;
                // Bits 8 and 9 are reserved before 2015 and ignored on receipt.
                ie_present = v2 && fcf & field::IE_PRESENT != 0;
                seq_present = !(v2 && fcf & field::SNS != 0);
                dst_mode = mode(fcf >> field::DST_MODE_SHIFT)?;
                src_mode = mode(fcf >> field::SRC_MODE_SHIFT)?;
                let panc = fcf & field::PANC != 0;
                (dst_pan_present, src_pan_present) = if v2 {
                    pan_presence_v2(dst_mode, src_mode, panc)
                } else {
                    pan_presence_legacy(dst_mode, src_mode, panc)
                };
            }
        }
        let mut at = fcf_len;
        let seq = if seq_present {
            let s = *b.get(at).ok_or(Error::Truncated("sequence number"))?;
            at += 1;
            Some(s)
        } else {
            None
        };
        let dst_pan_at = dst_pan_present.then_some(at);
        at += if dst_pan_present { 2 } else { 0 };
        let dst_addr_at = at;
        at += dst_mode.address_len();
        let src_pan_at = src_pan_present.then_some(at);
        at += if src_pan_present { 2 } else { 0 };
        let src_addr_at = at;
        at += src_mode.address_len();
        if at > end {
            return Err(Error::Truncated("addressing fields"));
        }
        let aux_at = at;
        let mut aux_len = 0;
        let mut mic_len = 0;
        if security {
            if version == FrameVersion::V2003 {
                return Err(Error::UnsupportedLegacySecurity);
            }
            let aux = AuxSecurityHeader::new_checked(&b[at..end])?;
            if version < FrameVersion::V2015
                && (aux.frame_counter_suppressed() || aux.asn_in_nonce())
            {
                return Err(Error::VersionMismatch(
                    "frame counter suppression / ASN in nonce",
                ));
            }
            aux_len = aux.header_len();
            mic_len = aux.security_level().mic_len();
            at += aux_len;
        }
        let mic_at = end
            .checked_sub(mic_len)
            .filter(|&m| m >= at)
            .ok_or(Error::Truncated("MIC"))?;
        let ies_at = at;
        let (header_ies_len, termination, private_at) = if ie_present {
            let scan = ie::scan_header_ies(&b[at..mic_at])?;
            (scan.ies_len, scan.termination, at + scan.total_len)
        } else {
            (0, HeaderTermination::None, at)
        };
        Ok(Layout {
            frame_type,
            version,
            fcf,
            security,
            pending,
            ack_request,
            ie_present,
            seq,
            dst_mode,
            src_mode,
            dst_pan_at: dst_pan_at.map(o),
            dst_addr_at: o(dst_addr_at),
            src_pan_at: src_pan_at.map(o),
            src_addr_at: o(src_addr_at),
            aux_at: o(aux_at),
            aux_len: o(aux_len),
            ies_at: o(ies_at),
            header_ies_len: o(header_ies_len),
            termination,
            private_at: o(private_at),
            mic_at: o(mic_at),
            fcs_at: o(end),
        })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The FCS length this view was made with.
    pub fn fcs_len(&self) -> FcsLen {
        self.fcs
    }

    /// Frame type.
    pub fn frame_type(&self) -> FrameType {
        self.layout.frame_type
    }

    /// Frame version.
    pub fn frame_version(&self) -> FrameVersion {
        self.layout.version
    }

    /// The raw frame control field (one octet for short multipurpose frames).
    pub fn frame_control(&self) -> u16 {
        self.layout.fcf
    }

    /// Security Enabled.
    pub fn security_enabled(&self) -> bool {
        self.layout.security
    }

    /// Frame Pending.
    pub fn frame_pending(&self) -> bool {
        self.layout.pending
    }

    /// Acknowledgment Request.
    pub fn ack_request(&self) -> bool {
        self.layout.ack_request
    }

    /// IE Present (only ever true for 2015 frames).
    pub fn ie_present(&self) -> bool {
        self.layout.ie_present
    }

    /// The sequence number, unless suppressed.
    pub fn sequence_number(&self) -> Option<u8> {
        self.layout.seq
    }

    fn pan_at(&self, at: Option<usize>) -> Option<PanId> {
        at.map(|a| PanId(le16(self.buffer.as_ref(), a)))
    }

    fn addr_at(&self, mode: AddressingMode, at: usize) -> Address {
        let b = self.buffer.as_ref();
        match mode {
            AddressingMode::None => Address::Absent,
            AddressingMode::Short => Address::Short(ShortAddress(le16(b, at))),
            AddressingMode::Extended => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[at..at + 8]);
                Address::Extended(ExtendedAddress::from_air(a))
            }
        }
    }

    /// Destination PAN ID, if present.
    pub fn dst_pan_id(&self) -> Option<PanId> {
        self.pan_at(self.layout.dst_pan_at.map(usize::from))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Address {
        self.addr_at(self.layout.dst_mode, usize::from(self.layout.dst_addr_at))
    }

    /// Source PAN ID, if present in the frame (not inferred from the destination).
    pub fn src_pan_id(&self) -> Option<PanId> {
        self.pan_at(self.layout.src_pan_at.map(usize::from))
    }

    /// Source address.
    pub fn src_addr(&self) -> Address {
        self.addr_at(self.layout.src_mode, usize::from(self.layout.src_addr_at))
    }

    /// The auxiliary security header, if the frame is secured.
    pub fn aux_security_header(&self) -> Option<AuxSecurityHeader<&[u8]>> {
        if !self.layout.security {
            return None;
        }
        let b = &self.buffer.as_ref()[usize::from(self.layout.aux_at)
            ..usize::from(self.layout.aux_at) + usize::from(self.layout.aux_len)];
        // new_checked validated this very range.
        AuxSecurityHeader::new_checked(b).ok()
    }

    /// Range of the auxiliary security header (empty when the frame is not secured).
    pub fn aux_security_header_range(&self) -> Range<usize> {
        usize::from(self.layout.aux_at)
            ..usize::from(self.layout.aux_at) + usize::from(self.layout.aux_len)
    }

    /// The header IEs, termination excluded.
    pub fn header_ies(&self) -> HeaderIeIter<'_> {
        HeaderIeIter::new(self.header_ies_bytes())
    }

    /// The encoded header IEs, termination excluded.
    pub fn header_ies_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.layout.ies_at)
            ..usize::from(self.layout.ies_at) + usize::from(self.layout.header_ies_len)]
    }

    /// How the header IE list ended.
    pub fn header_termination(&self) -> HeaderTermination {
        self.layout.termination
    }

    /// Length of the part that is authenticated but never encrypted: the MHR, auxiliary
    /// security header, header IEs and their termination (the CCM* `a` data).
    pub fn header_len(&self) -> usize {
        usize::from(self.layout.private_at)
    }

    /// Range of the private payload (payload IEs and payload; encrypted at levels 4–7).
    pub fn private_payload_range(&self) -> Range<usize> {
        usize::from(self.layout.private_at)..usize::from(self.layout.mic_at)
    }

    /// The private payload.
    pub fn private_payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.private_payload_range()]
    }

    /// Range of the MIC.
    pub fn mic_range(&self) -> Range<usize> {
        usize::from(self.layout.mic_at)..usize::from(self.layout.fcs_at)
    }

    /// The MIC (empty when unsecured or at levels 0 and 4).
    pub fn mic(&self) -> &[u8] {
        &self.buffer.as_ref()[self.mic_range()]
    }

    /// Everything the FCS covers.
    pub fn fcs_covered(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.layout.fcs_at)]
    }

    /// Whether the FCS matches (always true for views made with [`FcsLen::None`]).
    pub fn fcs_ok(&self) -> bool {
        fcs::check(self.buffer.as_ref(), self.fcs)
    }

    /// The payload IEs and payload of an unsecured, MIC-only or already-unprotected frame.
    pub fn payload_ies_and_payload(&self) -> Result<(PayloadIeIter<'_>, &[u8])> {
        let (ies, _, payload) = split_private(self.private_payload(), self.layout.termination)?;
        Ok((PayloadIeIter::new(ies), payload))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// The private payload, for in-place encryption or decryption.
    pub fn private_payload_mut(&mut self) -> &mut [u8] {
        let r = self.private_payload_range();
        &mut self.buffer.as_mut()[r]
    }

    /// Splits the frame into (authenticated header, private payload, MIC) for in-place CCM*.
    pub fn split_for_security(&mut self) -> (&[u8], &mut [u8], &mut [u8]) {
        let (private_at, mic_at, fcs_at) = (
            usize::from(self.layout.private_at),
            usize::from(self.layout.mic_at),
            usize::from(self.layout.fcs_at),
        );
        let b = &mut self.buffer.as_mut()[..fcs_at];
        let (head, rest) = b.split_at_mut(private_at);
        let (private, mic) = rest.split_at_mut(mic_at - private_at);
        (head, private, mic)
    }

    /// Overwrites the frame counter of the auxiliary security header in place. Returns `false`
    /// (and changes nothing) if the frame is unsecured or its frame counter is suppressed.
    pub fn set_frame_counter(&mut self, counter: u32) -> bool {
        let at = usize::from(self.layout.aux_at);
        match self.aux_security_header() {
            Some(h) if !h.frame_counter_suppressed() => {
                self.buffer.as_mut()[at + 1..at + 5].copy_from_slice(&counter.to_le_bytes());
                true
            }
            _ => false,
        }
    }

    /// Recomputes the FCS over the frame.
    pub fn fill_fcs(&mut self) {
        fcs::fill(self.buffer.as_mut(), self.fcs);
    }
}

/// Splits a plaintext private payload into (payload IEs, PT present, payload).
fn split_private(private: &[u8], termination: HeaderTermination) -> Result<(&[u8], bool, &[u8])> {
    match termination {
        HeaderTermination::Ht1 => {
            let scan = ie::scan_payload_ies(private)?;
            Ok((
                &private[..scan.ies_len],
                scan.terminated,
                &private[scan.total_len..],
            ))
        }
        HeaderTermination::Ht2 | HeaderTermination::None => Ok((&[], false, private)),
    }
}

/// How [`FrameRepr::parse_with`] treats the FCS and the private payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Fail with [`Error::BadFcs`] if the FCS is wrong.
    pub check_fcs: bool,
    /// The private payload has been decrypted in place: parse it even if the level encrypts.
    pub unprotected: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            check_fcs: true,
            unprotected: false,
        }
    }
}

/// High-level representation of a beacon, data, ack or MAC command frame.
///
/// IE lists are kept encoded (validated on parse, copied on emit) so that parsing never
/// allocates; iterate them with [`FrameRepr::header_ies`] and [`FrameRepr::payload_ies`].
/// Termination IEs are not part of the lists: `emit` adds HT1 when payload IEs follow, HT2 when
/// a raw payload follows header IEs, and PT only when something follows the payload IEs (or
/// `payload_termination` asks for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRepr<'a> {
    /// Frame type (general frame types only).
    pub frame_type: FrameType,
    /// Frame version.
    pub frame_version: FrameVersion,
    /// Frame Pending.
    pub frame_pending: bool,
    /// Acknowledgment Request.
    pub ack_request: bool,
    /// Sequence number; `None` = suppressed (2015 only).
    pub seq: Option<u8>,
    /// Destination PAN ID, if sent.
    pub dst_pan: Option<PanId>,
    /// Destination address.
    pub dst_addr: Address,
    /// Source PAN ID, if sent.
    pub src_pan: Option<PanId>,
    /// Source address.
    pub src_addr: Address,
    /// Auxiliary security header for secured frames.
    pub security: Option<AuxSecurityHeaderRepr>,
    /// Encoded header IEs, termination excluded.
    pub header_ies: &'a [u8],
    /// Encoded payload IEs, PT excluded.
    pub payload_ies: &'a [u8],
    /// Send a PT after the payload IEs even though no payload follows.
    pub payload_termination: bool,
    /// The raw MAC payload after the IEs.
    pub payload: &'a [u8],
}

impl<'a> FrameRepr<'a> {
    /// Parses a frame, checking the FCS; encrypted frames fail with [`Error::Encrypted`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &'a Frame<&'a T>) -> Result<FrameRepr<'a>> {
        Self::parse_with(frame, ParseOptions::default())
    }

    /// Parses a frame with explicit options.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        frame: &'a Frame<&'a T>,
        opts: ParseOptions,
    ) -> Result<FrameRepr<'a>> {
        if opts.check_fcs && !frame.fcs_ok() {
            return Err(Error::BadFcs);
        }
        if !frame.frame_type().is_general() {
            return Err(Error::ReservedFrameType);
        }
        let security = frame
            .aux_security_header()
            .map(|h| AuxSecurityHeaderRepr::parse(&h));
        if security.is_some_and(|s| s.level.encrypts()) && !opts.unprotected {
            return Err(Error::Encrypted);
        }
        let b: &'a [u8] = frame.buffer.as_ref();
        let l = &frame.layout;
        let (payload_ies, terminated, payload) = split_private(
            &b[usize::from(l.private_at)..usize::from(l.mic_at)],
            l.termination,
        )?;
        Ok(FrameRepr {
            frame_type: l.frame_type,
            frame_version: l.version,
            frame_pending: l.pending,
            ack_request: l.ack_request,
            seq: l.seq,
            dst_pan: frame.dst_pan_id(),
            dst_addr: frame.dst_addr(),
            src_pan: frame.src_pan_id(),
            src_addr: frame.src_addr(),
            security,
            header_ies: &b
                [usize::from(l.ies_at)..usize::from(l.ies_at) + usize::from(l.header_ies_len)],
            payload_ies,
            // PT only matters in front of nothing; keep it so Ex 5 re-emits byte for byte, but
            // not when there are no payload IEs (emit would not write it).
            payload_termination: terminated && !payload_ies.is_empty() && payload.is_empty(),
            payload,
        })
    }

    /// Iterates the header IEs.
    pub fn header_ies(&self) -> HeaderIeIter<'a> {
        HeaderIeIter::new(self.header_ies)
    }

    /// Iterates the payload IEs.
    pub fn payload_ies(&self) -> PayloadIeIter<'a> {
        PayloadIeIter::new(self.payload_ies)
    }

    fn termination(&self) -> (HeaderTermination, bool) {
        if !self.payload_ies.is_empty() {
            let pt = !self.payload.is_empty() || self.payload_termination;
            (HeaderTermination::Ht1, pt)
        } else if !self.header_ies.is_empty() && !self.payload.is_empty() {
            (HeaderTermination::Ht2, false)
        } else {
            (HeaderTermination::None, false)
        }
    }

    fn ie_present(&self) -> bool {
        !self.header_ies.is_empty() || !self.payload_ies.is_empty()
    }

    /// Length of the MHR, auxiliary security header, header IEs and termination.
    pub fn header_len(&self) -> usize {
        let mut n = 2;
        n += usize::from(self.seq.is_some());
        n += if self.dst_pan.is_some() { 2 } else { 0 };
        n += self.dst_addr.mode().address_len();
        n += if self.src_pan.is_some() { 2 } else { 0 };
        n += self.src_addr.mode().address_len();
        n += self.security.map_or(0, |s| s.buffer_len());
        n += self.header_ies.len();
        if self.termination().0 != HeaderTermination::None {
            n += 2;
        }
        n
    }

    /// Length of the MIC.
    pub fn mic_len(&self) -> usize {
        self.security.map_or(0, |s| s.level.mic_len())
    }

    /// Octets the frame takes, FCS included.
    pub fn buffer_len(&self, fcs: FcsLen) -> usize {
        let (_, pt) = self.termination();
        self.header_len()
            + self.payload_ies.len()
            + if pt { 2 } else { 0 }
            + self.payload.len()
            + self.mic_len()
            + fcs.len()
    }

    fn frame_control(&self) -> Result<u16> {
        if !self.frame_type.is_general() {
            return Err(Error::ReservedFrameType);
        }
        let v2 = self.frame_version == FrameVersion::V2015;
        if !v2 && (self.seq.is_none() || self.ie_present()) {
            return Err(Error::VersionMismatch("IEs / sequence number suppression"));
        }
        if let Some(s) = &self.security {
            if self.frame_version == FrameVersion::V2003 {
                return Err(Error::UnsupportedLegacySecurity);
            }
            if !v2 && (s.frame_counter.is_none() || s.asn_in_nonce) {
                return Err(Error::VersionMismatch(
                    "frame counter suppression / ASN in nonce",
                ));
            }
        }
        let (dm, sm) = (self.dst_addr.mode(), self.src_addr.mode());
        let want = (self.dst_pan.is_some(), self.src_pan.is_some());
        let panc = [false, true]
            .into_iter()
            .find(|&p| {
                let got = if v2 {
                    pan_presence_v2(dm, sm, p)
                } else {
                    pan_presence_legacy(dm, sm, p)
                };
                got == want
            })
            .ok_or(Error::InvalidPanIdCompression)?;
        let mut fcf = u16::from(self.frame_type.bits());
        fcf |= u16::from(dm.bits()) << field::DST_MODE_SHIFT;
        fcf |= u16::from(sm.bits()) << field::SRC_MODE_SHIFT;
        fcf |= u16::from(self.frame_version.bits()) << field::VERSION_SHIFT;
        let flags = [
            (self.security.is_some(), field::SECURITY),
            (self.frame_pending, field::PENDING),
            (self.ack_request, field::AR),
            (panc, field::PANC),
            (self.seq.is_none(), field::SNS),
            (self.ie_present(), field::IE_PRESENT),
        ];
        for (set, bit) in flags {
            if set {
                fcf |= bit;
            }
        }
        Ok(fcf)
    }

    /// Writes the frame into `buf[..self.buffer_len(fcs)]` and returns that length. For a
    /// secured frame the private payload is written in plaintext and the MIC as zeros: apply
    /// the outgoing security procedure next (it re-fills the FCS). Returns an error, without
    /// panicking, if the representation cannot be encoded or `buf` is too short.
    pub fn emit(&self, buf: &mut [u8], fcs: FcsLen) -> Result<usize> {
        let fcf = self.frame_control()?;
        let total = self.buffer_len(fcs);
        let out = buf.get_mut(..total).ok_or(Error::BufferTooShort)?;
        out[..2].copy_from_slice(&fcf.to_le_bytes());
        let mut at = 2;
        let mut put = |out: &mut [u8], bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(s) = self.seq {
            put(out, &[s]);
        }
        if let Some(p) = self.dst_pan {
            put(out, &p.0.to_le_bytes());
        }
        put_addr(out, &mut put, self.dst_addr);
        if let Some(p) = self.src_pan {
            put(out, &p.0.to_le_bytes());
        }
        put_addr(out, &mut put, self.src_addr);
        if let Some(s) = &self.security {
            let mut tmp = [0u8; 14];
            let n = s.emit(&mut tmp)?;
            put(out, &tmp[..n]);
        }
        put(out, self.header_ies);
        let (term, pt) = self.termination();
        match term {
            HeaderTermination::Ht1 => put(out, &ie::HT1),
            HeaderTermination::Ht2 => put(out, &ie::HT2),
            HeaderTermination::None => {}
        }
        put(out, self.payload_ies);
        if pt {
            put(out, &ie::PT);
        }
        put(out, self.payload);
        let mic_end = at + self.mic_len();
        out[at..mic_end].fill(0);
        fcs::fill(out, fcs);
        Ok(total)
    }
}

fn put_addr(out: &mut [u8], put: &mut impl FnMut(&mut [u8], &[u8]), a: Address) {
    match a {
        Address::Absent => {}
        Address::Short(s) => put(out, &s.0.to_le_bytes()),
        Address::Extended(e) => put(out, &e.to_air()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ie::PayloadIeGroup;
    use crate::wire::mpx_ie::MpxIeRepr;
    use kmp_api::id::MultiplexId;
    use kmp_api::security::{KeyIdentifier, SecurityLevel};

    const DST: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
    const SRC: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex).unwrap()
    }

    /// Builds the payload IE list holding one MPX IE.
    fn mpx_list(repr: MpxIeRepr<'_>) -> Vec<u8> {
        repr.to_payload_ie().unwrap()
    }

    fn data_frame<'a>(
        seq: Option<u8>,
        dst_pan: Option<PanId>,
        payload_ies: &'a [u8],
    ) -> FrameRepr<'a> {
        FrameRepr {
            frame_type: FrameType::Data,
            frame_version: FrameVersion::V2015,
            frame_pending: false,
            ack_request: true,
            seq,
            dst_pan,
            dst_addr: DST.into(),
            src_pan: None,
            src_addr: SRC.into(),
            security: None,
            header_ies: &[],
            payload_ies,
            payload_termination: false,
            payload: &[],
        }
    }

    /// Emits `repr`, compares with `hex`, parses `hex` back and compares with `repr`.
    fn check(repr: &FrameRepr<'_>, hex: &str, fcs: FcsLen) {
        let want = bytes(hex);
        let mut buf = vec![0u8; repr.buffer_len(fcs)];
        let n = repr.emit(&mut buf, fcs).unwrap();
        assert_eq!(hex::encode(&buf[..n]), hex, "emit");
        let frame = Frame::new_checked(&want[..], fcs).unwrap();
        assert!(frame.fcs_ok());
        assert_eq!(&FrameRepr::parse(&frame).unwrap(), repr, "parse");
    }

    fn only_mpx<'a>(repr: &FrameRepr<'a>) -> MpxIeRepr<'a> {
        let mut ies = repr.payload_ies();
        let ie = ies.next().unwrap();
        assert_eq!(ie.group, PayloadIeGroup::Mpx);
        assert!(ies.next().is_none());
        MpxIeRepr::parse_bytes(ie.content).unwrap()
    }

    #[test]
    fn ex1_full_frame_eapol_start() {
        let ies = mpx_list(MpxIeRepr::FullFrame {
            transaction_id: 0,
            multiplex_id: MultiplexId::Kmp,
            data: &[1, 3, 1, 0, 0],
        });
        let repr = data_frame(Some(5), Some(PanId(0xabcd)), &ies);
        check(
            &repr,
            "21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4",
            FcsLen::Two,
        );
    }

    #[test]
    fn ex2_compressed_multiplex_id() {
        let ies = mpx_list(MpxIeRepr::FullFrameCompressed {
            multiplex_id: MultiplexId::Kmp,
            data: &[1, 3, 1, 0, 0],
        });
        let repr = data_frame(None, None, &ies);
        check(
            &repr,
            "61ef01000000000000020200000000000002003f06980901030100001c27",
            FcsLen::Two,
        );
    }

    #[test]
    fn ex3_fragments_and_abort() {
        let frames = [
            (
                0x10,
                MpxIeRepr::FirstFragment {
                    transaction_id: 5,
                    total_size: 16,
                    multiplex_id: MultiplexId::Kmp,
                    data: &[6, 3, 3, 0, 0x0b, 0x10],
                },
                "61ee1001000000000000020200000000000002003f0c982a0010000100060303000b10af17",
            ),
            (
                0x11,
                MpxIeRepr::MiddleFragment {
                    transaction_id: 5,
                    fragment_number: 1,
                    data: &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16],
                },
                "61ee1101000000000000020200000000000002003f08982a011112131415163cc3",
            ),
            (
                0x12,
                MpxIeRepr::LastFragment {
                    transaction_id: 5,
                    fragment_number: 2,
                    data: &[0x17, 0x18, 0x19, 0x1a],
                },
                "61ee1201000000000000020200000000000002003f06982c021718191a80ad",
            ),
            (
                0x13,
                MpxIeRepr::Abort {
                    transaction_id: 5,
                    max_size: Some(1024),
                },
                "61ee1301000000000000020200000000000002003f03982e00048629",
            ),
        ];
        for (seq, mpx, hex) in frames {
            let ies = mpx_list(mpx);
            let repr = data_frame(Some(seq), None, &ies);
            check(&repr, hex, FcsLen::Two);
            assert_eq!(only_mpx(&repr), mpx);
        }
    }

    #[test]
    fn ex4_lowpan_broadcast() {
        let hex = "01e220cdab0200000000000002003f389800eda04160000000000c11fffe800000000000000000000000000002ff02000000000000000000000000000104d204d2000c19db70696e672de5";
        let raw = bytes(hex);
        let frame = Frame::new_checked(&raw[..], FcsLen::Two).unwrap();
        let repr = FrameRepr::parse(&frame).unwrap();
        assert_eq!(repr.dst_addr, Address::Absent);
        assert_eq!(repr.dst_pan, None);
        assert_eq!(repr.src_pan, Some(PanId(0xabcd)));
        assert!(!repr.ack_request);
        let mpx = only_mpx(&repr);
        assert_eq!(mpx.multiplex_id(), Some(MultiplexId::LOWPAN));
        assert_eq!(mpx.data().len(), 53);
        assert_eq!(mpx.data()[0], 0x41);
        let ies = mpx_list(mpx);
        let built = FrameRepr {
            ack_request: false,
            seq: Some(0x20),
            dst_addr: Address::Absent,
            src_pan: Some(PanId(0xabcd)),
            ..data_frame(None, None, &ies)
        };
        check(&built, hex, FcsLen::Two);
    }

    #[test]
    fn ex5_trailing_payload_termination() {
        let ies = mpx_list(MpxIeRepr::FullFrame {
            transaction_id: 0,
            multiplex_id: MultiplexId::Kmp,
            data: &[1, 3, 1, 0, 0],
        });
        let repr = FrameRepr {
            payload_termination: true,
            ..data_frame(Some(5), Some(PanId(0xabcd)), &ies)
        };
        check(
            &repr,
            "21ee05cdab01000000000000020200000000000002003f0898000100010301000000f833af",
            FcsLen::Two,
        );
        // Ex 1 and Ex 5 carry the same MPX IE.
        assert_eq!(
            only_mpx(&repr),
            only_mpx(&data_frame(Some(5), Some(PanId(0xabcd)), &ies))
        );
    }

    const EX6: &str = "61ee420100000000000002020000000000000205150106000000003f7d98000100060303007502008a00100000000000000001202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000016dd14000fac04a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

    #[test]
    fn ex6_wisun_4wh_fcs32_and_fcs16() {
        let raw = bytes(&format!("{EX6}520ec704"));
        let frame = Frame::new_checked(&raw[..], FcsLen::Four).unwrap();
        let repr = FrameRepr::parse(&frame).unwrap();
        let hies: Vec<_> = repr.header_ies().collect();
        assert_eq!(hies.len(), 1);
        assert_eq!(hies[0].element_id, 0x2a);
        assert_eq!(hies[0].content, &[1, 6, 0, 0, 0]);
        let mpx = only_mpx(&repr);
        assert_eq!(mpx.kmp_id(), Some(Ok(kmp_api::KmpId::Ieee80211FourWay)));
        assert_eq!(mpx.data().len(), 122);
        let ies = mpx_list(mpx);
        let built = FrameRepr {
            header_ies: &[0x05, 0x15, 1, 6, 0, 0, 0],
            ..data_frame(Some(0x42), None, &ies)
        };
        check(&built, &format!("{EX6}520ec704"), FcsLen::Four);
        check(&built, &format!("{EX6}b2c5"), FcsLen::Two);
        // A 2-octet FCS view of the 4-octet frame fails the FCS check.
        let wrong = Frame::new_checked(&raw[..], FcsLen::Two).unwrap();
        assert!(!wrong.fcs_ok());
    }

    #[test]
    fn ex7_vendor_specific_kmp() {
        let ies = mpx_list(MpxIeRepr::FullFrame {
            transaction_id: 0,
            multiplex_id: MultiplexId::Kmp,
            data: &[0xff, 0x00, 0x50, 0xc2, 0xde, 0xad, 0xbe, 0xef],
        });
        let repr = data_frame(Some(0x30), None, &ies);
        check(
            &repr,
            "61ee3001000000000000020200000000000002003f0b98000100ff0050c2deadbeefbe92",
            FcsLen::Two,
        );
        let kmp = only_mpx(&repr).kmp_id().unwrap().unwrap();
        assert_eq!(
            kmp,
            kmp_api::KmpId::VendorSpecific(kmp_api::Oui([0x00, 0x50, 0xc2]))
        );
    }

    #[test]
    fn interop_frame_1_pan_id_not_compressed() {
        // spec/interop-peers.md §1.2 frame 1 (tshark: FCS 0xc602 correct).
        let hex = "01ee01cdabffeeddccbbaa99887766554433221100003f1198080100010300000902010009017573657202c6";
        let raw = bytes(hex);
        let frame = Frame::new_checked(&raw[..], FcsLen::Two).unwrap();
        let repr = FrameRepr::parse(&frame).unwrap();
        assert_eq!(repr.dst_addr.to_string(), "88:99:aa:bb:cc:dd:ee:ff");
        assert_eq!(repr.src_addr.to_string(), "00:11:22:33:44:55:66:77");
        let mpx = only_mpx(&repr);
        assert_eq!(mpx.transaction_id(), 1);
        assert_eq!(mpx.kmp_id(), Some(Ok(kmp_api::KmpId::Ieee8021xMka)));
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf, FcsLen::Two).unwrap();
        assert_eq!(hex::encode(&buf[..n]), hex);
    }

    #[test]
    fn pan_id_compression_table_is_complete_and_invertible() {
        use AddressingMode::*;
        let addr = |m| match m {
            None => Address::Absent,
            Short => Address::Short(ShortAddress(0x1234)),
            Extended => Address::Extended(SRC),
        };
        for version in [FrameVersion::V2006, FrameVersion::V2015] {
            for dm in [None, Short, Extended] {
                for sm in [None, Short, Extended] {
                    for panc in [false, true] {
                        let (dp, sp) = if version == FrameVersion::V2015 {
                            pan_presence_v2(dm, sm, panc)
                        } else {
                            pan_presence_legacy(dm, sm, panc)
                        };
                        let repr = FrameRepr {
                            frame_version: version,
                            seq: Some(1),
                            dst_pan: dp.then_some(PanId(0x1111)),
                            dst_addr: addr(dm),
                            src_pan: sp.then_some(PanId(0x2222)),
                            src_addr: addr(sm),
                            payload: &[0xaa],
                            ..data_frame(Some(1), Option::None, &[])
                        };
                        let mut buf = [0u8; 64];
                        let n = repr.emit(&mut buf, FcsLen::Two).unwrap();
                        let f = Frame::new_checked(&buf[..n], FcsLen::Two).unwrap();
                        assert_eq!(
                            FrameRepr::parse(&f).unwrap(),
                            repr,
                            "{version:?} {dm:?} {sm:?} {panc}"
                        );
                    }
                }
            }
        }
        // Rows 7/8 (ext/ext): a source PAN ID cannot be sent.
        let bad = FrameRepr {
            src_pan: Some(PanId(1)),
            ..data_frame(Some(1), Option::None, &[])
        };
        assert_eq!(
            bad.emit(&mut [0u8; 64], FcsLen::Two),
            Err(Error::InvalidPanIdCompression)
        );
    }

    #[test]
    fn secured_frame_layout() {
        let ies = mpx_list(MpxIeRepr::FullFrame {
            transaction_id: 1,
            multiplex_id: MultiplexId::Kmp,
            data: &[1, 3, 1, 0, 0],
        });
        let repr = FrameRepr {
            security: Some(AuxSecurityHeaderRepr {
                level: SecurityLevel::EncMic64,
                key_id: KeyIdentifier::Index(1),
                frame_counter: Some(7),
                asn_in_nonce: false,
            }),
            ..data_frame(Some(9), None, &ies)
        };
        let mut buf = [0u8; 80];
        let n = repr.emit(&mut buf, FcsLen::Two).unwrap();
        assert_eq!(n, repr.buffer_len(FcsLen::Two));
        let f = Frame::new_checked(&buf[..n], FcsLen::Two).unwrap();
        assert_eq!(f.header_len(), 19 + 6 + 2);
        assert_eq!(f.private_payload(), &ies[..]);
        assert_eq!(f.mic().len(), 8);
        assert_eq!(FrameRepr::parse(&f), Err(Error::Encrypted));
        let opts = ParseOptions {
            check_fcs: true,
            unprotected: true,
        };
        assert_eq!(FrameRepr::parse_with(&f, opts).unwrap(), repr);
    }

    #[test]
    fn legacy_versions_and_header_ies_with_raw_payload() {
        let repr = FrameRepr {
            frame_type: FrameType::MacCommand,
            frame_version: FrameVersion::V2006,
            frame_pending: true,
            ack_request: false,
            seq: Some(3),
            dst_pan: Some(PanId(0x1234)),
            dst_addr: Address::Short(ShortAddress(0xffff)),
            src_pan: None,
            src_addr: Address::Short(ShortAddress(0x0001)),
            security: Some(AuxSecurityHeaderRepr {
                level: SecurityLevel::Mic32,
                key_id: KeyIdentifier::Implicit,
                frame_counter: Some(1),
                asn_in_nonce: false,
            }),
            header_ies: &[],
            payload_ies: &[],
            payload_termination: false,
            payload: &[0x04],
        };
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf, FcsLen::Two).unwrap();
        let f = Frame::new_checked(&buf[..n], FcsLen::Two).unwrap();
        assert_eq!(FrameRepr::parse(&f).unwrap(), repr);
        // 2015 frame with header IEs and a raw payload: HT2.
        let repr2 = FrameRepr {
            frame_version: FrameVersion::V2015,
            security: None,
            header_ies: &[0x02, 0x0d, 0xaa, 0xbb],
            payload: &[1, 2, 3],
            ..repr
        };
        let n = repr2.emit(&mut buf, FcsLen::Two).unwrap();
        assert_eq!(&buf[13..15], &ie::HT2);
        let f = Frame::new_checked(&buf[..n], FcsLen::Two).unwrap();
        assert_eq!(f.header_termination(), HeaderTermination::Ht2);
        assert_eq!(FrameRepr::parse(&f).unwrap(), repr2);
        // IEs cannot be sent in a 2006 frame.
        let bad = FrameRepr {
            frame_version: FrameVersion::V2006,
            ..repr2
        };
        assert!(matches!(
            bad.emit(&mut buf, FcsLen::Two),
            Err(Error::VersionMismatch(_))
        ));
    }

    #[test]
    fn other_frame_types_at_header_level() {
        // Imm-Ack (2015, seq only).
        let f = Frame::new_checked(&[0x02, 0x20, 0x07, 0, 0][..], FcsLen::Two).unwrap();
        assert_eq!(f.frame_type(), FrameType::Ack);
        assert_eq!(f.sequence_number(), Some(7));
        // Short multipurpose frame: dst short, src none, seq.
        let f = Frame::new_checked(&[0x25, 0x09, 0x34, 0x12, 0xaa][..], FcsLen::None).unwrap();
        assert_eq!(f.frame_type(), FrameType::Multipurpose);
        assert_eq!(f.sequence_number(), Some(9));
        assert_eq!(f.dst_addr(), Address::Short(ShortAddress(0x1234)));
        assert_eq!(f.private_payload(), &[0xaa]);
        // Long multipurpose: dst ext, src none, PAN ID present, seq suppressed.
        let mut b = vec![0x3d, 0x05, 0xcd, 0xab];
        b.extend_from_slice(&DST.to_air());
        let f = Frame::new_checked(&b[..], FcsLen::None).unwrap();
        assert_eq!(f.sequence_number(), None);
        assert_eq!(f.dst_pan_id(), Some(PanId(0xabcd)));
        assert_eq!(f.dst_addr(), Address::Extended(DST));
        // Fragment and extended frames: the type only.
        assert_eq!(
            Frame::new_checked(&[0x06, 1, 2][..], FcsLen::None)
                .unwrap()
                .frame_type(),
            FrameType::Fragment
        );
        assert_eq!(
            Frame::new_checked(&[0x07][..], FcsLen::None)
                .unwrap()
                .frame_type(),
            FrameType::Extended
        );
        assert_eq!(
            FrameRepr::parse_with(
                &Frame::new_checked(&[0x07][..], FcsLen::None).unwrap(),
                ParseOptions::default()
            ),
            Err(Error::ReservedFrameType)
        );
    }

    #[test]
    fn malformed_frames() {
        let ex1 = bytes("21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4");
        // Every truncation is an error, never a panic.
        for n in 0..ex1.len() {
            let r = Frame::new_checked(&ex1[..n], FcsLen::Two)
                .and_then(|f| FrameRepr::parse(&f).map(|_| ()));
            assert!(r.is_err(), "truncated to {n}");
        }
        // Bad FCS.
        let mut bad = ex1.clone();
        bad[10] ^= 0x40;
        let f = Frame::new_checked(&bad[..], FcsLen::Two).unwrap();
        assert!(!f.fcs_ok());
        assert_eq!(FrameRepr::parse(&f), Err(Error::BadFcs));
        // Reserved frame type, version, addressing mode.
        assert_eq!(
            Frame::new_checked(&[0x04, 0x00, 0, 0, 0][..], FcsLen::Two).err(),
            Some(Error::ReservedFrameType)
        );
        assert_eq!(
            Frame::new_checked(&[0x01, 0x30, 0, 0, 0][..], FcsLen::Two).err(),
            Some(Error::ReservedFrameVersion)
        );
        assert_eq!(
            Frame::new_checked(&[0x01, 0x24, 0, 0, 0][..], FcsLen::Two).err(),
            Some(Error::ReservedAddressingMode)
        );
        // 2003 security.
        assert_eq!(
            Frame::new_checked(&[0x09, 0x00, 0, 0, 0][..], FcsLen::Two).err(),
            Some(Error::UnsupportedLegacySecurity)
        );
        // An IE length running past the end.
        let mut long = ex1.clone();
        long[23] = 0x30;
        let f = Frame::new_checked(&long[..], FcsLen::Two).unwrap();
        assert_eq!(
            FrameRepr::parse_with(
                &f,
                ParseOptions {
                    check_fcs: false,
                    unprotected: false
                }
            ),
            Err(Error::IeLength)
        );
        // MIC longer than what is left.
        let sec = [0x09, 0x20, 0x01, 0x07, 1, 0, 0, 0, 0, 0];
        assert_eq!(
            Frame::new_checked(&sec[..], FcsLen::Two).err(),
            Some(Error::Truncated("MIC"))
        );
    }
}
