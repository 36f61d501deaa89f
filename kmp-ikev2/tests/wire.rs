//! The IKEv2 codec: byte-exact known messages (with tshark as an independent oracle when it is
//! installed), property round trips and malformed inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use kmp_ikev2::wire::{
    AuthPayload, CertPayload, CertReqPayload, DeletePayload, EncryptedFragmentPayload,
    EncryptedPayload, ExchangeType, Flags, HEADER_LEN, Header, IdPayload, KePayload, Message,
    NotifyPayload, Payload, Proposal, SaPayload, TrafficSelector, Transform, TsPayload, WireError,
    auth_method, cert_encoding, emit_payloads, emit_with_sk, id_type, notify, parse_payloads,
    payload_type as pt, protocol, sk_parts, transform as tf, ts_type,
};
use proptest::prelude::*;

fn header(exchange: ExchangeType, flags: Flags, message_id: u32) -> Header {
    Header {
        spi_i: [1, 2, 3, 4, 5, 6, 7, 8],
        spi_r: [0; 8],
        next_payload: 0,
        major_version: 2,
        minor_version: 0,
        exchange,
        flags,
        message_id,
        length: 0,
    }
}

/// IKE_SA_INIT request: SA{IKE: ENCR_AES_CCM_8/128, PRF_HMAC_SHA2_256, ECP256}, KE(19),
/// Ni (32 octets), N(SIGNATURE_HASH_ALGORITHMS: SHA2-256).
fn sa_init_request() -> Message {
    let x = [0x11u8; 32];
    let y = [0x22u8; 32];
    Message {
        header: header(
            ExchangeType::IkeSaInit,
            Flags {
                initiator: true,
                version: false,
                response: false,
            },
            0,
        ),
        payloads: vec![
            Payload::Sa(SaPayload {
                proposals: vec![Proposal {
                    number: 1,
                    protocol: protocol::IKE,
                    spi: vec![],
                    transforms: vec![
                        Transform {
                            transform_type: tf::TYPE_ENCR,
                            id: tf::ENCR_AES_CCM_8,
                            key_length: Some(128),
                            other_attributes: vec![],
                        },
                        Transform {
                            transform_type: tf::TYPE_PRF,
                            id: tf::PRF_HMAC_SHA2_256,
                            key_length: None,
                            other_attributes: vec![],
                        },
                        Transform {
                            transform_type: tf::TYPE_DH,
                            id: tf::DH_ECP256,
                            key_length: None,
                            other_attributes: vec![],
                        },
                    ],
                }],
            }),
            Payload::Ke(KePayload {
                group: 19,
                data: [x, y].concat(),
            }),
            Payload::Nonce((0u8..32).collect()),
            Payload::Notify(NotifyPayload {
                protocol: 0,
                spi: vec![],
                notify_type: notify::SIGNATURE_HASH_ALGORITHMS,
                data: vec![0x00, 0x02],
            }),
        ],
    }
}

/// The same message assembled by hand from RFC 7296 §3.1–§3.10:
///
/// Header (28): SPIi 0102030405060708, SPIr 0×8, Next Payload 0x21 (SA), Version 0x20,
/// Exchange 0x22 (34 IKE_SA_INIT), Flags 0x08 (I), Message ID 0, Length 0xba (186 = 28 + 40 +
/// 72 + 36 + 10).
///
/// SA (40 = 4 + 36): generic 22 00 0028 (next KE). Proposal (36 = 8 + 12 + 8 + 8): Last 00,
/// res 00, length 0024, Proposal# 01, Protocol 01 (IKE), SPI size 00, #Transforms 03.
///   Transform ENCR: Last 03 (more), res, length 000c, type 01, res, ID 000e (AES_CCM_8),
///     attribute 800e 0080 (AF=1 TV, type 14 Key Length, 128).
///   Transform PRF: 03 00 0008 02 00 0005 (HMAC_SHA2_256).
///   Transform DH: 00 (last) 00 0008 04 00 0013 (19, ECP256).
/// KE (72 = 4 + 4 + 64): generic 28 00 0048 (next Nonce), group 0013, reserved 0000, x ‖ y.
/// Nonce (36): generic 29 00 0024 (next Notify), 00..1f.
/// Notify (10): generic 00 00 000a (last), Protocol 00, SPI size 00, type 402f (16431), data
///   0002 (SHA2-256, RFC 7427 §4).
fn sa_init_request_hex() -> String {
    [
        "0102030405060708",
        "0000000000000000",
        "21202208",
        "00000000",
        "000000ba",
        // SA
        "22000028",
        "00000024010100",
        "03",
        "0300000c0100000e800e0080",
        "0300000802000005",
        "0000000804000013",
        // KE
        "28000048",
        "00130000",
        &"11".repeat(32),
        &"22".repeat(32),
        // Nonce
        "29000024",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        // Notify
        "0000000a",
        "0000402f",
        "0002",
    ]
    .concat()
}

