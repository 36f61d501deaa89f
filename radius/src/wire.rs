//! The RADIUS packet codec (RFC 2865 §3, §5), EAP-Message and Message-Authenticator
//! (RFC 3579 §3.1, §3.2) and the Microsoft MS-MPPE key attributes (RFC 2548 §2.4.2, §2.4.3).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! |     Code      |  Identifier   |            Length             |
//! +---------------+---------------+---------------+---------------+
//! |                     Authenticator (16)                        |
//! +---------------+---------------+---------------+---------------+
//! |     Type      |    Length     |  Value (Length - 2) ...          (each attribute)
//! ```
//!
//! [`Packet::new_checked`] checks the header: at least 20 octets, Length within 20..=4096 and not
//! past the datagram (octets after Length are padding and ignored, RFC 2865 §3). [`Repr::parse`]
//! checks every attribute: the chain ends exactly at Length, each value has the length its type
//! allows (integers and addresses exactly 4, Message-Authenticator exactly 16, text and strings
//! 1..=253, EAP-Message 0..=253), EAP-Message attributes are consecutive (RFC 3579 §3.1), there is at most one
//! Message-Authenticator, and Microsoft Vendor-Specific attributes consist of well-formed
//! sub-attributes. It never panics, on any input.
//!
//! [`Repr::emit`] is infallible into a buffer of [`Repr::buffer_len`] octets; values longer than
//! 253 octets are cut to 253 and the Length field saturates, so such a representation does not
//! parse back. [`Repr::to_bytes`] checks the limits first. Everything [`Repr::parse`] returns
//! emits to a packet that parses back to an equal representation.
//!
//! The cryptographic checks work on the packet octets, not on the representation:
//! [`response_authenticator`], [`sign_request`], [`sign_response`] and
//! [`verify_message_authenticator`]. Secrets are never empty (RFC 2865 §3); callers check that.

use std::net::Ipv4Addr;

use kmp_api::crypto::hmac::{MD5_LEN, hmac_md5_parts, md5_parts};
use kmp_api::crypto::{CryptoError, SecretBytes, ct_eq};
use zeroize::Zeroize;

/// The fixed header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet (RFC 2865 §3).
pub const MAX_LEN: usize = 4096;
/// Octets of the Request and Response Authenticators.
pub const AUTHENTICATOR_LEN: usize = 16;
/// The longest attribute value (Length is one octet and counts Type and Length).
pub const MAX_VALUE_LEN: usize = 253;
/// The Message-Authenticator value length (RFC 3579 §3.2).
pub const MESSAGE_AUTHENTICATOR_LEN: usize = 16;
/// The Microsoft SMI Network Management Private Enterprise Code (RFC 2548 §2).
pub const VENDOR_MICROSOFT: u32 = 311;
/// MS-MPPE-Send-Key vendor type (RFC 2548 §2.4.2).
pub const MS_MPPE_SEND_KEY: u8 = 16;
/// MS-MPPE-Recv-Key vendor type (RFC 2548 §2.4.3).
pub const MS_MPPE_RECV_KEY: u8 = 17;
/// The longest MS-MPPE key that fits one Vendor-Specific attribute: 253 octets minus the
/// Vendor-Id (4), vendor type and length (2) and Salt (2) leave 245, so 15 blocks of 16 of
/// which the key length octet takes one.
pub const MAX_MPPE_KEY_LEN: usize = 239;

mod field {
    use core::ops::Range;
    pub(super) const CODE: usize = 0;
    pub(super) const IDENTIFIER: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const AUTHENTICATOR: Range<usize> = 4..20;
}

/// Attribute types this crate reads or writes (RFC 2865 §5, RFC 3579 §3).
pub mod attr {
    /// User-Name (RFC 2865 §5.1).
    pub const USER_NAME: u8 = 1;
    /// NAS-IP-Address (RFC 2865 §5.4).
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// Framed-MTU (RFC 2865 §5.12).
    pub const FRAMED_MTU: u8 = 12;
    /// State (RFC 2865 §5.24).
    pub const STATE: u8 = 24;
    /// Class (RFC 2865 §5.25).
    pub const CLASS: u8 = 25;
    /// Vendor-Specific (RFC 2865 §5.26).
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout (RFC 2865 §5.27).
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Termination-Action (RFC 2865 §5.29).
    pub const TERMINATION_ACTION: u8 = 29;
    /// Called-Station-Id (RFC 2865 §5.30).
    pub const CALLED_STATION_ID: u8 = 30;
    /// Calling-Station-Id (RFC 2865 §5.31).
    pub const CALLING_STATION_ID: u8 = 31;
    /// NAS-Identifier (RFC 2865 §5.32).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// EAP-Message (RFC 3579 §3.1).
    pub const EAP_MESSAGE: u8 = 79;
    /// Message-Authenticator (RFC 3579 §3.2).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// Why a RADIUS packet does not parse, cannot be built, or fails a cryptographic check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer octets than the 20-octet header.
    #[error("truncated RADIUS packet: {0} octets")]
    Truncated(usize),
    /// The Length field is under 20, over 4096 or past the end of the datagram.
    #[error("RADIUS Length {length} invalid for a {datagram}-octet datagram")]
    BadLength {
        /// The Length field.
        length: u16,
        /// Octets received.
        datagram: usize,
    },
    /// A Code this codec does not know.
    #[error("unknown RADIUS code {0}")]
    UnknownCode(u8),
    /// An attribute header (Type, Length) does not fit before the packet's Length, or its
    /// Length is under 2 or runs past the packet's Length.
    #[error("attribute at offset {offset} has invalid length")]
    BadAttributeLength {
        /// Offset of the attribute in the packet.
        offset: usize,
    },
    /// A value of a length its type does not allow.
    #[error("attribute {attr_type} has a {len}-octet value")]
    BadValueLength {
        /// The attribute type.
        attr_type: u8,
        /// The value length.
        len: usize,
    },
    /// EAP-Message attributes separated by other attributes (RFC 3579 §3.1).
    #[error("EAP-Message attributes are not consecutive")]
    EapMessageNotConsecutive,
    /// More than one Message-Authenticator.
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// No Message-Authenticator where one is required (RFC 3579 §3.2; BlastRADIUS).
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not verify.
    #[error("Message-Authenticator does not verify")]
    BadMessageAuthenticator,
    /// The Response Authenticator does not verify (RFC 2865 §3).
    #[error("Response Authenticator does not verify")]
    BadResponseAuthenticator,
    /// A Microsoft Vendor-Specific attribute whose sub-attributes do not parse.
    #[error("malformed sub-attributes in a Vendor-Specific attribute of vendor {0}")]
    BadVendorAttribute(u32),
    /// An MS-MPPE key's Salt without its most significant bit set (RFC 2548 §2.4.2).
    #[error("MS-MPPE key salt without its high bit")]
    MppeSalt,
    /// An MS-MPPE key whose encrypted part is empty or not a multiple of 16 octets.
    #[error("MS-MPPE key ciphertext of {0} octets")]
    MppeCiphertextLength(usize),
    /// The decrypted key length octet does not match the ciphertext (the key would not fit,
    /// or more than one block of padding follows it).
    #[error("MS-MPPE key length {key_len} for {ciphertext_len} octets of ciphertext")]
    MppeKeyLength {
        /// The decrypted Key-Length octet.
        key_len: usize,
        /// Octets of ciphertext.
        ciphertext_len: usize,
    },
    /// Non-zero padding after a decrypted MS-MPPE key.
    #[error("MS-MPPE key padding is not zero")]
    MppePadding,
    /// The packet would exceed 4096 octets.
    #[error("RADIUS packet of {0} octets exceeds 4096")]
    TooLong(usize),
    /// A value over 253 octets (or an MS-MPPE key over [`MAX_MPPE_KEY_LEN`]).
    #[error("attribute {attr_type} value of {len} octets is too long")]
    ValueTooLong {
        /// The attribute type.
        attr_type: u8,
        /// The value length.
        len: usize,
    },
    /// MD5 or HMAC-MD5 failed (OpenSSL without MD5).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The packet Code (RFC 2865 §3, RFC 5997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// Access-Request (1).
    AccessRequest = 1,
    /// Access-Accept (2).
    AccessAccept = 2,
    /// Access-Reject (3).
    AccessReject = 3,
    /// Accounting-Request (4).
    AccountingRequest = 4,
    /// Accounting-Response (5).
    AccountingResponse = 5,
    /// Access-Challenge (11).
    AccessChallenge = 11,
    /// Status-Server (12).
    StatusServer = 12,
    /// Status-Client (13).
    StatusClient = 13,
}

