//! EAPOL (IEEE 802.1X-2020 clause 11): the packet codec.
//!
//! Over IEEE 802.15.9 an EAPOL PDU travels bare after the KMP ID octet (no Ethernet header, no
//! padding to a minimum frame size; mpx-wire-format.md §5), so [`EapolPacket::new_checked`] is
//! strict: the header's Packet Body Length must account for every octet after the header.
//!
//! ```text
//! 0        1        2                 4
//! +--------+--------+--------+--------+---------------------
//! |version |  type  |  body length    |  body …
//! +--------+--------+--------+--------+---------------------
//! ```
//!
//! Bodies of EAP-Packet, Start, ASF alert, MKA and the announcements stay opaque here (the EAP
//! and MKA code parse them). The EAPOL-Key body with descriptor type 2 (the IEEE 802.11 RSN key
//! descriptor, 802.11-2020 12.7.2) is decoded by [`KeyFrame`] / [`KeyDescriptor`], and its Key
//! Data by [`Kde`] / [`KdeIter`].
//!
//! The structure follows the zero-copy view + `Repr` pattern: [`EapolPacket`] and [`KeyFrame`]
//! are views over a buffer whose lengths were checked once; [`EapolRepr`] and [`KeyDescriptor`]
//! are the parsed forms with `parse`, `buffer_len` and `emit`. After `new_checked` no accessor
//! panics; `emit` never panics into a buffer of `buffer_len()` octets.

use core::fmt;

/// Octets of the EAPOL header (Protocol Version, Packet Type, Packet Body Length).
pub const HEADER_LEN: usize = 4;

/// Octets of the fixed part of the RSN key descriptor body, from Descriptor Type through Key
/// Data Length, with a 16-octet Key MIC.
pub const KEY_DESCRIPTOR_FIXED_LEN: usize = 95;

/// Octets of the Key MIC for descriptor versions 1–3 (HMAC-MD5, HMAC-SHA1-128, AES-128-CMAC) and
/// for the AKMs Wi-SUN uses.
pub const KEY_MIC_LEN: usize = 16;

/// Descriptor Type of the IEEE 802.11 RSN key descriptor (802.1X-2020 Table 11-5).
pub const DESCRIPTOR_TYPE_RSN: u8 = 2;

/// The IEEE 802.11 OUI used by the 802.11 KDEs (00-0F-AC).
pub const OUI_IEEE80211: [u8; 3] = [0x00, 0x0f, 0xac];

/// The Wi-SUN Alliance OUI used by the Wi-SUN KDEs (0C-5A-9E).
pub const OUI_WISUN: [u8; 3] = [0x0c, 0x5a, 0x9e];

/// Type octet of every KDE (the vendor-specific element ID, 0xDD).
pub const KDE_TYPE: u8 = 0xdd;

/// Byte ranges of the header and of the RSN key descriptor (offsets inside the EAPOL body).
mod field {
    use core::ops::Range;

    pub(super) const VERSION: usize = 0;
    pub(super) const PACKET_TYPE: usize = 1;
    pub(super) const BODY_LENGTH: Range<usize> = 2..4;

    pub(super) const DESCRIPTOR_TYPE: usize = 0;
    pub(super) const KEY_INFORMATION: Range<usize> = 1..3;
    pub(super) const KEY_LENGTH: Range<usize> = 3..5;
    pub(super) const REPLAY_COUNTER: Range<usize> = 5..13;
    pub(super) const KEY_NONCE: Range<usize> = 13..45;
    pub(super) const KEY_IV: Range<usize> = 45..61;
    pub(super) const KEY_RSC: Range<usize> = 61..69;
    pub(super) const RESERVED: Range<usize> = 69..77;
    pub(super) const KEY_MIC: Range<usize> = 77..93;
    pub(super) const KEY_DATA_LENGTH: Range<usize> = 93..95;
    pub(super) const KEY_DATA: usize = 95;
}

/// Why an EAPOL PDU, an EAPOL-Key body or a KDE list does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Fewer octets than the fixed part of the structure needs.
    Truncated {
        /// Octets the structure needs at least.
        needed: usize,
        /// Octets present.
        got: usize,
    },
    /// A length field disagrees with the octets present (too few or too many).
    LengthMismatch {
        /// What the length field says, in octets.
        declared: usize,
        /// Octets actually present for it.
        actual: usize,
    },
    /// Protocol Version outside 1–3.
    UnsupportedVersion(u8),
    /// Packet Type outside 0–8.
    UnknownPacketType(u8),
    /// An EAPOL-Key Descriptor Type other than 2 (RSN).
    UnknownDescriptorType(u8),
    /// A KDE whose Type octet is not 0xDD or whose Length is below 4 (OUI + data type).
    MalformedKde,
    /// A known KDE whose data has the wrong size.
    KdeLength {
        /// The KDE's data type.
        data_type: u8,
        /// Octets of data present.
        len: usize,
    },
    /// The output buffer is shorter than `buffer_len()`.
    BufferTooSmall,
    /// A field does not fit its length field (Key Data over 65535 octets).
    TooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, got } => {
                write!(f, "truncated: {got} octets, at least {needed} needed")
            }
            Error::LengthMismatch { declared, actual } => {
                write!(f, "length field says {declared} octets, {actual} present")
            }
            Error::UnsupportedVersion(v) => write!(f, "EAPOL protocol version {v} not in 1..=3"),
            Error::UnknownPacketType(t) => write!(f, "unknown EAPOL packet type {t}"),
            Error::UnknownDescriptorType(t) => write!(f, "unknown EAPOL-Key descriptor type {t}"),
            Error::MalformedKde => f.write_str("malformed KDE"),
            Error::KdeLength { data_type, len } => {
                write!(f, "KDE data type {data_type} with {len} octets of data")
            }
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::TooLong => f.write_str("field too long for its length field"),
        }
    }
}

