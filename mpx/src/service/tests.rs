//! Service-level tests: format choice at the size boundaries, the spec §6 examples byte for
//! byte, transmit gating, failures, purge, aborts, timeouts, eviction and malformed input.

use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId, ShortAddress};
use kmp_api::id::MultiplexId;
use kmp_api::primitives::{
    MacStatus, MpxDataIndication, MpxDataRequest, MpxHandle, MpxPurgeRequest,
};
use kmp_api::security::{KeyIdentifier, SecurityLevel, SecurityParams};
use kmp_api::time::{Duration, Instant};

use super::*;
use crate::wire::{FcsLen, Frame, FrameRepr, MpxIeRepr, ParseOptions, PayloadIeGroup};

/// The spec §6 addresses: "Dst" 02:…:01 and "Src" 02:…:02.
const ONE: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
const TWO: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);
const THREE: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 3]);
const PAN: PanId = PanId(0xabcd);
const T0: Instant = Instant::ZERO;

/// Key ID mode 1 + ENC-MIC-64: 6 octets of auxiliary header and 8 of MIC (spec §1.8).
const SEC: SecurityParams = SecurityParams {
    level: SecurityLevel::EncMic64,
    key_id: KeyIdentifier::Index(1),
};

fn config(own: ExtendedAddress) -> MpxConfig {
    MpxConfig::new(own, PAN)
}

fn service(own: ExtendedAddress, f: impl FnOnce(&mut MpxConfig)) -> MpxService {
    let mut c = config(own);
    f(&mut c);
    MpxService::new(c).unwrap()
}

fn request(handle: u32, dst: impl Into<Address>, data: Vec<u8>) -> MpxDataRequest {
    MpxDataRequest {
        src_addr_mode: AddressingMode::Extended,
        dst_pan: PAN,
        dst_addr: dst.into(),
        multiplex_id: MultiplexId::Kmp,
        upper_layer_frame: data,
        handle: MpxHandle(handle),
        ack_tx: true,
        seq_num_suppressed: false,
        pan_id_suppressed: true,
        security: SecurityParams::NONE,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + 3) % 251).unwrap())
        .collect()
}

const UNPROTECTED: ParseOptions = ParseOptions {
    check_fcs: true,
    unprotected: true,
};

/// Checks a handed-out frame (length bound, parse, one MPX IE, AR bit) and returns the MPX IE
/// content.
fn mpx_content(svc: &MpxService, t: &Transmit) -> Vec<u8> {
    let c = svc.config();
    assert!(t.frame.len() <= usize::from(c.max_phy_packet_size));
    let f = Frame::new_checked(&t.frame[..], c.fcs_len).unwrap();
    let repr = FrameRepr::parse_with(&f, UNPROTECTED).unwrap();
    assert_eq!(repr.ack_request, t.ack_request);
    assert_eq!(repr.dst_addr, t.dst);
    let ies: Vec<_> = repr.payload_ies().collect();
    assert_eq!(ies.len(), 1);
    assert_eq!(ies[0].group, PayloadIeGroup::Mpx);
    ies[0].content.to_vec()
}

/// Parses a frame handed out by one service and feeds it to another.
fn deliver(to: &mut MpxService, t: &Transmit, now: Instant) {
    let f = Frame::new_checked(&t.frame[..], to.config().fcs_len).unwrap();
    let repr = FrameRepr::parse_with(&f, UNPROTECTED).unwrap();
    to.receive(now, &repr, 0xff);
}

fn events(svc: &mut MpxService) -> Vec<MpxEvent> {
    std::iter::from_fn(|| svc.poll_event()).collect()
}

fn confirms(svc: &mut MpxService) -> Vec<(u32, MacStatus)> {
    events(svc)
        .into_iter()
        .filter_map(|e| match e {
            MpxEvent::Confirm(c) => Some((c.handle.0, c.status)),
            MpxEvent::Indication(_) => None,
        })
        .collect()
}

fn indications(svc: &mut MpxService) -> Vec<MpxDataIndication> {
    events(svc)
        .into_iter()
        .filter_map(|e| match e {
            MpxEvent::Indication(i) => Some(i),
            MpxEvent::Confirm(_) => None,
        })
        .collect()
}

/// Runs a lossless link between two services until both are quiet; returns every frame.
fn pump(a: &mut MpxService, b: &mut MpxService, now: Instant) -> Vec<Transmit> {
    let mut all = Vec::new();
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(now) {
            mpx_content(a, &t);
            deliver(b, &t, now);
            a.handle_tx_status(now, t.token, MacStatus::Success);
            all.push(t);
            moved = true;
        }
        while let Some(t) = b.poll_transmit(now) {
            mpx_content(b, &t);
            deliver(a, &t, now);
            b.handle_tx_status(now, t.token, MacStatus::Success);
            all.push(t);
            moved = true;
        }
        if !moved {
            return all;
        }
    }
}

fn info_from(src: ExtendedAddress, to: ExtendedAddress) -> RxFrameInfo {
    RxFrameInfo {
        src_pan: None,
        src_addr: src.into(),
        dst_pan: None,
        dst_addr: to.into(),
        dsn: Some(1),
        security: SecurityParams::NONE,
        lqi: 7,
    }
}

fn ie(repr: MpxIeRepr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b
}