impl TryFrom<u8> for Code {
    type Error = WireError;
    fn try_from(v: u8) -> Result<Code, WireError> {
        Ok(match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            other => return Err(WireError::UnknownCode(other)),
        })
    }
}

/// A zero-copy view of a RADIUS packet. After [`Packet::new_checked`] no accessor panics.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors may panic until [`Packet::check_len`] passes.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` and checks the header ([`Packet::check_len`]).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// At least 20 octets, and a Length within 20..=4096 and within the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated(b.len()));
        }
        let length = u16::from_be_bytes([b[2], b[3]]);
        let l = usize::from(length);
        if !(HEADER_LEN..=MAX_LEN).contains(&l) || l > b.len() {
            return Err(WireError::BadLength {
                length,
                datagram: b.len(),
            });
        }
        Ok(())
    }

    /// The Code octet (not checked against the known codes).
    pub fn code_raw(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The Identifier.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field.
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::LENGTH.start], b[field::LENGTH.start + 1]])
    }

    /// The Authenticator field.
    pub fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        let mut a = [0u8; AUTHENTICATOR_LEN];
        a.copy_from_slice(&self.buffer.as_ref()[field::AUTHENTICATOR]);
        a
    }

    /// The packet without the padding after Length.
    pub fn bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }

    /// The attribute octets (after the header, up to Length).
    pub fn attribute_bytes(&self) -> &[u8] {
        &self.bytes()[HEADER_LEN..]
    }

    /// The attributes in order, as raw (type, value) pairs; stops after the first error.
    pub fn attributes(&self) -> RawAttributes<'_> {
        RawAttributes {
            data: self.attribute_bytes(),
            pos: 0,
            failed: false,
        }
    }
}

/// One attribute as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The Type octet.
    pub attr_type: u8,
    /// The Value.
    pub value: &'a [u8],
    /// Offset of the Type octet in the packet.
    pub offset: usize,
}

/// Iterator over the attributes of a checked packet ([`Packet::attributes`]).
#[derive(Debug, Clone)]
pub struct RawAttributes<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = Result<RawAttribute<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let offset = HEADER_LEN + self.pos;
        let rest = &self.data[self.pos..];
        let len = rest.get(1).map_or(0, |l| usize::from(*l));
        if rest.len() < 2 || len < 2 || len > rest.len() {
            self.failed = true;
            return Some(Err(WireError::BadAttributeLength { offset }));
        }
        self.pos += len;
        Some(Ok(RawAttribute {
            attr_type: rest[0],
            value: &rest[2..len],
            offset,
        }))
    }
}

/// A Vendor-Specific attribute (RFC 2865 §5.26): Vendor-Id and the vendor's octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorSpecific {
    /// The SMI Network Management Private Enterprise Code.
    pub vendor_id: u32,
    /// Everything after the Vendor-Id (for Microsoft: sub-attributes).
    pub data: Vec<u8>,
}

impl VendorSpecific {
    /// The sub-attributes in the format RFC 2865 §5.26 suggests (vendor type, vendor length
    /// counting both, value), as used by Microsoft (RFC 2548 §2); stops after the first error.
    pub fn sub_attributes(&self) -> impl Iterator<Item = Result<(u8, &[u8]), WireError>> {
        let vendor_id = self.vendor_id;
        let mut rest: &[u8] = &self.data;
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || rest.is_empty() {
                return None;
            }
            let len = rest.get(1).map_or(0, |l| usize::from(*l));
            if rest.len() < 2 || len < 2 || len > rest.len() {
                failed = true;
                return Some(Err(WireError::BadVendorAttribute(vendor_id)));
            }
            let (sub, tail) = rest.split_at(len);
            rest = tail;
            Some(Ok((sub[0], &sub[2..])))
        })
    }

    /// A Microsoft Vendor-Specific attribute holding one sub-attribute.
    pub fn microsoft(vendor_type: u8, value: &[u8]) -> VendorSpecific {
        let mut data = Vec::with_capacity(value.len() + 2);
        data.push(vendor_type);
        data.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        data.extend_from_slice(value);
        VendorSpecific {
            vendor_id: VENDOR_MICROSOFT,
            data,
        }
    }
}

/// One attribute. Types this crate knows are decoded and length-checked; others are kept as
/// [`Attribute::Other`] (which [`Repr::parse`] never returns for a known type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// User-Name (1).
    UserName(Vec<u8>),
    /// NAS-IP-Address (4).
    NasIpAddress(Ipv4Addr),
    /// Framed-MTU (12).
    FramedMtu(u32),
    /// State (24).
    State(Vec<u8>),
    /// Class (25).
    Class(Vec<u8>),
    /// Vendor-Specific (26).
    VendorSpecific(VendorSpecific),
    /// Session-Timeout (27), seconds.
    SessionTimeout(u32),
    /// Termination-Action (29): 0 Default, 1 RADIUS-Request.
    TerminationAction(u32),
    /// Called-Station-Id (30).
    CalledStationId(Vec<u8>),
    /// Calling-Station-Id (31).
    CallingStationId(Vec<u8>),
    /// NAS-Identifier (32).
    NasIdentifier(Vec<u8>),
    /// EAP-Message (79): one fragment of an EAP packet; see [`Repr::eap_message`]. A single
    /// empty one is EAP-Start (RFC 3579 §2.1).
    EapMessage(Vec<u8>),
    /// Message-Authenticator (80).
    MessageAuthenticator([u8; MESSAGE_AUTHENTICATOR_LEN]),
    /// Any other type, value unchecked.
    Other {
        /// The Type octet.
        attr_type: u8,
        /// The Value.
        value: Vec<u8>,
    },
}

