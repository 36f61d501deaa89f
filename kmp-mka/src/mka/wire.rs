//! The MKPDU codec (IEEE 802.1X-2010 §11.11, figures 11-7 to 11-16).
//!
//! ```text
//! EAPOL header:  Protocol Version (3) | Packet Type (5 = MKA) | Packet Body Length (2, BE)
//! Basic set:     MKA Version | Key Server Priority | KS MD MC(2) Len[11:8] | Len[7:0]
//!                SCI (8) | Actor MI (12) | Actor MN (4) | Algorithm Agility (4) | CKN (1..32)
//! Other sets:    Type | type-specific | 4 type-specific bits, Len[11:8] | Len[7:0] | body
//! then           [ICV Indicator set (type 255, Len = 16)] | ICV (16)
//! ```
//!
//! Every set is padded with zeros to a multiple of 4 octets; the length fields count the body
//! without padding. [`Mkpdu::parse`] checks the EAPOL header (type 5, the body length equal to
//! the rest of the datagram, a multiple of 4), that every set lies before the ICV, the body
//! length of every set it decodes, and that no known set appears twice. Sets of a type it does
//! not know are kept as [`UnknownSet`]s: 802.1X-2010 §11.11.3 has receivers ignore parameter
//! sets they do not recognise (so later MKA versions can add sets), and the participant does.
//! Reserved bits are emitted as zero and ignored on receive. Parsing never panics.
//!
//! [`Mkpdu::emit`] writes the sets in type order, then the unknown sets, then the ICV. A
//! representation whose sets do not fit their 12-bit length fields is an error, not a panic.
//! Everything `parse` returns emits to octets that parse back to an equal representation.

use kmp_api::ExtendedAddress;
use kmp_api::crypto::cmac::aes_cmac_parts;
use kmp_api::crypto::{CryptoError, ct_eq};

use super::MkaError;
use super::keys::{Ckn, MAX_CKN_LEN};

/// EAPOL Protocol Version sent in MKPDUs (802.1X-2010).
pub const EAPOL_VERSION: u8 = 3;
/// EAPOL Packet Type of an MKPDU (EAPOL-MKA).
pub const EAPOL_TYPE_MKA: u8 = 5;
/// Octets of the EAPOL header.
pub const EAPOL_HEADER_LEN: usize = 4;
/// Octets of the ICV with the default algorithm agility (AES-CMAC-128).
pub const ICV_LEN: usize = 16;
/// Algorithm Agility of IEEE Std 802.1X-2010 (AES-CMAC ICV, AES-KW, 802.1X KDF).
pub const ALGORITHM_AGILITY_2010: u32 = 0x0080_C201;
/// The PAE group address 01-80-C2-00-00-03 (802.1X-2010 Table 11-1).
pub const PAE_GROUP_ADDRESS: [u8; 6] = [0x01, 0x80, 0xC2, 0x00, 0x00, 0x03];
/// The PAE EtherType.
pub const PAE_ETHERTYPE: u16 = 0x888E;
/// MACsec cipher suite GCM-AES-128 (the default: not carried in a Distributed SAK).
pub const CIPHER_SUITE_GCM_AES_128: u64 = 0x0080_C200_0100_0001;
/// MACsec cipher suite GCM-AES-256.
pub const CIPHER_SUITE_GCM_AES_256: u64 = 0x0080_C200_0100_0002;

/// Octets of a Basic Parameter Set body before the CKN.
const BASIC_FIXED_LEN: usize = 28;
/// Octets of a parameter set header.
const SET_HEADER_LEN: usize = 4;
/// Longest parameter set body (12-bit length).
const MAX_SET_BODY: usize = 0x0FFF;

/// Parameter set types (802.1X-2010 Table 11-7).
pub mod set_type {
    /// Live Peer List.
    pub const LIVE_PEER_LIST: u8 = 1;
    /// Potential Peer List.
    pub const POTENTIAL_PEER_LIST: u8 = 2;
    /// MACsec SAK Use.
    pub const SAK_USE: u8 = 3;
    /// Distributed SAK.
    pub const DISTRIBUTED_SAK: u8 = 4;
    /// Distributed CAK.
    pub const DISTRIBUTED_CAK: u8 = 5;
    /// KMD.
    pub const KMD: u8 = 6;
    /// Announcement.
    pub const ANNOUNCEMENT: u8 = 7;
    /// XPN.
    pub const XPN: u8 = 8;
    /// ICV Indicator.
    pub const ICV_INDICATOR: u8 = 255;
}