#[test]
fn full_frame_boundary_for_127_and_2047_with_and_without_security() {
    for phy in [PHY_PACKET_SIZE_LEGACY, PHY_PACKET_SIZE_SUN] {
        for security in [SecurityParams::NONE, SEC] {
            for fcs in [FcsLen::Two, FcsLen::Four] {
                for compress in [false, true] {
                    // MHR 19 (ext/ext, PAN IDs elided, seq) + HT1 2 + MPX descriptor 2 + FCS,
                    // plus 6 + 8 for key ID mode 1 and MIC-64.
                    let sec = if security == SEC { 14 } else { 0 };
                    let content = usize::from(phy) - 23 - fcs.len() - sec;
                    let full_max = content - if compress { 1 } else { 3 };
                    let mut a = service(TWO, |c| {
                        c.max_phy_packet_size = phy;
                        c.fcs_len = fcs;
                        c.compress_small_mux_id = compress;
                    });
                    let mut r = request(1, ONE, pattern(full_max));
                    r.security = security;
                    a.request(T0, r.clone()).unwrap();
                    let t = a.poll_transmit(T0).unwrap();
                    assert_eq!(
                        t.kind,
                        TransmitKind::FullFrame {
                            handle: MpxHandle(1)
                        }
                    );
                    assert_eq!(t.frame.len(), usize::from(phy), "exactly full");
                    assert_eq!(t.security, security);
                    let got = mpx_content(&a, &t);
                    let parsed = MpxIeRepr::parse_bytes(&got).unwrap();
                    assert_eq!(parsed.data(), &r.upper_layer_frame[..]);
                    let tt = parsed.transfer_type();
                    assert_eq!(
                        tt == crate::wire::TransferType::FullFrameCompressed,
                        compress
                    );
                    a.handle_tx_status(T0, t.token, MacStatus::Success);
                    assert_eq!(confirms(&mut a), vec![(1, MacStatus::Success)]);

                    // One octet more: fragments, each as large as the PHY allows.
                    r.handle = MpxHandle(2);
                    r.upper_layer_frame = pattern(full_max + 1);
                    a.request(T0, r).unwrap();
                    let t = a.poll_transmit(T0).unwrap();
                    assert!(matches!(
                        t.kind,
                        TransmitKind::Fragment {
                            fragment_number: 0,
                            last: false,
                            ..
                        }
                    ));
                    assert_eq!(t.frame.len(), usize::from(phy));
                    assert!(t.ack_request);
                    let first = mpx_content(&a, &t);
                    let first = MpxIeRepr::parse_bytes(&first).unwrap();
                    assert_eq!(first.data().len(), content - 6);
                    a.handle_tx_status(T0, t.token, MacStatus::Success);
                    let t = a.poll_transmit(T0).unwrap();
                    let last = mpx_content(&a, &t);
                    let last = MpxIeRepr::parse_bytes(&last).unwrap();
                    assert!(matches!(
                        last,
                        MpxIeRepr::LastFragment {
                            fragment_number: 1,
                            ..
                        }
                    ));
                    assert_eq!(
                        first.data().len() + last.data().len(),
                        full_max + 1,
                        "phy {phy} fcs {fcs:?} compress {compress}"
                    );
                }
            }
        }
    }
}

#[test]
fn secured_frames_carry_placeholder_counter_and_zero_mic() {
    let mut a = service(TWO, |_| {});
    let mut r = request(1, ONE, pattern(10));
    r.security = SEC;
    a.request(T0, r).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    let f = Frame::new_checked(&t.frame[..], FcsLen::Two).unwrap();
    assert_eq!(f.mic(), &[0u8; 8]);
    let aux = f.aux_security_header().unwrap();
    assert_eq!(aux.frame_counter(), Some(0));
    assert_eq!(aux.security_level(), SecurityLevel::EncMic64);
    assert_eq!(aux.key_identifier(), KeyIdentifier::Index(1));
    // A receiver reports the protection in the indication.
    let mut b = service(ONE, |_| {});
    deliver(&mut b, &t, T0);
    assert_eq!(indications(&mut b)[0].security, SEC);
}

fn hex_of(t: &Transmit) -> String {
    hex::encode(&t.frame)
}

#[test]
fn spec_example_1_and_2_full_frames_byte_for_byte() {
    // Ex 1: seq 5, Dst PAN present (row 7), type 0.
    let mut a = service(TWO, |c| c.initial_dsn = 5);
    let mut r = request(1, ONE, vec![1, 3, 1, 0, 0]);
    r.pan_id_suppressed = false;
    a.request(T0, r).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    assert_eq!(
        hex_of(&t),
        "21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4"
    );
    // Ex 2: compressed Multiplex ID, seq and PAN IDs suppressed.
    let mut a = service(TWO, |c| c.compress_small_mux_id = true);
    let mut r = request(1, ONE, vec![1, 3, 1, 0, 0]);
    r.seq_num_suppressed = true;
    a.request(T0, r).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    assert_eq!(
        hex_of(&t),
        "61ef01000000000000020200000000000002003f06980901030100001c27"
    );
}

const EX3: [&str; 4] = [
    "61ee1001000000000000020200000000000002003f0c982a0010000100060303000b10af17",
    "61ee1101000000000000020200000000000002003f08982a011112131415163cc3",
    "61ee1201000000000000020200000000000002003f06982c021718191a80ad",
    "61ee1301000000000000020200000000000002003f03982e00048629",
];