fn u32_value(attr_type: u8, v: &[u8]) -> Result<u32, WireError> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| WireError::BadValueLength {
            attr_type,
            len: v.len(),
        })
}

fn string_value(attr_type: u8, v: &[u8]) -> Result<Vec<u8>, WireError> {
    if v.is_empty() {
        return Err(WireError::BadValueLength { attr_type, len: 0 });
    }
    Ok(v.to_vec())
}

impl Attribute {
    /// Decodes one raw attribute, checking the value length its type allows.
    pub fn parse(raw: RawAttribute<'_>) -> Result<Attribute, WireError> {
        let (t, v) = (raw.attr_type, raw.value);
        Ok(match t {
            attr::USER_NAME => Attribute::UserName(string_value(t, v)?),
            attr::NAS_IP_ADDRESS => Attribute::NasIpAddress(Ipv4Addr::from(u32_value(t, v)?)),
            attr::FRAMED_MTU => Attribute::FramedMtu(u32_value(t, v)?),
            attr::STATE => Attribute::State(string_value(t, v)?),
            attr::CLASS => Attribute::Class(string_value(t, v)?),
            attr::VENDOR_SPECIFIC => {
                if v.len() < 5 {
                    return Err(WireError::BadValueLength {
                        attr_type: t,
                        len: v.len(),
                    });
                }
                let vsa = VendorSpecific {
                    vendor_id: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    data: v[4..].to_vec(),
                };
                if vsa.vendor_id == VENDOR_MICROSOFT {
                    for sub in vsa.sub_attributes() {
                        sub?;
                    }
                }
                Attribute::VendorSpecific(vsa)
            }
            attr::SESSION_TIMEOUT => Attribute::SessionTimeout(u32_value(t, v)?),
            attr::TERMINATION_ACTION => Attribute::TerminationAction(u32_value(t, v)?),
            attr::CALLED_STATION_ID => Attribute::CalledStationId(string_value(t, v)?),
            attr::CALLING_STATION_ID => Attribute::CallingStationId(string_value(t, v)?),
            attr::NAS_IDENTIFIER => Attribute::NasIdentifier(string_value(t, v)?),
            // An empty value is EAP-Start (RFC 3579 §2.1).
            attr::EAP_MESSAGE => Attribute::EapMessage(v.to_vec()),
            attr::MESSAGE_AUTHENTICATOR => Attribute::MessageAuthenticator(
                <[u8; MESSAGE_AUTHENTICATOR_LEN]>::try_from(v).map_err(|_| {
                    WireError::BadValueLength {
                        attr_type: t,
                        len: v.len(),
                    }
                })?,
            ),
            _ => Attribute::Other {
                attr_type: t,
                value: v.to_vec(),
            },
        })
    }

    /// The Type octet.
    pub fn attr_type(&self) -> u8 {
        match self {
            Attribute::UserName(_) => attr::USER_NAME,
            Attribute::NasIpAddress(_) => attr::NAS_IP_ADDRESS,
            Attribute::FramedMtu(_) => attr::FRAMED_MTU,
            Attribute::State(_) => attr::STATE,
            Attribute::Class(_) => attr::CLASS,
            Attribute::VendorSpecific(_) => attr::VENDOR_SPECIFIC,
            Attribute::SessionTimeout(_) => attr::SESSION_TIMEOUT,
            Attribute::TerminationAction(_) => attr::TERMINATION_ACTION,
            Attribute::CalledStationId(_) => attr::CALLED_STATION_ID,
            Attribute::CallingStationId(_) => attr::CALLING_STATION_ID,
            Attribute::NasIdentifier(_) => attr::NAS_IDENTIFIER,
            Attribute::EapMessage(_) => attr::EAP_MESSAGE,
            Attribute::MessageAuthenticator(_) => attr::MESSAGE_AUTHENTICATOR,
            Attribute::Other { attr_type, .. } => *attr_type,
        }
    }

    /// The value length before any cut to 253 octets.
    fn value_len(&self) -> usize {
        match self {
            Attribute::UserName(v)
            | Attribute::State(v)
            | Attribute::Class(v)
            | Attribute::CalledStationId(v)
            | Attribute::CallingStationId(v)
            | Attribute::NasIdentifier(v)
            | Attribute::EapMessage(v)
            | Attribute::Other { value: v, .. } => v.len(),
            Attribute::VendorSpecific(vsa) => 4 + vsa.data.len(),
            Attribute::NasIpAddress(_)
            | Attribute::FramedMtu(_)
            | Attribute::SessionTimeout(_)
            | Attribute::TerminationAction(_) => 4,
            Attribute::MessageAuthenticator(_) => MESSAGE_AUTHENTICATOR_LEN,
        }
    }

    /// Octets this attribute takes on the wire (Type, Length and the value cut to 253).
    pub fn buffer_len(&self) -> usize {
        2 + self.value_len().min(MAX_VALUE_LEN)
    }

    /// Writes the attribute into `buf[..self.buffer_len()]`; returns the octets written.
    fn emit(&self, buf: &mut [u8]) -> usize {
        let n = self.buffer_len();
        let out = &mut buf[..n];
        out[0] = self.attr_type();
        out[1] = u8::try_from(n).unwrap_or(u8::MAX);
        let value = &mut out[2..];
        let mut put = |src: &[u8]| {
            let k = src.len().min(value.len());
            value[..k].copy_from_slice(&src[..k]);
        };
        match self {
            Attribute::UserName(v)
            | Attribute::State(v)
            | Attribute::Class(v)
            | Attribute::CalledStationId(v)
            | Attribute::CallingStationId(v)
            | Attribute::NasIdentifier(v)
            | Attribute::EapMessage(v)
            | Attribute::Other { value: v, .. } => put(v),
            Attribute::VendorSpecific(vsa) => {
                let mut all = Vec::with_capacity(4 + vsa.data.len());
                all.extend_from_slice(&vsa.vendor_id.to_be_bytes());
                all.extend_from_slice(&vsa.data);
                put(&all);
            }
            Attribute::NasIpAddress(a) => put(&a.octets()),
            Attribute::FramedMtu(x)
            | Attribute::SessionTimeout(x)
            | Attribute::TerminationAction(x) => put(&x.to_be_bytes()),
            Attribute::MessageAuthenticator(m) => put(m),
        }
        n
    }
}