/// Why an MKPDU does not parse or cannot be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the EAPOL header or than its Packet Body Length says.
    #[error("truncated MKPDU")]
    Truncated,
    /// The EAPOL Packet Type is not 5.
    #[error("EAPOL packet type {0} is not MKA")]
    NotMka(u8),
    /// Octets after the EAPOL packet body.
    #[error("{0} octets after the EAPOL body")]
    TrailingData(usize),
    /// The EAPOL body is not a multiple of 4 or too short for a Basic Parameter Set and ICV.
    #[error("MKPDU body of {0} octets")]
    BadMkpduLength(usize),
    /// MKA Version 0.
    #[error("MKA version 0")]
    BadVersion,
    /// A parameter set that reaches into the ICV or past the PDU, or a Basic Parameter Set
    /// whose CKN is 0 or over 32 octets (set type, 0 for the Basic set; body length).
    #[error("parameter set {0} has invalid length {1}")]
    BadSetLength(u8, usize),
    /// A known parameter set whose body length its type does not allow (type, length).
    #[error("parameter set {0} has invalid body length {1}")]
    BadSetBody(u8, usize),
    /// A known parameter set type appears twice.
    #[error("parameter set {0} appears twice")]
    DuplicateSet(u8),
    /// An ICV Indicator announcing an ICV length other than 16.
    #[error("unsupported ICV length {0}")]
    UnsupportedIcvLength(usize),
    /// [`Mkpdu::emit`]: a set over 4095 octets or a PDU over 65 535 (set type or 0).
    #[error("parameter set {0} too long to emit")]
    TooLong(u8),
}

/// A Secure Channel Identifier: 6-octet System Identifier and 2-octet Port Identifier
/// (802.1AE §7.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sci(pub [u8; 8]);

impl Sci {
    /// From a MAC address and a port number.
    pub fn new(system: [u8; 6], port: u16) -> Sci {
        let mut s = [0u8; 8];
        s[..6].copy_from_slice(&system);
        s[6..].copy_from_slice(&port.to_be_bytes());
        Sci(s)
    }

    /// The SCI of an 802.15.4 interface: the EUI-48 conventionally paired with its EUI-64
    /// (octets 0–2 and 5–7, which undoes the MAC-48 → EUI-64 mapping that inserts FF-FE) as
    /// the System Identifier, and the two middle octets (3–4) as the Port Identifier.
    ///
    /// It is a permutation of the EUI-64, so SCIs are as unique as EUI-64s (a 6-octet cut
    /// alone collides for EUI-64s not built from a MAC-48, e.g. 00-12-4B-00-xx-…), and the
    /// System Identifier is the MAC address a LAN would know the device by.
    pub fn from_eui64(addr: ExtendedAddress) -> Sci {
        let e = addr.0;
        Sci([e[0], e[1], e[2], e[5], e[6], e[7], e[3], e[4]])
    }

    /// The EUI-64 an SCI made by [`Sci::from_eui64`] comes from.
    pub fn to_eui64(&self) -> ExtendedAddress {
        let s = self.0;
        ExtendedAddress([s[0], s[1], s[2], s[6], s[7], s[3], s[4], s[5]])
    }

    /// The System Identifier (first 6 octets).
    pub fn system_identifier(&self) -> [u8; 6] {
        let mut s = [0u8; 6];
        s.copy_from_slice(&self.0[..6]);
        s
    }
}

/// A Member Identifier (802.1X-2010 §9.4.2): 96 random bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MemberIdentifier(pub [u8; 12]);

/// One entry of a Live or Potential Peer List: a member and the latest MN seen from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerEntry {
    /// The peer's MI.
    pub mi: MemberIdentifier,
    /// The peer's latest Member Number.
    pub mn: u32,
}

/// A two-bit association number (0..=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AssociationNumber(u8);

