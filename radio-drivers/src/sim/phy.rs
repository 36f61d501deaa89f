//! IEEE 802.15.4-2015 constants for the O-QPSK PHY in the 2450 MHz band and the unslotted
//! CSMA-CA MAC, and the air time arithmetic built on them.

use kmp_api::Duration;

/// One O-QPSK symbol at 2450 MHz: 62.5 ksymbol/s, i.e. 16 µs (802.15.4-2015 §12.2.2,
/// Table 12-1 "symbol rate").
pub const SYMBOL_US: u64 = 16;

/// One octet on air: 250 kb/s, two symbols per octet, 32 µs (§12.2.2).
pub const OCTET_US: u64 = 2 * SYMBOL_US;

/// Synchronization header (4-octet preamble + 1-octet SFD) plus the 1-octet PHR: 6 octets,
/// 192 µs, before every PSDU (§12.1.1, §12.1.2, Figure 12-1).
pub const SHR_PHR_OCTETS: usize = 6;

/// aMaxPhyPacketSize: the longest PSDU (MPDU including FCS), 127 octets (§11.3, Table 11-1).
pub const MAX_PSDU_OCTETS: usize = 127;

/// aTurnaroundTime: 12 symbols (192 µs) to switch between receive and transmit (§11.3,
/// Table 11-1; §12.3.6 for O-QPSK). Separates CCA from the transmission and a frame from its
/// acknowledgment.
pub const TURNAROUND_US: u64 = 12 * SYMBOL_US;

/// Length of an Imm-Ack MPDU: 2-octet frame control, 1-octet sequence number, 2-octet FCS
/// (§7.3.3, Figure 7-16).
pub const IMM_ACK_OCTETS: usize = 5;

/// macAckWaitDuration for O-QPSK 2450 MHz: the sum of aUnitBackoffPeriod, aTurnaroundTime,
/// phySHRDuration and ceil(6 × phySymbolsPerOctet), i.e. 20 + 12 + 10 + 12 = 54 symbols =
/// 864 µs (§8.4.3.1, Table 8-94).
pub const ACK_WAIT_US: u64 = 54 * SYMBOL_US;

/// macMaxFrameRetries default: 3 retransmissions after the first attempt (§8.4.3.1,
/// Table 8-94).
pub const MAX_FRAME_RETRIES: u8 = 3;

/// macMinBE default: 3 (§8.4.3.1, Table 8-94; used by §6.2.5.1 unslotted CSMA-CA).
pub const MIN_BE: u8 = 3;

/// macMaxBE default: 5 (§8.4.3.1, Table 8-94).
pub const MAX_BE: u8 = 5;

/// macMaxCSMABackoffs default: 4 (§8.4.3.1, Table 8-94). NB above this is a channel access
/// failure.
pub const MAX_CSMA_BACKOFFS: u8 = 4;

/// aUnitBackoffPeriod: 20 symbols = 320 µs (§8.1.3, Table 8-93; §6.2.5.1).
pub const UNIT_BACKOFF_US: u64 = 20 * SYMBOL_US;

/// CCA detection time: 8 symbol periods = 128 µs (§12.2.7, "the CCA detection time shall be
/// equal to 8 symbol periods").
pub const CCA_US: u64 = 8 * SYMBOL_US;

/// Air time of one PPDU carrying a `psdu_len`-octet MPDU: (6 + len) × 32 µs.
///
/// A 127-octet frame takes (6 + 127) × 32 = 4256 µs; an Imm-Ack (5 octets) 352 µs.
pub fn air_time(psdu_len: usize) -> Duration {
    // usize → u64 cannot fail on the platforms we build for; saturate rather than cast.
    let octets = u64::try_from(psdu_len.saturating_add(SHR_PHR_OCTETS)).unwrap_or(u64::MAX);
    Duration::from_micros(octets.saturating_mul(OCTET_US))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn air_time_arithmetic() {
        assert_eq!(air_time(127).as_micros(), 4256);
        assert_eq!(air_time(IMM_ACK_OCTETS).as_micros(), 352);
        assert_eq!(air_time(0).as_micros(), 192);
        assert_eq!(ACK_WAIT_US, 864);
        assert_eq!(UNIT_BACKOFF_US, 320);
        assert_eq!(TURNAROUND_US, 192);
        assert_eq!(CCA_US, 128);
    }
}
