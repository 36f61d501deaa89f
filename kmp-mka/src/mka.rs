//! MKA, the MACsec Key Agreement protocol (IEEE 802.1X-2010/2020 clause 9 and 11), sans-IO,
//! carried over IEEE 802.15.9 as EAPOL-MKA inside KMP ID 1.
//!
//! - [`keys`]: the 802.1X KDF, CAK/CKN (pre-shared or from an EAP MSK), KEK, ICK, SAK.
//! - [`wire`]: the MKPDU codec and its ICV.
//! - [`participant`]: an MKA participant — peer lists, key-server election, SAK distribution
//!   and use — driven by `handle_mkpdu(now, …)`, `handle_timeout(now)`, `poll_timeout()`,
//!   `poll_action()`.
//!
//! # Choices where 802.15.9 or the standard leaves room
//!
//! - **ICV coverage.** On a LAN the ICV is `AES-CMAC(ICK, DA ‖ SA ‖ EtherType ‖ MKPDU)`
//!   (802.1X-2010 §9.4.1). 802.15.9 has no Ethernet header, so the default
//!   ([`wire::IcvCoverage::PaeGroupHeader`]) puts in the header the MKPDU would have if a bridge
//!   relayed it to a LAN: DA = PAE group address, SA = the System Identifier of the sender's
//!   SCI (the MAC part, as on a LAN where the SCI is built from the port's MAC), EtherType
//!   0x888E. So an MKPDU is the same octets, ICV included, over MPX and in an Ethernet pcap,
//!   and the receiver needs nothing from the 802.15.4 header (short source addresses and
//!   relays work). The SCI is authenticated anyway, so this binds nothing a link-layer address
//!   would add; [`wire::IcvCoverage::MkpduOnly`] drops the pseudo-header.
//! - **SCI.** [`wire::Sci::from_eui64`]: System Identifier = the EUI-48 paired with the
//!   EUI-64 (octets 0–2, 5–7: drops the FF-FE of a MAC-derived EUI-64), Port Identifier =
//!   octets 3–4. A permutation of the EUI-64, so unique per 802.15.4 interface (a 6-octet cut
//!   alone collides, e.g. for 00-12-4B-00-xx-… EUI-64s), and with the default ICV coverage the
//!   SA is that EUI-48. Configurable ([`wire::Sci::new`] for MAC + port).
//! - **KN in the SAK context** is four big-endian octets (hostapd copies host order).
//! - **Unknown parameter sets** are decoded as [`wire::UnknownSet`] and ignored by the
//!   participant (802.1X-2010 §11.11.3); a known set twice is a codec error.

pub mod keys;
pub mod participant;
pub mod wire;

use kmp_api::crypto::CryptoError;
use kmp_api::rng::RngError;

pub use keys::{CakKeys, Ckn, KeyLength, kdf};
pub use participant::{MkaAction, MkaConfig, MkaEvent, Participant};
pub use wire::{IcvCoverage, MemberIdentifier, Mkpdu, Sci, WireError};

/// Why a key could not be derived, an MKPDU was refused, or a participant could not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MkaError {
    /// The codec refused the PDU.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A crypto primitive failed (bad key length, unwrap integrity failure).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The random source failed.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The ICV does not match: another CAK with the same CKN, or an altered PDU.
    #[error("ICV mismatch")]
    IcvMismatch,
    /// A CAK that is neither 16 nor 32 octets.
    #[error("CAK of {0} octets")]
    CakLength(usize),
    /// A CKN that is not 1 to 32 octets.
    #[error("CKN of {0} octets")]
    CknLength(usize),
    /// An MSK shorter than the CAK to derive from it.
    #[error("MSK of {0} octets")]
    MskLength(usize),
    /// Two addresses of different lengths for the EAP CAK derivation.
    #[error("addresses of {0} and {1} octets")]
    AddressLengths(usize, usize),
    /// The MKPDU names another CAK (its CKN): not for this participant.
    #[error("MKPDU for another CKN")]
    OtherCkn,
    /// The MKPDU carries this participant's own MI (an echo, or an MI collision).
    #[error("MKPDU with our own MI")]
    OwnMi,
    /// The Actor MN is not above the last one seen from that MI (a replay).
    #[error("stale MN {got} from a peer at MN {last}")]
    StaleMn {
        /// The MN last accepted from that peer.
        last: u32,
        /// The MN received.
        got: u32,
    },
    /// The Algorithm Agility is not 802.1X-2010's.
    #[error("algorithm agility {0:#010x} not supported")]
    AlgorithmAgility(u32),
    /// A Distributed SAK from a member that is not our elected key server, or with a KN that
    /// is not newer than the current one.
    #[error("distributed SAK not acceptable: {0}")]
    UnexpectedSak(&'static str),
}