impl AssociationNumber {
    /// `an` if it is 0..=3.
    pub const fn new(an: u8) -> Option<AssociationNumber> {
        if an <= 3 {
            Some(AssociationNumber(an))
        } else {
            None
        }
    }

    /// The low two bits of `bits`.
    pub const fn from_bits(bits: u8) -> AssociationNumber {
        AssociationNumber(bits & 3)
    }

    /// The value, 0..=3.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The next AN, modulo 4.
    pub const fn next(self) -> AssociationNumber {
        AssociationNumber((self.0 + 1) & 3)
    }
}

/// MACsec Capability (802.1X-2010 §11.11.2, Basic Parameter Set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
pub enum MacsecCapability {
    /// 0: MACsec not implemented.
    NotImplemented,
    /// 1: integrity without confidentiality.
    Integrity,
    /// 2: integrity and confidentiality, offset 0.
    #[default]
    IntegrityConfidentiality,
    /// 3: integrity and confidentiality with offsets 0, 30 and 50.
    IntegrityConfidentialityOffsets,
}

impl MacsecCapability {
    fn from_bits(b: u8) -> MacsecCapability {
        match b & 3 {
            0 => MacsecCapability::NotImplemented,
            1 => MacsecCapability::Integrity,
            2 => MacsecCapability::IntegrityConfidentiality,
            _ => MacsecCapability::IntegrityConfidentialityOffsets,
        }
    }

    fn bits(self) -> u8 {
        match self {
            MacsecCapability::NotImplemented => 0,
            MacsecCapability::Integrity => 1,
            MacsecCapability::IntegrityConfidentiality => 2,
            MacsecCapability::IntegrityConfidentialityOffsets => 3,
        }
    }
}

/// The Basic Parameter Set (802.1X-2010 figure 11-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicParameterSet {
    /// MKA Version Identifier (1 or more).
    pub version: u8,
    /// Key Server Priority: lower is preferred, 0xFF never becomes key server.
    pub key_server_priority: u8,
    /// The sender is the key server.
    pub key_server: bool,
    /// MACsec Desired.
    pub macsec_desired: bool,
    /// MACsec Capability.
    pub macsec_capability: MacsecCapability,
    /// The sender's SCI.
    pub sci: Sci,
    /// The Actor's Member Identifier.
    pub mi: MemberIdentifier,
    /// The Actor's Member Number.
    pub mn: u32,
    /// Algorithm Agility ([`ALGORITHM_AGILITY_2010`]).
    pub algorithm_agility: u32,
    /// CAK Name.
    pub ckn: Ckn,
}

/// One key's entry of a SAK Use set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyUse {
    /// The MI of the key server that distributed the key (all zero: no key).
    pub key_server_mi: MemberIdentifier,
    /// Its Key Number.
    pub kn: u32,
    /// Lowest Acceptable PN.
    pub lowest_acceptable_pn: u32,
}

/// The MACsec SAK Use parameter set (802.1X-2010 figure 11-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SakUse {
    /// Latest Key AN.
    pub latest_an: AssociationNumber,
    /// Latest Key tx (LTX).
    pub latest_tx: bool,
    /// Latest Key rx (LRX).
    pub latest_rx: bool,
    /// Old Key AN.
    pub old_an: AssociationNumber,
    /// Old Key tx.
    pub old_tx: bool,
    /// Old Key rx.
    pub old_rx: bool,
    /// Plain Tx.
    pub plain_tx: bool,
    /// Plain Rx.
    pub plain_rx: bool,
    /// Delay Protect.
    pub delay_protect: bool,
    /// The latest and old keys; `None` is the empty body (no MACsec in use).
    pub keys: Option<(KeyUse, KeyUse)>,
}

/// A SAK wrapped with AES Key Wrap (RFC 3394) under the KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappedSak {
    /// A 128-bit SAK: 24 octets.
    Aes128([u8; 24]),
    /// A 256-bit SAK: 40 octets.
    Aes256([u8; 40]),
}

impl WrappedSak {
    /// The wrapped octets.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WrappedSak::Aes128(w) => w,
            WrappedSak::Aes256(w) => w,
        }
    }

    /// From 24 or 40 octets.
    pub fn from_slice(b: &[u8]) -> Option<WrappedSak> {
        if let Ok(a) = <[u8; 24]>::try_from(b) {
            Some(WrappedSak::Aes128(a))
        } else {
            <[u8; 40]>::try_from(b).ok().map(WrappedSak::Aes256)
        }
    }
}