impl core::error::Error for Error {}

/// EAPOL Protocol Version (802.1X-2020 11.3.1): 1 (802.1X-2001), 2 (-2004), 3 (-2010 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// 1: IEEE 802.1X-2001.
    V2001,
    /// 2: IEEE 802.1X-2004.
    V2004,
    /// 3: IEEE 802.1X-2010 and 802.1X-2020 (what Wi-SUN sends).
    V2010,
}

impl ProtocolVersion {
    /// From the octet.
    pub const fn from_u8(v: u8) -> Result<ProtocolVersion, Error> {
        match v {
            1 => Ok(ProtocolVersion::V2001),
            2 => Ok(ProtocolVersion::V2004),
            3 => Ok(ProtocolVersion::V2010),
            other => Err(Error::UnsupportedVersion(other)),
        }
    }

    /// The octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            ProtocolVersion::V2001 => 1,
            ProtocolVersion::V2004 => 2,
            ProtocolVersion::V2010 => 3,
        }
    }
}

/// EAPOL Packet Type (802.1X-2020 Table 11-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 0: EAPOL-EAP.
    EapPacket,
    /// 1: EAPOL-Start.
    Start,
    /// 2: EAPOL-Logoff.
    Logoff,
    /// 3: EAPOL-Key.
    Key,
    /// 4: EAPOL-Encapsulated-ASF-Alert.
    AsfAlert,
    /// 5: EAPOL-MKA.
    Mka,
    /// 6: EAPOL-Announcement (Generic).
    AnnouncementGeneric,
    /// 7: EAPOL-Announcement (Specific).
    AnnouncementSpecific,
    /// 8: EAPOL-Announcement-Req.
    AnnouncementReq,
}

impl PacketType {
    /// From the octet.
    pub const fn from_u8(v: u8) -> Result<PacketType, Error> {
        Ok(match v {
            0 => PacketType::EapPacket,
            1 => PacketType::Start,
            2 => PacketType::Logoff,
            3 => PacketType::Key,
            4 => PacketType::AsfAlert,
            5 => PacketType::Mka,
            6 => PacketType::AnnouncementGeneric,
            7 => PacketType::AnnouncementSpecific,
            8 => PacketType::AnnouncementReq,
            other => return Err(Error::UnknownPacketType(other)),
        })
    }

    /// The octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            PacketType::EapPacket => 0,
            PacketType::Start => 1,
            PacketType::Logoff => 2,
            PacketType::Key => 3,
            PacketType::AsfAlert => 4,
            PacketType::Mka => 5,
            PacketType::AnnouncementGeneric => 6,
            PacketType::AnnouncementSpecific => 7,
            PacketType::AnnouncementReq => 8,
        }
    }
}

/// A read-only (or read-write) view of one EAPOL PDU whose header was checked.
#[derive(Debug, Clone)]
pub struct EapolPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EapolPacket<T> {
    /// Wraps `buffer` without checks; call [`EapolPacket::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> EapolPacket<T> {
        EapolPacket { buffer }
    }

    /// Wraps `buffer` and checks the header: version 1–3, a known packet type, and a body length
    /// equal to the octets after the header.
    pub fn new_checked(buffer: T) -> Result<EapolPacket<T>, Error> {
        let p = EapolPacket::new_unchecked(buffer);
        p.check_len()?;
        ProtocolVersion::from_u8(p.buffer.as_ref()[field::VERSION])?;
        PacketType::from_u8(p.buffer.as_ref()[field::PACKET_TYPE])?;
        Ok(p)
    }

    /// Checks that the buffer holds the header and exactly the body its length field declares.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                got: b.len(),
            });
        }
        let declared = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let actual = b.len() - HEADER_LEN;
        if declared != actual {
            return Err(Error::LengthMismatch { declared, actual });
        }
        Ok(())
    }

    /// Protocol Version.
    pub fn version(&self) -> Result<ProtocolVersion, Error> {
        ProtocolVersion::from_u8(self.buffer.as_ref()[field::VERSION])
    }

    /// Packet Type.
    pub fn packet_type(&self) -> Result<PacketType, Error> {
        PacketType::from_u8(self.buffer.as_ref()[field::PACKET_TYPE])
    }

    /// Packet Body Length.
    pub fn body_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::BODY_LENGTH.start], b[field::BODY_LENGTH.start + 1]])
    }

    /// The Packet Body.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The whole PDU.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The parsed form of one EAPOL PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapolRepr<'a> {
    /// Protocol Version.
    pub version: ProtocolVersion,
    /// The body, by packet type.
    pub body: EapolBody<'a>,
}

