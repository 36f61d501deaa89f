//! The EAP packet codec (RFC 3748 §4, §5).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! |     Code      |  Identifier   |            Length             |
//! +---------------+---------------+---------------+---------------+
//! |     Type      |  Type-Data ...                                    (Request, Response)
//! +---------------+---------------+---------------+---------------+
//! |  Type = 254   |                Vendor-Id (3)                  |   (Expanded Types, §5.7)
//! |                        Vendor-Type (4)                        |
//! |  Vendor data ...
//! ```
//!
//! [`Packet::parse`] accepts exactly one packet: Code 1 to 4, Length equal to the buffer
//! (shorter is [`WireError::Truncated`], longer is [`WireError::TrailingData`]), a Type octet
//! in every Request and Response, nothing after the header of Success and Failure, a Legacy Nak
//! with at least one type, an Expanded type with its full Vendor-Id and Vendor-Type. Link
//! layers that pad frames (RFC 3748 §4.1: octets past Length are padding) use
//! [`Packet::parse_padded`]. Parsing never panics on any input.
//!
//! Emission is infallible: [`Packet::emit`] writes [`Packet::buffer_len`] octets. A
//! representation that does not fit the wire (over [`MAX_LEN`] octets, a Vendor-Id over 24 bits,
//! a [`Body::Method`] whose type is one the codec decodes itself: 1, 2, 3 or 254 with the IETF
//! Vendor-Id and Vendor-Type 3) is the caller's error: the output then does not parse back to
//! the same representation. Everything [`Packet::parse`] returns emits to the same octets.

use core::fmt;

/// Length of the Code, Identifier and Length fields.
pub const HEADER_LEN: usize = 4;

/// The largest EAP packet the 16-bit Length field can describe.
pub const MAX_LEN: usize = u16::MAX as usize;

/// Length of the Type, Vendor-Id and Vendor-Type fields of an Expanded Type (RFC 3748 §5.7).
pub const EXPANDED_TYPE_LEN: usize = 8;

/// Why an EAP packet does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the header, or shorter than its Length field says.
    #[error("truncated EAP packet")]
    Truncated,
    /// More octets than the Length field says (the number of extra octets).
    #[error("{0} octets after the EAP packet")]
    TrailingData(usize),
    /// A Length field too small for the Code (Length, Code).
    #[error("EAP Length {0} invalid for code {1}")]
    BadLength(u16, u8),
    /// A Code other than Request, Response, Success and Failure.
    #[error("unknown EAP code {0}")]
    UnknownCode(u8),
    /// A structural error in the type-data; the text names the field.
    #[error("malformed EAP packet: {0}")]
    Malformed(&'static str),
}

/// EAP Code (RFC 3748 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// 1: sent by the authenticator.
    Request = 1,
    /// 2: sent by the peer.
    Response = 2,
    /// 3: authentication succeeded.
    Success = 3,
    /// 4: authentication failed.
    Failure = 4,
}

impl TryFrom<u8> for Code {
    type Error = WireError;

    fn try_from(v: u8) -> Result<Code, WireError> {
        Ok(match v {
            1 => Code::Request,
            2 => Code::Response,
            3 => Code::Success,
            4 => Code::Failure,
            other => return Err(WireError::UnknownCode(other)),
        })
    }
}

/// A one-octet EAP Type (RFC 3748 §5, IANA "Method Types").
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EapType(pub u8);

impl EapType {
    /// 0: in a Legacy Nak, "no alternative method".
    pub const NONE: EapType = EapType(0);
    /// 1: Identity (RFC 3748 §5.1).
    pub const IDENTITY: EapType = EapType(1);
    /// 2: Notification (RFC 3748 §5.2).
    pub const NOTIFICATION: EapType = EapType(2);
    /// 3: Legacy Nak (RFC 3748 §5.3.1), Response only.
    pub const NAK: EapType = EapType(3);
    /// 4: MD5-Challenge (RFC 3748 §5.4).
    pub const MD5_CHALLENGE: EapType = EapType(4);
    /// 13: EAP-TLS (RFC 5216, RFC 9190).
    pub const TLS: EapType = EapType(13);
    /// 47: EAP-PSK (RFC 4764).
    pub const PSK: EapType = EapType(47);
    /// 52: EAP-pwd (RFC 5931).
    pub const PWD: EapType = EapType(52);
    /// 254: Expanded Type (RFC 3748 §5.7).
    pub const EXPANDED: EapType = EapType(254);
    /// 255: Experimental (RFC 3748 §5.8).
    pub const EXPERIMENTAL: EapType = EapType(255);
}

