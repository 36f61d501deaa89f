//! Multiplex IDs, KMP IDs and OUIs (IEEE 802.15.9 7.3.4 and the KMP ID table).

use core::fmt;

/// An IEEE Organizationally Unique Identifier, kept in canonical (transmission) order.
///
/// After KMP ID 255 the OUI is carried in canonical order: `00 50 c2` is 00-50-C2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oui(pub [u8; 3]);

impl fmt::Display for Oui {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}:{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

/// Error parsing the KMP ID prefix of an upper-layer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KmpIdError {
    /// The upper-layer frame is empty: there is no KMP ID octet.
    #[error("upper-layer frame has no KMP ID octet")]
    Empty,
    /// KMP ID 255 is not followed by a complete 3-octet OUI.
    #[error("vendor-specific KMP ID without a complete OUI")]
    TruncatedOui,
}

/// The KMP ID: the first octet of an upper-layer frame whose Multiplex ID is 1 (KMP).
///
/// Values not assigned by IEEE 802.15.9 are kept as [`KmpId::Reserved`] so that a receiver can
/// count and report them instead of losing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KmpId {
    /// 1: IEEE 802.1X / MKA (EAPOL).
    Ieee8021xMka,
    /// 2: HIP.
    Hip,
    /// 3: IKEv2.
    Ikev2,
    /// 4: PANA.
    Pana,
    /// 5: Dragonfly.
    Dragonfly,
    /// 6: IEEE 802.11 4-way handshake.
    Ieee80211FourWay,
    /// 7: IEEE 802.11 group key handshake.
    Ieee80211GroupKey,
    /// 8: ETSI TS 102 887-2.
    EtsiTs102887_2,
    /// 255: vendor-specific, followed by the vendor's OUI.
    VendorSpecific(Oui),
    /// Any other value (0, 9–254): reserved by 802.15.9.
    Reserved(u8),
}

impl KmpId {
    /// The value of the KMP ID octet.
    pub const fn value(self) -> u8 {
        match self {
            KmpId::Ieee8021xMka => 1,
            KmpId::Hip => 2,
            KmpId::Ikev2 => 3,
            KmpId::Pana => 4,
            KmpId::Dragonfly => 5,
            KmpId::Ieee80211FourWay => 6,
            KmpId::Ieee80211GroupKey => 7,
            KmpId::EtsiTs102887_2 => 8,
            KmpId::VendorSpecific(_) => 255,
            KmpId::Reserved(v) => v,
        }
    }

    /// Builds a KMP ID from its octet. 255 needs an OUI, so it is not accepted here: use
    /// [`KmpId::VendorSpecific`] or [`KmpId::parse_prefix`].
    pub const fn from_value(v: u8) -> Option<KmpId> {
        Some(match v {
            1 => KmpId::Ieee8021xMka,
            2 => KmpId::Hip,
            3 => KmpId::Ikev2,
            4 => KmpId::Pana,
            5 => KmpId::Dragonfly,
            6 => KmpId::Ieee80211FourWay,
            7 => KmpId::Ieee80211GroupKey,
            8 => KmpId::EtsiTs102887_2,
            255 => return None,
            other => KmpId::Reserved(other),
        })
    }

    /// Whether this is a value 802.15.9 does not assign.
    pub const fn is_reserved(self) -> bool {
        matches!(self, KmpId::Reserved(_))
    }

    /// Length of the prefix (KMP ID octet, plus the OUI for 255) in an upper-layer frame.
    pub const fn prefix_len(self) -> usize {
        match self {
            KmpId::VendorSpecific(_) => 4,
            _ => 1,
        }
    }

    /// Splits an upper-layer frame (Multiplex ID 1) into its KMP ID and the KMP PDU.
    pub fn parse_prefix(frame: &[u8]) -> Result<(KmpId, &[u8]), KmpIdError> {
        let (&first, rest) = frame.split_first().ok_or(KmpIdError::Empty)?;
        if first == 255 {
            if rest.len() < 3 {
                return Err(KmpIdError::TruncatedOui);
            }
            let oui = Oui([rest[0], rest[1], rest[2]]);
            return Ok((KmpId::VendorSpecific(oui), &rest[3..]));
        }
        // 255 is the only value from_value refuses, and it was handled above.
        let id = KmpId::from_value(first).unwrap_or(KmpId::Reserved(first));
        Ok((id, rest))
    }

    /// Writes the prefix into `buf[..self.prefix_len()]` and returns its length.
    ///
    /// Returns `None` if `buf` is too short.
    pub fn emit_prefix(self, buf: &mut [u8]) -> Option<usize> {
        let n = self.prefix_len();
        let out = buf.get_mut(..n)?;
        out[0] = self.value();
        if let KmpId::VendorSpecific(oui) = self {
            out[1..4].copy_from_slice(&oui.0);
        }
        Some(n)
    }