/// The body of an EAPOL PDU, by packet type. Only EAPOL-Key is decoded here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EapolBody<'a> {
    /// 0: an EAP packet (RFC 3748), opaque here.
    EapPacket(&'a [u8]),
    /// 1: EAPOL-Start; 802.1X-2010 allows TLVs in the body, kept opaque (usually empty).
    Start(&'a [u8]),
    /// 2: EAPOL-Logoff (empty body; any octets kept for a faithful round trip).
    Logoff(&'a [u8]),
    /// 3: EAPOL-Key with the RSN key descriptor.
    Key(KeyDescriptor<'a>),
    /// 4: an encapsulated ASF alert, opaque.
    AsfAlert(&'a [u8]),
    /// 5: an MKPDU, opaque here (parsed by [`crate::mka`]).
    Mka(&'a [u8]),
    /// 6: a generic announcement, opaque.
    AnnouncementGeneric(&'a [u8]),
    /// 7: a specific announcement, opaque.
    AnnouncementSpecific(&'a [u8]),
    /// 8: an announcement request, opaque.
    AnnouncementReq(&'a [u8]),
}

impl EapolBody<'_> {
    /// The packet type of this body.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            EapolBody::EapPacket(_) => PacketType::EapPacket,
            EapolBody::Start(_) => PacketType::Start,
            EapolBody::Logoff(_) => PacketType::Logoff,
            EapolBody::Key(_) => PacketType::Key,
            EapolBody::AsfAlert(_) => PacketType::AsfAlert,
            EapolBody::Mka(_) => PacketType::Mka,
            EapolBody::AnnouncementGeneric(_) => PacketType::AnnouncementGeneric,
            EapolBody::AnnouncementSpecific(_) => PacketType::AnnouncementSpecific,
            EapolBody::AnnouncementReq(_) => PacketType::AnnouncementReq,
        }
    }

    fn len(&self) -> usize {
        match self {
            EapolBody::Key(k) => k.buffer_len(),
            EapolBody::EapPacket(b)
            | EapolBody::Start(b)
            | EapolBody::Logoff(b)
            | EapolBody::AsfAlert(b)
            | EapolBody::Mka(b)
            | EapolBody::AnnouncementGeneric(b)
            | EapolBody::AnnouncementSpecific(b)
            | EapolBody::AnnouncementReq(b) => b.len(),
        }
    }
}

impl<'a> EapolRepr<'a> {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &EapolPacket<&'a T>) -> Result<Self, Error> {
        Self::parse_bytes(T::as_ref(packet.buffer))
    }

    /// Checks and parses one whole EAPOL PDU.
    pub fn parse_bytes(pdu: &'a [u8]) -> Result<EapolRepr<'a>, Error> {
        let p = EapolPacket::new_checked(pdu)?;
        let version = p.version()?;
        let body = &pdu[HEADER_LEN..];
        let body = match p.packet_type()? {
            PacketType::EapPacket => EapolBody::EapPacket(body),
            PacketType::Start => EapolBody::Start(body),
            PacketType::Logoff => EapolBody::Logoff(body),
            PacketType::Key => EapolBody::Key(KeyDescriptor::parse_body(body)?),
            PacketType::AsfAlert => EapolBody::AsfAlert(body),
            PacketType::Mka => EapolBody::Mka(body),
            PacketType::AnnouncementGeneric => EapolBody::AnnouncementGeneric(body),
            PacketType::AnnouncementSpecific => EapolBody::AnnouncementSpecific(body),
            PacketType::AnnouncementReq => EapolBody::AnnouncementReq(body),
        };
        Ok(EapolRepr { version, body })
    }

    /// Octets [`EapolRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Writes the PDU into the first [`EapolRepr::buffer_len`] octets of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let body_len = u16::try_from(self.body.len()).map_err(|_| Error::TooLong)?;
        buf[field::VERSION] = self.version.to_u8();
        buf[field::PACKET_TYPE] = self.body.packet_type().to_u8();
        buf[field::BODY_LENGTH].copy_from_slice(&body_len.to_be_bytes());
        let out = &mut buf[HEADER_LEN..len];
        match &self.body {
            EapolBody::Key(k) => k.emit_body(out)?,
            EapolBody::EapPacket(b)
            | EapolBody::Start(b)
            | EapolBody::Logoff(b)
            | EapolBody::AsfAlert(b)
            | EapolBody::Mka(b)
            | EapolBody::AnnouncementGeneric(b)
            | EapolBody::AnnouncementSpecific(b)
            | EapolBody::AnnouncementReq(b) => out.copy_from_slice(b),
        }
        Ok(())
    }

    /// The PDU as a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

/// The Key Information field of the RSN key descriptor (802.11-2020 Figure 12-33), kept as
/// its 16 bits so that reserved bits survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyInformation(pub u16);

impl KeyInformation {
    /// Bits 0–2: Key Descriptor Version.
    pub const VERSION_MASK: u16 = 0x0007;
    /// Bit 3: Key Type (1 = pairwise, 0 = group).
    pub const KEY_TYPE: u16 = 1 << 3;
    /// Bit 6: Install.
    pub const INSTALL: u16 = 1 << 6;
    /// Bit 7: Key Ack.
    pub const KEY_ACK: u16 = 1 << 7;
    /// Bit 8: Key MIC.
    pub const KEY_MIC: u16 = 1 << 8;
    /// Bit 9: Secure.
    pub const SECURE: u16 = 1 << 9;
    /// Bit 10: Error.
    pub const ERROR: u16 = 1 << 10;
    /// Bit 11: Request.
    pub const REQUEST: u16 = 1 << 11;
    /// Bit 12: Encrypted Key Data.
    pub const ENCRYPTED_KEY_DATA: u16 = 1 << 12;
    /// Bit 13: SMK Message.
    pub const SMK_MESSAGE: u16 = 1 << 13;

    /// Key Descriptor Version (bits 0–2).
    pub const fn descriptor_version(self) -> u8 {
        // The mask keeps three bits: the cast cannot lose anything.
        (self.0 & Self::VERSION_MASK) as u8
    }

    /// The same field with Key Descriptor Version `v` (taken modulo 8).
    pub const fn with_descriptor_version(self, v: u8) -> KeyInformation {
        KeyInformation((self.0 & !Self::VERSION_MASK) | (v as u16 & Self::VERSION_MASK))
    }

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }

    /// The same field with the bits of `mask` set (`on`) or cleared.
    pub const fn with(self, mask: u16, on: bool) -> KeyInformation {
        if on {
            KeyInformation(self.0 | mask)
        } else {
            KeyInformation(self.0 & !mask)
        }
    }

    /// Key Type: pairwise (true) or group (false).
    pub const fn pairwise(self) -> bool {
        self.has(Self::KEY_TYPE)
    }
    /// Install.
    pub const fn install(self) -> bool {
        self.has(Self::INSTALL)
    }
    /// Key Ack.
    pub const fn ack(self) -> bool {
        self.has(Self::KEY_ACK)
    }
    /// Key MIC.
    pub const fn mic(self) -> bool {
        self.has(Self::KEY_MIC)
    }
    /// Secure.
    pub const fn secure(self) -> bool {
        self.has(Self::SECURE)
    }
    /// Error.
    pub const fn error(self) -> bool {
        self.has(Self::ERROR)
    }
    /// Request.
    pub const fn request(self) -> bool {
        self.has(Self::REQUEST)
    }
    /// Encrypted Key Data.
    pub const fn encrypted_key_data(self) -> bool {
        self.has(Self::ENCRYPTED_KEY_DATA)
    }
    /// SMK Message.
    pub const fn smk_message(self) -> bool {
        self.has(Self::SMK_MESSAGE)
    }
}

impl fmt::Debug for KeyInformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyInformation(0x{:04x}: v{}",
            self.0,
            self.descriptor_version()
        )?;
        for (bit, name) in [
            (Self::KEY_TYPE, "pairwise"),
            (Self::INSTALL, "install"),
            (Self::KEY_ACK, "ack"),
            (Self::KEY_MIC, "mic"),
            (Self::SECURE, "secure"),
            (Self::ERROR, "error"),
            (Self::REQUEST, "request"),
            (Self::ENCRYPTED_KEY_DATA, "encrypted"),
            (Self::SMK_MESSAGE, "smk"),
        ] {
            if self.has(bit) {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// A view of an EAPOL-Key body (RSN key descriptor) whose lengths were checked.
#[derive(Debug, Clone)]
pub struct KeyFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> KeyFrame<T> {
    /// Wraps an EAPOL-Key *body* (the octets after the EAPOL header) and checks the descriptor
    /// type, the fixed part and that Key Data Length matches the rest exactly.
    pub fn new_checked(body: T) -> Result<KeyFrame<T>, Error> {
        let k = KeyFrame { buffer: body };
        let b = k.buffer.as_ref();
        if b.len() < KEY_DESCRIPTOR_FIXED_LEN {
            return Err(Error::Truncated {
                needed: KEY_DESCRIPTOR_FIXED_LEN,
                got: b.len(),
            });
        }
        if b[field::DESCRIPTOR_TYPE] != DESCRIPTOR_TYPE_RSN {
            return Err(Error::UnknownDescriptorType(b[field::DESCRIPTOR_TYPE]));
        }
        let declared = usize::from(k.key_data_length());
        let actual = b.len() - KEY_DESCRIPTOR_FIXED_LEN;
        if declared != actual {
            return Err(Error::LengthMismatch { declared, actual });
        }
        Ok(k)
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }

    fn array<const N: usize>(&self, r: core::ops::Range<usize>) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        a
    }

    /// Key Information.
    pub fn key_information(&self) -> KeyInformation {
        KeyInformation(self.u16_at(field::KEY_INFORMATION))
    }
    /// Key Length.
    pub fn key_length(&self) -> u16 {
        self.u16_at(field::KEY_LENGTH)
    }
    /// Key Replay Counter (big-endian).
    pub fn replay_counter(&self) -> u64 {
        u64::from_be_bytes(self.array(field::REPLAY_COUNTER))
    }
    /// Key Nonce.
    pub fn key_nonce(&self) -> [u8; 32] {
        self.array(field::KEY_NONCE)
    }
    /// EAPOL-Key IV.
    pub fn key_iv(&self) -> [u8; 16] {
        self.array(field::KEY_IV)
    }
    /// Key RSC.
    pub fn key_rsc(&self) -> [u8; 8] {
        self.array(field::KEY_RSC)
    }
    /// The reserved octets (Key ID in older editions).
    pub fn reserved(&self) -> [u8; 8] {
        self.array(field::RESERVED)
    }
    /// Key MIC.
    pub fn key_mic(&self) -> [u8; KEY_MIC_LEN] {
        self.array(field::KEY_MIC)
    }
    /// Key Data Length.
    pub fn key_data_length(&self) -> u16 {
        self.u16_at(field::KEY_DATA_LENGTH)
    }
    /// Key Data.
    pub fn key_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::KEY_DATA..]
    }
}

/// The parsed RSN key descriptor (802.11-2020 12.7.2, Figure 12-32) with a 16-octet Key MIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescriptor<'a> {
    /// Key Information.
    pub key_information: KeyInformation,
    /// Key Length (length of the pairwise temporal key; 0 where 802.11 says so).
    pub key_length: u16,
    /// Key Replay Counter.
    pub replay_counter: u64,
    /// Key Nonce (ANonce, SNonce, or zero).
    pub key_nonce: [u8; 32],
    /// EAPOL-Key IV (zero for descriptor versions 2 and 3).
    pub key_iv: [u8; 16],
    /// Key RSC.
    pub key_rsc: [u8; 8],
    /// Reserved (zero on send; kept as received).
    pub reserved: [u8; 8],
    /// Key MIC (zero when the Key MIC bit is clear, and while the MIC is being computed).
    pub key_mic: [u8; KEY_MIC_LEN],
    /// Key Data (plain KDEs, or AES-key-wrapped KDEs when Encrypted Key Data is set).
    pub key_data: &'a [u8],
}

impl<'a> KeyDescriptor<'a> {
    /// A descriptor with the given information bits and everything else zero or empty.
    pub const fn new(key_information: KeyInformation) -> KeyDescriptor<'a> {
        KeyDescriptor {
            key_information,
            key_length: 0,
            replay_counter: 0,
            key_nonce: [0; 32],
            key_iv: [0; 16],
            key_rsc: [0; 8],
            reserved: [0; 8],
            key_mic: [0; KEY_MIC_LEN],
            key_data: &[],
        }
    }

    /// Parses an EAPOL-Key body.
    pub fn parse_body(body: &'a [u8]) -> Result<KeyDescriptor<'a>, Error> {
        let k = KeyFrame::new_checked(body)?;
        Ok(KeyDescriptor {
            key_information: k.key_information(),
            key_length: k.key_length(),
            replay_counter: k.replay_counter(),
            key_nonce: k.key_nonce(),
            key_iv: k.key_iv(),
            key_rsc: k.key_rsc(),
            reserved: k.reserved(),
            key_mic: k.key_mic(),
            key_data: &body[field::KEY_DATA..],
        })
    }

    /// Parses a whole EAPOL PDU that must be an EAPOL-Key frame; returns its version too.
    pub fn parse_pdu(pdu: &'a [u8]) -> Result<(ProtocolVersion, KeyDescriptor<'a>), Error> {
        let p = EapolPacket::new_checked(pdu)?;
        match p.packet_type()? {
            PacketType::Key => Ok((p.version()?, KeyDescriptor::parse_body(&pdu[HEADER_LEN..])?)),
            other => Err(Error::UnknownPacketType(other.to_u8())),
        }
    }

    /// Octets of the body [`KeyDescriptor::emit_body`] writes.
    pub fn buffer_len(&self) -> usize {
        KEY_DESCRIPTOR_FIXED_LEN + self.key_data.len()
    }

    /// Writes the EAPOL-Key body into the first [`KeyDescriptor::buffer_len`] octets of `buf`.
    pub fn emit_body(&self, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        let kdl = u16::try_from(self.key_data.len()).map_err(|_| Error::TooLong)?;
        buf[field::DESCRIPTOR_TYPE] = DESCRIPTOR_TYPE_RSN;
        buf[field::KEY_INFORMATION].copy_from_slice(&self.key_information.0.to_be_bytes());
        buf[field::KEY_LENGTH].copy_from_slice(&self.key_length.to_be_bytes());
        buf[field::REPLAY_COUNTER].copy_from_slice(&self.replay_counter.to_be_bytes());
        buf[field::KEY_NONCE].copy_from_slice(&self.key_nonce);
        buf[field::KEY_IV].copy_from_slice(&self.key_iv);
        buf[field::KEY_RSC].copy_from_slice(&self.key_rsc);
        buf[field::RESERVED].copy_from_slice(&self.reserved);
        buf[field::KEY_MIC].copy_from_slice(&self.key_mic);
        buf[field::KEY_DATA_LENGTH].copy_from_slice(&kdl.to_be_bytes());
        buf[field::KEY_DATA..self.buffer_len()].copy_from_slice(self.key_data);
        Ok(())
    }

    /// The whole EAPOL-Key PDU (header included) with protocol version `version`.
    pub fn to_pdu(&self, version: ProtocolVersion) -> Result<Vec<u8>, Error> {
        EapolRepr {
            version,
            body: EapolBody::Key(self.clone()),
        }
        .to_vec()
    }
}

/// The range of the Key MIC inside a whole EAPOL-Key PDU (header included): the MIC is
/// computed over the PDU with these octets zero (802.11-2020 12.7.2 h).
pub const KEY_MIC_RANGE_IN_PDU: core::ops::Range<usize> =
    HEADER_LEN + field::KEY_MIC.start..HEADER_LEN + field::KEY_MIC.end;

/// A copy of a whole EAPOL-Key PDU with its Key MIC field zeroed, ready for the MIC
/// computation; `None` when the PDU is too short to hold a MIC.
pub fn zero_mic(pdu: &[u8]) -> Option<Vec<u8>> {
    let mut v = pdu.to_vec();
    v.get_mut(KEY_MIC_RANGE_IN_PDU)?.fill(0);
    Some(v)
}

/// The GTK KDE's content (802.11-2020 Figure 12-40): Key ID, Tx, and the GTK.
#[derive(Clone, PartialEq, Eq)]
pub struct GtkKde<'a> {
    /// Key ID (0–3).
    pub key_id: u8,
    /// Tx: the authenticator transmits with this GTK.
    pub tx: bool,
    /// The GTK.
    pub gtk: &'a [u8],
}

impl fmt::Debug for GtkKde<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GtkKde")
            .field("key_id", &self.key_id)
            .field("tx", &self.tx)
            .field("gtk_len", &self.gtk.len())
            .finish()
    }
}

