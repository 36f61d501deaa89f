//! The framing *floor* of the benchmark "octets on air per KMP join within 5% of the floor":
//! the upper-layer (KMP) frames themselves plus the smallest legal 802.15.4 + MPX framing for
//! them, PHY headers and immediate acknowledgments included.
//!
//! Every size below is taken from the wire-format digest, `spec/mpx-wire-format.md` (cited as
//! "spec §x.y"), and from the 802.15.4-2015 sections it and `radio-drivers/src/sim/phy.rs` cite,
//! **not** from our fragmenter ([`super::MpxService`]), so that the tests can hold the fragmenter
//! against it.
//!
//! # The smallest legal framing of one upper-layer frame
//!
//! One unicast upper-layer frame from one extended address to another in the same PAN:
//!
//! | field | octets | source |
//! |---|---|---|
//! | Frame Control (data, version 2 "2015", IE Present) | 2 | spec §1.1 |
//! | Sequence Number (kept: the Imm-Ack echoes it) | 1 | spec §1.2 |
//! | Destination PAN ID, Source PAN ID (ext/ext, PAN ID Compression = 1: row 8) | 0 | spec §1.2 |
//! | Destination + Source Address (extended) | 8 + 8 | spec §1.2 |
//! | Auxiliary Security Header (unsecured) | 0 | spec §1.3 |
//! | HT1 (only Payload IEs follow) | 2 | spec §1.4, §1.6 |
//! | MPX IE descriptor (Payload IE, group 0x3) | 2 | spec §1.4, §1.5 |
//! | MPX IE content: header + upper-layer data | see below | spec §2.1, §2.3 |
//! | Payload Termination (nothing follows the MPX IE) | 0 | spec §1.6 |
//! | FCS | 2 (legacy) or 4 | spec §1.7 |
//!
//! That is 25 octets per MPDU around the MPX IE content with a 2-octet FCS (the worked example
//! of spec §1.8). The MPX IE content header (spec §2.3, §1.8) is 1 octet for a full frame with a
//! compressed Multiplex ID (transfer type 1, Multiplex ID < 32), 3 for a full frame (type 0),
//! 6 for a first fragment (Transaction Control, Fragment Number, Total Size, Multiplex ID) and 2
//! for a middle or last fragment (Transaction Control, Fragment Number). A frame that fits one
//! MPX IE in one MPDU is sent whole (spec §2.6, §4.4 Outbound 1); otherwise each fragment goes in
//! its own MPDU (spec §4.4 Outbound 2), and since every fragment costs the same fixed overhead
//! whatever it carries, the cheapest fragmentation is the one with the fewest fragments.
//!
//! On air each MPDU is preceded by the SHR + PHR, 6 octets on the O-QPSK PHY (802.15.4-2015
//! §12.1.1, §12.1.2), and answered by an Imm-Ack MPDU of Frame Control 2 + Sequence Number 1 +
//! FCS (5 octets with a 2-octet FCS; 802.15.4-2015 §7.3.3, Figure 7-16) in a PPDU of its own.
//! With [`FloorModel::legacy`] one frame thus costs 25 + MPX header + data + 6 + (5 + 6).

/// SHR (4-octet preamble + 1-octet SFD) plus the 1-octet PHR of the O-QPSK PHY, before every
/// PSDU (802.15.4-2015 §12.1.1, §12.1.2, Figure 12-1).
pub const PHY_HEADER_OCTETS: usize = 6;