/// A distributed key (the non-empty Distributed SAK set, 802.1X-2010 figure 11-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedKey {
    /// Distributed AN.
    pub an: AssociationNumber,
    /// Confidentiality Offset (0..=3).
    pub confidentiality_offset: u8,
    /// Key Number.
    pub kn: u32,
    /// The MACsec cipher suite, absent for the default GCM-AES-128. `None` with a 256-bit
    /// SAK emits [`CIPHER_SUITE_GCM_AES_256`] (the set has no other way to carry it).
    pub cipher_suite: Option<u64>,
    /// AES-KW(KEK, SAK).
    pub wrapped_sak: WrappedSak,
}

/// The Distributed SAK parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributedSak {
    /// Empty body: the key server has decided not to use MACsec protection.
    NoProtection,
    /// A new SAK.
    Key(DistributedKey),
}

/// The Distributed CAK parameter set (802.1X-2010 figure 11-12): a 128-bit CAK wrapped under
/// the KEK, then its CKN. (A wrapped 256-bit CAK could not be told apart from a longer CKN;
/// the codec supports the 2010 edition's 128-bit form only.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedCak {
    /// AES-KW(KEK, CAK).
    pub wrapped_cak: [u8; 24],
    /// The CAK's name.
    pub ckn: Ckn,
}

/// The XPN parameter set (802.1X-2020): the high 32 bits of the lowest acceptable PNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Xpn {
    /// Latest Key Lowest Acceptable PN, most significant 32 bits.
    pub latest_lowest_pn_msb: u32,
    /// Old Key Lowest Acceptable PN, most significant 32 bits.
    pub old_lowest_pn_msb: u32,
}

/// A parameter set of a type this codec does not decode, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSet {
    /// Parameter Set Type (not 1..=8 or 255 if it is to parse back as unknown).
    pub set_type: u8,
    /// The second octet.
    pub octet2: u8,
    /// The four high bits of the third octet (0..=15).
    pub flags: u8,
    /// The body without padding.
    pub body: Vec<u8>,
}

/// An MKPDU (EAPOL-MKA packet) as a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mkpdu {
    /// The Basic Parameter Set.
    pub basic: BasicParameterSet,
    /// Live Peer List.
    pub live_peers: Option<Vec<PeerEntry>>,
    /// Potential Peer List.
    pub potential_peers: Option<Vec<PeerEntry>>,
    /// MACsec SAK Use.
    pub sak_use: Option<SakUse>,
    /// Distributed SAK.
    pub distributed_sak: Option<DistributedSak>,
    /// Distributed CAK.
    pub distributed_cak: Option<DistributedCak>,
    /// KMD (Key Management Domain), raw.
    pub kmd: Option<Vec<u8>>,
    /// Announcement TLVs, raw.
    pub announcement: Option<Vec<u8>>,
    /// XPN.
    pub xpn: Option<Xpn>,
    /// Sets of unknown type, in order.
    pub unknown: Vec<UnknownSet>,
    /// An ICV Indicator set precedes the ICV.
    pub icv_indicator: bool,
    /// The ICV.
    pub icv: [u8; ICV_LEN],
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn mi_at(b: &[u8]) -> MemberIdentifier {
    let mut a = [0u8; 12];
    a.copy_from_slice(&b[..12]);
    MemberIdentifier(a)
}

fn set_len(header: &[u8]) -> usize {
    (usize::from(header[2] & 0x0F) << 8) | usize::from(header[3])
}

fn parse_peers(set_type: u8, body: &[u8]) -> Result<Vec<PeerEntry>, WireError> {
    if !body.len().is_multiple_of(16) {
        return Err(WireError::BadSetBody(set_type, body.len()));
    }
    Ok(body
        .chunks_exact(16)
        .map(|c| PeerEntry {
            mi: mi_at(c),
            mn: be32(&c[12..]),
        })
        .collect())
}

fn key_use_at(b: &[u8]) -> KeyUse {
    KeyUse {
        key_server_mi: mi_at(b),
        kn: be32(&b[12..]),
        lowest_acceptable_pn: be32(&b[16..]),
    }
}