/// One Key Data Cryptographic Encapsulation (802.11-2020 12.7.2, Table 12-9) or, when the Type
/// octet is not 0xDD, another element (an RSNE, 0x30) kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kde<'a> {
    /// 00-0F-AC:1, GTK.
    Gtk(GtkKde<'a>),
    /// 00-0F-AC:4, PMKID (16 octets).
    Pmkid([u8; 16]),
    /// 00-0F-AC:7, Key Lifetime in seconds (4 octets, big-endian).
    Lifetime(u32),
    /// Wi-SUN 0C-5A-9E:1, PTKID (16 octets; Wi-SUN FAN 6.5.2.2).
    WisunPtkid([u8; 16]),
    /// Wi-SUN 0C-5A-9E:2, GTK liveness: bit n set = the GTK with key ID n is live.
    WisunGtkl(u8),
    /// Wi-SUN 0C-5A-9E:3, Node Role (0 border router, 1 router, 2 LFN).
    WisunNodeRole(u8),
    /// Wi-SUN 0C-5A-9E:4, LGTK liveness (FAN 1.1).
    WisunLgtkl(u8),
    /// Wi-SUN 0C-5A-9E:5, LGTK (FAN 1.1; the layout of the GTK KDE).
    WisunLgtk(GtkKde<'a>),
    /// Any other KDE, opaque.
    Other {
        /// OUI.
        oui: [u8; 3],
        /// Data Type.
        data_type: u8,
        /// Data.
        data: &'a [u8],
    },
    /// An element that is not a KDE (Type octet other than 0xDD), opaque.
    Element {
        /// Element ID.
        id: u8,
        /// Element content.
        data: &'a [u8],
    },
}

/// 802.11 KDE data types under 00-0F-AC.
mod kde_type {
    pub(super) const GTK: u8 = 1;
    pub(super) const PMKID: u8 = 4;
    pub(super) const LIFETIME: u8 = 7;
    pub(super) const WISUN_PTKID: u8 = 1;
    pub(super) const WISUN_GTKL: u8 = 2;
    pub(super) const WISUN_NR: u8 = 3;
    pub(super) const WISUN_LGTKL: u8 = 4;
    pub(super) const WISUN_LGTK: u8 = 5;
}

fn parse_gtk(data_type: u8, data: &[u8]) -> Result<GtkKde<'_>, Error> {
    // Key ID / Tx octet, a reserved octet, then a GTK of 5..=32 octets (WEP-40 up to GCMP-256).
    if data.len() < 2 + 5 || data.len() > 2 + 32 {
        return Err(Error::KdeLength {
            data_type,
            len: data.len(),
        });
    }
    Ok(GtkKde {
        key_id: data[0] & 0x03,
        tx: data[0] & 0x04 != 0,
        gtk: &data[2..],
    })
}

