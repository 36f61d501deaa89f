//! Configuration of the MPX data service.
//!
//! The IEEE 802.15.9 PIB attributes that govern fragmentation (names, defaults, the reassembly
//! timeout) are not publicly known (spec/mpx-wire-format.md §4.4 items 6–7, §8 item 5), so every
//! knob here is **project-defined**; the doc of each field says where its default comes from.

use kmp_api::addr::{ExtendedAddress, PanId, ShortAddress};
use kmp_api::time::Duration;

use super::MpxError;
use crate::wire::FcsLen;

/// aMaxPhyPacketSize of legacy (O-QPSK 2.4 GHz and similar) PHYs.
pub const PHY_PACKET_SIZE_LEGACY: u16 = 127;
/// aMaxPhyPacketSize of SUN PHYs (IEEE 802.15.4g).
pub const PHY_PACKET_SIZE_SUN: u16 = 2047;
/// Project default for [`MpxConfig::reassembly_timeout`]: the standard's value is UNKNOWN
/// (spec/mpx-wire-format.md §4.4 item 6). Ten seconds covers many MAC retry rounds on a slow
/// SUN PHY while still freeing a dead sender's buffer quickly.
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of one [`MpxService`](super::MpxService).
///
/// Build it with [`MpxConfig::new`] and change fields as needed;
/// [`MpxService::new`](super::MpxService::new) checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpxConfig {
    /// Our extended address (macExtendedAddress): the source of frames sent with extended
    /// source addressing, and of the aborts we send.
    pub extended_address: ExtendedAddress,
    /// Our short address (macShortAddress) if one is assigned; needed for requests that ask for
    /// short source addressing. 0xfffe and 0xffff count as "none".
    pub short_address: Option<ShortAddress>,
    /// Our PAN ID (macPanId): sent as the source PAN ID where the PAN ID compression table
    /// needs one, and assumed for received frames that elide their PAN IDs.
    pub pan_id: PanId,
    /// aMaxPhyPacketSize: the largest MPDU, FCS included, that the PHY carries (127 on legacy
    /// PHYs, 2047 on SUN PHYs). Every frame the service hands out is at most this long. Any
    /// value up to 2047 is accepted so that tests can force fragmentation of small frames.
    pub max_phy_packet_size: u16,
    /// FCS length of the PHY. It is budgeted for and filled in every frame handed out (a driver
    /// whose radio appends the FCS itself strips those octets). [`FcsLen::None`] is refused:
    /// 802.15.4 has no PHY without an FCS, and a frame budgeted without one would not fit.
    pub fcs_len: FcsLen,
    /// Send full frames whose Multiplex ID is below 32 with transfer type 1 (the Multiplex ID in
    /// the Transaction Control octet, spec §2.3). Default off: Wi-SUN stacks accept only type 0.
    pub compress_small_mux_id: bool,
    /// Caps the upper-layer octets carried per fragment (for example to keep frames short on a
    /// lossy channel). `None` (default) fills each fragment to the PHY limit. It never changes
    /// the choice between a full frame and fragmentation.
    pub max_fragment_data: Option<u16>,
    /// The first Data Sequence Number used (macDsn). 802.15.4 initialises macDsn to a random
    /// value; the caller draws it (this crate reads no randomness). Default 0.
    pub initial_dsn: u8,
    /// How long a reassembly waits for its next fragment before it is dropped (reset by every
    /// fragment that makes progress, following the "timeout on the next expected fragment" of
    /// spec §4.4). Project default [`DEFAULT_REASSEMBLY_TIMEOUT`]. It is also how long a
    /// transaction ID that ended in failure is not reused towards the same peer.
    pub reassembly_timeout: Duration,
    /// The largest upper-layer frame we accept for reassembly. A first fragment announcing more
    /// is refused with an abort that carries this value. Default 65535 (the wire limit).
    pub max_upper_layer_size: u16,
    /// How many reassemblies may run at once; a new one beyond this evicts the oldest.
    /// Default 32. Must be at least 1.
    pub max_concurrent_reassemblies: usize,
    /// Bound on reassembly memory: the sum of the Total Sizes of all running reassemblies
    /// (each buffer is reserved in full when its first fragment arrives). A new one that would
    /// exceed it evicts the oldest; a frame larger than the bound itself is refused with an
    /// abort. Default 256 KiB.
    pub max_buffered_octets: usize,
    /// How many MPX-DATA.requests may be pending (queued or in progress) at once; beyond that
    /// `request` fails with [`MpxError::QueueFull`]. Default 256.
    pub max_pending_requests: usize,
    /// After a MAC failure of a fragment, send an Abort with the transaction ID so that the peer
    /// frees its reassembly buffer at once instead of at its timeout. Default on.
    pub send_abort_on_tx_failure: bool,
    /// When MPX-PURGE.request cancels a transaction of which fragments were already handed out,
    /// send an Abort to the peer for the same reason. Default on.
    pub send_abort_on_purge: bool,
}