#[test]
fn spec_example_3_fragments_and_abort_byte_for_byte() {
    // 37 octets is the first fragment's MPDU; 6 octets per fragment reproduces 6/6/4.
    let mut a = service(TWO, |c| {
        c.max_phy_packet_size = 37;
        c.max_fragment_data = Some(6);
        c.initial_dsn = 0x01;
    });
    // TIDs roll: five transactions (15 frames) elsewhere bring the next TID to 5 and the DSN
    // to 0x10.
    for h in 0..5 {
        a.request(T0, request(100 + h, THREE, pattern(16))).unwrap();
        let mut sink = service(THREE, |c| c.max_phy_packet_size = 37);
        pump(&mut a, &mut sink, T0);
        assert_eq!(indications(&mut sink).len(), 1);
    }
    confirms(&mut a);
    let frame = vec![
        0x06, 0x03, 0x03, 0x00, 0x0b, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        0x1a,
    ];
    a.request(T0, request(1, ONE, frame.clone())).unwrap();
    let mut b = service(ONE, |c| c.max_phy_packet_size = 37);
    for want in &EX3[..3] {
        let t = a.poll_transmit(T0).unwrap();
        assert_eq!(&hex_of(&t), want);
        assert_eq!(a.poll_transmit(T0), None, "one fragment at a time");
        deliver(&mut b, &t, T0);
        a.handle_tx_status(T0, t.token, MacStatus::Success);
    }
    assert_eq!(confirms(&mut a), vec![(1, MacStatus::Success)]);
    let ind = indications(&mut b);
    assert_eq!(ind.len(), 1);
    assert_eq!(ind[0].upper_layer_frame, frame);
    assert_eq!(ind[0].src_addr, Address::Extended(TWO));
    assert_eq!(ind[0].dsn, Some(0x12));
    assert_eq!(ind[0].src_pan, Some(PAN), "row 8: PAN IDs implied");

    // Ex 3d: an abort with max size 1024 from 02:…:02 to 02:…:01, as sent by a receiver at
    // 02:…:02 that accepts at most 1024 octets, refusing a first fragment from 02:…:01.
    let mut r = service(TWO, |c| {
        c.max_upper_layer_size = 1024;
        c.initial_dsn = 0x13;
    });
    let first = ie(MpxIeRepr::FirstFragment {
        transaction_id: 5,
        total_size: 2000,
        multiplex_id: MultiplexId::Kmp,
        data: &[6, 3],
    });
    r.receive_mpx_ie(T0, &info_from(ONE, TWO), &first);
    assert_eq!(r.counters().rx_oversized, 1);
    assert_eq!(r.active_reassemblies(), 0);
    let t = r.poll_transmit(T0).unwrap();
    assert_eq!(hex_of(&t), EX3[3]);
    assert_eq!(
        t.kind,
        TransmitKind::Abort {
            transaction_id: 5,
            max_size: Some(1024)
        }
    );
}

#[test]
fn every_frame_fits_parses_and_reassembles() {
    let sizes = [
        0usize, 1, 98, 99, 100, 101, 196, 197, 500, 2021, 2022, 5000, 25_596,
    ];
    for phy in [PHY_PACKET_SIZE_LEGACY, 60, PHY_PACKET_SIZE_SUN] {
        for fcs in [FcsLen::Two, FcsLen::Four] {
            for security in [SecurityParams::NONE, SEC] {
                for short in [false, true] {
                    let set = |c: &mut MpxConfig| {
                        c.max_phy_packet_size = phy;
                        c.fcs_len = fcs;
                        c.short_address = Some(ShortAddress(0x0010));
                    };
                    let mut a = service(TWO, set);
                    let mut b = service(ONE, set);
                    for (h, &len) in sizes.iter().enumerate() {
                        let h = u32::try_from(h).unwrap();
                        let data = pattern(len);
                        let mut r = request(h, ONE, data.clone());
                        r.security = security;
                        r.pan_id_suppressed = h % 2 == 0;
                        r.seq_num_suppressed = h % 3 == 0;
                        if short {
                            r.src_addr_mode = AddressingMode::Short;
                            r.dst_addr = Address::Short(ShortAddress(0x0020));
                        }
                        match a.request(T0, r) {
                            Ok(()) => {}
                            Err(MpxError::FrameTooLong { max, .. }) => {
                                assert!(len > max);
                                continue;
                            }
                            Err(e) => panic!("{e}"),
                        }
                        pump(&mut a, &mut b, T0);
                        assert_eq!(confirms(&mut a), vec![(h, MacStatus::Success)]);
                        let ind = indications(&mut b);
                        assert_eq!(ind.len(), 1, "phy {phy} len {len}");
                        assert_eq!(ind[0].upper_layer_frame, data);
                        assert_eq!(ind[0].security, security);
                    }
                    assert_eq!(b.active_reassemblies(), 0);
                    assert_eq!(b.buffered_octets(), 0);
                    assert_eq!(a.counters().tx_internal_errors, 0);
                }
            }
        }
    }
}