/// A RADIUS packet as values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// The Code.
    pub code: Code,
    /// The Identifier.
    pub identifier: u8,
    /// The Request or Response Authenticator.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// The attributes, in wire order.
    pub attributes: Vec<Attribute>,
}

impl Repr {
    /// Parses a checked packet (see the [module docs](self) for what is checked).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, WireError> {
        let code = Code::try_from(packet.code_raw())?;
        let mut attributes = Vec::new();
        // 0: none seen yet, 1: inside the run, 2: run ended.
        let mut eap_run = 0u8;
        let mut authenticators = 0usize;
        for raw in packet.attributes() {
            let a = Attribute::parse(raw?)?;
            match &a {
                Attribute::EapMessage(_) => {
                    if eap_run == 2 {
                        return Err(WireError::EapMessageNotConsecutive);
                    }
                    eap_run = 1;
                }
                _ if eap_run == 1 => eap_run = 2,
                _ => {}
            }
            if matches!(a, Attribute::MessageAuthenticator(_)) {
                authenticators += 1;
                if authenticators > 1 {
                    return Err(WireError::DuplicateMessageAuthenticator);
                }
            }
            attributes.push(a);
        }
        Ok(Repr {
            code,
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            attributes,
        })
    }

    /// Octets [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(Attribute::buffer_len)
                .sum::<usize>()
    }

    /// Writes the packet into `buf[..self.buffer_len()]` (see the [module docs](self) for
    /// values that do not fit). Panics only if `buf` is shorter than [`Repr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        let total = self.buffer_len();
        buf[field::CODE] = self.code as u8;
        buf[field::IDENTIFIER] = self.identifier;
        buf[field::LENGTH].copy_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        buf[field::AUTHENTICATOR].copy_from_slice(&self.authenticator);
        let mut pos = HEADER_LEN;
        for a in &self.attributes {
            pos += a.emit(&mut buf[pos..]);
        }
    }

    /// The packet octets, after checking that every value fits its Length octet and the packet
    /// fits 4096 octets.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        for a in &self.attributes {
            if a.value_len() > MAX_VALUE_LEN {
                return Err(WireError::ValueTooLong {
                    attr_type: a.attr_type(),
                    len: a.value_len(),
                });
            }
        }
        let n = self.buffer_len();
        if n > MAX_LEN {
            return Err(WireError::TooLong(n));
        }
        let mut buf = vec![0u8; n];
        self.emit(&mut buf);
        Ok(buf)
    }

    /// Appends `eap` as EAP-Message attributes of at most 253 octets each (RFC 3579 §3.1).
    /// An empty `eap` adds nothing.
    pub fn push_eap_message(&mut self, eap: &[u8]) {
        for chunk in eap.chunks(MAX_VALUE_LEN) {
            self.attributes.push(Attribute::EapMessage(chunk.to_vec()));
        }
    }

    /// The EAP packet: all EAP-Message values joined, or `None` if there are none.
    pub fn eap_message(&self) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for a in &self.attributes {
            if let Attribute::EapMessage(v) = a {
                out.get_or_insert_with(Vec::new).extend_from_slice(v);
            }
        }
        out
    }

    /// The first State value.
    pub fn state(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::State(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The sub-attribute values of `vendor_type` in Microsoft Vendor-Specific attributes, in
    /// order (malformed ones cannot come out of [`Repr::parse`] and are skipped here).
    pub fn microsoft_attributes(&self, vendor_type: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::VendorSpecific(v) if v.vendor_id == VENDOR_MICROSOFT => Some(v),
                _ => None,
            })
            .flat_map(|v| v.sub_attributes().filter_map(Result::ok))
            .filter(move |(t, _)| *t == vendor_type)
            .map(|(_, value)| value)
    }
}

/// The packet up to Length, after the header checks.
fn checked(packet: &[u8]) -> Result<&[u8], WireError> {
    let p = Packet::new_checked(packet)?;
    Ok(&packet[..usize::from(p.length())])
}

/// Offset of the Message-Authenticator value in `packet` (checked), `None` if there is none.
/// Fails on a malformed attribute chain, a second Message-Authenticator or one whose value is
/// not 16 octets.
pub fn find_message_authenticator(packet: &[u8]) -> Result<Option<usize>, WireError> {
    let p = Packet::new_checked(packet)?;
    let mut found = None;
    for raw in p.attributes() {
        let raw = raw?;
        if raw.attr_type == attr::MESSAGE_AUTHENTICATOR {
            if raw.value.len() != MESSAGE_AUTHENTICATOR_LEN {
                return Err(WireError::BadValueLength {
                    attr_type: raw.attr_type,
                    len: raw.value.len(),
                });
            }
            if found.is_some() {
                return Err(WireError::DuplicateMessageAuthenticator);
            }
            found = Some(raw.offset + 2);
        }
    }
    Ok(found)
}

/// HMAC-MD5 over the packet with `authenticator` in the Authenticator field and the
/// Message-Authenticator value (at `ma`) zeroed (RFC 3579 §3.2).
fn message_authenticator_at(
    packet: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
    ma: usize,
    secret: &[u8],
) -> Result<[u8; MD5_LEN], WireError> {
    Ok(hmac_md5_parts(
        secret,
        &[
            &packet[..field::AUTHENTICATOR.start],
            authenticator,
            &packet[HEADER_LEN..ma],
            &[0u8; MESSAGE_AUTHENTICATOR_LEN],
            &packet[ma + MESSAGE_AUTHENTICATOR_LEN..],
        ],
    )?)
}

