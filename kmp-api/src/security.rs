//! IEEE 802.15.4-2015 security parameters (9.4.2 Auxiliary Security Header, Table 9-6 security
//! levels, Table 9-7 key identifier modes), shared by the primitives, the PIB and KMP outcomes.

use core::fmt;

/// The security level (Security Control bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityLevel {
    /// 0: no security.
    None,
    /// 1: MIC-32, authentication only.
    Mic32,
    /// 2: MIC-64.
    Mic64,
    /// 3: MIC-128.
    Mic128,
    /// 4: ENC, confidentiality only (CCM* with no MIC).
    Enc,
    /// 5: ENC-MIC-32.
    EncMic32,
    /// 6: ENC-MIC-64.
    EncMic64,
    /// 7: ENC-MIC-128.
    EncMic128,
}

impl SecurityLevel {
    /// From the 3-bit field (every value is defined).
    pub const fn from_bits(bits: u8) -> SecurityLevel {
        match bits & 0b111 {
            0 => SecurityLevel::None,
            1 => SecurityLevel::Mic32,
            2 => SecurityLevel::Mic64,
            3 => SecurityLevel::Mic128,
            4 => SecurityLevel::Enc,
            5 => SecurityLevel::EncMic32,
            6 => SecurityLevel::EncMic64,
            _ => SecurityLevel::EncMic128,
        }
    }

    /// The 3-bit field value.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Length of the MIC in octets (0, 4, 8 or 16).
    pub const fn mic_len(self) -> usize {
        match self.bits() & 0b11 {
            0 => 0,
            1 => 4,
            2 => 8,
            _ => 16,
        }
    }

    /// Whether the private payload is encrypted.
    pub const fn encrypts(self) -> bool {
        self.bits() & 0b100 != 0
    }

    /// Whether this level provides at least the protection of `min`: both confidentiality (if
    /// `min` has it) and a MIC at least as long (802.15.4-2015 9.2.6, "security level
    /// checking": the comparison is bitwise on the confidentiality flag and integer on the MIC
    /// length).
    pub const fn satisfies(self, min: SecurityLevel) -> bool {
        (self.encrypts() || !min.encrypts()) && self.mic_len() >= min.mic_len()
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SecurityLevel::None => "None",
            SecurityLevel::Mic32 => "MIC-32",
            SecurityLevel::Mic64 => "MIC-64",
            SecurityLevel::Mic128 => "MIC-128",
            SecurityLevel::Enc => "ENC",
            SecurityLevel::EncMic32 => "ENC-MIC-32",
            SecurityLevel::EncMic64 => "ENC-MIC-64",
            SecurityLevel::EncMic128 => "ENC-MIC-128",
        };
        f.write_str(s)
    }
}

/// The key identifier mode (Security Control bits 3–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyIdMode {
    /// 0: the key is determined implicitly from the originator and recipient.
    Implicit,
    /// 1: a 1-octet key index, with the macDefaultKeySource.
    Index,
    /// 2: a 4-octet key source and a 1-octet key index.
    Source4Index,
    /// 3: an 8-octet key source and a 1-octet key index.
    Source8Index,
}

impl KeyIdMode {
    /// From the 2-bit field.
    pub const fn from_bits(bits: u8) -> KeyIdMode {
        match bits & 0b11 {
            0 => KeyIdMode::Implicit,
            1 => KeyIdMode::Index,
            2 => KeyIdMode::Source4Index,
            _ => KeyIdMode::Source8Index,
        }
    }

    /// The 2-bit field value.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Length of the Key Identifier field: key source plus key index.
    pub const fn key_identifier_len(self) -> usize {
        match self {
            KeyIdMode::Implicit => 0,
            KeyIdMode::Index => 1,
            KeyIdMode::Source4Index => 5,
            KeyIdMode::Source8Index => 9,
        }
    }
}

/// The key source of key identifier modes 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySource {
    /// 4 octets (mode 2), in the order sent on air.
    Four([u8; 4]),
    /// 8 octets (mode 3), in the order sent on air.
    Eight([u8; 8]),
}

impl KeySource {
    /// The octets as sent on air.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeySource::Four(b) => b,
            KeySource::Eight(b) => b,
        }
    }
}

/// The Key Identifier of an auxiliary security header, or of a key-table lookup descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyIdentifier {
    /// Mode 0: implicit.
    Implicit,
    /// Mode 1: key index only.
    Index(u8),
    /// Mode 2 or 3: key source and key index.
    SourceIndex(KeySource, u8),
}

impl KeyIdentifier {
    /// The mode this identifier is sent with.
    pub const fn mode(&self) -> KeyIdMode {
        match self {
            KeyIdentifier::Implicit => KeyIdMode::Implicit,
            KeyIdentifier::Index(_) => KeyIdMode::Index,
            KeyIdentifier::SourceIndex(KeySource::Four(_), _) => KeyIdMode::Source4Index,
            KeyIdentifier::SourceIndex(KeySource::Eight(_), _) => KeyIdMode::Source8Index,
        }
    }

    /// The key index, if the mode has one.
    pub const fn key_index(&self) -> Option<u8> {
        match self {
            KeyIdentifier::Implicit => None,
            KeyIdentifier::Index(i) | KeyIdentifier::SourceIndex(_, i) => Some(*i),
        }
    }

    /// The key source, if the mode has one.
    pub const fn key_source(&self) -> Option<&KeySource> {
        match self {
            KeyIdentifier::SourceIndex(s, _) => Some(s),
            _ => None,
        }
    }
}

/// The security parameters a MAC data request or indication carries
/// (SecurityLevel, KeyIdMode, KeySource, KeyIndex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityParams {
    /// The security level.
    pub level: SecurityLevel,
    /// Key identification.
    pub key_id: KeyIdentifier,
}

impl SecurityParams {
    /// No security.
    pub const NONE: SecurityParams = SecurityParams {
        level: SecurityLevel::None,
        key_id: KeyIdentifier::Implicit,
    };
}

impl Default for SecurityParams {
    fn default() -> Self {
        SecurityParams::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        for b in 0..8u8 {
            let l = SecurityLevel::from_bits(b);
            assert_eq!(l.bits(), b);
        }
        assert_eq!(SecurityLevel::EncMic64.mic_len(), 8);
        assert_eq!(SecurityLevel::Enc.mic_len(), 0);
        assert!(SecurityLevel::Enc.encrypts());
        assert!(!SecurityLevel::Mic128.encrypts());
        assert!(SecurityLevel::EncMic64.satisfies(SecurityLevel::EncMic32));
        assert!(!SecurityLevel::EncMic32.satisfies(SecurityLevel::EncMic64));
        assert!(!SecurityLevel::Mic128.satisfies(SecurityLevel::Enc));
        assert!(SecurityLevel::None.satisfies(SecurityLevel::None));
        assert!(!SecurityLevel::None.satisfies(SecurityLevel::Mic32));
    }

    #[test]
    fn key_id_modes() {
        for b in 0..4u8 {
            assert_eq!(KeyIdMode::from_bits(b).bits(), b);
        }
        let k = KeyIdentifier::SourceIndex(KeySource::Four([1, 2, 3, 4]), 7);
        assert_eq!(k.mode(), KeyIdMode::Source4Index);
        assert_eq!(k.key_index(), Some(7));
        assert_eq!(k.key_source().unwrap().as_bytes(), &[1, 2, 3, 4]);
        assert_eq!(KeyIdMode::Source8Index.key_identifier_len(), 9);
    }
}