#[test]
fn transmit_gating_and_per_destination_order() {
    let mut a = service(TWO, |_| {});
    a.request(T0, request(1, ONE, pattern(300))).unwrap();
    a.request(T0, request(2, ONE, pattern(10))).unwrap();
    a.request(T0, request(3, THREE, pattern(10))).unwrap();
    let t1 = a.poll_transmit(T0).unwrap();
    assert!(matches!(
        t1.kind,
        TransmitKind::Fragment {
            handle: MpxHandle(1),
            fragment_number: 0,
            ..
        }
    ));
    // Handle 2 goes to the same destination: it waits. Handle 3 does not.
    let t3 = a.poll_transmit(T0).unwrap();
    assert_eq!(
        t3.kind,
        TransmitKind::FullFrame {
            handle: MpxHandle(3)
        }
    );
    assert_eq!(
        a.poll_transmit(T0),
        None,
        "no second fragment before Success"
    );
    // Statuses other than Success for another token change nothing.
    a.handle_tx_status(T0, TxToken(999), MacStatus::Success);
    assert_eq!(a.counters().tx_status_unknown, 1);
    assert_eq!(a.poll_transmit(T0), None);
    a.handle_tx_status(T0, t3.token, MacStatus::Success);
    a.handle_tx_status(T0, t1.token, MacStatus::Success);
    let mut kinds = Vec::new();
    while let Some(t) = a.poll_transmit(T0) {
        kinds.push(t.kind);
        assert_eq!(a.poll_transmit(T0), None);
        a.handle_tx_status(T0, t.token, MacStatus::Success);
    }
    assert_eq!(kinds.len(), 3 + 1, "fragments 1..=3, then handle 2");
    assert_eq!(
        kinds[3],
        TransmitKind::FullFrame {
            handle: MpxHandle(2)
        }
    );
    assert_eq!(
        confirms(&mut a),
        vec![
            (3, MacStatus::Success),
            (1, MacStatus::Success),
            (2, MacStatus::Success)
        ]
    );
    assert_eq!(a.pending_requests(), 0);
}

#[test]
fn failure_confirms_with_mac_status_and_sends_abort() {
    for send_abort in [true, false] {
        let mut a = service(TWO, |c| c.send_abort_on_tx_failure = send_abort);
        a.request(T0, request(7, ONE, pattern(300))).unwrap();
        let t = a.poll_transmit(T0).unwrap();
        let TransmitKind::Fragment { transaction_id, .. } = t.kind else {
            panic!("{:?}", t.kind)
        };
        a.handle_tx_status(T0, t.token, MacStatus::Success);
        let t = a.poll_transmit(T0).unwrap();
        a.handle_tx_status(T0, t.token, MacStatus::NoAck);
        assert_eq!(confirms(&mut a), vec![(7, MacStatus::NoAck)]);
        assert_eq!(a.counters().tx_failures, 1);
        if send_abort {
            let abort = a.poll_transmit(T0).unwrap();
            assert_eq!(
                abort.kind,
                TransmitKind::Abort {
                    transaction_id,
                    max_size: None
                }
            );
            assert_eq!(abort.dst, Address::Extended(ONE));
            let content = mpx_content(&a, &abort);
            assert_eq!(content, vec![(transaction_id << 3) | 6]);
            a.handle_tx_status(T0, abort.token, MacStatus::NoAck);
            assert_eq!(a.counters().tx_aborts_failed, 1);
        }
        assert_eq!(a.poll_transmit(T0), None, "no further fragments");
        assert_eq!(a.pending_requests(), 0);
    }
}

#[test]
fn a_full_frame_failure_is_confirmed_without_abort() {
    let mut a = service(TWO, |_| {});
    a.request(T0, request(1, ONE, pattern(5))).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    a.handle_tx_status(T0, t.token, MacStatus::ChannelAccessFailure);
    assert_eq!(confirms(&mut a), vec![(1, MacStatus::ChannelAccessFailure)]);
    assert_eq!(a.poll_transmit(T0), None);
}

#[test]
fn purge_queued_and_running_transactions() {
    let mut a = service(TWO, |_| {});
    a.request(T0, request(1, ONE, pattern(300))).unwrap();
    a.request(T0, request(2, ONE, pattern(300))).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    // Purging the queued one: no frame of it ever went out, so no abort.
    let c = a.purge(
        T0,
        MpxPurgeRequest {
            handle: MpxHandle(2),
        },
    );
    assert_eq!(c.status, MacStatus::Success);
    assert_eq!(confirms(&mut a), vec![(2, MacStatus::Purged)]);
    // Purging the running one while its first fragment is out.
    let c = a.purge(
        T0,
        MpxPurgeRequest {
            handle: MpxHandle(1),
        },
    );
    assert_eq!(c.status, MacStatus::Success);
    assert_eq!(confirms(&mut a), vec![(1, MacStatus::Purged)]);
    let abort = a.poll_transmit(T0).unwrap();
    assert!(matches!(
        abort.kind,
        TransmitKind::Abort { max_size: None, .. }
    ));
    a.handle_tx_status(T0, abort.token, MacStatus::Success);
    // The late status of the purged fragment is expected, not an error, and frees nothing.
    a.handle_tx_status(T0, t.token, MacStatus::Success);
    assert_eq!(a.counters().tx_status_unknown, 0);
    assert_eq!(a.poll_transmit(T0), None);
    assert!(confirms(&mut a).is_empty());
    assert_eq!(a.counters().purged, 2);
    // Unknown handle.
    let c = a.purge(
        T0,
        MpxPurgeRequest {
            handle: MpxHandle(1),
        },
    );
    assert_eq!(c.status, MacStatus::InvalidParameter);
}

