//! The MKPDU codec through the public API: a hand-built golden PDU, round trips of every
//! parameter set (proptest), the ICV, and refusals (truncation, lengths that lie, oversize
//! sets, duplicates, bad ICV).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use kmp_mka::mka::wire::{
    ALGORITHM_AGILITY_2010, AssociationNumber, BasicParameterSet, CIPHER_SUITE_GCM_AES_256,
    DistributedCak, DistributedKey, DistributedSak, KeyUse, MacsecCapability, PeerEntry, SakUse,
    UnknownSet, WrappedSak, Xpn, compute_icv,
};
use kmp_mka::mka::{Ckn, IcvCoverage, MemberIdentifier, MkaError, Mkpdu, Sci, WireError};
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

/// EAPOL v3 MKA, 124-octet body: Basic (KS, MACsec desired, capability 2, priority 0x10,
/// CKN aabbccdd), Live Peer List (one entry), SAK Use (AN 1, LTX, LRX, both keys), an
/// unknown set type 0x20 with flags 5 and 3 body octets, ICV.
const GOLDEN: &str = "0305007c
    0110e020 0011223344556677 0102030405060708090a0b0c 00000005 0080c201 aabbccdd
    01000010 111111111111111111111111 00000007
    03700028 0102030405060708090a0b0c 00000002 00000001
             222222222222222222222222 00000001 00000100
    20ab5003 01020300
    f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

fn golden_repr() -> Mkpdu {
    Mkpdu {
        basic: BasicParameterSet {
            version: 1,
            key_server_priority: 0x10,
            key_server: true,
            macsec_desired: true,
            macsec_capability: MacsecCapability::IntegrityConfidentiality,
            sci: Sci(h("0011223344556677").try_into().unwrap()),
            mi: MemberIdentifier(h("0102030405060708090a0b0c").try_into().unwrap()),
            mn: 5,
            algorithm_agility: ALGORITHM_AGILITY_2010,
            ckn: Ckn::new(&h("aabbccdd")).unwrap(),
        },
        live_peers: Some(vec![PeerEntry {
            mi: MemberIdentifier([0x11; 12]),
            mn: 7,
        }]),
        potential_peers: None,
        sak_use: Some(SakUse {
            latest_an: AssociationNumber::new(1).unwrap(),
            latest_tx: true,
            latest_rx: true,
            keys: Some((
                KeyUse {
                    key_server_mi: MemberIdentifier(
                        h("0102030405060708090a0b0c").try_into().unwrap(),
                    ),
                    kn: 2,
                    lowest_acceptable_pn: 1,
                },
                KeyUse {
                    key_server_mi: MemberIdentifier([0x22; 12]),
                    kn: 1,
                    lowest_acceptable_pn: 0x100,
                },
            )),
            ..SakUse::default()
        }),
        distributed_sak: None,
        distributed_cak: None,
        kmd: None,
        announcement: None,
        xpn: None,
        unknown: vec![UnknownSet {
            set_type: 0x20,
            octet2: 0xab,
            flags: 5,
            body: vec![1, 2, 3],
        }],
        icv_indicator: false,
        icv: h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap(),
    }
}

#[test]
fn golden_parses_and_emits() {
    let bytes = h(GOLDEN);
    assert_eq!(Mkpdu::parse(&bytes).unwrap(), golden_repr());
    assert_eq!(golden_repr().emit().unwrap(), bytes);
}

#[test]
fn icv_indicator_and_distributed_sets() {
    let mut p = golden_repr();
    p.icv_indicator = true;
    p.distributed_sak = Some(DistributedSak::Key(DistributedKey {
        an: AssociationNumber::new(3).unwrap(),
        confidentiality_offset: 1,
        kn: 0x0102_0304,
        cipher_suite: None,
        wrapped_sak: WrappedSak::Aes128([7; 24]),
    }));
    let bytes = p.emit().unwrap();
    // Distributed SAK header: type 4, DAN 3 and offset 1 in octet 2, body 28.
    let at = bytes
        .windows(4)
        .position(|w| w == [4, 0xd0, 0, 28])
        .unwrap();
    assert_eq!(&bytes[at + 4..at + 8], &[1, 2, 3, 4]);
    // The indicator sits right before the ICV.
    let n = bytes.len();
    assert_eq!(&bytes[n - 20..n - 16], &[255, 0, 0, 16]);
    assert_eq!(Mkpdu::parse(&bytes).unwrap(), p);

    // A 256-bit SAK without an explicit suite goes out with GCM-AES-256's identifier.
    let mut q = golden_repr();
    q.distributed_sak = Some(DistributedSak::Key(DistributedKey {
        an: AssociationNumber::new(0).unwrap(),
        confidentiality_offset: 0,
        kn: 9,
        cipher_suite: None,
        wrapped_sak: WrappedSak::Aes256([8; 40]),
    }));
    let back = Mkpdu::parse(&q.emit().unwrap()).unwrap();
    match back.distributed_sak {
        Some(DistributedSak::Key(k)) => {
            assert_eq!(k.cipher_suite, Some(CIPHER_SUITE_GCM_AES_256));
            assert_eq!(k.wrapped_sak, WrappedSak::Aes256([8; 40]));
        }
        other => panic!("{other:?}"),
    }
}

