//! `cargo bench -p mpx`: the data-path costs of the MPX layer on one core.
//!
//! - parse: `Frame::new_checked` + FCS check + `FrameRepr::parse` + MPX IE parse of a data frame
//!   carrying a KMP frame (spec Ex 1 shape);
//! - emit: the same frame from its representations, FCS included;
//! - protect / unprotect: CCM* at level 6 (ENC-MIC-64) with a cached key context;
//! - secured receive path: parse + unprotect + replay check against the PIB;
//! - fragment + reassemble: a 1 KiB KMP frame over 127-octet frames, sender to receiver.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId, ShortAddress};
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::id::{KmpId, MultiplexId};
use kmp_api::primitives::{MacStatus, MpxDataRequest, MpxHandle};
use kmp_api::security::SecurityParams;
use kmp_api::security::{KeyIdentifier, SecurityLevel};
use kmp_api::session::{KeyDirection, KeyInstall, KeyScope, LinkKey, SecretBytes};
use kmp_api::time::Instant;
use mpx::pib::{OwnIdentity, PibConfig, PibStore, SecurityLevelDescriptor, SecurityLevelSet};
use mpx::security::{FrameSecurity, protect_in_place, unprotect_in_place};
use mpx::service::{MpxConfig, MpxEvent, MpxService};
use mpx::wire::{
    AuxSecurityHeaderRepr, FcsLen, Frame, FrameRepr, FrameType, FrameVersion, MpxIeRepr,
    ParseOptions,
};

const SRC: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 2]);
const DST: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1]);
/// KMP ID 1 + a 40-octet EAPOL frame.
const KMP: [u8; 41] = [1; 41];

fn mpx_ies(data: &[u8]) -> Vec<u8> {
    let mpx = MpxIeRepr::FullFrame {
        transaction_id: 0,
        multiplex_id: MultiplexId::Kmp,
        data,
    };
    mpx.to_payload_ie().unwrap()
}

fn repr<'a>(ies: &'a [u8], security: Option<AuxSecurityHeaderRepr>) -> FrameRepr<'a> {
    FrameRepr {
        frame_type: FrameType::Data,
        frame_version: FrameVersion::V2015,
        frame_pending: false,
        ack_request: true,
        seq: Some(5),
        dst_pan: Some(PanId(0xabcd)),
        dst_addr: Address::Extended(DST),
        src_pan: None,
        src_addr: Address::Extended(SRC),
        security,
        header_ies: &[],
        payload_ies: ies,
        payload_termination: false,
        payload: &[],
    }
}

fn level6() -> Option<AuxSecurityHeaderRepr> {
    Some(AuxSecurityHeaderRepr {
        level: SecurityLevel::EncMic64,
        key_id: KeyIdentifier::Implicit,
        frame_counter: Some(0),
        asn_in_nonce: false,
    })
}

/// Parses a frame down to the MPX IE's KMP data; returns its length so nothing is optimised out.
fn parse_to_kmp(buf: &[u8], opts: ParseOptions) -> usize {
    let frame = Frame::new_checked(buf, FcsLen::Two).unwrap();
    let repr = FrameRepr::parse_with(&frame, opts).unwrap();
    let ie = repr.payload_ies().next().unwrap();
    let mpx = MpxIeRepr::parse_bytes(ie.content).unwrap();
    mpx.data().len()
}

fn wire(c: &mut Criterion) {
    let ies = mpx_ies(&KMP);
    let plain = repr(&ies, None);
    let mut frame = vec![0u8; plain.buffer_len(FcsLen::Two)];
    plain.emit(&mut frame, FcsLen::Two).unwrap();

    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_data_frame_mpx", |b| {
        b.iter(|| parse_to_kmp(black_box(&frame), ParseOptions::default()))
    });
    g.bench_function("parse_data_frame_mpx_no_fcs_check", |b| {
        let opts = ParseOptions {
            check_fcs: false,
            unprotected: false,
        };
        b.iter(|| parse_to_kmp(black_box(&frame), opts))
    });
    g.bench_function("fcs16_check", |b| {
        b.iter(|| mpx::wire::fcs::check(black_box(&frame), FcsLen::Two))
    });
    let mut out = vec![0u8; 127];
    g.bench_function("emit_data_frame_mpx", |b| {
        b.iter(|| plain.emit(black_box(&mut out), FcsLen::Two).unwrap())
    });
    g.bench_function("emit_data_frame_mpx_from_kmp_pdu", |b| {
        b.iter(|| {
            let ies = mpx_ies(black_box(&KMP));
            repr(&ies, None)
                .emit(black_box(&mut out), FcsLen::Two)
                .unwrap()
        })
    });
    g.finish();
}

fn security(c: &mut Criterion) {
    let ies = mpx_ies(&KMP);
    let secured = repr(&ies, level6());
    let mut plain = vec![0u8; secured.buffer_len(FcsLen::Two)];
    secured.emit(&mut plain, FcsLen::Two).unwrap();
    let key = [0x42u8; 16];
    let mut ccm = AesCcm::new(&key).unwrap();
    let mut protected = plain.clone();
    protect_in_place(&mut protected, FcsLen::Two, &mut ccm, SRC, 1).unwrap();

    let mut g = c.benchmark_group("security");
    g.throughput(Throughput::Elements(1));
    let mut buf = plain.clone();
    let mut counter = 0u32;
    g.bench_function("protect_level6", |b| {
        b.iter(|| {
            buf.copy_from_slice(&plain);
            counter = counter.wrapping_add(1);
            protect_in_place(black_box(&mut buf), FcsLen::Two, &mut ccm, SRC, counter).unwrap()
        })
    });
    g.bench_function("unprotect_level6", |b| {
        b.iter(|| {
            buf.copy_from_slice(&protected);
            unprotect_in_place(black_box(&mut buf), FcsLen::Two, &mut ccm, SRC).unwrap()
        })
    });
    g.bench_function("copy_only_baseline", |b| {
        b.iter(|| {
            buf.copy_from_slice(black_box(&protected));
            buf[0]
        })
    });
    g.finish();
}