#[test]
fn abort_from_peer_ends_the_transaction() {
    let mut a = service(TWO, |_| {});
    let mut r = request(1, ONE, pattern(300));
    r.security = SEC;
    a.request(T0, r).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    let TransmitKind::Fragment { transaction_id, .. } = t.kind else {
        panic!()
    };
    a.handle_tx_status(T0, t.token, MacStatus::Success);
    let t = a.poll_transmit(T0).unwrap();
    let abort = ie(MpxIeRepr::Abort {
        transaction_id,
        max_size: Some(200),
    });
    // An unprotected abort cannot stop a protected transaction.
    a.receive_mpx_ie(T0, &info_from(ONE, TWO), &abort);
    assert_eq!(a.counters().rx_security_mismatch, 1);
    assert!(confirms(&mut a).is_empty());
    // A different TID or another peer changes nothing.
    let other = ie(MpxIeRepr::Abort {
        transaction_id: (transaction_id + 1) % 32,
        max_size: None,
    });
    let mut info = info_from(ONE, TWO);
    info.security = SEC;
    a.receive_mpx_ie(T0, &info, &other);
    a.receive_mpx_ie(
        T0,
        &RxFrameInfo {
            src_addr: THREE.into(),
            ..info
        },
        &abort,
    );
    assert!(confirms(&mut a).is_empty());
    a.receive_mpx_ie(T0, &info, &abort);
    assert_eq!(
        confirms(&mut a),
        vec![(
            1,
            MacStatus::Aborted {
                peer_max_size: Some(200)
            }
        )]
    );
    assert_eq!(a.counters().tx_peer_aborts, 1);
    assert_eq!(a.counters().rx_aborts, 4);
    // The in-flight fragment's status is swallowed; nothing else goes out.
    a.handle_tx_status(T0, t.token, MacStatus::Success);
    assert_eq!(a.poll_transmit(T0), None);
    assert_eq!(a.counters().tx_status_unknown, 0);
}

/// Builds the MPX IEs of a fragmented transfer by running a sender with a small PHY.
fn fragments_of(data: &[u8], tid_skip: u32) -> Vec<Vec<u8>> {
    let mut a = service(TWO, |c| c.max_phy_packet_size = 60);
    let mut sink = service(THREE, |c| c.max_phy_packet_size = 60);
    for h in 0..tid_skip {
        a.request(T0, request(1000 + h, THREE, pattern(100)))
            .unwrap();
        pump(&mut a, &mut sink, T0);
    }
    a.request(T0, request(1, ONE, data.to_vec())).unwrap();
    let mut out = Vec::new();
    while let Some(t) = a.poll_transmit(T0) {
        out.push(mpx_content(&a, &t));
        a.handle_tx_status(T0, t.token, MacStatus::Success);
    }
    out
}

#[test]
fn duplicates_are_ignored_and_delivery_happens_once() {
    let data = pattern(120);
    let frags = fragments_of(&data, 0);
    assert_eq!(frags.len(), 4);
    let mut b = service(ONE, |_| {});
    let info = info_from(TWO, ONE);
    for f in &frags {
        b.receive_mpx_ie(T0, &info, f);
        b.receive_mpx_ie(T0, &info, f);
    }
    let ind = indications(&mut b);
    assert_eq!(ind.len(), 1);
    assert_eq!(ind[0].upper_layer_frame, data);
    let c = b.counters();
    assert_eq!(c.rx_duplicates, 3, "first and both middles");
    assert_eq!(c.rx_orphan_fragments, 1, "the last one's duplicate");
    assert_eq!(c.rx_reassembled, 1);
    assert_eq!(b.buffered_octets(), 0);
}

#[test]
fn out_of_order_and_size_mismatch_drop_the_reassembly() {
    let data = pattern(120);
    let frags = fragments_of(&data, 0);
    let info = info_from(TWO, ONE);
    // Skipping fragment 1: dropped, and the sender is told to stop.
    let mut b = service(ONE, |_| {});
    b.receive_mpx_ie(T0, &info, &frags[0]);
    b.receive_mpx_ie(T0, &info, &frags[2]);
    assert_eq!(b.counters().rx_out_of_order, 1);
    assert_eq!(b.active_reassemblies(), 0);
    let abort = b.poll_transmit(T0).unwrap();
    assert!(matches!(
        abort.kind,
        TransmitKind::Abort { max_size: None, .. }
    ));
    assert_eq!(abort.dst, Address::Extended(TWO));
    b.receive_mpx_ie(T0, &info, &frags[3]);
    assert_eq!(b.counters().rx_orphan_fragments, 1);
    // A "duplicate" whose data differs from the previous fragment is not one.
    let mut b = service(ONE, |_| {});
    b.receive_mpx_ie(T0, &info, &frags[0]);
    b.receive_mpx_ie(T0, &info, &frags[1]);
    let mut forged = frags[1].clone();
    *forged.last_mut().unwrap() ^= 1;
    b.receive_mpx_ie(T0, &info, &forged);
    assert_eq!(b.counters().rx_out_of_order, 1);
    assert_eq!(b.active_reassemblies(), 0);
    // Total Size says 121: the last fragment leaves it one short.
    let mut b = service(ONE, |_| {});
    let mut first = frags[0].clone();
    first[2] = 121;
    b.receive_mpx_ie(T0, &info, &first);
    for f in &frags[1..] {
        b.receive_mpx_ie(T0, &info, f);
    }
    assert_eq!(b.counters().rx_size_mismatch, 1);
    assert!(indications(&mut b).is_empty());
    assert_eq!(b.buffered_octets(), 0);
    // Total Size says 90: the third fragment already exceeds it.
    let mut b = service(ONE, |_| {});
    first[2] = 90;
    b.receive_mpx_ie(T0, &info, &first);
    for f in &frags[1..] {
        b.receive_mpx_ie(T0, &info, f);
    }
    let c = b.counters();
    assert_eq!((c.rx_size_mismatch, c.rx_orphan_fragments), (1, 1));
    assert!(indications(&mut b).is_empty());
}