impl fmt::Debug for EapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "None",
            1 => "Identity",
            2 => "Notification",
            3 => "Nak",
            4 => "MD5-Challenge",
            13 => "EAP-TLS",
            47 => "EAP-PSK",
            52 => "EAP-pwd",
            254 => "Expanded",
            255 => "Experimental",
            n => return write!(f, "EapType({n})"),
        };
        f.write_str(name)
    }
}

/// An Expanded Type (RFC 3748 §5.7): a 24-bit SMI Vendor-Id and a 32-bit Vendor-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpandedType {
    vendor_id: u32,
    vendor_type: u32,
}

impl ExpandedType {
    /// The IETF Vendor-Id.
    pub const IETF: u32 = 0;
    /// Vendor-Id 0, Vendor-Type 3: the Expanded Nak (RFC 3748 §5.3.2).
    pub const NAK: ExpandedType = ExpandedType {
        vendor_id: 0,
        vendor_type: 3,
    };

    /// `None` if `vendor_id` does not fit in 24 bits.
    pub const fn new(vendor_id: u32, vendor_type: u32) -> Option<ExpandedType> {
        if vendor_id > 0x00ff_ffff {
            None
        } else {
            Some(ExpandedType {
                vendor_id,
                vendor_type,
            })
        }
    }

    /// The 24-bit Vendor-Id.
    pub const fn vendor_id(self) -> u32 {
        self.vendor_id
    }

    /// The Vendor-Type.
    pub const fn vendor_type(self) -> u32 {
        self.vendor_type
    }

    /// Parses Type (254), Vendor-Id and Vendor-Type from the first 8 octets of `b`.
    fn parse(b: &[u8]) -> Result<ExpandedType, WireError> {
        let Some(f) = b.get(..EXPANDED_TYPE_LEN) else {
            return Err(WireError::Malformed("expanded type"));
        };
        if f[0] != EapType::EXPANDED.0 {
            return Err(WireError::Malformed("expanded type"));
        }
        Ok(ExpandedType {
            vendor_id: u32::from_be_bytes([0, f[1], f[2], f[3]]),
            vendor_type: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
        })
    }

    /// The 8 octets Type (254), Vendor-Id, Vendor-Type.
    pub fn to_bytes(self) -> [u8; EXPANDED_TYPE_LEN] {
        let v = self.vendor_id.to_be_bytes();
        let t = self.vendor_type.to_be_bytes();
        [
            EapType::EXPANDED.0,
            v[1],
            v[2],
            v[3],
            t[0],
            t[1],
            t[2],
            t[3],
        ]
    }
}

/// Which method a Request or Response carries: a legacy one-octet Type or an Expanded Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MethodId {
    /// A Type in 4..=253 or 255 (1, 2, 3 are not methods; 254 is [`MethodId::Expanded`]).
    Legacy(EapType),
    /// An Expanded Type.
    Expanded(ExpandedType),
}

impl MethodId {
    /// Octets of the Type field(s): 1 for legacy types, 8 for expanded ones.
    pub fn type_len(self) -> usize {
        match self {
            MethodId::Legacy(_) => 1,
            MethodId::Expanded(_) => EXPANDED_TYPE_LEN,
        }
    }

    fn emit(self, out: &mut [u8]) {
        match self {
            MethodId::Legacy(t) => out[0] = t.0,
            MethodId::Expanded(e) => out[..EXPANDED_TYPE_LEN].copy_from_slice(&e.to_bytes()),
        }
    }
}