fn fixed<const N: usize>(data_type: u8, data: &[u8]) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(data).map_err(|_| Error::KdeLength {
        data_type,
        len: data.len(),
    })
}

impl<'a> Kde<'a> {
    fn from_parts(oui: [u8; 3], data_type: u8, data: &'a [u8]) -> Result<Kde<'a>, Error> {
        Ok(match (oui, data_type) {
            (OUI_IEEE80211, kde_type::GTK) => Kde::Gtk(parse_gtk(data_type, data)?),
            (OUI_IEEE80211, kde_type::PMKID) => Kde::Pmkid(fixed(data_type, data)?),
            (OUI_IEEE80211, kde_type::LIFETIME) => {
                Kde::Lifetime(u32::from_be_bytes(fixed(data_type, data)?))
            }
            (OUI_WISUN, kde_type::WISUN_PTKID) => Kde::WisunPtkid(fixed(data_type, data)?),
            (OUI_WISUN, kde_type::WISUN_GTKL) => Kde::WisunGtkl(fixed::<1>(data_type, data)?[0]),
            (OUI_WISUN, kde_type::WISUN_NR) => Kde::WisunNodeRole(fixed::<1>(data_type, data)?[0]),
            (OUI_WISUN, kde_type::WISUN_LGTKL) => Kde::WisunLgtkl(fixed::<1>(data_type, data)?[0]),
            (OUI_WISUN, kde_type::WISUN_LGTK) => Kde::WisunLgtk(parse_gtk(data_type, data)?),
            _ => Kde::Other {
                oui,
                data_type,
                data,
            },
        })
    }

    fn oui_type(&self) -> Option<([u8; 3], u8)> {
        Some(match self {
            Kde::Gtk(_) => (OUI_IEEE80211, kde_type::GTK),
            Kde::Pmkid(_) => (OUI_IEEE80211, kde_type::PMKID),
            Kde::Lifetime(_) => (OUI_IEEE80211, kde_type::LIFETIME),
            Kde::WisunPtkid(_) => (OUI_WISUN, kde_type::WISUN_PTKID),
            Kde::WisunGtkl(_) => (OUI_WISUN, kde_type::WISUN_GTKL),
            Kde::WisunNodeRole(_) => (OUI_WISUN, kde_type::WISUN_NR),
            Kde::WisunLgtkl(_) => (OUI_WISUN, kde_type::WISUN_LGTKL),
            Kde::WisunLgtk(_) => (OUI_WISUN, kde_type::WISUN_LGTK),
            Kde::Other { oui, data_type, .. } => (*oui, *data_type),
            Kde::Element { .. } => return None,
        })
    }

    fn data_len(&self) -> usize {
        match self {
            Kde::Gtk(g) | Kde::WisunLgtk(g) => 2 + g.gtk.len(),
            Kde::Pmkid(_) | Kde::WisunPtkid(_) => 16,
            Kde::Lifetime(_) => 4,
            Kde::WisunGtkl(_) | Kde::WisunNodeRole(_) | Kde::WisunLgtkl(_) => 1,
            Kde::Other { data, .. } | Kde::Element { data, .. } => data.len(),
        }
    }

    /// Octets [`Kde::emit`] writes (Type, Length and content).
    pub fn buffer_len(&self) -> usize {
        match self {
            Kde::Element { data, .. } => 2 + data.len(),
            other => 2 + 4 + other.data_len(),
        }
    }

    /// Writes the KDE into the first [`Kde::buffer_len`] octets of `buf`. A GTK KDE's Key ID
    /// above 3 is refused, as is content over 255 octets.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let body_len = u8::try_from(len - 2).map_err(|_| Error::TooLong)?;
        let data = match self.oui_type() {
            Some((oui, data_type)) => {
                buf[0] = KDE_TYPE;
                buf[1] = body_len;
                buf[2..5].copy_from_slice(&oui);
                buf[5] = data_type;
                &mut buf[6..len]
            }
            None => {
                let Kde::Element { id, .. } = self else {
                    return Err(Error::MalformedKde);
                };
                buf[0] = *id;
                buf[1] = body_len;
                &mut buf[2..len]
            }
        };
        match self {
            Kde::Gtk(g) | Kde::WisunLgtk(g) => {
                if g.key_id > 3 {
                    return Err(Error::KdeLength {
                        data_type: kde_type::GTK,
                        len: data.len(),
                    });
                }
                data[0] = g.key_id | if g.tx { 0x04 } else { 0 };
                data[1] = 0;
                data[2..].copy_from_slice(g.gtk);
            }
            Kde::Pmkid(v) | Kde::WisunPtkid(v) => data.copy_from_slice(v),
            Kde::Lifetime(s) => data.copy_from_slice(&s.to_be_bytes()),
            Kde::WisunGtkl(v) | Kde::WisunNodeRole(v) | Kde::WisunLgtkl(v) => data[0] = *v,
            Kde::Other { data: d, .. } | Kde::Element { data: d, .. } => data.copy_from_slice(d),
        }
        Ok(())
    }