#[test]
fn reassembly_times_out_and_progress_extends_the_deadline() {
    let frags = fragments_of(&pattern(120), 0);
    let info = info_from(TWO, ONE);
    let mut b = service(ONE, |c| c.reassembly_timeout = Duration::from_secs(2));
    assert_eq!(b.poll_timeout(), None);
    b.receive_mpx_ie(T0, &info, &frags[0]);
    let t1 = Instant::from_micros(1_500_000);
    assert_eq!(b.poll_timeout(), Some(Instant::from_micros(2_000_000)));
    b.receive_mpx_ie(t1, &info, &frags[1]);
    assert_eq!(b.poll_timeout(), Some(Instant::from_micros(3_500_000)));
    b.handle_timeout(Instant::from_micros(3_499_999));
    assert_eq!(b.active_reassemblies(), 1);
    b.handle_timeout(Instant::from_micros(3_500_000));
    assert_eq!(b.active_reassemblies(), 0);
    assert_eq!(b.buffered_octets(), 0);
    assert_eq!(b.counters().reassembly_timeouts, 1);
    assert_eq!(b.poll_timeout(), None);
    b.receive_mpx_ie(t1, &info, &frags[2]);
    assert_eq!(b.counters().rx_orphan_fragments, 1);
    assert_eq!(b.poll_transmit(t1), None, "no abort after a timeout");
}

fn first_fragment(tid: u8, total: u16) -> Vec<u8> {
    ie(MpxIeRepr::FirstFragment {
        transaction_id: tid,
        total_size: total,
        multiplex_id: MultiplexId::Kmp,
        data: &[1, 2, 3],
    })
}

#[test]
fn eviction_by_count_and_by_octets() {
    // Count bound.
    let mut b = service(ONE, |c| c.max_concurrent_reassemblies = 2);
    let peers = [TWO, THREE, ExtendedAddress::from_u64(9)];
    for (i, p) in peers.iter().enumerate() {
        let now = Instant::from_micros(u64::try_from(i).unwrap());
        b.receive_mpx_ie(now, &info_from(*p, ONE), &first_fragment(1, 500));
        assert!(b.active_reassemblies() <= 2);
    }
    assert_eq!(b.counters().reassembly_evicted, 1);
    let abort = b.poll_transmit(T0).unwrap();
    assert_eq!(abort.dst, Address::Extended(TWO), "the oldest is evicted");
    assert_eq!(b.poll_transmit(T0), None);
    // Octet bound.
    let mut b = service(ONE, |c| c.max_buffered_octets = 1000);
    b.receive_mpx_ie(T0, &info_from(TWO, ONE), &first_fragment(1, 400));
    b.receive_mpx_ie(T0, &info_from(TWO, ONE), &first_fragment(2, 400));
    assert_eq!(b.buffered_octets(), 800);
    b.receive_mpx_ie(T0, &info_from(THREE, ONE), &first_fragment(1, 300));
    assert_eq!(b.buffered_octets(), 700);
    assert_eq!(b.active_reassemblies(), 2);
    assert_eq!(b.counters().reassembly_evicted, 1);
    // Larger than the bound itself: refused, with our real limit in the abort.
    b.receive_mpx_ie(T0, &info_from(THREE, ONE), &first_fragment(5, 1001));
    assert_eq!(b.counters().rx_oversized, 1);
    assert_eq!(b.buffered_octets(), 700);
    let kinds: Vec<_> = std::iter::from_fn(|| b.poll_transmit(T0))
        .map(|t| t.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            TransmitKind::Abort {
                transaction_id: 1,
                max_size: None
            },
            TransmitKind::Abort {
                transaction_id: 5,
                max_size: Some(1000)
            },
        ]
    );
}

#[test]
fn first_fragment_duplicates_and_restarts() {
    let mut b = service(ONE, |_| {});
    let info = info_from(TWO, ONE);
    b.receive_mpx_ie(T0, &info, &first_fragment(3, 500));
    b.receive_mpx_ie(T0, &info, &first_fragment(3, 500));
    assert_eq!(b.counters().rx_duplicates, 1);
    assert_eq!(b.active_reassemblies(), 1);
    // Same TID, different Total Size: a new transaction replaces the old one.
    b.receive_mpx_ie(T0, &info, &first_fragment(3, 600));
    assert_eq!(b.counters().reassembly_restarted, 1);
    assert_eq!(b.buffered_octets(), 600);
    // An abort from the sender drops it.
    let abort = ie(MpxIeRepr::Abort {
        transaction_id: 3,
        max_size: None,
    });
    b.receive_mpx_ie(T0, &info, &abort);
    assert_eq!(b.active_reassemblies(), 0);
    assert_eq!(b.buffered_octets(), 0);
}

#[test]
fn protected_reassembly_ignores_unprotected_fragments() {
    let data = pattern(120);
    let frags = fragments_of(&data, 0);
    let mut b = service(ONE, |_| {});
    let mut secured = info_from(TWO, ONE);
    secured.security = SEC;
    let plain = info_from(TWO, ONE);
    b.receive_mpx_ie(T0, &secured, &frags[0]);
    b.receive_mpx_ie(T0, &plain, &first_fragment(frags[0][0] >> 3, 50));
    b.receive_mpx_ie(T0, &plain, &first_fragment(frags[0][0] >> 3, 65_535));
    b.receive_mpx_ie(T0, &plain, &frags[1]);
    let abort = ie(MpxIeRepr::Abort {
        transaction_id: frags[0][0] >> 3,
        max_size: None,
    });
    b.receive_mpx_ie(T0, &plain, &abort);
    assert_eq!(b.counters().rx_security_mismatch, 4);
    assert_eq!(b.counters().rx_oversized, 0);
    for f in &frags[1..] {
        b.receive_mpx_ie(T0, &secured, f);
    }
    let ind = indications(&mut b);
    assert_eq!(ind.len(), 1);
    assert_eq!(ind[0].upper_layer_frame, data);
    assert_eq!(ind[0].security, SEC);
}