/// Frame Control field (spec §1.1).
const FRAME_CONTROL: usize = 2;
/// Sequence Number, present (spec §1.2).
const SEQUENCE_NUMBER: usize = 1;
/// An extended address (spec §1.2).
const EXTENDED_ADDRESS: usize = 8;
/// PAN IDs sent with ext/ext addressing and PAN ID Compression = 1 (spec §1.2, table row 8).
const PAN_IDS_EXT_EXT_COMPRESSED: usize = 0;
/// HT1, the Header Termination 1 IE: a header IE descriptor with no content (spec §1.4, §1.6).
const HT1: usize = 2;
/// A payload IE descriptor, here the MPX IE's (spec §1.4).
const PAYLOAD_IE_DESCRIPTOR: usize = 2;
/// The largest payload IE content: an 11-bit length (spec §1.4, §1.8).
const MAX_PAYLOAD_IE_CONTENT: usize = 2047;
/// Transaction Control octet (spec §2.1).
const TRANSACTION_CONTROL: usize = 1;
/// Fragment Number (spec §2.3).
const FRAGMENT_NUMBER: usize = 1;
/// Total Upper-Layer Frame Size (spec §2.3).
const TOTAL_SIZE: usize = 2;
/// Multiplex ID when not compressed (spec §2.3).
const MULTIPLEX_ID: usize = 2;
/// Multiplex IDs below this fit the 5 bits of the compressed form (spec §2.3, §2.4).
const COMPRESSIBLE_BELOW: u16 = 32;
/// Fragment Number is 8 bits: at most 256 fragments (spec §1.8).
const MAX_FRAGMENTS: usize = 256;
/// Total Upper-Layer Frame Size is 16 bits (spec §1.8).
const MAX_UPPER_LAYER_LEN: usize = 65535;
/// Imm-Ack MPDU before its FCS: Frame Control + Sequence Number (802.15.4-2015 §7.3.3,
/// Figure 7-16).
const IMM_ACK_BEFORE_FCS: usize = FRAME_CONTROL + SEQUENCE_NUMBER;

/// MPX header of a full frame with a compressed Multiplex ID, transfer type 1 (spec §2.3).
const COMPRESSED_FULL_FRAME_HEADER: usize = TRANSACTION_CONTROL;
/// MPX header of a full frame, transfer type 0 (spec §2.3).
const FULL_FRAME_HEADER: usize = TRANSACTION_CONTROL + MULTIPLEX_ID;
/// MPX header of a first fragment, transfer type 2 with Fragment Number 0 (spec §2.3).
const FIRST_FRAGMENT_HEADER: usize =
    TRANSACTION_CONTROL + FRAGMENT_NUMBER + TOTAL_SIZE + MULTIPLEX_ID;
/// MPX header of a middle (type 2) or last (type 4) fragment (spec §2.3).
const LATER_FRAGMENT_HEADER: usize = TRANSACTION_CONTROL + FRAGMENT_NUMBER;

/// Parameters of the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorModel {
    /// aMaxPhyPacketSize: the longest MPDU, FCS included (127 on legacy PHYs, 2047 on SUN PHYs;
    /// spec §1.8).
    pub max_phy_packet_size: u16,
    /// FCS octets: 2 (CRC-16) or 4 (CRC-32) (spec §1.7). Also the FCS of the Imm-Ack.
    pub fcs_len: u8,
    /// Count the [`PHY_HEADER_OCTETS`] (SHR + PHR) before every PPDU: each data frame's and,
    /// when [`FloorModel::count_imm_ack`] is set, each Imm-Ack's.
    pub count_phy_header: bool,
    /// Count one Imm-Ack MPDU per data frame (Frame Control 2 + Sequence Number 1 + FCS: 5
    /// octets with a 2-octet FCS; 802.15.4-2015 §7.3.3). Its PHY header is counted under
    /// [`FloorModel::count_phy_header`].
    pub count_imm_ack: bool,
}

impl FloorModel {
    /// The legacy O-QPSK PHY as our simulator models it: 127-octet MPDUs, 2-octet FCS, PHY
    /// headers and Imm-Acks counted: 17 octets per frame on top of its MPDU (6 of PHY header,
    /// then 5 of Imm-Ack and 6 of the Imm-Ack's PHY header).
    pub fn legacy() -> Self {
        FloorModel {
            max_phy_packet_size: 127,
            fcs_len: 2,
            count_phy_header: true,
            count_imm_ack: true,
        }
    }

    /// Octets of one MPDU around the MPX IE content: MHR (Frame Control, Sequence Number, no
    /// PAN ID, two extended addresses), HT1, the MPX IE descriptor and the FCS. 25 for
    /// [`FloorModel::legacy`] (spec §1.8 worked example).
    pub fn mpdu_overhead(&self) -> usize {
        FRAME_CONTROL
            + SEQUENCE_NUMBER
            + PAN_IDS_EXT_EXT_COMPRESSED
            + 2 * EXTENDED_ADDRESS
            + HT1
            + PAYLOAD_IE_DESCRIPTOR
            + usize::from(self.fcs_len)
    }

