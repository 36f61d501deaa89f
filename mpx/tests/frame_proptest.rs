//! Property: any representable 802.15.4 frame emits into exactly `buffer_len()` octets, passes
//! `Frame::new_checked` with a correct FCS, and parses back to the same representation. Random
//! versions, frame types, addressing/PAN ID combinations, security headers, header and payload
//! IE lists (with and without PT) and raw payloads.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kmp_api::addr::{Address, ExtendedAddress, PanId, ShortAddress};
use kmp_api::security::{KeyIdentifier, KeySource, SecurityLevel};
use mpx::wire::ie::{HeaderIe, PayloadIe, PayloadIeGroup};
use mpx::wire::{
    AuxSecurityHeaderRepr, Error, FcsLen, Frame, FrameRepr, FrameType, FrameVersion, ParseOptions,
};
use proptest::prelude::*;
fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        Just(Address::Absent),
        any::<u16>().prop_map(|s| Address::Short(ShortAddress(s))),
        any::<[u8; 8]>().prop_map(|e| Address::Extended(ExtendedAddress(e))),
    ]
}

fn key_id() -> impl Strategy<Value = KeyIdentifier> {
    prop_oneof![
        Just(KeyIdentifier::Implicit),
        any::<u8>().prop_map(KeyIdentifier::Index),
        (any::<[u8; 4]>(), any::<u8>())
            .prop_map(|(s, i)| KeyIdentifier::SourceIndex(KeySource::Four(s), i)),
        (any::<[u8; 8]>(), any::<u8>())
            .prop_map(|(s, i)| KeyIdentifier::SourceIndex(KeySource::Eight(s), i)),
    ]
}

fn security() -> impl Strategy<Value = Option<AuxSecurityHeaderRepr>> {
    proptest::option::of((
        0u8..8,
        key_id(),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
    ))
    .prop_map(|o| {
        o.map(
            |(l, key_id, frame_counter, asn_in_nonce)| AuxSecurityHeaderRepr {
                level: SecurityLevel::from_bits(l),
                key_id,
                frame_counter,
                asn_in_nonce,
            },
        )
    })
}

fn header_ies() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        (
            any::<u8>().prop_filter("not a termination IE", |id| *id != 0x7e && *id != 0x7f),
            proptest::collection::vec(any::<u8>(), 0..20),
        ),
        0..3,
    )
    .prop_map(|ies| {
        let mut out = Vec::new();
        for (id, content) in ies {
            let ie = HeaderIe {
                element_id: id,
                content: &content,
            };
            let mut b = vec![0u8; ie.buffer_len()];
            ie.emit(&mut b).unwrap();
            out.extend(b);
        }
        out
    })
}

fn payload_ies() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        (0u8..0xf, proptest::collection::vec(any::<u8>(), 0..40)),
        0..3,
    )
    .prop_map(|ies| {
        let mut out = Vec::new();
        for (g, content) in ies {
            let ie = PayloadIe {
                group: PayloadIeGroup::from_id(g),
                content: &content,
            };
            let mut b = vec![0u8; ie.buffer_len()];
            ie.emit(&mut b).unwrap();
            out.extend(b);
        }
        out
    })
}

#[derive(Debug, Clone)]
struct Owned {
    frame_type: FrameType,
    version: FrameVersion,
    pending: bool,
    ack: bool,
    seq: Option<u8>,
    dst_pan: Option<u16>,
    dst: Address,
    src_pan: Option<u16>,
    src: Address,
    security: Option<AuxSecurityHeaderRepr>,
    header_ies: Vec<u8>,
    payload_ies: Vec<u8>,
    pt: bool,
    payload: Vec<u8>,
}