impl MpxConfig {
    /// Defaults for a legacy 127-octet PHY with a 2-octet FCS; see each field for its default.
    pub fn new(extended_address: ExtendedAddress, pan_id: PanId) -> MpxConfig {
        MpxConfig {
            extended_address,
            short_address: None,
            pan_id,
            max_phy_packet_size: PHY_PACKET_SIZE_LEGACY,
            fcs_len: FcsLen::Two,
            compress_small_mux_id: false,
            max_fragment_data: None,
            initial_dsn: 0,
            reassembly_timeout: DEFAULT_REASSEMBLY_TIMEOUT,
            max_upper_layer_size: u16::MAX,
            max_concurrent_reassemblies: 32,
            max_buffered_octets: 256 * 1024,
            max_pending_requests: 256,
            send_abort_on_tx_failure: true,
            send_abort_on_purge: true,
        }
    }

    /// Checks the values that would make the service unable to work.
    pub fn validate(&self) -> Result<(), MpxError> {
        if self.max_phy_packet_size == 0 || self.max_phy_packet_size > PHY_PACKET_SIZE_SUN {
            return Err(MpxError::InvalidConfig(
                "max_phy_packet_size must be 1..=2047",
            ));
        }
        if self.fcs_len == FcsLen::None {
            return Err(MpxError::InvalidConfig("fcs_len must be Two or Four"));
        }
        if self.max_fragment_data == Some(0) {
            return Err(MpxError::InvalidConfig("max_fragment_data must not be 0"));
        }
        if self.max_concurrent_reassemblies == 0 {
            return Err(MpxError::InvalidConfig(
                "max_concurrent_reassemblies must be at least 1",
            ));
        }
        if self.max_pending_requests == 0 {
            return Err(MpxError::InvalidConfig(
                "max_pending_requests must be at least 1",
            ));
        }
        Ok(())
    }

    /// Our short address if a usable one is assigned.
    pub(crate) fn usable_short_address(&self) -> Option<ShortAddress> {
        self.short_address
            .filter(|s| *s != ShortAddress::NONE_ASSIGNED && *s != ShortAddress::BROADCAST)
    }

    /// The largest upper-layer frame we can reassemble: our configured maximum, or the memory
    /// bound if that is smaller. This is the value our aborts announce.
    pub(crate) fn effective_max_upper_layer_size(&self) -> u16 {
        let by_memory = u16::try_from(self.max_buffered_octets).unwrap_or(u16::MAX);
        self.max_upper_layer_size.min(by_memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        let c = MpxConfig::new(ExtendedAddress::from_u64(1), PanId(0xabcd));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.effective_max_upper_layer_size(), u16::MAX);
        let bad = [
            MpxConfig {
                max_phy_packet_size: 2048,
                ..c.clone()
            },
            MpxConfig {
                max_phy_packet_size: 0,
                ..c.clone()
            },
            MpxConfig {
                fcs_len: FcsLen::None,
                ..c.clone()
            },
            MpxConfig {
                max_fragment_data: Some(0),
                ..c.clone()
            },
            MpxConfig {
                max_concurrent_reassemblies: 0,
                ..c.clone()
            },
            MpxConfig {
                max_pending_requests: 0,
                ..c.clone()
            },
        ];
        for b in bad {
            assert!(matches!(b.validate(), Err(MpxError::InvalidConfig(_))));
        }
        let small = MpxConfig {
            max_buffered_octets: 1000,
            short_address: Some(ShortAddress::NONE_ASSIGNED),
            ..c
        };
        assert_eq!(small.effective_max_upper_layer_size(), 1000);
        assert_eq!(small.usable_short_address(), None);
    }
}