impl Mkpdu {
    /// Parses an EAPOL-MKA packet (EAPOL header included), without checking the ICV.
    pub fn parse(bytes: &[u8]) -> Result<Mkpdu, WireError> {
        if bytes.len() < EAPOL_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if bytes[1] != EAPOL_TYPE_MKA {
            return Err(WireError::NotMka(bytes[1]));
        }
        let body_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let rest = &bytes[EAPOL_HEADER_LEN..];
        if rest.len() < body_len {
            return Err(WireError::Truncated);
        }
        if rest.len() > body_len {
            return Err(WireError::TrailingData(rest.len() - body_len));
        }
        let body = rest;
        let min = SET_HEADER_LEN + pad4(BASIC_FIXED_LEN + 1) + ICV_LEN;
        if !body_len.is_multiple_of(4) || body_len < min {
            return Err(WireError::BadMkpduLength(body_len));
        }
        let sets_end = body_len - ICV_LEN;

        // Basic Parameter Set.
        let len = set_len(body);
        let ckn_len = len.wrapping_sub(BASIC_FIXED_LEN);
        if len < BASIC_FIXED_LEN + 1
            || ckn_len > MAX_CKN_LEN
            || SET_HEADER_LEN + pad4(len) > sets_end
        {
            return Err(WireError::BadSetLength(0, len));
        }
        if body[0] == 0 {
            return Err(WireError::BadVersion);
        }
        let b = &body[SET_HEADER_LEN..SET_HEADER_LEN + len];
        let ckn = Ckn::new(&b[BASIC_FIXED_LEN..]).map_err(|_| WireError::BadSetLength(0, len))?;
        let mut sci = [0u8; 8];
        sci.copy_from_slice(&b[..8]);
        let basic = BasicParameterSet {
            version: body[0],
            key_server_priority: body[1],
            key_server: body[2] & 0x80 != 0,
            macsec_desired: body[2] & 0x40 != 0,
            macsec_capability: MacsecCapability::from_bits(body[2] >> 4),
            sci: Sci(sci),
            mi: mi_at(&b[8..]),
            mn: be32(&b[20..]),
            algorithm_agility: be32(&b[24..]),
            ckn,
        };
        let mut pdu = Mkpdu {
            basic,
            live_peers: None,
            potential_peers: None,
            sak_use: None,
            distributed_sak: None,
            distributed_cak: None,
            kmd: None,
            announcement: None,
            xpn: None,
            unknown: Vec::new(),
            icv_indicator: false,
            icv: [0; ICV_LEN],
        };

        let mut pos = SET_HEADER_LEN + pad4(len);
        // Invariant: pos is a multiple of 4 and pos <= sets_end.
        while pos < sets_end {
            let header = &body[pos..pos + SET_HEADER_LEN];
            let ty = header[0];
            let len = set_len(header);
            if ty == set_type::ICV_INDICATOR {
                if len != ICV_LEN {
                    return Err(WireError::UnsupportedIcvLength(len));
                }
                if pos + SET_HEADER_LEN + len != body_len {
                    return Err(WireError::BadSetLength(ty, len));
                }
                pdu.icv_indicator = true;
                break;
            }
            let end = pos + SET_HEADER_LEN + pad4(len);
            if end > sets_end {
                return Err(WireError::BadSetLength(ty, len));
            }
            let sb = &body[pos + SET_HEADER_LEN..pos + SET_HEADER_LEN + len];
            pdu.parse_set(header, sb)?;
            pos = end;
        }
        pdu.icv.copy_from_slice(&body[sets_end..]);
        Ok(pdu)
    }