    /// The largest MPX IE content one MPDU carries: what the PHY leaves after
    /// [`FloorModel::mpdu_overhead`], at most 2047 (spec §1.4). 102 for
    /// [`FloorModel::legacy`].
    pub fn max_mpx_content(&self) -> usize {
        usize::from(self.max_phy_packet_size)
            .saturating_sub(self.mpdu_overhead())
            .min(MAX_PAYLOAD_IE_CONTENT)
    }

    /// Octets on air per data frame besides its MPDU: its PHY header, and the Imm-Ack with its
    /// PHY header, as the model says. 17 for [`FloorModel::legacy`].
    pub fn per_frame_extra(&self) -> usize {
        let phy = if self.count_phy_header {
            PHY_HEADER_OCTETS
        } else {
            0
        };
        let ack = if self.count_imm_ack {
            IMM_ACK_BEFORE_FCS + usize::from(self.fcs_len) + phy
        } else {
            0
        };
        phy + ack
    }

    /// The longest upper-layer frame sent whole (one MPDU) with this Multiplex ID: 101 for
    /// [`FloorModel::legacy`] and a Multiplex ID below 32 (type 1), 99 otherwise (type 0).
    pub fn max_full_frame_len(&self, multiplex_id: u16) -> usize {
        self.max_mpx_content()
            .saturating_sub(full_frame_header(multiplex_id))
    }
}

/// The floor for one upper-layer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorFrames {
    /// Data frames (MPDUs) sent.
    pub frames: usize,
    /// Octets on air: the MPDUs plus, per frame, [`FloorModel::per_frame_extra`].
    pub octets: usize,
}

/// MPX header of a full frame: type 1 (compressed) if the Multiplex ID is below 32, else type 0.
fn full_frame_header(multiplex_id: u16) -> usize {
    if multiplex_id < COMPRESSIBLE_BELOW {
        COMPRESSED_FULL_FRAME_HEADER
    } else {
        FULL_FRAME_HEADER
    }
}

/// Smallest number of octets on air to carry one upper-layer frame of `upper_len` octets (for
/// Multiplex ID 1 that is KMP ID prefix + KMP PDU) from one extended address to another in the
/// same PAN, with the smallest legal framing (see the [module docs](self)): one full-frame MPDU
/// (type 1 if `multiplex_id` < 32, else type 0) when it fits, else the fewest fragments (first
/// fragment with Total Size and Multiplex ID, each fragment in its own MPDU); plus per frame
/// [`FloorModel::per_frame_extra`].
///
/// Where no legal framing exists (more than 65535 octets, more than 256 fragments, or a model
/// whose MPDUs cannot carry a fragment's header plus one octet) both fields are `usize::MAX`;
/// [`try_frame_floor`] returns `None` instead.
pub fn frame_floor(model: &FloorModel, upper_len: usize, multiplex_id: u16) -> FloorFrames {
    try_frame_floor(model, upper_len, multiplex_id).unwrap_or(FloorFrames {
        frames: usize::MAX,
        octets: usize::MAX,
    })
}

/// [`frame_floor`], or `None` where no legal framing exists: `upper_len` above 65535 (16-bit
/// Total Size), a frame needing more than 256 fragments (8-bit Fragment Number; spec §1.8), or
/// a model whose MPDUs cannot carry a fragment header plus one octet.
pub fn try_frame_floor(
    model: &FloorModel,
    upper_len: usize,
    multiplex_id: u16,
) -> Option<FloorFrames> {
    if upper_len > MAX_UPPER_LAYER_LEN {
        return None;
    }
    let overhead = model.mpdu_overhead();
    let extra = model.per_frame_extra();
    let content = model.max_mpx_content();
    let full_header = full_frame_header(multiplex_id);
    if upper_len + full_header <= content {
        return Some(FloorFrames {
            frames: 1,
            octets: overhead + full_header + upper_len + extra,
        });
    }
    let first_cap = content.checked_sub(FIRST_FRAGMENT_HEADER)?;
    let later_cap = content.checked_sub(LATER_FRAGMENT_HEADER)?;
    if first_cap == 0 || later_cap == 0 {
        return None;
    }
    // More than a full frame's worth, so also more than `first_cap` (whose header is larger):
    // the first fragment is full and at least one more follows.
    let rest = upper_len.checked_sub(first_cap)?;
    let frames = 1 + rest.div_ceil(later_cap).max(1);
    if frames > MAX_FRAGMENTS {
        return None;
    }
    let mpx_headers = FIRST_FRAGMENT_HEADER + (frames - 1) * LATER_FRAGMENT_HEADER;
    Some(FloorFrames {
        frames,
        octets: upper_len + mpx_headers + frames * (overhead + extra),
    })
}

