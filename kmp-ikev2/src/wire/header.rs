//! The 28-octet IKE header (RFC 7296 §3.1).

use super::{WireError, exchange};

/// Octets in the IKE header.
pub const HEADER_LEN: usize = 28;

const FLAG_I: u8 = 0x08;
const FLAG_V: u8 = 0x10;
const FLAG_R: u8 = 0x20;

/// Exchange Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeType {
    /// 34: IKE_SA_INIT.
    IkeSaInit,
    /// 35: IKE_AUTH.
    IkeAuth,
    /// 36: CREATE_CHILD_SA.
    CreateChildSa,
    /// 37: INFORMATIONAL.
    Informational,
    /// Any other value (never 34–37).
    Other(u8),
}

impl ExchangeType {
    /// From the octet.
    pub const fn from_u8(v: u8) -> ExchangeType {
        match v {
            exchange::IKE_SA_INIT => ExchangeType::IkeSaInit,
            exchange::IKE_AUTH => ExchangeType::IkeAuth,
            exchange::CREATE_CHILD_SA => ExchangeType::CreateChildSa,
            exchange::INFORMATIONAL => ExchangeType::Informational,
            other => ExchangeType::Other(other),
        }
    }

    /// To the octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            ExchangeType::IkeSaInit => exchange::IKE_SA_INIT,
            ExchangeType::IkeAuth => exchange::IKE_AUTH,
            ExchangeType::CreateChildSa => exchange::CREATE_CHILD_SA,
            ExchangeType::Informational => exchange::INFORMATIONAL,
            ExchangeType::Other(v) => v,
        }
    }
}

/// The header flags this codec keeps; the other five bits are ignored and sent as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// I (0x08): sent by the original initiator of the IKE SA.
    pub initiator: bool,
    /// V (0x10): the sender can speak a higher major version.
    pub version: bool,
    /// R (0x20): this message is a response.
    pub response: bool,
}

impl Flags {
    /// From the flags octet.
    pub const fn from_u8(v: u8) -> Flags {
        Flags {
            initiator: v & FLAG_I != 0,
            version: v & FLAG_V != 0,
            response: v & FLAG_R != 0,
        }
    }

    /// To the flags octet.
    pub const fn to_u8(self) -> u8 {
        (if self.initiator { FLAG_I } else { 0 })
            | (if self.version { FLAG_V } else { 0 })
            | (if self.response { FLAG_R } else { 0 })
    }
}

/// The IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Initiator's SPI.
    pub spi_i: [u8; 8],
    /// Responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: [u8; 8],
    /// Type of the first payload (computed by [`super::Message::emit`]).
    pub next_payload: u8,
    /// Major version (2); a nibble on the wire.
    pub major_version: u8,
    /// Minor version (0); a nibble on the wire.
    pub minor_version: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
    /// Length of the whole message (computed by [`super::Message::emit`]).
    pub length: u32,
}

impl Header {
    /// Parses the first 28 octets. Checks only that they are there: the version and length
    /// checks are [`super::Message::parse`]'s, so a responder can still read the SPIs and
    /// exchange of a message it rejects (e.g. to answer INVALID_MAJOR_VERSION).
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(WireError::Truncated);
        };
        let mut spi_i = [0; 8];
        spi_i.copy_from_slice(&h[0..8]);
        let mut spi_r = [0; 8];
        spi_r.copy_from_slice(&h[8..16]);
        Ok(Header {
            spi_i,
            spi_r,
            next_payload: h[16],
            major_version: h[17] >> 4,
            minor_version: h[17] & 0x0f,
            exchange: ExchangeType::from_u8(h[18]),
            flags: Flags::from_u8(h[19]),
            message_id: u32::from_be_bytes([h[20], h[21], h[22], h[23]]),
            length: u32::from_be_bytes([h[24], h[25], h[26], h[27]]),
        })
    }

    /// Writes the header as it is (fields are not recomputed; versions are cut to a nibble).
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..8].copy_from_slice(&self.spi_i);
        out[8..16].copy_from_slice(&self.spi_r);
        out[16] = self.next_payload;
        out[17] = (self.major_version << 4) | (self.minor_version & 0x0f);
        out[18] = self.exchange.to_u8();
        out[19] = self.flags.to_u8();
        out[20..24].copy_from_slice(&self.message_id.to_be_bytes());
        out[24..28].copy_from_slice(&self.length.to_be_bytes());
    }

    /// The header as octets (see [`Header::emit`]).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        self.emit(&mut out);
        out
    }
}