    fn parse_set(&mut self, header: &[u8], b: &[u8]) -> Result<(), WireError> {
        fn once<T>(slot: &mut Option<T>, ty: u8, v: T) -> Result<(), WireError> {
            if slot.is_some() {
                return Err(WireError::DuplicateSet(ty));
            }
            *slot = Some(v);
            Ok(())
        }
        let ty = header[0];
        let o2 = header[1];
        let o3 = header[2];
        let bad = || WireError::BadSetBody(ty, b.len());
        match ty {
            set_type::LIVE_PEER_LIST => once(&mut self.live_peers, ty, parse_peers(ty, b)?),
            set_type::POTENTIAL_PEER_LIST => {
                once(&mut self.potential_peers, ty, parse_peers(ty, b)?)
            }
            set_type::SAK_USE => {
                let keys = match b.len() {
                    0 => None,
                    40 => Some((key_use_at(b), key_use_at(&b[20..]))),
                    _ => return Err(bad()),
                };
                let u = SakUse {
                    latest_an: AssociationNumber::from_bits(o2 >> 6),
                    latest_tx: o2 & 0x20 != 0,
                    latest_rx: o2 & 0x10 != 0,
                    old_an: AssociationNumber::from_bits(o2 >> 2),
                    old_tx: o2 & 0x02 != 0,
                    old_rx: o2 & 0x01 != 0,
                    plain_tx: o3 & 0x80 != 0,
                    plain_rx: o3 & 0x40 != 0,
                    delay_protect: o3 & 0x10 != 0,
                    keys,
                };
                once(&mut self.sak_use, ty, u)
            }
            set_type::DISTRIBUTED_SAK => {
                let d = if b.is_empty() {
                    DistributedSak::NoProtection
                } else {
                    let (cipher_suite, wrapped) = match b.len() {
                        28 => (None, &b[4..]),
                        36 | 52 => {
                            let mut cs = [0u8; 8];
                            cs.copy_from_slice(&b[4..12]);
                            (Some(u64::from_be_bytes(cs)), &b[12..])
                        }
                        _ => return Err(bad()),
                    };
                    DistributedSak::Key(DistributedKey {
                        an: AssociationNumber::from_bits(o2 >> 6),
                        confidentiality_offset: (o2 >> 4) & 3,
                        kn: be32(b),
                        cipher_suite,
                        wrapped_sak: WrappedSak::from_slice(wrapped).ok_or_else(bad)?,
                    })
                };
                once(&mut self.distributed_sak, ty, d)
            }
            set_type::DISTRIBUTED_CAK => {
                if b.len() < 25 {
                    return Err(bad());
                }
                let mut wrapped_cak = [0u8; 24];
                wrapped_cak.copy_from_slice(&b[..24]);
                let ckn = Ckn::new(&b[24..]).map_err(|_| bad())?;
                once(
                    &mut self.distributed_cak,
                    ty,
                    DistributedCak { wrapped_cak, ckn },
                )
            }
            set_type::KMD => once(&mut self.kmd, ty, b.to_vec()),
            set_type::ANNOUNCEMENT => once(&mut self.announcement, ty, b.to_vec()),
            set_type::XPN => {
                if b.len() != 8 {
                    return Err(bad());
                }
                let x = Xpn {
                    latest_lowest_pn_msb: be32(b),
                    old_lowest_pn_msb: be32(&b[4..]),
                };
                once(&mut self.xpn, ty, x)
            }
            _ => {
                self.unknown.push(UnknownSet {
                    set_type: ty,
                    octet2: o2,
                    flags: o3 >> 4,
                    body: b.to_vec(),
                });
                Ok(())
            }
        }
    }

    /// Emits the whole EAPOL-MKA packet, ICV included (as it is in `self.icv`).
    pub fn emit(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&[EAPOL_VERSION, EAPOL_TYPE_MKA, 0, 0]);
        let b = &self.basic;
        let ckn = b.ckn.as_bytes();
        let flags = (u8::from(b.key_server) << 7)
            | (u8::from(b.macsec_desired) << 6)
            | (b.macsec_capability.bits() << 4);
        let mut body = Vec::with_capacity(BASIC_FIXED_LEN + ckn.len());
        body.extend_from_slice(&b.sci.0);
        body.extend_from_slice(&b.mi.0);
        body.extend_from_slice(&b.mn.to_be_bytes());
        body.extend_from_slice(&b.algorithm_agility.to_be_bytes());
        body.extend_from_slice(ckn);
        put_set(
            &mut out,
            [b.version, b.key_server_priority],
            flags,
            &body,
            0,
        )?;