/// The Type and type-data of a Request or Response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body<'a> {
    /// Type 1: in a Request an optional displayable prompt, in a Response the peer's identity.
    Identity(&'a [u8]),
    /// Type 2: in a Request a displayable message, in a Response empty.
    Notification(&'a [u8]),
    /// Type 3 (Response only): the types the peer would accept; [`EapType::NONE`] alone for
    /// "none", [`EapType::EXPANDED`] to ask for an Expanded Nak exchange.
    Nak(Vec<EapType>),
    /// Type 254, Vendor-Id 0, Vendor-Type 3 (Response only): the Expanded Nak, listing the
    /// acceptable methods as Expanded Types (legacy ones with Vendor-Id 0).
    ExpandedNak(Vec<ExpandedType>),
    /// An authentication method and its type-data (after the Type, or after Vendor-Type).
    Method {
        /// The method.
        method: MethodId,
        /// Its type-data.
        data: &'a [u8],
    },
}

impl<'a> Body<'a> {
    fn parse(b: &'a [u8]) -> Result<Body<'a>, WireError> {
        let Some((&t, rest)) = b.split_first() else {
            return Err(WireError::Malformed("missing type"));
        };
        Ok(match EapType(t) {
            EapType::IDENTITY => Body::Identity(rest),
            EapType::NOTIFICATION => Body::Notification(rest),
            EapType::NAK => {
                if rest.is_empty() {
                    return Err(WireError::Malformed("empty Nak"));
                }
                Body::Nak(rest.iter().map(|&t| EapType(t)).collect())
            }
            EapType::EXPANDED => {
                let e = ExpandedType::parse(b)?;
                let data = &b[EXPANDED_TYPE_LEN..];
                if e == ExpandedType::NAK {
                    if data.is_empty() || !data.len().is_multiple_of(EXPANDED_TYPE_LEN) {
                        return Err(WireError::Malformed("expanded Nak"));
                    }
                    Body::ExpandedNak(
                        data.chunks_exact(EXPANDED_TYPE_LEN)
                            .map(ExpandedType::parse)
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    Body::Method {
                        method: MethodId::Expanded(e),
                        data,
                    }
                }
            }
            legacy => Body::Method {
                method: MethodId::Legacy(legacy),
                data: rest,
            },
        })
    }

    /// Length of the Type field(s) and type-data.
    pub fn buffer_len(&self) -> usize {
        match self {
            Body::Identity(d) | Body::Notification(d) => 1 + d.len(),
            Body::Nak(l) => 1 + l.len(),
            Body::ExpandedNak(l) => EXPANDED_TYPE_LEN * (1 + l.len()),
            Body::Method { method, data } => method.type_len() + data.len(),
        }
    }

    /// The method carried, as it would be listed in a Nak: `None` for Identity and
    /// Notification, the Nak types for the Naks.
    pub fn method(&self) -> Option<MethodId> {
        match self {
            Body::Method { method, .. } => Some(*method),
            Body::Nak(_) => Some(MethodId::Legacy(EapType::NAK)),
            Body::ExpandedNak(_) => Some(MethodId::Expanded(ExpandedType::NAK)),
            Body::Identity(_) | Body::Notification(_) => None,
        }
    }

    fn emit(&self, out: &mut [u8]) {
        match self {
            Body::Identity(d) | Body::Notification(d) => {
                out[0] = if matches!(self, Body::Identity(_)) {
                    EapType::IDENTITY.0
                } else {
                    EapType::NOTIFICATION.0
                };
                out[1..1 + d.len()].copy_from_slice(d);
            }
            Body::Nak(l) => {
                out[0] = EapType::NAK.0;
                for (o, t) in out[1..].iter_mut().zip(l) {
                    *o = t.0;
                }
            }
            Body::ExpandedNak(l) => {
                for (chunk, e) in out
                    .chunks_exact_mut(EXPANDED_TYPE_LEN)
                    .zip(core::iter::once(&ExpandedType::NAK).chain(l))
                {
                    chunk.copy_from_slice(&e.to_bytes());
                }
            }
            Body::Method { method, data } => {
                method.emit(out);
                let n = method.type_len();
                out[n..n + data.len()].copy_from_slice(data);
            }
        }
    }
}

/// One EAP packet (RFC 3748 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet<'a> {
    /// Code 1.
    Request {
        /// Identifier.
        identifier: u8,
        /// Type and type-data.
        body: Body<'a>,
    },
    /// Code 2.
    Response {
        /// Identifier (that of the Request answered).
        identifier: u8,
        /// Type and type-data.
        body: Body<'a>,
    },
    /// Code 3.
    Success {
        /// Identifier (that of the last Response).
        identifier: u8,
    },
    /// Code 4.
    Failure {
        /// Identifier (that of the last Response).
        identifier: u8,
    },
}

impl<'a> Packet<'a> {
    /// Parses exactly one packet filling `b` (see the module documentation).
    pub fn parse(b: &'a [u8]) -> Result<Packet<'a>, WireError> {
        let len = usize::from(declared_len(b)?);
        if b.len() > len {
            return Err(WireError::TrailingData(b.len() - len));
        }
        Self::parse_padded(b)
    }

    /// Parses a packet at the start of `b` and ignores octets past its Length (link-layer
    /// padding, RFC 3748 §4.1).
    pub fn parse_padded(b: &'a [u8]) -> Result<Packet<'a>, WireError> {
        let raw_len = declared_len(b)?;
        let len = usize::from(raw_len);
        let b = &b[..len];
        let identifier = b[1];
        let code = Code::try_from(b[0])?;
        let bad_len = || WireError::BadLength(raw_len, b[0]);
        Ok(match code {
            Code::Request | Code::Response => {
                if len <= HEADER_LEN {
                    return Err(bad_len());
                }
                let body = Body::parse(&b[HEADER_LEN..])?;
                if code == Code::Request {
                    Packet::Request { identifier, body }
                } else {
                    Packet::Response { identifier, body }
                }
            }
            Code::Success | Code::Failure => {
                if len != HEADER_LEN {
                    return Err(bad_len());
                }
                if code == Code::Success {
                    Packet::Success { identifier }
                } else {
                    Packet::Failure { identifier }
                }
            }
        })
    }

    /// The Code.
    pub fn code(&self) -> Code {
        match self {
            Packet::Request { .. } => Code::Request,
            Packet::Response { .. } => Code::Response,
            Packet::Success { .. } => Code::Success,
            Packet::Failure { .. } => Code::Failure,
        }
    }

    /// The Identifier.
    pub fn identifier(&self) -> u8 {
        match self {
            Packet::Request { identifier, .. }
            | Packet::Response { identifier, .. }
            | Packet::Success { identifier }
            | Packet::Failure { identifier } => *identifier,
        }
    }

    /// Type and type-data of a Request or Response.
    pub fn body(&self) -> Option<&Body<'a>> {
        match self {
            Packet::Request { body, .. } | Packet::Response { body, .. } => Some(body),
            Packet::Success { .. } | Packet::Failure { .. } => None,
        }
    }

    /// Length of the whole packet, the value of the Length field.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body().map_or(0, Body::buffer_len)
    }

    /// Writes the packet into the first [`Packet::buffer_len`] octets of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than [`Packet::buffer_len`].
    pub fn emit(&self, out: &mut [u8]) {
        let len = self.buffer_len();
        out[..HEADER_LEN].copy_from_slice(&header(self.code(), self.identifier(), len));
        if let Some(body) = self.body() {
            body.emit(&mut out[HEADER_LEN..len]);
        }
    }

    /// The packet as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

/// Code, Identifier and Length for a packet of `len` octets (saturating at [`MAX_LEN`]).
///
/// Methods whose integrity check covers the EAP header (EAP-PSK's PCHANNEL) build it with this.
pub fn header(code: Code, identifier: u8, len: usize) -> [u8; HEADER_LEN] {
    let l = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    [code as u8, identifier, l[0], l[1]]
}

/// The Length field, checked against the buffer.
fn declared_len(b: &[u8]) -> Result<u16, WireError> {
    let Some(h) = b.get(..HEADER_LEN) else {
        return Err(WireError::Truncated);
    };
    let len = u16::from_be_bytes([h[2], h[3]]);
    if usize::from(len) < HEADER_LEN {
        return Err(WireError::BadLength(len, h[0]));
    }
    if usize::from(len) > b.len() {
        return Err(WireError::Truncated);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn identity_request_and_response() {
        let req = h("0101000501");
        assert_eq!(
            Packet::parse(&req),
            Ok(Packet::Request {
                identifier: 1,
                body: Body::Identity(b"")
            })
        );
        let resp = [h("0201000a01"), b"alice".to_vec()].concat();
        let p = Packet::parse(&resp).unwrap();
        assert_eq!(
            p,
            Packet::Response {
                identifier: 1,
                body: Body::Identity(b"alice")
            }
        );
        assert_eq!(p.to_vec(), resp);
    }

    #[test]
    fn success_failure_nak_expanded() {
        assert_eq!(
            Packet::parse(&h("03070004")),
            Ok(Packet::Success { identifier: 7 })
        );
        assert_eq!(
            Packet::parse(&h("04080004")),
            Ok(Packet::Failure { identifier: 8 })
        );
        let nak = h("020200070300fe");
        let p = Packet::parse(&nak).unwrap();
        assert_eq!(
            p.body(),
            Some(&Body::Nak(vec![EapType::NONE, EapType::EXPANDED]))
        );
        assert_eq!(p.to_vec(), nak);
        // Expanded Nak listing EAP-PSK (IETF) and a vendor method (Vendor-Id 0x00137f, type 1).
        let xnak = h("0203001cfe00000000000003fe0000000000002ffe00137f00000001");
        let p = Packet::parse(&xnak).unwrap();
        assert_eq!(
            p.body(),
            Some(&Body::ExpandedNak(vec![
                ExpandedType::new(0, 47).unwrap(),
                ExpandedType::new(0x13_7f, 1).unwrap()
            ]))
        );
        assert_eq!(p.to_vec(), xnak);
        let vendor = h("0104000efe00137f00000001abcd");
        let p = Packet::parse(&vendor).unwrap();
        assert_eq!(
            p.body(),
            Some(&Body::Method {
                method: MethodId::Expanded(ExpandedType::new(0x13_7f, 1).unwrap()),
                data: &[0xab, 0xcd]
            })
        );
        assert_eq!(p.to_vec(), vendor);
        assert_eq!(ExpandedType::new(0x0100_0000, 1), None);
    }

    #[test]
    fn negative() {
        assert_eq!(Packet::parse(&[]), Err(WireError::Truncated));
        assert_eq!(Packet::parse(&h("010100")), Err(WireError::Truncated));
        assert_eq!(Packet::parse(&h("0101000601")), Err(WireError::Truncated));
        assert_eq!(
            Packet::parse(&h("030100040000")),
            Err(WireError::TrailingData(2))
        );
        assert_eq!(
            Packet::parse_padded(&h("030100040000")),
            Ok(Packet::Success { identifier: 1 })
        );
        assert_eq!(
            Packet::parse(&h("05010004")),
            Err(WireError::UnknownCode(5))
        );
        assert_eq!(
            Packet::parse(&h("00010004")),
            Err(WireError::UnknownCode(0))
        );
        assert_eq!(
            Packet::parse(&h("01010003")),
            Err(WireError::BadLength(3, 1))
        );
        assert_eq!(
            Packet::parse(&h("01010004")),
            Err(WireError::BadLength(4, 1))
        );
        assert_eq!(
            Packet::parse(&h("0301000500")),
            Err(WireError::BadLength(5, 3))
        );
        assert_eq!(
            Packet::parse(&h("0201000503")),
            Err(WireError::Malformed("empty Nak"))
        );
        assert_eq!(
            Packet::parse(&h("01010008fe000000")),
            Err(WireError::Malformed("expanded type"))
        );
        assert_eq!(
            Packet::parse(&h("0201000dfe0000000000000301")),
            Err(WireError::Malformed("expanded Nak"))
        );
        assert_eq!(
            Packet::parse(&h("02010014fe00000000000003fd00000000000001")),
            Err(WireError::Malformed("expanded type"))
        );
    }

    #[test]
    fn header_saturates() {
        assert_eq!(header(Code::Request, 9, 70_000), [1, 9, 0xff, 0xff]);
        assert_eq!(header(Code::Response, 9, 5), [2, 9, 0, 5]);
    }

    fn method_id() -> impl Strategy<Value = MethodId> {
        prop_oneof![
            (4u8..=253).prop_map(|t| MethodId::Legacy(EapType(t))),
            Just(MethodId::Legacy(EapType::EXPERIMENTAL)),
            (0u32..=0xff_ffff, any::<u32>())
                .prop_filter("not the expanded Nak", |&(v, t)| (v, t) != (0, 3))
                .prop_map(|(v, t)| MethodId::Expanded(ExpandedType {
                    vendor_id: v,
                    vendor_type: t
                })),
        ]
    }

    fn expanded() -> impl Strategy<Value = ExpandedType> {
        (0u32..=0xff_ffff, any::<u32>()).prop_map(|(v, t)| ExpandedType {
            vendor_id: v,
            vendor_type: t,
        })
    }

    proptest! {
        #[test]
        fn round_trip(
            code in 1u8..=4,
            identifier: u8,
            kind in 0u8..5,
            data in proptest::collection::vec(any::<u8>(), 0..300),
            naks in proptest::collection::vec(any::<u8>(), 1..20),
            xnaks in proptest::collection::vec(expanded(), 1..10),
            method in method_id(),
        ) {
            let body = match kind {
                0 => Body::Identity(&data),
                1 => Body::Notification(&data),
                2 => Body::Nak(naks.iter().map(|&t| EapType(t)).collect()),
                3 => Body::ExpandedNak(xnaks.clone()),
                _ => Body::Method { method, data: &data },
            };
            let p = match code {
                1 => Packet::Request { identifier, body },
                2 => Packet::Response { identifier, body },
                3 => Packet::Success { identifier },
                _ => Packet::Failure { identifier },
            };
            let bytes = p.to_vec();
            prop_assert_eq!(bytes.len(), p.buffer_len());
            prop_assert_eq!(Packet::parse(&bytes), Ok(p));
        }

        #[test]
        fn parse_never_panics_and_reemits(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::parse(&bytes) {
                prop_assert_eq!(p.to_vec(), bytes);
            }
        }
    }
}