#[test]
fn sa_init_request_matches_hand_assembled_octets() {
    let m = sa_init_request();
    let bytes = m.emit();
    assert_eq!(hex::encode(&bytes), sa_init_request_hex());
    assert_eq!(bytes.len(), 186);
    let parsed = Message::parse(&bytes).unwrap();
    let mut expected = m.clone();
    expected.header.next_payload = pt::SA;
    expected.header.length = 186;
    assert_eq!(parsed, expected);
    assert_eq!(
        Header::parse(&bytes).unwrap().to_bytes()[..],
        bytes[..HEADER_LEN]
    );
}

#[test]
fn ids_auth_and_body_for_auth() {
    let id = IdPayload {
        id_type: id_type::FQDN,
        data: b"gw.example".to_vec(),
    };
    assert_eq!(
        id.body_for_auth(),
        [&[2u8, 0, 0, 0][..], b"gw.example"].concat()
    );
    let inner = vec![
        Payload::IdI(id.clone()),
        Payload::Cert(CertPayload {
            encoding: cert_encoding::RAW_PUBLIC_KEY,
            data: vec![0x30, 0x59],
        }),
        Payload::Auth(AuthPayload {
            method: auth_method::DIGITAL_SIGNATURE,
            data: vec![9; 5],
        }),
    ];
    let (first, bytes) = emit_payloads(&inner);
    assert_eq!(first, pt::IDI);
    // IDi: 25 (next CERT) 00 0012 | 02 000000 | "gw.example"; CERT: 27 (next AUTH) 00 0007 |
    // 0f | 3059; AUTH: 00 00 000d | 0e 000000 | 0909090909.
    assert_eq!(
        hex::encode(&bytes),
        format!(
            "2500001202000000{}270000070f3059",
            hex::encode("gw.example")
        ) + "0000000d0e0000000909090909"
    );
    assert_eq!(parse_payloads(first, &bytes).unwrap(), inner);
}

// ---------------------------------------------------------------------------------------------
// SK: emit_with_sk and sk_parts.

#[test]
fn sk_builder_and_locator_agree() {
    let h = header(
        ExchangeType::IkeAuth,
        Flags {
            initiator: true,
            ..Flags::default()
        },
        1,
    );
    let outer = vec![Payload::VendorId(b"kmp".to_vec())];
    let mut seen_aad = Vec::new();
    let raw = emit_with_sk::<WireError, _>(&h, &outer, pt::IDI, 20, |aad| {
        seen_aad = aad.to_vec();
        Ok(vec![0xab; 20])
    })
    .unwrap();
    // 28 + VID (4 + 3) + SK header 4 + 20.
    assert_eq!(raw.len(), 59);
    assert_eq!(seen_aad, raw[..39]);
    let parts = sk_parts(&raw).unwrap();
    assert_eq!(parts.aad, &raw[..39]);
    assert_eq!(parts.body, &[0xab; 20][..]);
    assert_eq!(parts.first_inner, pt::IDI);
    // AAD already carries the final length and chain.
    assert_eq!(&seen_aad[24..28], &59u32.to_be_bytes());
    assert_eq!(seen_aad[16], pt::VENDOR_ID);
    assert_eq!(&seen_aad[35..39], &[pt::IDI, 0, 0, 24]);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(
        m.payloads,
        vec![
            outer[0].clone(),
            Payload::Encrypted(EncryptedPayload {
                first_inner: pt::IDI,
                body: vec![0xab; 20]
            })
        ]
    );
    assert_eq!(m.emit(), raw);

    // Without outer payloads the header points at SK.
    let raw2 = emit_with_sk::<WireError, _>(&h, &[], pt::IDI, 0, |_| Ok(vec![])).unwrap();
    assert_eq!(raw2[16], pt::SK);
    assert_eq!(sk_parts(&raw2).unwrap().aad.len(), 32);
}