        let peers = |list: &[PeerEntry]| {
            let mut v = Vec::with_capacity(list.len() * 16);
            for p in list {
                v.extend_from_slice(&p.mi.0);
                v.extend_from_slice(&p.mn.to_be_bytes());
            }
            v
        };
        if let Some(l) = &self.live_peers {
            put_set(&mut out, [set_type::LIVE_PEER_LIST, 0], 0, &peers(l), 1)?;
        }
        if let Some(l) = &self.potential_peers {
            put_set(
                &mut out,
                [set_type::POTENTIAL_PEER_LIST, 0],
                0,
                &peers(l),
                2,
            )?;
        }
        if let Some(u) = &self.sak_use {
            let o2 = (u.latest_an.get() << 6)
                | (u8::from(u.latest_tx) << 5)
                | (u8::from(u.latest_rx) << 4)
                | (u.old_an.get() << 2)
                | (u8::from(u.old_tx) << 1)
                | u8::from(u.old_rx);
            let flags = (u8::from(u.plain_tx) << 7)
                | (u8::from(u.plain_rx) << 6)
                | (u8::from(u.delay_protect) << 4);
            let mut body = Vec::with_capacity(40);
            if let Some((latest, old)) = &u.keys {
                for k in [latest, old] {
                    body.extend_from_slice(&k.key_server_mi.0);
                    body.extend_from_slice(&k.kn.to_be_bytes());
                    body.extend_from_slice(&k.lowest_acceptable_pn.to_be_bytes());
                }
            }
            put_set(&mut out, [set_type::SAK_USE, o2], flags, &body, 3)?;
        }
        if let Some(d) = &self.distributed_sak {
            let (o2, body) = match d {
                DistributedSak::NoProtection => (0, Vec::new()),
                DistributedSak::Key(k) => {
                    let mut body = Vec::with_capacity(52);
                    body.extend_from_slice(&k.kn.to_be_bytes());
                    let cs = match (k.cipher_suite, &k.wrapped_sak) {
                        (Some(cs), _) => Some(cs),
                        (None, WrappedSak::Aes128(_)) => None,
                        (None, WrappedSak::Aes256(_)) => Some(CIPHER_SUITE_GCM_AES_256),
                    };
                    if let Some(cs) = cs {
                        body.extend_from_slice(&cs.to_be_bytes());
                    }
                    body.extend_from_slice(k.wrapped_sak.as_bytes());
                    let o2 = (k.an.get() << 6) | ((k.confidentiality_offset & 3) << 4);
                    (o2, body)
                }
            };
            put_set(&mut out, [set_type::DISTRIBUTED_SAK, o2], 0, &body, 4)?;
        }
        if let Some(c) = &self.distributed_cak {
            let body = [&c.wrapped_cak[..], c.ckn.as_bytes()].concat();
            put_set(&mut out, [set_type::DISTRIBUTED_CAK, 0], 0, &body, 5)?;
        }
        if let Some(k) = &self.kmd {
            put_set(&mut out, [set_type::KMD, 0], 0, k, 6)?;
        }
        if let Some(a) = &self.announcement {
            put_set(&mut out, [set_type::ANNOUNCEMENT, 0], 0, a, 7)?;
        }
        if let Some(x) = &self.xpn {
            let mut body = [0u8; 8];
            body[..4].copy_from_slice(&x.latest_lowest_pn_msb.to_be_bytes());
            body[4..].copy_from_slice(&x.old_lowest_pn_msb.to_be_bytes());
            put_set(&mut out, [set_type::XPN, 0], 0, &body, 8)?;
        }
        for u in &self.unknown {
            put_set(
                &mut out,
                [u.set_type, u.octet2],
                u.flags << 4,
                &u.body,
                u.set_type,
            )?;
        }
        if self.icv_indicator {
            out.extend_from_slice(&[set_type::ICV_INDICATOR, 0, 0, 16]);
        }
        out.extend_from_slice(&self.icv);
        let body_len =
            u16::try_from(out.len() - EAPOL_HEADER_LEN).map_err(|_| WireError::TooLong(0))?;
        out[2..4].copy_from_slice(&body_len.to_be_bytes());
        Ok(out)
    }

    /// Emits the packet with the ICV computed under `ick` and stored in `self.icv`.
    pub fn emit_signed(&mut self, ick: &[u8], coverage: IcvCoverage) -> Result<Vec<u8>, MkaError> {
        let mut out = self.emit()?;
        let n = out.len() - ICV_LEN;
        let icv = compute_icv(ick, coverage, &self.basic.sci, &out[..n])?;
        out[n..].copy_from_slice(&icv);
        self.icv = icv;
        Ok(out)
    }

    /// Parses `bytes` and checks its ICV under `ick`.
    pub fn parse_verified(
        bytes: &[u8],
        ick: &[u8],
        coverage: IcvCoverage,
    ) -> Result<Mkpdu, MkaError> {
        let pdu = Mkpdu::parse(bytes)?;
        let n = bytes.len() - ICV_LEN;
        let icv = compute_icv(ick, coverage, &pdu.basic.sci, &bytes[..n])?;
        if !ct_eq(&icv, &pdu.icv) {
            return Err(MkaError::IcvMismatch);
        }
        Ok(pdu)
    }
}