fn set_octets(bytes: &mut [u8], at: usize, v: &[u8]) {
    bytes[at..at + v.len()].copy_from_slice(v);
}

#[test]
fn refusals() {
    let good = h(GOLDEN);
    for n in 0..good.len() {
        assert!(Mkpdu::parse(&good[..n]).is_err(), "prefix {n} parsed");
    }
    let mut b = good.clone();
    b.push(0);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::TrailingData(1)));
    let mut b = good.clone();
    b[1] = 0;
    assert_eq!(Mkpdu::parse(&b), Err(WireError::NotMka(0)));
    // EAPOL body length that lies, up and down.
    let mut b = good.clone();
    set_octets(&mut b, 2, &[0, 0x80]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::Truncated));
    let mut b = good.clone();
    set_octets(&mut b, 2, &[0, 0x78]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::TrailingData(4)));
    // A body that is not a multiple of 4.
    let mut b = good.clone();
    b.push(0);
    set_octets(&mut b, 2, &[0, 0x7d]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadMkpduLength(0x7d)));
    // Live Peer List length reaching into the ICV.
    let mut b = good.clone();
    set_octets(&mut b, 40, &[1, 0, 0, 0x60]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetLength(1, 0x60)));
    // A peer list that is not whole entries.
    let mut b = good.clone();
    set_octets(&mut b, 40, &[1, 0, 0, 0x0f]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetBody(1, 15)));
    // Basic Parameter Set with a CKN over 32 octets (or none).
    let mut b = good.clone();
    set_octets(&mut b, 6, &[0xe0, 28 + 33]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetLength(0, 61)));
    let mut b = good.clone();
    set_octets(&mut b, 6, &[0xe0, 28]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetLength(0, 28)));
    // MKA version 0.
    let mut b = good.clone();
    b[4] = 0;
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadVersion));
    // SAK Use with a body that is neither 0 nor 40.
    let mut b = good.clone();
    set_octets(&mut b, 60, &[3, 0x70, 0, 20]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetBody(3, 20)));
    // The same known set twice: turn the unknown set into a second Live Peer List.
    let mut b = good.clone();
    set_octets(&mut b, 104, &[1, 0, 0, 0]);
    assert_eq!(Mkpdu::parse(&b), Err(WireError::DuplicateSet(1)));
    // An ICV Indicator announcing another ICV length.
    let mut p = golden_repr();
    p.icv_indicator = true;
    let mut b = p.emit().unwrap();
    let n = b.len();
    b[n - 17] = 12;
    assert_eq!(Mkpdu::parse(&b), Err(WireError::UnsupportedIcvLength(12)));
    // XPN must be 8 octets; Distributed SAK 0, 28, 36 or 52.
    let mut p = golden_repr();
    p.unknown = vec![];
    p.xpn = Some(Xpn::default());
    let mut b = p.emit().unwrap();
    let at = b.windows(4).position(|w| w == [8, 0, 0, 8]).unwrap();
    b[at + 3] = 4;
    assert_eq!(Mkpdu::parse(&b), Err(WireError::BadSetBody(8, 4)));
    let mut p = golden_repr();
    p.unknown = vec![UnknownSet {
        set_type: 4,
        octet2: 0,
        flags: 0,
        body: vec![0; 32],
    }];
    assert_eq!(
        Mkpdu::parse(&p.emit().unwrap()),
        Err(WireError::BadSetBody(4, 32))
    );
}