#[test]
fn sk_builder_rejects_wrong_body_length() {
    let h = header(ExchangeType::IkeAuth, Flags::default(), 1);
    let r = emit_with_sk::<WireError, _>(&h, &[], pt::IDI, 16, |_| Ok(vec![0; 15]));
    assert_eq!(r, Err(WireError::SealLength(16, 15)));
    let r = emit_with_sk::<WireError, _>(&h, &[], pt::IDI, 70_000, |_| Ok(vec![]));
    assert_eq!(r, Err(WireError::TooLong));
    let r = emit_with_sk::<WireError, _>(&h, &[], pt::IDI, 4, |_| {
        Err(WireError::Malformed("seal failed"))
    });
    assert_eq!(r, Err(WireError::Malformed("seal failed")));
}

#[test]
fn sk_parts_without_sk() {
    let bytes = sa_init_request().emit();
    assert_eq!(sk_parts(&bytes), Err(WireError::NoSk));
    assert_eq!(sk_parts(&bytes[..27]), Err(WireError::Truncated));
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

fn set_len(buf: &mut [u8]) {
    let n = u32::try_from(buf.len()).unwrap();
    buf[24..28].copy_from_slice(&n.to_be_bytes());
}

#[test]
fn every_truncation_fails_cleanly() {
    let bytes = sa_init_request().emit();
    for n in 0..bytes.len() {
        assert!(Message::parse(&bytes[..n]).is_err(), "prefix {n} parsed");
        // Also with the header length patched to the prefix: the payload chain must catch it.
        if n >= HEADER_LEN {
            let mut t = bytes[..n].to_vec();
            set_len(&mut t);
            assert!(Message::parse(&t).is_err(), "patched prefix {n} parsed");
            let _ = sk_parts(&t);
        }
        let _ = parse_payloads(pt::SA, &bytes[HEADER_LEN.min(n)..n]);
    }
}

#[test]
fn wrong_length_field() {
    let mut bytes = sa_init_request().emit();
    bytes[27] = 0xbb;
    assert_eq!(Message::parse(&bytes), Err(WireError::BadLength(0xbb, 186)));
    bytes[27] = 0xb9;
    assert_eq!(Message::parse(&bytes), Err(WireError::BadLength(0xb9, 186)));
    // Trailing octets after the last payload, with the header length covering them.
    let mut bytes = sa_init_request().emit();
    bytes.push(0);
    set_len(&mut bytes);
    assert_eq!(Message::parse(&bytes), Err(WireError::TrailingData(1)));
    // A payload length under 4.
    let mut bytes = sa_init_request().emit();
    bytes[28 + 2..28 + 4].copy_from_slice(&[0, 3]);
    assert_eq!(
        Message::parse(&bytes),
        Err(WireError::BadPayloadLength(pt::SA, 3))
    );
}

#[test]
fn version_3_is_rejected_but_header_still_parses() {
    let mut bytes = sa_init_request().emit();
    bytes[17] = 0x30;
    assert_eq!(Message::parse(&bytes), Err(WireError::BadVersion(3)));
    let h = Header::parse(&bytes).unwrap();
    assert_eq!((h.major_version, h.exchange), (3, ExchangeType::IkeSaInit));
}

#[test]
fn critical_bit_on_unknown_payloads() {
    let mut m = sa_init_request();
    m.payloads.push(Payload::Unknown {
        payload_type: 200,
        critical: false,
        body: vec![1, 2],
    });
    let bytes = m.emit();
    let parsed = Message::parse(&bytes).unwrap();
    assert_eq!(parsed.payloads.last(), m.payloads.last());
    m.payloads.pop();
    m.payloads.push(Payload::Unknown {
        payload_type: 200,
        critical: true,
        body: vec![1, 2],
    });
    assert_eq!(
        Message::parse(&m.emit()),
        Err(WireError::UnsupportedCritical(200))
    );
    // CP (not decoded here) marked critical is refused as well.
    let (first, b) = emit_payloads(&[Payload::Unknown {
        payload_type: pt::CP,
        critical: true,
        body: vec![],
    }]);
    assert_eq!(
        parse_payloads(first, &b),
        Err(WireError::UnsupportedCritical(pt::CP))
    );
    // The C bit on a decoded payload is ignored.
    let mut bytes = sa_init_request().emit();
    bytes[28 + 1] = 0x80;
    assert_eq!(
        Message::parse(&bytes).unwrap().payloads,
        sa_init_request().payloads
    );
}

#[test]
fn sk_must_be_last() {
    let mut m = Message {
        header: header(ExchangeType::IkeAuth, Flags::default(), 1),
        payloads: vec![
            Payload::Encrypted(EncryptedPayload {
                first_inner: pt::IDI,
                body: vec![7; 12],
            }),
            Payload::Nonce(vec![1; 16]),
        ],
    };
    assert_eq!(Message::parse(&m.emit()), Err(WireError::SkNotLast));
    assert_eq!(sk_parts(&m.emit()), Err(WireError::SkNotLast));
    m.payloads.pop();
    assert!(Message::parse(&m.emit()).is_ok());
    // SKF too.
    let skf = Payload::EncryptedFragment(EncryptedFragmentPayload {
        first_inner: pt::IDI,
        fragment_number: 1,
        total_fragments: 2,
        body: vec![3; 8],
    });
    let (first, mut b) = emit_payloads(std::slice::from_ref(&skf));
    assert_eq!(parse_payloads(first, &b).unwrap(), vec![skf]);
    b.push(0);
    assert_eq!(parse_payloads(first, &b), Err(WireError::SkNotLast));
}

// Offsets into the IKE_SA_INIT vector: SA generic header at 28, proposal at 32, ENCR transform
// at 40 (its attribute at 48), PRF transform at 52, DH transform at 60.
const PROPOSAL: usize = 32;
const T_ENCR: usize = 40;

#[test]
fn proposal_structure_errors() {
    let good = sa_init_request().emit();
    let mut b = good.clone();
    b[PROPOSAL + 7] = 2; // #Transforms 2, three present
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("proposal transform count"))
    );
    let mut b = good.clone();
    b[PROPOSAL + 7] = 4;
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("proposal transform count"))
    );
    let mut b = good.clone();
    b[PROPOSAL] = 2; // "more proposals" on the only one
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("proposal Last Substruc"))
    );
    let mut b = good.clone();
    b[PROPOSAL + 6] = 40; // SPI size past the proposal
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("proposal SPI size"))
    );
    let mut b = good.clone();
    b[PROPOSAL + 3] = 0x25; // proposal longer than the SA payload
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("proposal length"))
    );
    let mut b = good.clone();
    b[T_ENCR] = 0; // first transform claims to be last
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("transform Last Substruc"))
    );
}

