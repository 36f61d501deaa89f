//! IEEE 802.15.4 addresses and PAN identifiers.
//!
//! An EUI-64 is kept here in display (canonical, big-endian) order: `02:00:00:00:00:00:00:01`.
//! On air it is sent least significant octet first, so the codec reverses it.

use core::fmt;

/// A 16-bit PAN identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PanId(pub u16);

impl PanId {
    /// The broadcast PAN ID 0xffff.
    pub const BROADCAST: PanId = PanId(0xffff);
}

impl fmt::Display for PanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// A 16-bit short address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortAddress(pub u16);

impl ShortAddress {
    /// The broadcast short address 0xffff.
    pub const BROADCAST: ShortAddress = ShortAddress(0xffff);
    /// 0xfffe: the device has no short address and uses its extended one.
    pub const NONE_ASSIGNED: ShortAddress = ShortAddress(0xfffe);
}

impl fmt::Display for ShortAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// A 64-bit extended address (EUI-64), in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExtendedAddress(pub [u8; 8]);

impl ExtendedAddress {
    /// From the 8 octets as sent on air (least significant first).
    pub fn from_air(on_air: [u8; 8]) -> ExtendedAddress {
        let mut a = on_air;
        a.reverse();
        ExtendedAddress(a)
    }

    /// The 8 octets as sent on air (least significant first).
    pub fn to_air(self) -> [u8; 8] {
        let mut a = self.0;
        a.reverse();
        a
    }

    /// The address as a big-endian integer.
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// From a big-endian integer.
    pub const fn from_u64(v: u64) -> ExtendedAddress {
        ExtendedAddress(v.to_be_bytes())
    }
}

impl fmt::Display for ExtendedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
        )
    }
}

/// Error parsing an address from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {0:?}: expected 0xNNNN or eight colon-separated hex octets")]
pub struct AddressParseError(pub String);

impl core::str::FromStr for ExtendedAddress {
    type Err = AddressParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 8];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 8 || part.len() != 2 {
                return Err(AddressParseError(s.to_owned()));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| AddressParseError(s.to_owned()))?;
            n += 1;
        }
        if n != 8 {
            return Err(AddressParseError(s.to_owned()));
        }
        Ok(ExtendedAddress(out))
    }
}

/// The addressing mode subfield of the Frame Control field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressingMode {
    /// 0b00: no address (and the PAN ID may be absent).
    None,
    /// 0b10: 16-bit short address.
    Short,
    /// 0b11: 64-bit extended address.
    Extended,
}

impl AddressingMode {
    /// The 2-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            AddressingMode::None => 0,
            AddressingMode::Short => 2,
            AddressingMode::Extended => 3,
        }
    }

    /// From the 2-bit field value; 0b01 is reserved.
    pub const fn from_bits(bits: u8) -> Option<AddressingMode> {
        match bits & 0b11 {
            0 => Some(AddressingMode::None),
            2 => Some(AddressingMode::Short),
            3 => Some(AddressingMode::Extended),
            _ => None,
        }
    }

    /// Octets the address takes on air.
    pub const fn address_len(self) -> usize {
        match self {
            AddressingMode::None => 0,
            AddressingMode::Short => 2,
            AddressingMode::Extended => 8,
        }
    }
}

/// A device address of any mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Address {
    /// No address.
    #[default]
    Absent,
    /// A short address.
    Short(ShortAddress),
    /// An extended address.
    Extended(ExtendedAddress),
}

impl Address {
    /// The addressing mode this address is sent with.
    pub const fn mode(&self) -> AddressingMode {
        match self {
            Address::Absent => AddressingMode::None,
            Address::Short(_) => AddressingMode::Short,
            Address::Extended(_) => AddressingMode::Extended,
        }
    }

    /// Whether this is the short broadcast address 0xffff.
    pub const fn is_broadcast(&self) -> bool {
        matches!(self, Address::Short(ShortAddress(0xffff)))
    }

    /// The extended address, if it is one.
    pub const fn extended(&self) -> Option<ExtendedAddress> {
        match self {
            Address::Extended(e) => Some(*e),
            _ => None,
        }
    }
}

impl From<ExtendedAddress> for Address {
    fn from(a: ExtendedAddress) -> Self {
        Address::Extended(a)
    }
}

impl From<ShortAddress> for Address {
    fn from(a: ShortAddress) -> Self {
        Address::Short(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Absent => f.write_str("none"),
            Address::Short(s) => s.fmt(f),
            Address::Extended(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_air_order() {
        let a: ExtendedAddress = "02:00:00:00:00:00:00:01".parse().unwrap();
        assert_eq!(a.to_air(), [1, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(ExtendedAddress::from_air(a.to_air()), a);
        assert_eq!(a.to_string(), "02:00:00:00:00:00:00:01");
        assert_eq!(ExtendedAddress::from_u64(a.to_u64()), a);
        assert!("02:00".parse::<ExtendedAddress>().is_err());
        assert!(
            "02:00:00:00:00:00:00:01:05"
                .parse::<ExtendedAddress>()
                .is_err()
        );
        assert!(
            "zz:00:00:00:00:00:00:01"
                .parse::<ExtendedAddress>()
                .is_err()
        );
    }

    #[test]
    fn modes() {
        assert_eq!(AddressingMode::from_bits(1), None);
        for m in [
            AddressingMode::None,
            AddressingMode::Short,
            AddressingMode::Extended,
        ] {
            assert_eq!(AddressingMode::from_bits(m.bits()), Some(m));
        }
        assert!(Address::Short(ShortAddress::BROADCAST).is_broadcast());
    }
}