#[test]
fn oversize_sets_are_emit_errors() {
    let mut p = golden_repr();
    p.live_peers = Some(vec![
        PeerEntry {
            mi: MemberIdentifier([1; 12]),
            mn: 1
        };
        256
    ]);
    assert_eq!(p.emit(), Err(WireError::TooLong(1)));
    let mut p = golden_repr();
    p.kmd = Some(vec![0; 4096]);
    assert_eq!(p.emit(), Err(WireError::TooLong(6)));
    let mut p = golden_repr();
    p.kmd = Some(vec![0; 4095]);
    p.announcement = Some(vec![0; 4095]);
    p.unknown = (0..16)
        .map(|i| UnknownSet {
            set_type: 100 + i,
            octet2: 0,
            flags: 0,
            body: vec![0; 4095],
        })
        .collect();
    assert!(matches!(p.emit(), Err(WireError::TooLong(_))));
}

#[test]
fn icv_checks() {
    let ick = [0x42u8; 16];
    let mut p = golden_repr();
    let bytes = p.emit_signed(&ick, IcvCoverage::PaeGroupHeader).unwrap();
    let parsed = Mkpdu::parse_verified(&bytes, &ick, IcvCoverage::PaeGroupHeader).unwrap();
    assert_eq!(parsed, p);
    // The default coverage is CMAC over the Ethernet header the PDU would have on a LAN.
    let mut frame = vec![
        0x01, 0x80, 0xc2, 0, 0, 3, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x88, 0x8e,
    ];
    frame.extend_from_slice(&bytes[..bytes.len() - 16]);
    let direct = kmp_api::crypto::cmac::aes_cmac(&ick, &frame).unwrap();
    assert_eq!(&bytes[bytes.len() - 16..], &direct);
    assert_eq!(
        compute_icv(
            &ick,
            IcvCoverage::MkpduOnly,
            &p.basic.sci,
            &bytes[..bytes.len() - 16]
        )
        .unwrap(),
        kmp_api::crypto::cmac::aes_cmac(&ick, &bytes[..bytes.len() - 16]).unwrap()
    );
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = Mkpdu::parse_verified(&b, &ick, IcvCoverage::PaeGroupHeader);
        assert!(r.is_err(), "flip at {i} accepted");
    }
    assert_eq!(
        Mkpdu::parse_verified(&bytes, &[0x43; 16], IcvCoverage::PaeGroupHeader),
        Err(MkaError::IcvMismatch)
    );
    assert_eq!(
        Mkpdu::parse_verified(&bytes, &ick, IcvCoverage::MkpduOnly),
        Err(MkaError::IcvMismatch)
    );
}

fn mi() -> impl Strategy<Value = MemberIdentifier> {
    any::<[u8; 12]>().prop_map(MemberIdentifier)
}

fn an() -> impl Strategy<Value = AssociationNumber> {
    (0u8..4).prop_map(AssociationNumber::from_bits)
}

fn peers() -> impl Strategy<Value = Option<Vec<PeerEntry>>> {
    proptest::option::of(proptest::collection::vec(
        (mi(), any::<u32>()).prop_map(|(mi, mn)| PeerEntry { mi, mn }),
        0..6,
    ))
}

fn key_use() -> impl Strategy<Value = KeyUse> {
    (mi(), any::<u32>(), any::<u32>()).prop_map(|(key_server_mi, kn, lowest_acceptable_pn)| {
        KeyUse {
            key_server_mi,
            kn,
            lowest_acceptable_pn,
        }
    })
}

fn sak_use() -> impl Strategy<Value = SakUse> {
    (
        an(),
        an(),
        any::<[bool; 9]>(),
        proptest::option::of((key_use(), key_use())),
    )
        .prop_map(|(latest_an, old_an, f, keys)| SakUse {
            latest_an,
            latest_tx: f[0],
            latest_rx: f[1],
            old_an,
            old_tx: f[2],
            old_rx: f[3],
            plain_tx: f[4],
            plain_rx: f[5],
            delay_protect: f[6],
            keys,
        })
}