#[cfg(test)]
mod tests {
    use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId};
    use kmp_api::id::MultiplexId;
    use kmp_api::primitives::{MacStatus, MpxDataRequest, MpxHandle};
    use kmp_api::security::SecurityParams;
    use kmp_api::time::Instant;

    use super::*;
    use crate::service::{MpxConfig, MpxError, MpxService};
    use crate::wire::FcsLen;

    const SRC: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);
    const DST: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
    const PAN: PanId = PanId(0xabcd);
    const KMP: u16 = 1;
    const LOWPAN: u16 = 0xA0ED;

    fn legacy_config() -> MpxConfig {
        let mut c = MpxConfig::new(SRC, PAN);
        c.compress_small_mux_id = true;
        c
    }

    /// What our service puts on air for one upper-layer frame, counted like the legacy floor
    /// (MPDUs + 6 octets of PHY header + 11 of Imm-Ack with its PHY header per frame), or the
    /// request's error.
    fn service_octets(
        cfg: MpxConfig,
        len: usize,
        multiplex_id: u16,
        extra: usize,
    ) -> Result<FloorFrames, MpxError> {
        let mut svc = MpxService::new(cfg).unwrap();
        let data: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        svc.request(
            Instant::ZERO,
            MpxDataRequest {
                src_addr_mode: AddressingMode::Extended,
                dst_pan: PAN,
                dst_addr: Address::Extended(DST),
                multiplex_id: MultiplexId::from_u16(multiplex_id),
                upper_layer_frame: data,
                handle: MpxHandle(1),
                ack_tx: true,
                seq_num_suppressed: false,
                pan_id_suppressed: true,
                security: SecurityParams::NONE,
            },
        )?;
        let mut out = FloorFrames {
            frames: 0,
            octets: 0,
        };
        while let Some(t) = svc.poll_transmit(Instant::ZERO) {
            assert!(t.ack_request);
            out.frames += 1;
            out.octets += t.frame.len() + extra;
            svc.handle_tx_status(Instant::ZERO, t.token, MacStatus::Success);
        }
        assert_eq!(svc.pending_requests(), 0, "transaction did not complete");
        Ok(out)
    }

    fn ff(frames: usize, octets: usize) -> FloorFrames {
        FloorFrames { frames, octets }
    }

    #[test]
    fn legacy_overheads() {
        let m = FloorModel::legacy();
        assert_eq!(m.mpdu_overhead(), 25); // spec §1.8 worked example
        assert_eq!(m.max_mpx_content(), 102);
        assert_eq!(m.per_frame_extra(), 6 + 5 + 6);
        assert_eq!(m.max_full_frame_len(KMP), 101);
        assert_eq!(m.max_full_frame_len(LOWPAN), 99);
        let sun = FloorModel {
            max_phy_packet_size: 2047,
            fcs_len: 4,
            ..m
        };
        assert_eq!(sun.mpdu_overhead(), 27);
        assert_eq!(sun.max_mpx_content(), 2020);
        assert_eq!(sun.per_frame_extra(), 6 + 7 + 6);
        let bare = FloorModel {
            count_phy_header: false,
            count_imm_ack: false,
            ..m
        };
        assert_eq!(bare.per_frame_extra(), 0);
    }

    /// Hand-computed: MPDU = 25 + MPX header + data; on air + 17 per frame.
    #[test]
    fn hand_computed_values() {
        let m = FloorModel::legacy();
        // Full frames, type 1: 25 + 1 + len + 17.
        assert_eq!(frame_floor(&m, 10, KMP), ff(1, 36 + 17));
        assert_eq!(frame_floor(&m, 80, KMP), ff(1, 106 + 17));
        assert_eq!(frame_floor(&m, 101, KMP), ff(1, 127 + 17));
        // 102: first fragment 25 + 6 + 96 = 127, last 25 + 2 + 6 = 33.
        assert_eq!(frame_floor(&m, 102, KMP), ff(2, 127 + 33 + 2 * 17));
        // 196 = 96 + 100: two full MPDUs.
        assert_eq!(frame_floor(&m, 196, KMP), ff(2, 2 * 127 + 2 * 17));
        // 197: a third MPDU of 25 + 2 + 1.
        assert_eq!(frame_floor(&m, 197, KMP), ff(3, 2 * 127 + 28 + 3 * 17));
        // 500 = 96 + 4 × 100 + 4: five full MPDUs and one of 25 + 2 + 4 = 31.
        assert_eq!(frame_floor(&m, 500, KMP), ff(6, 5 * 127 + 31 + 6 * 17));
        // Type 0 (EtherType): 25 + 3 + len; 100 no longer fits.
        assert_eq!(frame_floor(&m, 99, LOWPAN), ff(1, 127 + 17));
        assert_eq!(frame_floor(&m, 100, LOWPAN), ff(2, 127 + 31 + 2 * 17));
        // Limits: 96 + 255 × 100 = 25596 octets in 256 fragments.
        assert_eq!(frame_floor(&m, 25596, KMP), ff(256, 256 * 127 + 256 * 17));
        assert_eq!(try_frame_floor(&m, 25597, KMP), None);
        assert_eq!(frame_floor(&m, 25597, KMP), ff(usize::MAX, usize::MAX));
        let sun = FloorModel {
            max_phy_packet_size: 2047,
            fcs_len: 4,
            ..m
        };
        assert_eq!(try_frame_floor(&sun, 65536, KMP), None);
        let tiny = FloorModel {
            max_phy_packet_size: 31,
            ..m
        };
        assert_eq!(tiny.max_mpx_content(), 6);
        assert_eq!(frame_floor(&tiny, 5, KMP), ff(1, 31 + 17));
        assert_eq!(try_frame_floor(&tiny, 6, KMP), None);
    }

    /// Our service, unsecured, ext/ext, PAN IDs suppressed, type 1 enabled, hits the floor
    /// exactly for every length (legacy PHY).
    #[test]
    fn service_hits_the_floor_legacy() {
        let m = FloorModel::legacy();
        let lengths = (1..=1300).chain([25_000, 25_596]);
        for len in lengths {
            for mux in [KMP, LOWPAN] {
                let got = service_octets(legacy_config(), len, mux, m.per_frame_extra()).unwrap();
                assert_eq!(got, frame_floor(&m, len, mux), "len {len}, mux {mux:#x}");
            }
        }
        // Past 256 fragments both refuse.
        assert!(matches!(
            service_octets(legacy_config(), 25_597, KMP, 17),
            Err(MpxError::FrameTooLong { max: 25_596, .. })
        ));
        assert_eq!(try_frame_floor(&m, 25_597, KMP), None);
    }

    /// The same on a SUN PHY: 2047-octet MPDUs, 4-octet FCS.
    #[test]
    fn service_hits_the_floor_sun() {
        let m = FloorModel {
            max_phy_packet_size: 2047,
            fcs_len: 4,
            ..FloorModel::legacy()
        };
        let mut cfg = legacy_config();
        cfg.max_phy_packet_size = 2047;
        cfg.fcs_len = FcsLen::Four;
        for len in [1, 2018, 2019, 2020, 2021, 4034, 4035, 10_000, 65_535] {
            let got = service_octets(cfg.clone(), len, KMP, m.per_frame_extra()).unwrap();
            assert_eq!(got, frame_floor(&m, len, KMP), "len {len}");
        }
    }

    /// With the default configuration (`compress_small_mux_id = false`, for Wi-SUN peers that
    /// accept only type 0) our service sends KMP frames with a 2-octet Multiplex ID: 2 octets
    /// above the floor per full frame, and the lengths 100 and 101 take two fragments instead
    /// of one full frame. Fragmented frames are unaffected (fragments have no compressed form).
    #[test]
    fn default_config_misses_the_floor_by_the_multiplex_id() {
        let m = FloorModel::legacy();
        let cfg = MpxConfig::new(SRC, PAN);
        assert!(!cfg.compress_small_mux_id);
        for len in 1..=400 {
            let got = service_octets(cfg.clone(), len, KMP, m.per_frame_extra()).unwrap();
            let floor = frame_floor(&m, len, KMP);
            let expected = match len {
                ..=99 => ff(1, floor.octets + 2),
                // Two fragments: 127 + (25 + 2 + len - 96) + 2 × 17 versus 25 + 1 + len + 17.
                100 | 101 => ff(2, floor.octets + 32 + 17),
                _ => floor,
            };
            assert_eq!(got, expected, "len {len}");
        }
    }
}
