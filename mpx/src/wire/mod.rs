//! Wire formats: zero-copy views over octet buffers plus high-level `Repr`s.
//!
//! Every view has `new_checked`, after which no accessor panics; every `Repr` has `parse`,
//! `buffer_len` and `emit`, and `emit` never panics into a buffer of `buffer_len()` octets.
//! Multi-octet fields are little-endian unless a doc comment says otherwise.

pub mod aux_sec;
pub mod fcs;
pub mod frame;
pub mod ie;
pub mod mpx_ie;

pub use aux_sec::{AuxSecurityHeader, AuxSecurityHeaderRepr};
pub use fcs::FcsLen;
pub use frame::{Frame, FrameRepr, FrameType, FrameVersion, ParseOptions};
pub use ie::{HeaderIe, HeaderIeIter, PayloadIe, PayloadIeGroup, PayloadIeIter};
pub use mpx_ie::{MpxIe, MpxIeRepr, TransferType};

/// Why a frame or element could not be parsed or emitted. Small and cheap to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before a field the header says is present.
    #[error("truncated: the buffer ends inside {0}")]
    Truncated(&'static str),
    /// Frame version 0b11 is reserved.
    #[error("reserved frame version")]
    ReservedFrameVersion,
    /// Frame type 0b100 is reserved.
    #[error("reserved frame type")]
    ReservedFrameType,
    /// Addressing mode 0b01 is reserved.
    #[error("reserved addressing mode")]
    ReservedAddressingMode,
    /// The address modes and PAN ID Compression bit are not a row of the 2015 PAN ID
    /// compression table (802.15.4-2015 Table 7-2), or the PAN IDs given cannot be encoded.
    #[error("invalid PAN ID compression / addressing combination")]
    InvalidPanIdCompression,
    /// Security on a 2003 frame (whose security has no auxiliary header) is not supported.
    #[error("802.15.4-2003 frame security is not supported")]
    UnsupportedLegacySecurity,
    /// A field is set that this frame version does not have (IEs or sequence-number
    /// suppression before 2015, frame-counter suppression before 2015).
    #[error("field not allowed in this frame version: {0}")]
    VersionMismatch(&'static str),
    /// The FCS does not match the frame content.
    #[error("bad FCS")]
    BadFcs,
    /// An IE's length runs past the end of its region.
    #[error("IE length runs past the end of the frame")]
    IeLength,
    /// A header IE was found where a payload IE must be, or the reverse.
    #[error("IE of the wrong type in this list")]
    IeType,
    /// The payload is encrypted; unprotect it first.
    #[error("payload is encrypted")]
    Encrypted,
    /// An MPX IE transfer type that 802.15.9 reserves (3, 5, 7).
    #[error("reserved MPX transfer type {0}")]
    ReservedTransferType(u8),
    /// A last fragment numbered 0 (never sent by us; treated as malformed).
    #[error("last fragment with fragment number 0")]
    LastFragmentZero,
    /// An abort whose content is neither 1 nor 3 octets.
    #[error("MPX abort with invalid length {0}")]
    AbortLength(usize),
    /// A value does not fit its field (IE too long, Multiplex ID not compressible, …).
    #[error("value does not fit its field: {0}")]
    FieldOverflow(&'static str),
    /// The output buffer is too short.
    #[error("output buffer too short")]
    BufferTooShort,
}

/// Result of wire operations.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a little-endian u16 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads a little-endian u32 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