#[test]
fn transform_length_too_short() {
    let mut b = sa_init_request().emit();
    b[T_ENCR + 3] = 4;
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("transform length"))
    );
    let mut b = sa_init_request().emit();
    b[T_ENCR + 3] = 10; // cuts the key length attribute in half
    assert!(Message::parse(&b).is_err());
}

#[test]
fn key_length_attribute_malformed() {
    let mut b = sa_init_request().emit();
    b[T_ENCR + 8] = 0x00; // 000e: TLV form
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("key length attribute not in TV form"))
    );
    // Two key length attributes.
    let mut m = sa_init_request();
    let Payload::Sa(sa) = &mut m.payloads[0] else {
        unreachable!()
    };
    sa.proposals[0].transforms[0]
        .other_attributes
        .push((0x800e, vec![0, 128]));
    assert_eq!(
        Message::parse(&m.emit()),
        Err(WireError::Malformed("duplicate key length attribute"))
    );
    // A TLV attribute whose length runs past the transform.
    let mut m = sa_init_request();
    let Payload::Sa(sa) = &mut m.payloads[0] else {
        unreachable!()
    };
    sa.proposals[0].transforms[1]
        .other_attributes
        .push((0x0011, vec![1, 2, 3]));
    let mut b = m.emit();
    assert!(Message::parse(&b).is_ok());
    let at = b
        .windows(4)
        .position(|w| w == [0x00, 0x11, 0x00, 0x03])
        .unwrap();
    b[at + 3] = 9;
    assert_eq!(
        Message::parse(&b),
        Err(WireError::Malformed("transform attribute length"))
    );
}