    /// A short name for logs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            KmpId::Ieee8021xMka => "802.1X/MKA",
            KmpId::Hip => "HIP",
            KmpId::Ikev2 => "IKEv2",
            KmpId::Pana => "PANA",
            KmpId::Dragonfly => "Dragonfly",
            KmpId::Ieee80211FourWay => "802.11 4WH",
            KmpId::Ieee80211GroupKey => "802.11 GKH",
            KmpId::EtsiTs102887_2 => "ETSI TS 102 887-2",
            KmpId::VendorSpecific(_) => "vendor-specific",
            KmpId::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for KmpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmpId::VendorSpecific(oui) => write!(f, "{} ({}, OUI {})", self.name(), 255, oui),
            other => write!(f, "{} ({})", other.name(), other.value()),
        }
    }
}

/// The Multiplex ID of an MPX IE (IEEE 802.15.9 7.3.4): who owns the upper-layer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MultiplexId {
    /// 0x0001: the upper-layer frame is a KMP frame, starting with a [`KmpId`].
    Kmp,
    /// 0x0002: Wi-SUN defined payload (a 1-octet Wi-SUN sub-ID follows).
    WiSun,
    /// 0x0003–0x05DC: an entry of the IEEE 802.15 ANA Multiplex ID registry.
    Registered(u16),
    /// Above 1500 (0x05DC): an EtherType, e.g. 0xA0ED LoWPAN encapsulation (RFC 7973).
    EtherType(u16),
    /// 0x0000, which no source assigns.
    Reserved,
}

impl MultiplexId {
    /// LoWPAN encapsulation (RFC 7973), the Multiplex ID Wi-SUN uses for IPv6.
    pub const LOWPAN: MultiplexId = MultiplexId::EtherType(0xA0ED);
    /// Largest value that is a registry entry rather than an EtherType.
    pub const MAX_REGISTERED: u16 = 1500;

    /// Classifies a 16-bit Multiplex ID value.
    pub const fn from_u16(v: u16) -> MultiplexId {
        match v {
            0 => MultiplexId::Reserved,
            1 => MultiplexId::Kmp,
            2 => MultiplexId::WiSun,
            v if v <= Self::MAX_REGISTERED => MultiplexId::Registered(v),
            v => MultiplexId::EtherType(v),
        }
    }

    /// The 16-bit value sent on air (little-endian).
    pub const fn to_u16(self) -> u16 {
        match self {
            MultiplexId::Reserved => 0,
            MultiplexId::Kmp => 1,
            MultiplexId::WiSun => 2,
            MultiplexId::Registered(v) | MultiplexId::EtherType(v) => v,
        }
    }

    /// Whether the value fits the compressed form (transfer type 1 carries it in 5 bits).
    pub const fn is_compressible(self) -> bool {
        self.to_u16() < 32
    }
}

impl From<u16> for MultiplexId {
    fn from(v: u16) -> Self {
        MultiplexId::from_u16(v)
    }
}

impl fmt::Display for MultiplexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultiplexId::Kmp => f.write_str("KMP (0x0001)"),
            MultiplexId::WiSun => f.write_str("Wi-SUN (0x0002)"),
            MultiplexId::Registered(v) => write!(f, "registered 0x{v:04x}"),
            MultiplexId::EtherType(v) => write!(f, "EtherType 0x{v:04x}"),
            MultiplexId::Reserved => f.write_str("reserved (0x0000)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmp_id_values_round_trip() {
        for v in 0u8..=254 {
            let id = KmpId::from_value(v).unwrap();
            assert_eq!(id.value(), v);
            assert_eq!(id.is_reserved(), !(1..=8).contains(&v));
        }
        assert_eq!(KmpId::from_value(255), None);
    }

    #[test]
    fn vendor_prefix() {
        let frame = [0xff, 0x00, 0x50, 0xc2, 0xde, 0xad];
        let (id, pdu) = KmpId::parse_prefix(&frame).unwrap();
        assert_eq!(id, KmpId::VendorSpecific(Oui([0x00, 0x50, 0xc2])));
        assert_eq!(pdu, &[0xde, 0xad]);
        let mut out = [0u8; 4];
        assert_eq!(id.emit_prefix(&mut out), Some(4));
        assert_eq!(out, frame[..4]);
        assert_eq!(id.to_string(), "vendor-specific (255, OUI 00:50:c2)");
    }

    #[test]
    fn bad_prefixes() {
        assert_eq!(KmpId::parse_prefix(&[]), Err(KmpIdError::Empty));
        assert_eq!(
            KmpId::parse_prefix(&[0xff, 0, 0x50]),
            Err(KmpIdError::TruncatedOui)
        );
        assert_eq!(KmpId::Dragonfly.emit_prefix(&mut []), None);
        assert_eq!(KmpId::parse_prefix(&[9]).unwrap().0, KmpId::Reserved(9));
    }

    #[test]
    fn multiplex_ids() {
        assert_eq!(MultiplexId::from_u16(1), MultiplexId::Kmp);
        assert_eq!(MultiplexId::from_u16(1500), MultiplexId::Registered(1500));
        assert_eq!(MultiplexId::from_u16(1501), MultiplexId::EtherType(1501));
        assert_eq!(MultiplexId::from_u16(0xA0ED), MultiplexId::LOWPAN);
        for v in [0u16, 1, 2, 3, 31, 32, 1500, 1501, 0xffff] {
            assert_eq!(MultiplexId::from_u16(v).to_u16(), v);
        }
        assert!(MultiplexId::Kmp.is_compressible());
        assert!(!MultiplexId::LOWPAN.is_compressible());
    }
}