    /// Encodes `kdes` one after the other.
    pub fn emit_all(kdes: &[Kde<'_>]) -> Result<Vec<u8>, Error> {
        let mut v = vec![0u8; kdes.iter().map(Kde::buffer_len).sum()];
        let mut at = 0;
        for k in kdes {
            let n = k.buffer_len();
            k.emit(&mut v[at..at + n])?;
            at += n;
        }
        Ok(v)
    }

    /// Parses a whole Key Data field (plaintext) into KDEs.
    pub fn parse_all(key_data: &'a [u8]) -> Result<Vec<Kde<'a>>, Error> {
        KdeIter::new(key_data).collect()
    }
}

/// Iterates over the KDEs of a plaintext Key Data field. Decrypted key data may end in the
/// 802.11 padding (0xDD followed by zero octets, 12.7.2 j): iteration stops there. Yields an
/// error once and then stops when an element runs past the end or a KDE is malformed.
#[derive(Debug, Clone)]
pub struct KdeIter<'a> {
    rest: &'a [u8],
}

impl<'a> KdeIter<'a> {
    /// Iterates over `key_data`.
    pub const fn new(key_data: &'a [u8]) -> KdeIter<'a> {
        KdeIter { rest: key_data }
    }
}

impl<'a> Iterator for KdeIter<'a> {
    type Item = Result<Kde<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        // The padding: 0xDD then only zero octets (a lone 0xDD, or 0xDD 0x00 …).
        if rest[0] == KDE_TYPE && rest[1..].iter().all(|&b| b == 0) {
            self.rest = &[];
            return None;
        }
        self.rest = &[];
        if rest.len() < 2 {
            return Some(Err(Error::Truncated {
                needed: 2,
                got: rest.len(),
            }));
        }
        let len = usize::from(rest[1]);
        let Some(content) = rest.get(2..2 + len) else {
            return Some(Err(Error::LengthMismatch {
                declared: len,
                actual: rest.len() - 2,
            }));
        };
        let item = if rest[0] == KDE_TYPE {
            if len < 4 {
                return Some(Err(Error::MalformedKde));
            }
            let oui = [content[0], content[1], content[2]];
            Kde::from_parts(oui, content[3], &content[4..])
        } else {
            Ok(Kde::Element {
                id: rest[0],
                data: content,
            })
        };
        if item.is_ok() {
            self.rest = &rest[2 + len..];
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The EAPOL PDU of mpx-wire-format.md §6 Ex 6 (Wi-SUN 4WH message 1, after the KMP ID).
    const EX6: &str = "0303007502008a00100000000000000001202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000016dd14000fac04a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

    #[test]
    fn decodes_the_wisun_message_1_example() {
        let pdu = hex::decode(EX6).unwrap();
        let r = EapolRepr::parse_bytes(&pdu).unwrap();
        assert_eq!(r.version, ProtocolVersion::V2010);
        let EapolBody::Key(k) = &r.body else {
            panic!("not a key frame: {r:?}")
        };
        assert_eq!(k.key_information.0, 0x008a);
        assert_eq!(k.key_information.descriptor_version(), 2);
        assert!(k.key_information.pairwise() && k.key_information.ack());
        assert!(!k.key_information.mic() && !k.key_information.install());
        assert_eq!(k.key_length, 16);
        assert_eq!(k.replay_counter, 1);
        assert_eq!(k.key_nonce[0], 0x20);
        assert_eq!(k.key_nonce[31], 0x3f);
        let kdes = Kde::parse_all(k.key_data).unwrap();
        let mut pmkid = [0u8; 16];
        for (i, b) in pmkid.iter_mut().enumerate() {
            *b = 0xa0 + u8::try_from(i).unwrap();
        }
        assert_eq!(kdes, vec![Kde::Pmkid(pmkid)]);
        assert_eq!(r.to_vec().unwrap(), pdu);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            EapolRepr::parse_bytes(&[3, 1, 0]),
            Err(Error::Truncated { needed: 4, got: 3 })
        );
        assert_eq!(
            EapolRepr::parse_bytes(&[3, 1, 0, 1]),
            Err(Error::LengthMismatch {
                declared: 1,
                actual: 0
            })
        );
        assert_eq!(
            EapolRepr::parse_bytes(&[3, 1, 0, 0, 0]),
            Err(Error::LengthMismatch {
                declared: 0,
                actual: 1
            })
        );
        assert_eq!(
            EapolRepr::parse_bytes(&[4, 1, 0, 0]),
            Err(Error::UnsupportedVersion(4))
        );
        assert_eq!(
            EapolRepr::parse_bytes(&[0, 1, 0, 0]),
            Err(Error::UnsupportedVersion(0))
        );
        assert_eq!(
            EapolRepr::parse_bytes(&[3, 9, 0, 0]),
            Err(Error::UnknownPacketType(9))
        );
        let start = EapolRepr::parse_bytes(&[1, 1, 0, 0]).unwrap();
        assert_eq!(start.body, EapolBody::Start(&[]));
        assert_eq!(start.version, ProtocolVersion::V2001);
    }