#[test]
fn fragments_must_be_unicast() {
    let frags = fragments_of(&pattern(120), 0);
    let mut b = service(ONE, |_| {});
    let mut info = info_from(TWO, ONE);
    info.dst_addr = Address::Short(ShortAddress::BROADCAST);
    b.receive_mpx_ie(T0, &info, &frags[0]);
    info.dst_addr = Address::Absent;
    b.receive_mpx_ie(T0, &info, &frags[0]);
    info = info_from(TWO, ONE);
    info.src_addr = Address::Absent;
    b.receive_mpx_ie(T0, &info, &frags[0]);
    assert_eq!(b.counters().rx_fragment_not_unicast, 3);
    assert_eq!(b.active_reassemblies(), 0);
}

#[test]
fn broadcast_must_fit_one_frame() {
    let mut a = service(TWO, |_| {});
    for dst in [Address::Absent, Address::Short(ShortAddress::BROADCAST)] {
        let mut r = request(1, ONE, pattern(200));
        r.dst_addr = dst;
        assert!(matches!(
            a.request(T0, r.clone()),
            Err(MpxError::BroadcastTooLong { len: 200, .. })
        ));
        assert_eq!(
            a.request(T0, r.clone()).unwrap_err().status(),
            MacStatus::FrameTooLong
        );
        r.upper_layer_frame = pattern(50);
        a.request(T0, r).unwrap();
        let t = a.poll_transmit(T0).unwrap();
        assert!(!t.ack_request, "no AR on broadcast");
        mpx_content(&a, &t);
        a.handle_tx_status(T0, t.token, MacStatus::Success);
    }
    // Wi-SUN style broadcast (Ex 4 addressing): no destination, source PAN ID present.
    let mut r = request(9, ONE, pattern(5));
    r.dst_addr = Address::Absent;
    r.pan_id_suppressed = false;
    a.request(T0, r).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    let f = Frame::new_checked(&t.frame[..], FcsLen::Two).unwrap();
    assert_eq!(f.frame_control(), 0xe201, "Ex 4 frame control");
    assert_eq!(f.src_pan_id(), Some(PAN));
}

#[test]
fn request_errors() {
    let mut a = service(TWO, |c| c.max_pending_requests = 2);
    a.request(T0, request(1, ONE, pattern(5))).unwrap();
    assert_eq!(
        a.request(T0, request(1, ONE, pattern(5))),
        Err(MpxError::DuplicateHandle(MpxHandle(1)))
    );
    let mut r = request(2, ONE, pattern(5));
    r.src_addr_mode = AddressingMode::Short;
    assert!(matches!(
        a.request(T0, r.clone()),
        Err(MpxError::InvalidParameter(_))
    ));
    r.src_addr_mode = AddressingMode::None;
    r.dst_addr = Address::Absent;
    assert!(matches!(
        a.request(T0, r),
        Err(MpxError::InvalidParameter(_))
    ));
    // 127-octet PHY: 96 + 255 × 100 octets at most.
    assert_eq!(
        a.request(T0, request(2, ONE, pattern(25_597))),
        Err(MpxError::FrameTooLong {
            len: 25_597,
            max: 25_596
        })
    );
    assert!(matches!(
        a.request(T0, request(2, ONE, pattern(65_536))),
        Err(MpxError::FrameTooLong { max: 65_535, .. })
    ));
    a.request(T0, request(2, ONE, pattern(25_596))).unwrap();
    assert!(matches!(
        a.request(T0, request(3, ONE, pattern(5))),
        Err(MpxError::QueueFull { pending: 2 })
    ));
    assert_eq!(a.counters().tx_rejected, 6);
    // A PHY too small for any fragment.
    let mut tiny = service(TWO, |c| c.max_phy_packet_size = 30);
    assert!(matches!(
        tiny.request(T0, request(1, ONE, pattern(5))),
        Err(MpxError::FrameTooLong { max: 0, .. })
    ));
    tiny.request(T0, request(1, ONE, pattern(2))).unwrap();
    assert!(
        MpxService::new(MpxConfig {
            fcs_len: FcsLen::None,
            ..config(ONE)
        })
        .is_err()
    );
}

#[test]
fn largest_frame_over_a_sun_phy() {
    let set = |c: &mut MpxConfig| {
        c.max_phy_packet_size = PHY_PACKET_SIZE_SUN;
        c.fcs_len = FcsLen::Four;
    };
    let mut a = service(TWO, set);
    let mut b = service(ONE, set);
    let data = pattern(65_535);
    a.request(T0, request(1, ONE, data.clone())).unwrap();
    let frames = pump(&mut a, &mut b, T0);
    assert_eq!(frames.len(), 33);
    assert_eq!(indications(&mut b)[0].upper_layer_frame, data);
}