#[test]
fn delete_and_ts_structure() {
    let d = Payload::Delete(DeletePayload {
        protocol: protocol::ESP,
        spi_size: 4,
        spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
    });
    let (first, mut b) = emit_payloads(std::slice::from_ref(&d));
    assert_eq!(
        hex::encode(&b),
        "000000100304000201020304050607 08".replace(' ', "")
    );
    assert_eq!(parse_payloads(first, &b).unwrap(), vec![d]);
    b[7] = 3;
    assert_eq!(
        parse_payloads(first, &b),
        Err(WireError::Malformed("delete SPI count"))
    );

    let ts = Payload::TsI(TsPayload {
        selectors: vec![TrafficSelector {
            ts_type: ts_type::IPV4_ADDR_RANGE,
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start_address: vec![10, 0, 0, 0],
            end_address: vec![10, 0, 0, 255],
        }],
    });
    let (first, b) = emit_payloads(std::slice::from_ref(&ts));
    // generic 00 00 0018 | count 01 000000 | type 07 proto 00 len 0010 ports 0000 ffff addrs.
    assert_eq!(
        hex::encode(&b),
        "000000180100000007000010 0000ffff 0a000000 0a0000ff".replace(' ', "")
    );
    assert_eq!(parse_payloads(first, &b).unwrap(), vec![ts]);
    let mut bad = b.clone();
    bad[4] = 2;
    assert_eq!(
        parse_payloads(first, &bad),
        Err(WireError::Malformed("traffic selector count"))
    );
    let mut bad = b.clone();
    bad[8] = 9;
    assert_eq!(
        parse_payloads(first, &bad),
        Err(WireError::Malformed("traffic selector type"))
    );
    let mut bad = b;
    bad[11] = 0x28;
    assert_eq!(
        parse_payloads(first, &bad),
        Err(WireError::Malformed("traffic selector length"))
    );
}

#[test]
fn exchange_type_values() {
    for (v, e) in [
        (34, ExchangeType::IkeSaInit),
        (35, ExchangeType::IkeAuth),
        (36, ExchangeType::CreateChildSa),
        (37, ExchangeType::Informational),
        (99, ExchangeType::Other(99)),
    ] {
        assert_eq!(ExchangeType::from_u8(v), e);
        assert_eq!(e.to_u8(), v);
    }
    assert_eq!(
        Flags {
            initiator: true,
            version: true,
            response: true
        }
        .to_u8(),
        0x38
    );
    assert_eq!(
        Flags::from_u8(0xff),
        Flags {
            initiator: true,
            version: true,
            response: true
        }
    );
}

// ---------------------------------------------------------------------------------------------
// tshark as an oracle.