    #[test]
    fn key_body_errors() {
        let pdu = hex::decode(EX6).unwrap();
        let body = &pdu[HEADER_LEN..];
        // One octet short of the fixed part.
        assert!(matches!(
            KeyDescriptor::parse_body(&body[..94]),
            Err(Error::Truncated { needed: 95, .. })
        ));
        // Key data shorter than Key Data Length says.
        assert_eq!(
            KeyDescriptor::parse_body(&body[..body.len() - 1]),
            Err(Error::LengthMismatch {
                declared: 22,
                actual: 21
            })
        );
        // An octet more than Key Data Length says.
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(
            KeyDescriptor::parse_body(&long),
            Err(Error::LengthMismatch {
                declared: 22,
                actual: 23
            })
        );
        // Descriptor type 254 (WPA) is not RSN.
        let mut wpa = body.to_vec();
        wpa[0] = 254;
        assert_eq!(
            KeyDescriptor::parse_body(&wpa),
            Err(Error::UnknownDescriptorType(254))
        );
        // An EAP packet is not a key frame.
        assert_eq!(
            KeyDescriptor::parse_pdu(&[3, 0, 0, 0]),
            Err(Error::UnknownPacketType(0))
        );
    }

    #[test]
    fn mic_range_is_the_key_mic() {
        let mut kd = KeyDescriptor::new(KeyInformation(0x010a));
        kd.key_mic = [0xee; 16];
        let pdu = kd.to_pdu(ProtocolVersion::V2010).unwrap();
        assert_eq!(&pdu[KEY_MIC_RANGE_IN_PDU], &[0xee; 16]);
        let z = zero_mic(&pdu).unwrap();
        assert_eq!(&z[KEY_MIC_RANGE_IN_PDU], &[0; 16]);
        assert_eq!(z.len(), pdu.len());
        assert!(pdu.iter().filter(|&&b| b == 0xee).count() == 16);
        assert_eq!(zero_mic(&pdu[..50]), None);
    }