fn dist_sak() -> impl Strategy<Value = DistributedSak> {
    let key = (
        an(),
        0u8..4,
        any::<u32>(),
        prop_oneof![
            any::<[u8; 24]>().prop_map(|w| (None, WrappedSak::Aes128(w))),
            (any::<u64>(), any::<[u8; 24]>()).prop_map(|(c, w)| (Some(c), WrappedSak::Aes128(w))),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 40))
                .prop_map(|(c, w)| (Some(c), WrappedSak::from_slice(&w).unwrap())),
        ],
    )
        .prop_map(
            |(an, confidentiality_offset, kn, (cipher_suite, wrapped_sak))| {
                DistributedSak::Key(DistributedKey {
                    an,
                    confidentiality_offset,
                    kn,
                    cipher_suite,
                    wrapped_sak,
                })
            },
        );
    prop_oneof![Just(DistributedSak::NoProtection), key]
}

fn ckn() -> impl Strategy<Value = Ckn> {
    proptest::collection::vec(any::<u8>(), 1..=32).prop_map(|v| Ckn::new(&v).unwrap())
}

fn basic() -> impl Strategy<Value = BasicParameterSet> {
    (
        1u8..,
        any::<u8>(),
        any::<[bool; 2]>(),
        0u8..4,
        any::<[u8; 8]>(),
        mi(),
        any::<u32>(),
        any::<u32>(),
        ckn(),
    )
        .prop_map(
            |(version, prio, f, cap, sci, mi, mn, agility, ckn)| BasicParameterSet {
                version,
                key_server_priority: prio,
                key_server: f[0],
                macsec_desired: f[1],
                macsec_capability: [
                    MacsecCapability::NotImplemented,
                    MacsecCapability::Integrity,
                    MacsecCapability::IntegrityConfidentiality,
                    MacsecCapability::IntegrityConfidentialityOffsets,
                ][usize::from(cap)],
                sci: Sci(sci),
                mi,
                mn,
                algorithm_agility: agility,
                ckn,
            },
        )
}

fn unknown() -> impl Strategy<Value = Vec<UnknownSet>> {
    proptest::collection::vec(
        (
            9u8..255,
            any::<u8>(),
            0u8..16,
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(set_type, octet2, flags, body)| UnknownSet {
                set_type,
                octet2,
                flags,
                body,
            }),
        0..3,
    )
}

fn mkpdu() -> impl Strategy<Value = Mkpdu> {
    (
        basic(),
        peers(),
        peers(),
        proptest::option::of(sak_use()),
        proptest::option::of(dist_sak()),
        proptest::option::of(
            (any::<[u8; 24]>(), ckn())
                .prop_map(|(wrapped_cak, ckn)| DistributedCak { wrapped_cak, ckn }),
        ),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of((any::<u32>(), any::<u32>()).prop_map(|(a, b)| Xpn {
            latest_lowest_pn_msb: a,
            old_lowest_pn_msb: b,
        })),
        unknown(),
        any::<bool>(),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(basic, live, potential, sak_use, dsak, dcak, kmd, ann, xpn, unknown, ind, icv)| {
                Mkpdu {
                    basic,
                    live_peers: live,
                    potential_peers: potential,
                    sak_use,
                    distributed_sak: dsak,
                    distributed_cak: dcak,
                    kmd,
                    announcement: ann,
                    xpn,
                    unknown,
                    icv_indicator: ind,
                    icv,
                }
            },
        )
}

proptest! {
    #[test]
    fn round_trip(p in mkpdu()) {
        let bytes = p.emit().unwrap();
        prop_assert_eq!(bytes.len() % 4, 0);
        let back = Mkpdu::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.emit().unwrap(), bytes);
    }

    #[test]
    fn signed_round_trip(mut p in mkpdu(), ick in any::<[u8; 16]>(), only in any::<bool>()) {
        let cov = if only { IcvCoverage::MkpduOnly } else { IcvCoverage::PaeGroupHeader };
        let bytes = p.emit_signed(&ick, cov).unwrap();
        prop_assert_eq!(Mkpdu::parse_verified(&bytes, &ick, cov).unwrap(), p);
    }

    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Mkpdu::parse(&data) {
            // Reserved bits are dropped, so compare representations, not octets.
            prop_assert_eq!(Mkpdu::parse(&p.emit().unwrap()).unwrap(), p);
        }
    }

    #[test]
    fn mutated_golden_never_panics(at in 0usize..140, v in any::<u8>()) {
        let mut b = h(GOLDEN);
        if at < b.len() {
            b[at] = v;
        }
        if let Ok(p) = Mkpdu::parse(&b) {
            prop_assert_eq!(Mkpdu::parse(&p.emit().unwrap()).unwrap(), p);
        }
    }
}