fn put_set(
    out: &mut Vec<u8>,
    first: [u8; 2],
    flags: u8,
    body: &[u8],
    ty: u8,
) -> Result<(), WireError> {
    if body.len() > MAX_SET_BODY {
        return Err(WireError::TooLong(ty));
    }
    let len = u16::try_from(body.len()).map_err(|_| WireError::TooLong(ty))?;
    let [hi, lo] = len.to_be_bytes();
    out.extend_from_slice(&[first[0], first[1], (flags & 0xF0) | (hi & 0x0F), lo]);
    out.extend_from_slice(body);
    out.resize(out.len() + pad4(body.len()) - body.len(), 0);
    if out.len() > usize::from(u16::MAX) {
        return Err(WireError::TooLong(ty));
    }
    Ok(())
}

/// What the ICV covers besides the MKPDU (802.1X-2010 §9.4.1 has `DA ‖ SA ‖ EtherType ‖
/// MKPDU` on Ethernet; 802.15.9 carries no Ethernet header). See the module docs of
/// [`super`] for the choice of default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
pub enum IcvCoverage {
    /// The Ethernet header the MKPDU would have on a LAN: DA = the PAE group address
    /// 01-80-C2-00-00-03, SA = the System Identifier of the sender's SCI, EtherType 88-8E.
    #[default]
    PaeGroupHeader,
    /// The MKPDU (EAPOL header to the octet before the ICV) alone.
    MkpduOnly,
}

/// The ICV of `pdu_without_icv` (the EAPOL packet up to the ICV) sent by `sender` under `ick`.
pub fn compute_icv(
    ick: &[u8],
    coverage: IcvCoverage,
    sender: &Sci,
    pdu_without_icv: &[u8],
) -> Result<[u8; ICV_LEN], CryptoError> {
    match coverage {
        IcvCoverage::PaeGroupHeader => aes_cmac_parts(
            ick,
            &[
                &PAE_GROUP_ADDRESS,
                &sender.system_identifier(),
                &PAE_ETHERTYPE.to_be_bytes(),
                pdu_without_icv,
            ],
        ),
        IcvCoverage::MkpduOnly => aes_cmac_parts(ick, &[pdu_without_icv]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sci_from_eui64_is_a_permutation() {
        let mac_based = ExtendedAddress([0x02, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55]);
        let sci = Sci::from_eui64(mac_based);
        assert_eq!(
            sci.system_identifier(),
            [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        assert_eq!(sci, Sci::new([0x02, 0x11, 0x22, 0x33, 0x44, 0x55], 0xFFFE));
        assert_eq!(sci.to_eui64(), mac_based);
        let a = Sci::from_eui64(ExtendedAddress([0, 0x12, 0x4B, 0, 0x1A, 1, 2, 3]));
        let b = Sci::from_eui64(ExtendedAddress([0, 0x12, 0x4B, 0, 0x1B, 1, 2, 3]));
        assert_ne!(a, b);
        assert_eq!(a.system_identifier(), b.system_identifier());
    }

    #[test]
    fn association_numbers_wrap() {
        assert_eq!(AssociationNumber::new(4), None);
        assert_eq!(AssociationNumber::new(3).map(|a| a.next().get()), Some(0));
        assert_eq!(AssociationNumber::from_bits(0xFE).get(), 2);
    }
}