    #[test]
    fn kdes_and_padding() {
        let gtk = [7u8; 16];
        let kdes = vec![
            Kde::Gtk(GtkKde {
                key_id: 2,
                tx: true,
                gtk: &gtk,
            }),
            Kde::Lifetime(3600),
            Kde::WisunGtkl(0b0101),
            Kde::WisunNodeRole(1),
            Kde::Other {
                oui: [1, 2, 3],
                data_type: 9,
                data: b"xyz",
            },
            Kde::Element {
                id: 0x30,
                data: &[1, 0],
            },
        ];
        let mut enc = Kde::emit_all(&kdes).unwrap();
        assert_eq!(&enc[..8], &[0xdd, 0x16, 0x00, 0x0f, 0xac, 0x01, 0x06, 0x00]);
        assert_eq!(Kde::parse_all(&enc).unwrap(), kdes);
        // Padding after the last KDE is skipped.
        enc.extend_from_slice(&[0xdd, 0, 0, 0]);
        assert_eq!(Kde::parse_all(&enc).unwrap(), kdes);
        enc.push(0xdd);
        assert!(Kde::parse_all(&enc).is_err());
        // A KDE that runs past the end.
        assert!(matches!(
            Kde::parse_all(&[0xdd, 0x14, 0x00, 0x0f, 0xac, 0x04, 1, 2]),
            Err(Error::LengthMismatch { declared: 20, .. })
        ));
        // A PMKID of the wrong size, a KDE without its data type, a short GTK.
        assert_eq!(
            Kde::parse_all(&[0xdd, 0x05, 0x00, 0x0f, 0xac, 0x04, 1]),
            Err(Error::KdeLength {
                data_type: 4,
                len: 1
            })
        );
        assert_eq!(
            Kde::parse_all(&[0xdd, 0x03, 0x00, 0x0f, 0xac]),
            Err(Error::MalformedKde)
        );
        assert!(Kde::parse_all(&[0xdd, 0x07, 0x00, 0x0f, 0xac, 0x01, 0, 0, 1]).is_err());
        // Key ID 4 does not fit the GTK KDE.
        assert!(
            Kde::emit_all(&[Kde::Gtk(GtkKde {
                key_id: 4,
                tx: false,
                gtk: &gtk
            })])
            .is_err()
        );
    }

    #[test]
    fn key_information_bits() {
        let k = KeyInformation::default()
            .with_descriptor_version(2)
            .with(KeyInformation::KEY_TYPE, true)
            .with(KeyInformation::INSTALL, true)
            .with(KeyInformation::KEY_ACK, true)
            .with(KeyInformation::KEY_MIC, true)
            .with(KeyInformation::SECURE, true)
            .with(KeyInformation::ENCRYPTED_KEY_DATA, true);
        // 802.11 4WH message 3 with descriptor version 2.
        assert_eq!(k.0, 0x13ca);
        assert!(!k.error() && !k.request() && !k.smk_message());
        assert_eq!(k.with(KeyInformation::INSTALL, false).0, 0x138a);
        assert_eq!(
            format!("{k:?}"),
            "KeyInformation(0x13ca: v2 pairwise install ack mic secure encrypted)"
        );
    }
}