fn udp500_frame(payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&u16::try_from(ip_len).unwrap().to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let csum = !u16::try_from(sum).unwrap();
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    // Ethernet II: dst, src, EtherType IPv4.
    let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    // UDP 500 -> 500, checksum 0 (none).
    frame.extend_from_slice(&500u16.to_be_bytes());
    frame.extend_from_slice(&500u16.to_be_bytes());
    frame.extend_from_slice(&u16::try_from(udp_len).unwrap().to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET) with one UDP/500 datagram
/// per message.
fn pcap_udp500(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, m) in messages.iter().enumerate() {
        let frame = udp500_frame(m);
        let n = u32::try_from(frame.len()).unwrap();
        out.extend_from_slice(&(1_700_000_000 + u32::try_from(i).unwrap()).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

fn tshark(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn tshark_decodes_sa_init_request() {
    if std::env::var_os("KMP_SKIP_TSHARK").is_some() {
        eprintln!("KMP_SKIP_TSHARK set: skipping the tshark oracle");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kmp-ikev2-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sa_init.pcap");
    std::fs::write(&path, pcap_udp500(&[sa_init_request().emit()])).unwrap();
    let p = path.to_str().unwrap();
    let Some(fields) = tshark(&[
        "-r",
        p,
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-E",
        "aggregator=,",
        "-e",
        "isakmp.version",
        "-e",
        "isakmp.exchangetype",
        "-e",
        "isakmp.tf.id.encr",
        "-e",
        "isakmp.tf.id.prf",
        "-e",
        "isakmp.tf.id.dh",
        "-e",
        "isakmp.ike2.attr.key_length",
        "-e",
        "isakmp.key_exchange.dh_group",
        "-e",
        "isakmp.notify.msgtype",
        "-e",
        "isakmp.nonce",
        "-e",
        "isakmp.length",
    ]) else {
        panic!("tshark must be installed (KMP_SKIP_TSHARK=1 skips)");
    };
    let expected = format!(
        "0x20;34;14;5;19;128;19;16431;{};186",
        (0u8..32).map(|b| format!("{b:02x}")).collect::<String>()
    );
    assert_eq!(fields.trim(), expected, "tshark fields");
    let verbose = tshark(&["-r", p, "-V"]).unwrap();
    assert!(!verbose.contains("Malformed"), "{verbose}");
    assert!(!verbose.contains("[Expert Info (Error"), "{verbose}");
    let malformed = tshark(&[
        "-r",
        p,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= error",
    ])
    .unwrap();
    assert_eq!(malformed.trim(), "", "tshark flags the packet");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every other decoded payload type but CERT in plaintext (tshark has no keys, so the content that
/// normally travels inside SK is put outside it here), then an IKE_AUTH request with SK.
fn other_payloads_messages() -> Vec<Vec<u8>> {
    let plain = Message {
        header: header(
            ExchangeType::Informational,
            Flags {
                response: true,
                ..Flags::default()
            },
            5,
        ),
        payloads: vec![
            Payload::IdI(IdPayload {
                id_type: id_type::FQDN,
                data: b"gw.example".to_vec(),
            }),
            // tshark decodes CERT data as an X.509 certificate whatever the encoding (it flags
            // an RFC 7670 SubjectPublicKeyInfo as malformed), so CERTREQ stands in here.
            Payload::CertReq(CertReqPayload {
                encoding: cert_encoding::X509_SIGNATURE,
                data: vec![0x42; 20],
            }),
            Payload::Auth(AuthPayload {
                method: auth_method::SHARED_KEY_MIC,
                data: vec![0x5a; 32],
            }),
            Payload::Notify(NotifyPayload {
                protocol: 0,
                spi: vec![],
                notify_type: notify::INITIAL_CONTACT,
                data: vec![],
            }),
            Payload::Delete(DeletePayload {
                protocol: protocol::ESP,
                spi_size: 4,
                spis: vec![vec![0xc0, 0, 0, 1], vec![0xc0, 0, 0, 2]],
            }),
            Payload::TsI(TsPayload {
                selectors: vec![TrafficSelector {
                    ts_type: ts_type::IPV4_ADDR_RANGE,
                    ip_protocol: 17,
                    start_port: 0,
                    end_port: 65535,
                    start_address: vec![10, 0, 0, 1],
                    end_address: vec![10, 0, 0, 1],
                }],
            }),
            Payload::TsR(TsPayload {
                selectors: vec![TrafficSelector {
                    ts_type: ts_type::IPV6_ADDR_RANGE,
                    ip_protocol: 0,
                    start_port: 0,
                    end_port: 65535,
                    start_address: [0xfe, 0x80].into_iter().chain([0; 14]).collect(),
                    end_address: [0xfe, 0x80].into_iter().chain([0xff; 14]).collect(),
                }],
            }),
            Payload::VendorId(b"kmp-ikev2".to_vec()),
        ],
    };
    let h = header(
        ExchangeType::IkeAuth,
        Flags {
            initiator: true,
            ..Flags::default()
        },
        1,
    );
    // 8-octet IV, 24 octets of "ciphertext", 16-octet ICV.
    let sk = emit_with_sk::<WireError, _>(&h, &[], pt::IDI, 48, |_| Ok(vec![0xee; 48])).unwrap();
    vec![plain.emit(), sk]
}

#[test]
fn tshark_decodes_other_payloads() {
    if std::env::var_os("KMP_SKIP_TSHARK").is_some() {
        eprintln!("KMP_SKIP_TSHARK set: skipping the tshark oracle");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kmp-ikev2-wire2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("other.pcap");
    std::fs::write(&path, pcap_udp500(&other_payloads_messages())).unwrap();
    let p = path.to_str().unwrap();
    let fields = tshark(&[
        "-r",
        p,
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-E",
        "aggregator=,",
        "-e",
        "isakmp.exchangetype",
        "-e",
        "isakmp.typepayload",
        "-e",
        "isakmp.id.data.fqdn",
        "-e",
        "isakmp.certreq.type",
        "-e",
        "isakmp.auth.method",
        "-e",
        "isakmp.notify.msgtype",
        "-e",
        "isakmp.delete.spi",
        "-e",
        "isakmp.ts.start_ipv4",
        "-e",
        "isakmp.ts.end_ipv6",
        "-e",
        "isakmp.ts.protoid",
        "-e",
        "isakmp.length",
    ])
    .expect("tshark must be installed (KMP_SKIP_TSHARK=1 skips)");
    let lines: Vec<&str> = fields.lines().collect();
    assert_eq!(lines.len(), 2, "{fields}");
    assert_eq!(
        lines[0],
        "37;35,38,39,41,42,44,45,43;gw.example;4;2;16384;c0000001,c0000002;10.0.0.1;fe80:ffff:ffff:ffff:ffff:ffff:ffff:ffff;17,0;".to_owned()
            + &other_payloads_messages()[0].len().to_string()
    );
    assert_eq!(lines[1], "35;46;;;;;;;;;80");
    let verbose = tshark(&["-r", p, "-V"]).unwrap();
    assert!(!verbose.contains("Malformed"), "{verbose}");
    assert!(!verbose.contains("[Expert Info (Error"), "{verbose}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Round trips.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn transform_s() -> impl Strategy<Value = Transform> {
    let attr = prop_oneof![
        (any::<u16>(), any::<[u8; 2]>()).prop_filter_map("not key length", |(t, v)| {
            let ty = t | 0x8000;
            (ty & 0x7fff != 14).then(|| (ty, v.to_vec()))
        }),
        (any::<u16>(), bytes(12)).prop_filter_map("not key length", |(t, v)| {
            let ty = t & 0x7fff;
            (ty != 14).then_some((ty, v))
        }),
    ];
    (
        any::<u8>(),
        any::<u16>(),
        any::<Option<u16>>(),
        prop::collection::vec(attr, 0..3),
    )
        .prop_map(
            |(transform_type, id, key_length, other_attributes)| Transform {
                transform_type,
                id,
                key_length,
                other_attributes,
            },
        )
}

fn sa_s() -> impl Strategy<Value = SaPayload> {
    let proposal = (
        any::<u8>(),
        1u8..=3,
        bytes(9),
        prop::collection::vec(transform_s(), 0..5),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol,
            spi,
            transforms,
        });
    prop::collection::vec(proposal, 1..4).prop_map(|proposals| SaPayload { proposals })
}

fn ts_s() -> impl Strategy<Value = TsPayload> {
    let sel = (
        any::<bool>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(v6, ip_protocol, start_port, end_port, a)| {
            let n = if v6 { 16 } else { 4 };
            TrafficSelector {
                ts_type: if v6 {
                    ts_type::IPV6_ADDR_RANGE
                } else {
                    ts_type::IPV4_ADDR_RANGE
                },
                ip_protocol,
                start_port,
                end_port,
                start_address: a[..n].to_vec(),
                end_address: a[16..16 + n].to_vec(),
            }
        });
    prop::collection::vec(sel, 0..4).prop_map(|selectors| TsPayload { selectors })
}

fn delete_s() -> impl Strategy<Value = DeletePayload> {
    prop_oneof![
        any::<u8>().prop_map(|protocol| DeletePayload {
            protocol,
            spi_size: 0,
            spis: vec![]
        }),
        (any::<u8>(), 1u8..9, 0usize..4, any::<u8>()).prop_map(|(protocol, size, n, fill)| {
            DeletePayload {
                protocol,
                spi_size: size,
                spis: (0..n)
                    .map(|i| vec![fill.wrapping_add(u8::try_from(i).unwrap()); size.into()])
                    .collect(),
            }
        }),
    ]
}

fn payload_s() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa_s().prop_map(Payload::Sa),
        (any::<u16>(), bytes(70)).prop_map(|(group, data)| Payload::Ke(KePayload { group, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(id_type, data)| Payload::IdI(IdPayload { id_type, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(id_type, data)| Payload::IdR(IdPayload { id_type, data })),
        (any::<u8>(), bytes(40))
            .prop_map(|(encoding, data)| Payload::Cert(CertPayload { encoding, data })),
        (any::<u8>(), bytes(40))
            .prop_map(|(encoding, data)| Payload::CertReq(CertReqPayload { encoding, data })),
        (any::<u8>(), bytes(40))
            .prop_map(|(method, data)| Payload::Auth(AuthPayload { method, data })),
        bytes(64).prop_map(Payload::Nonce),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(20)).prop_map(
            |(protocol, spi, notify_type, data)| {
                Payload::Notify(NotifyPayload {
                    protocol,
                    spi,
                    notify_type,
                    data,
                })
            }
        ),
        delete_s().prop_map(Payload::Delete),
        bytes(20).prop_map(Payload::VendorId),
        ts_s().prop_map(Payload::TsI),
        ts_s().prop_map(Payload::TsR),
        (1u8..=255, bytes(20)).prop_filter_map("undecoded type", |(t, body)| {
            (!(33..=46).contains(&t) && t != 53).then_some(Payload::Unknown {
                payload_type: t,
                critical: false,
                body,
            })
        }),
    ]
}

fn last_s() -> impl Strategy<Value = Option<Payload>> {
    prop_oneof![
        Just(None),
        (any::<u8>(), bytes(40)).prop_map(|(first_inner, body)| Some(Payload::Encrypted(
            EncryptedPayload { first_inner, body }
        ))),
        (any::<u8>(), any::<u16>(), any::<u16>(), bytes(40)).prop_map(
            |(first_inner, n, t, body)| {
                Some(Payload::EncryptedFragment(EncryptedFragmentPayload {
                    first_inner,
                    fragment_number: n,
                    total_fragments: t,
                    body,
                }))
            }
        ),
    ]
}

fn message_s() -> impl Strategy<Value = Message> {
    (
        any::<([u8; 8], [u8; 8], u8, u8, u32)>(),
        any::<(bool, bool, bool)>(),
        prop::collection::vec(payload_s(), 0..6),
        last_s(),
    )
        .prop_map(
            |((spi_i, spi_r, minor, exch, message_id), (i, v, r), mut payloads, last)| {
                payloads.extend(last);
                Message {
                    header: Header {
                        spi_i,
                        spi_r,
                        next_payload: 0,
                        major_version: 2,
                        minor_version: minor & 0x0f,
                        exchange: ExchangeType::from_u8(exch),
                        flags: Flags {
                            initiator: i,
                            version: v,
                            response: r,
                        },
                        message_id,
                        length: 0,
                    },
                    payloads,
                }
            },
        )
}

proptest! {
    #[test]
    fn message_round_trip(m in message_s()) {
        let bytes = m.emit();
        let parsed = Message::parse(&bytes).unwrap();
        let mut expected = m.clone();
        expected.header.next_payload = m.payloads.first().map_or(0, Payload::payload_type);
        expected.header.length = u32::try_from(bytes.len()).unwrap();
        prop_assert_eq!(&parsed, &expected);
        prop_assert_eq!(parsed.emit(), bytes.clone());
        if let Some(Payload::Encrypted(sk)) = m.payloads.last() {
            let parts = sk_parts(&bytes).unwrap();
            prop_assert_eq!(parts.body, &sk.body[..]);
            prop_assert_eq!(parts.first_inner, sk.first_inner);
            prop_assert_eq!(parts.aad.len(), bytes.len() - sk.body.len());
        }
    }

    #[test]
    fn payload_chain_round_trip(ps in prop::collection::vec(payload_s(), 0..6)) {
        let (first, bytes) = emit_payloads(&ps);
        prop_assert_eq!(parse_payloads(first, &bytes).unwrap(), ps);
    }

    #[test]
    fn emit_with_sk_matches_message(
        outer in prop::collection::vec(payload_s(), 0..3),
        first_inner in any::<u8>(),
        body in bytes(60),
    ) {
        let h = header(ExchangeType::IkeAuth, Flags::default(), 7);
        let raw = emit_with_sk::<WireError, _>(&h, &outer, first_inner, body.len(), |_| Ok(body.clone()))
            .unwrap();
        let mut payloads = outer.clone();
        payloads.push(Payload::Encrypted(EncryptedPayload { first_inner, body: body.clone() }));
        prop_assert_eq!(&raw, &Message { header: h, payloads }.emit());
        let parts = sk_parts(&raw).unwrap();
        prop_assert_eq!(parts.body, &body[..]);
    }

    #[test]
    fn arbitrary_input_never_panics(first in any::<u8>(), data in bytes(300)) {
        let _ = Message::parse(&data);
        let _ = sk_parts(&data);
        if let Ok(ps) = parse_payloads(first, &data) {
            let (f, b) = emit_payloads(&ps);
            prop_assert_eq!(parse_payloads(f, &b).unwrap(), ps);
        }
    }

    #[test]
    fn mutated_vector_never_panics(at in 0usize..186, v in any::<u8>()) {
        let mut b = sa_init_request().emit();
        b[at] = v;
        if let Ok(m) = Message::parse(&b) {
            prop_assert_eq!(Message::parse(&m.emit()).unwrap(), m);
        }
    }
}