/// A receiver whose PIB holds a pairwise key with `SRC`, and a data security-level descriptor.
fn receiver(key: [u8; 16]) -> (PibStore, FrameSecurity) {
    let now = Instant::from_micros(1);
    let mut store = PibStore::in_memory(PibConfig::default(), now).unwrap();
    store
        .set_own_identity(OwnIdentity {
            ext_address: DST,
            short_address: ShortAddress::NONE_ASSIGNED,
            pan_id: PanId(0xabcd),
        })
        .unwrap();
    store
        .set_security_level(SecurityLevelDescriptor {
            frame_type: FrameType::Data,
            command_id: None,
            security_minimum: SecurityLevel::EncMic32,
            device_override: false,
            allowed: SecurityLevelSet::default(),
        })
        .unwrap();
    store
        .install_keys(
            &KeyInstall {
                owner: KmpId::Dragonfly,
                peer: SRC,
                link_keys: vec![LinkKey {
                    key: SecretBytes::from_slice(&key),
                    lookup: KeyIdentifier::Implicit,
                    scope: KeyScope::Pairwise(SRC),
                    direction: KeyDirection::Both,
                    min_security_level: SecurityLevel::EncMic32,
                    lifetime: None,
                }],
                upper_layer_sas: vec![],
            },
            now,
        )
        .unwrap();
    store.maintain(now).unwrap();
    let sec = FrameSecurity::new(store.pib(), FcsLen::Two);
    (store, sec)
}

/// The secured receive path: FCS + parse + security-level table + key lookup + replay check +
/// CCM* (level 6) + counter update + MPX IE parse, each frame with a fresh frame counter.
fn secured_receive(c: &mut Criterion) {
    const POOL: usize = 100_000;
    let key = [0x42u8; 16];
    let ies = mpx_ies(&KMP);
    let secured = repr(&ies, level6());
    let mut plain = vec![0u8; secured.buffer_len(FcsLen::Two)];
    secured.emit(&mut plain, FcsLen::Two).unwrap();
    let mut ccm = AesCcm::new(&key).unwrap();
    let pool: Vec<Vec<u8>> = (0..POOL)
        .map(|i| {
            let mut f = plain.clone();
            let counter = u32::try_from(i).unwrap();
            protect_in_place(&mut f, FcsLen::Two, &mut ccm, SRC, counter).unwrap();
            f
        })
        .collect();
    let now = Instant::from_micros(2);
    let opts = ParseOptions {
        check_fcs: false,
        unprotected: true,
    };
    let mut g = c.benchmark_group("security");
    g.throughput(Throughput::Elements(1));
    g.bench_function("secured_receive_path_level6", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = usize::try_from(iters).unwrap();
            while left > 0 {
                let n = left.min(POOL);
                let (_store, mut rx) = receiver(key);
                let mut frames = pool[..n].to_vec();
                let start = std::time::Instant::now();
                for f in frames.iter_mut() {
                    rx.unprotect(f, now).unwrap();
                    black_box(parse_to_kmp(f, opts));
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
    g.finish();
}

/// Fragments a 1 KiB KMP frame over 127-octet frames, hands every frame to a receiving service
/// (parse included), acknowledges it, and ends when the receiver delivered the frame and the
/// sender confirmed it.
fn fragmentation(c: &mut Criterion) {
    let upper: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    let pan = PanId(0xabcd);
    let mut g = c.benchmark_group("mpx");
    g.throughput(Throughput::Bytes(1024));
    let mut handle = 0u32;
    let mut tx = MpxService::new(MpxConfig::new(SRC, pan)).unwrap();
    let mut rx = MpxService::new(MpxConfig::new(DST, pan)).unwrap();
    let now = Instant::from_micros(1);
    g.bench_function("fragment_reassemble_1KiB_phy127", |b| {
        b.iter(|| {
            handle = handle.wrapping_add(1);
            tx.request(
                now,
                MpxDataRequest {
                    src_addr_mode: AddressingMode::Extended,
                    dst_pan: pan,
                    dst_addr: Address::Extended(DST),
                    multiplex_id: MultiplexId::Kmp,
                    upper_layer_frame: upper.clone(),
                    handle: MpxHandle(handle),
                    ack_tx: true,
                    seq_num_suppressed: false,
                    pan_id_suppressed: true,
                    security: SecurityParams::NONE,
                },
            )
            .unwrap();
            let mut frames = 0;
            while let Some(t) = tx.poll_transmit(now) {
                let f = Frame::new_checked(&t.frame[..], FcsLen::Two).unwrap();
                let repr = FrameRepr::parse(&f).unwrap();
                rx.receive(now, &repr, 255);
                tx.handle_tx_status(now, t.token, MacStatus::Success);
                frames += 1;
            }
            let mut delivered = 0;
            while let Some(MpxEvent::Indication(ind)) = rx.poll_event() {
                delivered += ind.upper_layer_frame.len();
            }
            assert_eq!(delivered, 1024);
            assert!(matches!(tx.poll_event(), Some(MpxEvent::Confirm(_))));
            frames
        })
    });
    g.finish();
}

criterion_group!(benches, wire, security, secured_receive, fragmentation);
criterion_main!(benches);