#[test]
fn tid_allocation_skips_ids_whose_failure_is_recent() {
    let mut a = service(TWO, |c| c.send_abort_on_tx_failure = false);
    let mut sink = service(THREE, |_| {});
    a.request(T0, request(1, ONE, pattern(300))).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    let TransmitKind::Fragment {
        transaction_id: failed,
        ..
    } = t.kind
    else {
        panic!()
    };
    a.handle_tx_status(T0, t.token, MacStatus::NoAck);
    // 31 more transactions elsewhere wrap the counter around to `failed`.
    let mut used = Vec::new();
    for h in 0..31 {
        a.request(T0, request(10 + h, THREE, pattern(300))).unwrap();
        let t = a.poll_transmit(T0).unwrap();
        if let TransmitKind::Fragment { transaction_id, .. } = t.kind {
            used.push(transaction_id);
        }
        deliver(&mut sink, &t, T0);
        a.handle_tx_status(T0, t.token, MacStatus::Success);
        pump(&mut a, &mut sink, T0);
    }
    assert_eq!(used.len(), 31);
    assert!(!used.contains(&failed));
    // Towards ONE the failed TID is still quarantined: the allocator skips it.
    a.request(T0, request(2, ONE, pattern(300))).unwrap();
    let t = a.poll_transmit(T0).unwrap();
    let TransmitKind::Fragment { transaction_id, .. } = t.kind else {
        panic!()
    };
    assert_ne!(transaction_id, failed);
    a.purge(
        T0,
        MpxPurgeRequest {
            handle: MpxHandle(2),
        },
    );
    // After the quarantine it is free again.
    let later = T0 + DEFAULT_REASSEMBLY_TIMEOUT;
    while let Some(t) = a.poll_transmit(later) {
        a.handle_tx_status(later, t.token, MacStatus::Success);
    }
    let mut tids = Vec::new();
    for h in 0..32 {
        a.request(later, request(100 + h, THREE, pattern(300)))
            .unwrap();
        let t = a.poll_transmit(later).unwrap();
        if let TransmitKind::Fragment { transaction_id, .. } = t.kind {
            tids.push(transaction_id);
        }
        a.purge(
            later,
            MpxPurgeRequest {
                handle: MpxHandle(100 + h),
            },
        );
        while let Some(t) = a.poll_transmit(later) {
            a.handle_tx_status(later, t.token, MacStatus::Success);
        }
    }
    assert!(tids.contains(&failed));
}

#[test]
fn malformed_and_reserved_input_is_counted_never_panics() {
    let mut b = service(ONE, |c| {
        c.max_buffered_octets = 3000;
        c.max_concurrent_reassemblies = 4;
    });
    let info = info_from(TWO, ONE);
    b.receive_mpx_ie(T0, &info, &[]);
    b.receive_mpx_ie(T0, &info, &[0x03]);
    b.receive_mpx_ie(T0, &info, &[0x04, 0x00]);
    b.receive_mpx_ie(T0, &info, &[0x06, 0x00]);
    let c = b.counters();
    assert_eq!((c.rx_malformed, c.rx_reserved_transfer_type), (3, 1));
    // Every 1- and 2-octet content, and a pseudo-random walk over longer ones.
    for x in 0..=255u8 {
        b.receive_mpx_ie(T0, &info, &[x]);
        for y in 0..=255u8 {
            b.receive_mpx_ie(T0, &info, &[x, y]);
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = usize::try_from(seed % 12).unwrap();
        let bytes: Vec<u8> = (0..len)
            .map(|k| {
                seed.rotate_right(5 * u32::try_from(k).unwrap())
                    .to_le_bytes()[0]
            })
            .collect();
        let src = ExtendedAddress::from_u64(seed % 3);
        let now = Instant::from_micros(i * 1000);
        b.receive_mpx_ie(now, &info_from(src, ONE), &bytes);
        assert!(b.buffered_octets() <= 3000);
        assert!(b.active_reassemblies() <= 4);
        if i % 100 == 0 {
            b.handle_timeout(now);
        }
        while let Some(t) = b.poll_transmit(now) {
            b.handle_tx_status(now, t.token, MacStatus::Success);
        }
        events(&mut b);
    }
    assert_eq!(b.counters().tx_internal_errors, 0);
}

#[test]
fn receive_skips_frames_without_mpx_and_handles_several_ies() {
    let mut b = service(ONE, |_| {});
    // A frame with two MPX IEs and a vendor IE in between.
    let one = ie(MpxIeRepr::FullFrame {
        transaction_id: 0,
        multiplex_id: MultiplexId::LOWPAN,
        data: &[0x41],
    });
    let n = u8::try_from(one.len()).unwrap();
    let mut ies = vec![n, 0x98];
    ies.extend_from_slice(&one);
    ies.extend_from_slice(&[0x01, 0x90, 0xaa]);
    ies.extend_from_slice(&[n, 0x98]);
    ies.extend_from_slice(&one);
    let repr = FrameRepr {
        frame_type: crate::wire::FrameType::Data,
        frame_version: crate::wire::FrameVersion::V2015,
        frame_pending: false,
        ack_request: false,
        seq: Some(1),
        dst_pan: None,
        dst_addr: Address::Absent,
        src_pan: Some(PanId(0x1234)),
        src_addr: TWO.into(),
        security: None,
        header_ies: &[],
        payload_ies: &ies,
        payload_termination: false,
        payload: &[],
    };
    b.receive(T0, &repr, 3);
    let ind = indications(&mut b);
    assert_eq!(ind.len(), 2);
    assert_eq!(ind[0].multiplex_id, MultiplexId::LOWPAN);
    assert_eq!(ind[0].src_pan, Some(PanId(0x1234)));
    assert_eq!(ind[0].dst_pan, None);
    assert_eq!(ind[0].lqi, 3);
    let no_mpx = FrameRepr {
        payload_ies: &[],
        payload: &[1, 2],
        ..repr
    };
    b.receive(T0, &no_mpx, 3);
    assert_eq!(b.counters().rx_frames_without_mpx, 1);
    assert_eq!(b.counters().rx_frames, 2);
    assert_eq!(b.counters().rx_full_frames, 2);
}