fn frame() -> impl Strategy<Value = Owned> {
    (
        prop_oneof![
            Just(FrameType::Beacon),
            Just(FrameType::Data),
            Just(FrameType::Ack),
            Just(FrameType::MacCommand)
        ],
        prop_oneof![Just(FrameVersion::V2006), Just(FrameVersion::V2015)],
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<u8>()),
        ),
        (
            proptest::option::of(any::<u16>()),
            address(),
            proptest::option::of(any::<u16>()),
            address(),
        ),
        security(),
        (
            header_ies(),
            payload_ies(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..60),
        ),
    )
        .prop_map(
            |(
                frame_type,
                version,
                (pending, ack, seq),
                (dp, dst, sp, src),
                security,
                (h, p, pt, payload),
            )| {
                // A 2006 frame has no IEs, always a sequence number and no 2015 security options.
                let legacy = version == FrameVersion::V2006;
                let security = security.map(|s| {
                    if legacy {
                        AuxSecurityHeaderRepr {
                            frame_counter: Some(s.frame_counter.unwrap_or(1)),
                            asn_in_nonce: false,
                            ..s
                        }
                    } else {
                        s
                    }
                });
                let (h, p, seq) = if legacy {
                    (Vec::new(), Vec::new(), Some(seq.unwrap_or(0)))
                } else {
                    (h, p, seq)
                };
                Owned {
                    frame_type,
                    version,
                    pending,
                    ack,
                    seq,
                    dst_pan: dp,
                    dst,
                    src_pan: sp,
                    src,
                    security,
                    header_ies: h,
                    payload_ies: p,
                    pt,
                    payload,
                }
            },
        )
}

impl Owned {
    fn repr(&self) -> FrameRepr<'_> {
        FrameRepr {
            frame_type: self.frame_type,
            frame_version: self.version,
            frame_pending: self.pending,
            ack_request: self.ack,
            seq: self.seq,
            dst_pan: self.dst_pan.map(PanId),
            dst_addr: self.dst,
            src_pan: self.src_pan.map(PanId),
            src_addr: self.src,
            security: self.security,
            header_ies: &self.header_ies,
            payload_ies: &self.payload_ies,
            payload_termination: self.pt,
            payload: &self.payload,
        }
    }
}

/// Emits `repr`, parses it back and compares.
fn round_trip(repr: FrameRepr<'_>, fcs: FcsLen) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; repr.buffer_len(fcs)];
    let n = repr
        .emit(&mut buf, fcs)
        .map_err(|e| TestCaseError::fail(format!("emit failed: {e}")))?;
    prop_assert_eq!(n, buf.len());
    let view = Frame::new_checked(&buf[..], fcs).unwrap();
    prop_assert!(view.fcs_ok());
    let opts = ParseOptions {
        check_fcs: true,
        unprotected: true,
    };
    let parsed = FrameRepr::parse_with(&view, opts).unwrap();
    // PT is kept only where it means something: after payload IEs with nothing behind it.
    let mut expected = repr;
    expected.payload_termination =
        repr.payload_termination && !repr.payload_ies.is_empty() && repr.payload.is_empty();
    prop_assert_eq!(parsed, expected);
    // A short buffer is an error, not a panic.
    prop_assert_eq!(
        repr.emit(&mut buf[..n - 1], fcs),
        Err(Error::BufferTooShort)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn emit_then_parse_is_identity(f in frame(), fcs in prop_oneof![Just(FcsLen::Two), Just(FcsLen::Four)]) {
        let base = f.repr();
        // Of the four PAN ID presence combinations, the PAN ID compression rules allow one or
        // two for any pair of addressing modes; the others must be refused, never mis-encoded.
        let (dp, sp) = (base.dst_pan.unwrap_or(PanId(0x1234)), base.src_pan.unwrap_or(PanId(0x5678)));
        let mut encodable = 0;
        for (d, s) in [(None, None), (Some(dp), None), (None, Some(sp)), (Some(dp), Some(sp))] {
            let repr = FrameRepr { dst_pan: d, src_pan: s, ..base };
            match repr.emit(&mut vec![0u8; repr.buffer_len(fcs)], fcs) {
                Err(Error::InvalidPanIdCompression) => continue,
                _ => {
                    round_trip(repr, fcs)?;
                    encodable += 1;
                }
            }
        }
        prop_assert!((1..=2).contains(&encodable), "{} PAN ID combinations encodable", encodable);
    }
}