/// Verifies the Message-Authenticator of `packet`, computed with `authenticator` in the
/// Authenticator field: the packet's own for a request, the Request Authenticator for a reply
/// (RFC 3579 §3.2). A packet without one fails with [`WireError::MissingMessageAuthenticator`].
pub fn verify_message_authenticator(
    packet: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<(), WireError> {
    let packet = checked(packet)?;
    let ma = find_message_authenticator(packet)?.ok_or(WireError::MissingMessageAuthenticator)?;
    let expected = message_authenticator_at(packet, authenticator, ma, secret)?;
    if ct_eq(&expected, &packet[ma..ma + MESSAGE_AUTHENTICATOR_LEN]) {
        Ok(())
    } else {
        Err(WireError::BadMessageAuthenticator)
    }
}

/// The Response Authenticator of a reply: MD5(Code ‖ Identifier ‖ Length ‖ Request
/// Authenticator ‖ Attributes ‖ Secret) (RFC 2865 §3).
pub fn response_authenticator(
    packet: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<[u8; AUTHENTICATOR_LEN], WireError> {
    let packet = checked(packet)?;
    Ok(md5_parts(&[
        &packet[..field::AUTHENTICATOR.start],
        request_authenticator,
        &packet[HEADER_LEN..],
        secret,
    ])?)
}

/// Checks a reply's Response Authenticator against `request_authenticator` (constant time).
pub fn verify_response_authenticator(
    packet: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<(), WireError> {
    let expected = response_authenticator(packet, request_authenticator, secret)?;
    if ct_eq(&expected, &packet[field::AUTHENTICATOR]) {
        Ok(())
    } else {
        Err(WireError::BadResponseAuthenticator)
    }
}

/// Fills in the Message-Authenticator of a request whose Request Authenticator is already in
/// place (RFC 3579 §3.2). The packet must contain one Message-Authenticator.
pub fn sign_request(packet: &mut [u8], secret: &[u8]) -> Result<(), WireError> {
    let len = checked(packet)?.len();
    let ma = find_message_authenticator(packet)?.ok_or(WireError::MissingMessageAuthenticator)?;
    let p = &mut packet[..len];
    let mut auth = [0u8; AUTHENTICATOR_LEN];
    auth.copy_from_slice(&p[field::AUTHENTICATOR]);
    let mac = message_authenticator_at(p, &auth, ma, secret)?;
    p[ma..ma + MESSAGE_AUTHENTICATOR_LEN].copy_from_slice(&mac);
    Ok(())
}

/// Signs a reply to the request with `request_authenticator`: the Message-Authenticator (if the
/// packet has one) with the Request Authenticator in the header, then the Response
/// Authenticator over the result (RFC 3579 §3.2, RFC 2865 §3). For test servers and tools.
pub fn sign_response(
    packet: &mut [u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<(), WireError> {
    let len = checked(packet)?.len();
    let ma = find_message_authenticator(packet)?;
    let p = &mut packet[..len];
    if let Some(ma) = ma {
        let mac = message_authenticator_at(p, request_authenticator, ma, secret)?;
        p[ma..ma + MESSAGE_AUTHENTICATOR_LEN].copy_from_slice(&mac);
    }
    let ra = response_authenticator(p, request_authenticator, secret)?;
    p[field::AUTHENTICATOR].copy_from_slice(&ra);
    Ok(())
}

/// The keystream blocks of RFC 2548 §2.4.2: b(1) = MD5(S ‖ R ‖ A), b(i) = MD5(S ‖ c(i-1)).
fn mppe_block(
    secret: &[u8],
    first: bool,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    salt: &[u8; 2],
    prev_c: &[u8],
) -> Result<[u8; MD5_LEN], WireError> {
    Ok(if first {
        md5_parts(&[secret, request_authenticator, salt])?
    } else {
        md5_parts(&[secret, prev_c])?
    })
}

/// Decrypts an MS-MPPE-Send-Key or MS-MPPE-Recv-Key value (Salt ‖ String, RFC 2548 §2.4.2,
/// §2.4.3) with the shared secret and the Request Authenticator of the Access-Request the reply
/// answers. Checks the Salt's high bit, the ciphertext length (a non-zero multiple of 16), that
/// the Key-Length octet fits and is followed by less than one block of zero padding.
pub fn decrypt_mppe_key(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<SecretBytes, WireError> {
    let Some((salt, c)) = value.split_first_chunk::<2>() else {
        return Err(WireError::MppeCiphertextLength(0));
    };
    if salt[0] & 0x80 == 0 {
        return Err(WireError::MppeSalt);
    }
    if c.is_empty() || c.len() % MD5_LEN != 0 {
        return Err(WireError::MppeCiphertextLength(c.len()));
    }
    let mut plain = vec![0u8; c.len()];
    let mut prev: &[u8] = &[];
    for (i, (cb, pb)) in c.chunks(MD5_LEN).zip(plain.chunks_mut(MD5_LEN)).enumerate() {
        let mut b = mppe_block(secret, i == 0, request_authenticator, salt, prev)?;
        for ((p, c), k) in pb.iter_mut().zip(cb).zip(&b) {
            *p = c ^ k;
        }
        b.zeroize();
        prev = cb;
    }
    let plain = SecretBytes::new(plain);
    let p = plain.expose();
    let key_len = usize::from(p[0]);
    // The key length octet and the key, then zero padding to the next multiple of 16.
    if key_len + 1 > p.len() || (key_len + 1).div_ceil(MD5_LEN) * MD5_LEN != p.len() {
        return Err(WireError::MppeKeyLength {
            key_len,
            ciphertext_len: c.len(),
        });
    }
    if p[key_len + 1..].iter().any(|&x| x != 0) {
        return Err(WireError::MppePadding);
    }
    Ok(SecretBytes::from_slice(&p[1..=key_len]))
}

/// What an EAP server behind RADIUS decided about one Access-Request (RFC 3579 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EapServerDecision<'a> {
    /// Access-Challenge with this State.
    Challenge {
        /// The State attribute that names the conversation.
        state: &'a [u8],
    },
    /// Access-Accept; with the 64-octet MSK, MS-MPPE-Recv-Key = MSK[0..32] and
    /// MS-MPPE-Send-Key = MSK[32..64] (RFC 2548 §2.4, decision A1), salted with `salts`.
    Accept {
        /// The MSK, if the method derived one.
        msk: Option<&'a [u8]>,
        /// The salts of the Recv-Key and the Send-Key (unique per key and request).
        salts: [[u8; 2]; 2],
    },
    /// Access-Reject.
    Reject,
}

/// The signed reply of an EAP server behind RADIUS to `request`: the EAP packet (if any) as
/// EAP-Message, State on a challenge, the MS-MPPE keys on an accept, a Message-Authenticator
/// and the Response Authenticator (RFC 3579 §3, RFC 2865 §3). For test servers and tools.
pub fn eap_server_reply(
    request: &Repr,
    secret: &[u8],
    eap: Option<&[u8]>,
    decision: EapServerDecision<'_>,
) -> Result<Vec<u8>, WireError> {
    let code = match decision {
        EapServerDecision::Challenge { .. } => Code::AccessChallenge,
        EapServerDecision::Accept { .. } => Code::AccessAccept,
        EapServerDecision::Reject => Code::AccessReject,
    };
    let mut reply = Repr {
        code,
        identifier: request.identifier,
        authenticator: request.authenticator,
        attributes: Vec::new(),
    };
    if let Some(eap) = eap {
        reply.push_eap_message(eap);
    }
    match decision {
        EapServerDecision::Challenge { state } => {
            reply.attributes.push(Attribute::State(state.to_vec()));
        }
        EapServerDecision::Accept {
            msk: Some(msk),
            salts,
        } => {
            let (recv, send) = msk.split_at(msk.len().min(32));
            for (vendor_type, key, salt) in [
                (MS_MPPE_RECV_KEY, recv, salts[0]),
                (MS_MPPE_SEND_KEY, send, salts[1]),
            ] {
                let value = encrypt_mppe_key(key, salt, secret, &request.authenticator)?;
                reply
                    .attributes
                    .push(Attribute::VendorSpecific(VendorSpecific::microsoft(
                        vendor_type,
                        &value,
                    )));
            }
        }
        EapServerDecision::Accept { msk: None, .. } | EapServerDecision::Reject => {}
    }
    reply.attributes.push(Attribute::MessageAuthenticator(
        [0; MESSAGE_AUTHENTICATOR_LEN],
    ));
    let mut out = reply.to_bytes()?;
    sign_response(&mut out, &request.authenticator, secret)?;
    Ok(out)
}

/// Encrypts `key` as an MS-MPPE-Send-Key or -Recv-Key value (Salt ‖ String, RFC 2548 §2.4.2);
/// the salt's high bit is set here. For test servers and tools.
pub fn encrypt_mppe_key(
    key: &[u8],
    salt: [u8; 2],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, WireError> {
    if key.len() > MAX_MPPE_KEY_LEN {
        return Err(WireError::ValueTooLong {
            attr_type: attr::VENDOR_SPECIFIC,
            len: key.len(),
        });
    }
    let salt = [salt[0] | 0x80, salt[1]];
    let n = (key.len() + 1).div_ceil(MD5_LEN) * MD5_LEN;
    let mut plain = vec![0u8; n];
    plain[0] = u8::try_from(key.len()).unwrap_or(u8::MAX);
    plain[1..=key.len()].copy_from_slice(key);
    let mut out = Vec::with_capacity(2 + n);
    out.extend_from_slice(&salt);
    for (i, pb) in plain.chunks(MD5_LEN).enumerate() {
        let prev_start = out.len() - if i == 0 { 0 } else { MD5_LEN };
        let mut b = mppe_block(
            secret,
            i == 0,
            request_authenticator,
            &salt,
            &out[prev_start..],
        )?;
        out.extend(pb.iter().zip(&b).map(|(p, k)| p ^ k));
        b.zeroize();
    }
    plain.zeroize();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    // RFC 2865 §7.1: Access-Request from NAS 192.168.1.16 for user nemo (shared secret
    // "xyzzy5461"), and its Access-Accept.
    const RFC2865_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
        98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
        04 06 c0 a8 01 10 05 06 00 00 00 03";
    const RFC2865_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
        9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";
    const RFC2865_SECRET: &[u8] = b"xyzzy5461";

    #[test]
    fn rfc2865_access_request_parses_and_round_trips() {
        let bytes = h(RFC2865_REQUEST);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.code, Code::AccessRequest);
        assert_eq!(r.identifier, 0);
        assert_eq!(r.attributes[0], Attribute::UserName(b"nemo".to_vec()));
        assert_eq!(
            r.attributes[2],
            Attribute::NasIpAddress(Ipv4Addr::new(192, 168, 1, 16))
        );
        assert_eq!(
            r.attributes[3],
            Attribute::Other {
                attr_type: 5,
                value: vec![0, 0, 0, 3]
            }
        );
        assert_eq!(r.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn rfc2865_response_authenticator() {
        let req = h(RFC2865_REQUEST);
        let req_auth = Packet::new_checked(&req[..]).unwrap().authenticator();
        let accept = h(RFC2865_ACCEPT);
        verify_response_authenticator(&accept, &req_auth, RFC2865_SECRET).unwrap();
        assert_eq!(
            verify_response_authenticator(&accept, &req_auth, b"xyzzy5462"),
            Err(WireError::BadResponseAuthenticator)
        );
        // Re-signing the same content reproduces the RFC's authenticator.
        let mut again = accept.clone();
        again[4..20].fill(0);
        sign_response(&mut again, &req_auth, RFC2865_SECRET).unwrap();
        assert_eq!(again, accept);
        let r = Repr::parse(&Packet::new_checked(&accept[..]).unwrap()).unwrap();
        assert_eq!(r.code, Code::AccessAccept);
        assert_eq!(r.to_bytes().unwrap(), accept);
    }

    #[test]
    fn header_errors() {
        let bytes = h(RFC2865_REQUEST);
        assert_eq!(
            Packet::new_checked(&bytes[..19]).unwrap_err(),
            WireError::Truncated(19)
        );
        // Length past the datagram.
        assert_eq!(
            Packet::new_checked(&bytes[..0x37]).unwrap_err(),
            WireError::BadLength {
                length: 0x38,
                datagram: 0x37
            }
        );
        let mut b = bytes.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            Packet::new_checked(&b[..]),
            Err(WireError::BadLength { length: 19, .. })
        ));
        let mut big = vec![0u8; 5000];
        big[..bytes.len()].copy_from_slice(&bytes);
        big[2..4].copy_from_slice(&4097u16.to_be_bytes());
        assert!(matches!(
            Packet::new_checked(&big[..]),
            Err(WireError::BadLength { length: 4097, .. })
        ));
        // Padding after Length is ignored.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xff; 7]);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.bytes(), &bytes[..]);
        assert!(Repr::parse(&p).is_ok());
        let mut unknown = bytes.clone();
        unknown[0] = 99;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&unknown[..]).unwrap()),
            Err(WireError::UnknownCode(99))
        );
    }

    fn with_attrs(attrs: &[u8]) -> Vec<u8> {
        let mut b = vec![2, 7, 0, 0];
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(attrs);
        let n = u16::try_from(b.len()).unwrap();
        b[2..4].copy_from_slice(&n.to_be_bytes());
        b
    }

    fn parse(b: &[u8]) -> Result<Repr, WireError> {
        Repr::parse(&Packet::new_checked(b)?)
    }

    #[test]
    fn attribute_errors() {
        // Length 1, Length past the end, a lone type octet.
        assert_eq!(
            parse(&with_attrs(&[1, 1])),
            Err(WireError::BadAttributeLength { offset: 20 })
        );
        assert_eq!(
            parse(&with_attrs(&[1, 3, b'a', 1, 9, b'b'])),
            Err(WireError::BadAttributeLength { offset: 23 })
        );
        assert_eq!(
            parse(&with_attrs(&[1])),
            Err(WireError::BadAttributeLength { offset: 20 })
        );
        // Empty string, short integer, short Message-Authenticator, short Vendor-Specific.
        assert_eq!(
            parse(&with_attrs(&[1, 2])),
            Err(WireError::BadValueLength {
                attr_type: 1,
                len: 0
            })
        );
        assert_eq!(
            parse(&with_attrs(&[27, 5, 0, 0, 1])),
            Err(WireError::BadValueLength {
                attr_type: 27,
                len: 3
            })
        );
        assert_eq!(
            parse(&with_attrs(&[
                80, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ])),
            Err(WireError::BadValueLength {
                attr_type: 80,
                len: 15
            })
        );
        assert_eq!(
            parse(&with_attrs(&[26, 6, 0, 0, 1, 55])),
            Err(WireError::BadValueLength {
                attr_type: 26,
                len: 4
            })
        );
        // A Microsoft sub-attribute running past its VSA.
        assert_eq!(
            parse(&with_attrs(&[26, 9, 0, 0, 1, 55, 16, 4, 0])),
            Err(WireError::BadVendorAttribute(311))
        );
        // Other vendors' octets are not interpreted.
        assert!(parse(&with_attrs(&[26, 9, 0, 0, 1, 56, 16, 4, 0])).is_ok());
        let ma = [80u8, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse(&with_attrs(&[ma, ma].concat())),
            Err(WireError::DuplicateMessageAuthenticator)
        );
        assert_eq!(
            parse(&with_attrs(&[79, 3, 1, 24, 3, 9, 79, 3, 2])),
            Err(WireError::EapMessageNotConsecutive)
        );
    }

    #[test]
    fn eap_message_split_and_join() {
        let eap: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        let mut r = Repr {
            code: Code::AccessRequest,
            identifier: 1,
            authenticator: [7; 16],
            attributes: vec![Attribute::MessageAuthenticator([0; 16])],
        };
        r.push_eap_message(&eap);
        r.attributes.push(Attribute::State(b"s".to_vec()));
        let sizes: Vec<usize> = r
            .attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::EapMessage(v) => Some(v.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [253, 253, 94]);
        let bytes = r.to_bytes().unwrap();
        let back = parse(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.eap_message().unwrap(), eap);
        assert_eq!(back.state(), Some(&b"s"[..]));
    }

    #[test]
    fn emit_limits() {
        let mut r = Repr {
            code: Code::AccessRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![Attribute::UserName(vec![b'u'; 254])],
        };
        assert_eq!(
            r.to_bytes(),
            Err(WireError::ValueTooLong {
                attr_type: 1,
                len: 254
            })
        );
        r.attributes.clear();
        r.push_eap_message(&[0u8; 4100]);
        assert!(matches!(r.to_bytes(), Err(WireError::TooLong(_))));
        // emit still fills a buffer of buffer_len() without panicking.
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf);
        assert!(Packet::new_checked(&buf[..]).is_err());
    }

    #[test]
    fn message_authenticator_request_and_response() {
        let secret = b"testing123";
        let mut req = Repr {
            code: Code::AccessRequest,
            identifier: 9,
            authenticator: [0x42; 16],
            attributes: vec![
                Attribute::MessageAuthenticator([0; 16]),
                Attribute::UserName(b"bob".to_vec()),
            ],
        };
        req.push_eap_message(&[2, 0, 0, 8, 1, b'b', b'o', b'b']);
        let mut bytes = req.to_bytes().unwrap();
        sign_request(&mut bytes, secret).unwrap();
        verify_message_authenticator(&bytes, &[0x42; 16], secret).unwrap();
        // Independent recomputation: HMAC-MD5 over the packet with the value zeroed.
        let mut zeroed = bytes.clone();
        zeroed[22..38].fill(0);
        assert_eq!(
            &bytes[22..38],
            &kmp_api::crypto::hmac::hmac_md5(secret, &zeroed).unwrap()
        );
        assert_eq!(
            verify_message_authenticator(&bytes, &[0x42; 16], b"testing124"),
            Err(WireError::BadMessageAuthenticator)
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            verify_message_authenticator(&flipped, &[0x42; 16], secret),
            Err(WireError::BadMessageAuthenticator)
        );

        let mut resp = Repr {
            code: Code::AccessChallenge,
            identifier: 9,
            authenticator: [0; 16],
            attributes: vec![Attribute::MessageAuthenticator([0; 16])],
        };
        resp.push_eap_message(&[1, 1, 0, 4]);
        let mut rb = resp.to_bytes().unwrap();
        sign_response(&mut rb, &[0x42; 16], secret).unwrap();
        verify_response_authenticator(&rb, &[0x42; 16], secret).unwrap();
        verify_message_authenticator(&rb, &[0x42; 16], secret).unwrap();
        // The Message-Authenticator of a reply uses the Request Authenticator, not its own.
        let own = Packet::new_checked(&rb[..]).unwrap().authenticator();
        assert_eq!(
            verify_message_authenticator(&rb, &own, secret),
            Err(WireError::BadMessageAuthenticator)
        );
        let no_ma = with_attrs(&[79, 6, 1, 1, 0, 4]);
        assert_eq!(
            verify_message_authenticator(&no_ma, &[0x42; 16], secret),
            Err(WireError::MissingMessageAuthenticator)
        );
    }

    #[test]
    fn eap_server_replies_verify_as_the_client_checks_them() {
        let secret = b"testing123";
        let request = Repr {
            code: Code::AccessRequest,
            identifier: 9,
            authenticator: [0x33; 16],
            attributes: Vec::new(),
        };
        let msk: Vec<u8> = (0u8..64).collect();
        let eap = [3u8, 7, 0, 4];
        for (decision, code) in [
            (
                EapServerDecision::Challenge { state: b"st" },
                Code::AccessChallenge,
            ),
            (
                EapServerDecision::Accept {
                    msk: Some(&msk),
                    salts: [[1, 2], [3, 4]],
                },
                Code::AccessAccept,
            ),
            (EapServerDecision::Reject, Code::AccessReject),
        ] {
            let out = eap_server_reply(&request, secret, Some(&eap), decision).unwrap();
            verify_response_authenticator(&out, &request.authenticator, secret).unwrap();
            verify_message_authenticator(&out, &request.authenticator, secret).unwrap();
            let reply = Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap();
            assert_eq!((reply.code, reply.identifier), (code, 9));
            assert_eq!(reply.eap_message().as_deref(), Some(&eap[..]));
            assert_eq!(
                reply.state(),
                (code == Code::AccessChallenge).then_some(&b"st"[..])
            );
            let keys: Vec<Vec<u8>> = [MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY]
                .iter()
                .flat_map(|t| reply.microsoft_attributes(*t).collect::<Vec<_>>())
                .map(|v| {
                    decrypt_mppe_key(v, secret, &request.authenticator)
                        .unwrap()
                        .expose()
                        .to_vec()
                })
                .collect();
            if code == Code::AccessAccept {
                assert_eq!(keys.concat(), msk, "Recv-Key ‖ Send-Key is the MSK");
            } else {
                assert!(keys.is_empty());
            }
            // Another secret: the client refuses it.
            assert!(verify_response_authenticator(&out, &request.authenticator, b"x").is_err());
        }
    }

    #[test]
    fn mppe_round_trip_and_errors() {
        let secret = b"testing123";
        let ra = [0x5a; 16];
        for len in [0usize, 1, 15, 16, 32, 64, MAX_MPPE_KEY_LEN] {
            let key: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 7 % 256).unwrap())
                .collect();
            let enc = encrypt_mppe_key(&key, [0x12, 0x34], secret, &ra).unwrap();
            assert_eq!(enc[0], 0x92);
            assert_eq!((enc.len() - 2) % 16, 0);
            assert_eq!(
                decrypt_mppe_key(&enc, secret, &ra).unwrap().expose(),
                &key[..]
            );
            // Wrong secret or Request Authenticator: the length or padding check fails (or,
            // rarely, a different key comes out; never the right one).
            if let Ok(k) = decrypt_mppe_key(&enc, b"other", &ra) {
                assert_ne!(k.expose(), &key[..]);
            }
        }
        assert_eq!(
            encrypt_mppe_key(&[0; 240], [0, 0], secret, &ra),
            Err(WireError::ValueTooLong {
                attr_type: 26,
                len: 240
            })
        );
        let key = [0xab; 32];
        let enc = encrypt_mppe_key(&key, [0x80, 1], secret, &ra).unwrap();
        let mut no_high = enc.clone();
        no_high[0] = 0x00;
        assert_eq!(
            decrypt_mppe_key(&no_high, secret, &ra).unwrap_err(),
            WireError::MppeSalt
        );
        assert_eq!(
            decrypt_mppe_key(&enc[..enc.len() - 1], secret, &ra).unwrap_err(),
            WireError::MppeCiphertextLength(47)
        );
        assert_eq!(
            decrypt_mppe_key(&enc[..2], secret, &ra).unwrap_err(),
            WireError::MppeCiphertextLength(0)
        );
        assert_eq!(
            decrypt_mppe_key(&enc[..1], secret, &ra).unwrap_err(),
            WireError::MppeCiphertextLength(0)
        );
        // The last block of a 32-octet key holds the length octet's overflow and 15 zero
        // octets; flipping a bit of the last ciphertext octet breaks the padding.
        let mut bad_pad = enc.clone();
        *bad_pad.last_mut().unwrap() ^= 1;
        assert_eq!(
            decrypt_mppe_key(&bad_pad, secret, &ra).unwrap_err(),
            WireError::MppePadding
        );
        // Flipping the first ciphertext octet changes the Key-Length octet.
        let mut bad_len = enc.clone();
        bad_len[2] ^= 0x40;
        assert!(matches!(
            decrypt_mppe_key(&bad_len, secret, &ra).unwrap_err(),
            WireError::MppeKeyLength { key_len: 96, .. }
        ));
        // A 14-octet key followed by a whole extra block of zero padding is refused too.
        let mut plain = [0u8; 32];
        plain[0] = 14;
        plain[1..15].fill(1);
        let salt = [0x80, 2];
        let mut extra = salt.to_vec();
        for (i, pb) in plain.chunks(16).enumerate() {
            let prev = extra[extra.len() - if i == 0 { 0 } else { 16 }..].to_vec();
            let b = mppe_block(secret, i == 0, &ra, &salt, &prev).unwrap();
            extra.extend(pb.iter().zip(&b).map(|(p, k)| p ^ k));
        }
        assert_eq!(
            decrypt_mppe_key(&extra, secret, &ra).unwrap_err(),
            WireError::MppeKeyLength {
                key_len: 14,
                ciphertext_len: 32
            }
        );
        // The same plaintext without the extra block is the key.
        assert_eq!(
            decrypt_mppe_key(&extra[..18], secret, &ra)
                .unwrap()
                .expose(),
            &[1; 14]
        );
        let vsa = VendorSpecific::microsoft(MS_MPPE_RECV_KEY, &enc);
        let r = Repr {
            code: Code::AccessAccept,
            identifier: 0,
            authenticator: [0; 16],
            attributes: vec![Attribute::VendorSpecific(vsa)],
        };
        let back = parse(&r.to_bytes().unwrap()).unwrap();
        let found: Vec<&[u8]> = back.microsoft_attributes(MS_MPPE_RECV_KEY).collect();
        assert_eq!(found, vec![&enc[..]]);
        assert_eq!(back.microsoft_attributes(MS_MPPE_SEND_KEY).count(), 0);
    }

    fn arb_attribute() -> impl proptest::strategy::Strategy<Value = Attribute> {
        use proptest::prelude::*;
        let text = || proptest::collection::vec(any::<u8>(), 1..=253);
        prop_oneof![
            text().prop_map(Attribute::UserName),
            any::<[u8; 4]>().prop_map(|a| Attribute::NasIpAddress(Ipv4Addr::from(a))),
            any::<u32>().prop_map(Attribute::FramedMtu),
            text().prop_map(Attribute::State),
            text().prop_map(Attribute::Class),
            (
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 1..=249)
            )
                .prop_map(|(vendor_id, data)| Attribute::VendorSpecific(
                    VendorSpecific {
                        // Microsoft's sub-attribute format is checked; others are not.
                        vendor_id: if vendor_id == VENDOR_MICROSOFT {
                            0
                        } else {
                            vendor_id
                        },
                        data
                    }
                )),
            proptest::collection::vec(any::<u8>(), 0..=245).prop_map(|v| {
                Attribute::VendorSpecific(VendorSpecific::microsoft(MS_MPPE_SEND_KEY, &v))
            }),
            any::<u32>().prop_map(Attribute::SessionTimeout),
            any::<u32>().prop_map(Attribute::TerminationAction),
            text().prop_map(Attribute::CalledStationId),
            text().prop_map(Attribute::CallingStationId),
            text().prop_map(Attribute::NasIdentifier),
            (
                any::<u8>().prop_filter("unknown type", |t| ![
                    1, 4, 12, 24, 25, 26, 27, 29, 30, 31, 32, 79, 80
                ]
                .contains(t)),
                proptest::collection::vec(any::<u8>(), 0..=253)
            )
                .prop_map(|(attr_type, value)| Attribute::Other { attr_type, value }),
        ]
    }

    proptest::proptest! {
        // Representations built from valid attributes (one Message-Authenticator, one run of
        // EAP-Message) emit and parse back equal; arbitrary octets never panic the parser, and
        // what parses emits to the same octets.
        #[test]
        fn repr_round_trip(
            attrs in proptest::collection::vec(arb_attribute(), 0..12),
            eap in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
            id in proptest::prelude::any::<u8>(),
            auth in proptest::prelude::any::<[u8; 16]>(),
        ) {
            let mut r = Repr {
                code: Code::AccessChallenge,
                identifier: id,
                authenticator: auth,
                attributes: vec![Attribute::MessageAuthenticator(auth)],
            };
            r.attributes.extend(attrs);
            r.push_eap_message(&eap);
            match r.to_bytes() {
                Ok(bytes) => proptest::prop_assert_eq!(parse(&bytes).unwrap(), r),
                Err(e) => proptest::prop_assert!(matches!(e, WireError::TooLong(_))),
            }
        }

        #[test]
        fn arbitrary_octets(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(p) = Packet::new_checked(&data[..]) && let Ok(r) = Repr::parse(&p) {
                proptest::prop_assert_eq!(r.to_bytes().unwrap(), p.bytes());
            }
            let _ = find_message_authenticator(&data);
            let _ = decrypt_mppe_key(&data, b"s", &[0; 16]);
        }
    }
}
