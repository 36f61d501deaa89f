//! Independent oracle: Wireshark's 802.15.4 dissector must decrypt frames that our outgoing
//! CCM* transformation protected, verify their MIC, and show the MPX IE and the EAP payload
//! inside (spec/interop-peers.md §1.4 for the key table preference).
//!
//! Needs `tshark` (installed by scripts/test.sh). Set `KMP_SKIP_TSHARK=1` to skip on a machine
//! without it; otherwise a missing tshark fails the test.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;

use kmp_api::addr::{Address, ExtendedAddress, PanId};
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::id::MultiplexId;
use kmp_api::security::{KeyIdentifier, SecurityLevel};
use mpx::security::protect_in_place;
use mpx::wire::{AuxSecurityHeaderRepr, FcsLen, FrameRepr, FrameType, FrameVersion, MpxIeRepr};

const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const OTHER_KEY: [u8; 16] = [0xff; 16];
const SRC: ExtendedAddress = ExtendedAddress([0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
const DST: ExtendedAddress = ExtendedAddress([0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);

/// KMP ID 1, EAPOL v3 EAP packet, EAP-Response/Identity "user".
const KMP_FRAME: [u8; 14] = [1, 3, 0, 0, 9, 2, 1, 0, 9, 1, b'u', b's', b'e', b'r'];

fn secured_frame(seq: u8, level: SecurityLevel, counter: u32, key: &[u8; 16]) -> Vec<u8> {
    let mpx = MpxIeRepr::FullFrame {
        transaction_id: 0,
        multiplex_id: MultiplexId::Kmp,
        data: &KMP_FRAME,
    };
    let ies = mpx.to_payload_ie().unwrap();
    let repr = FrameRepr {
        frame_type: FrameType::Data,
        frame_version: FrameVersion::V2015,
        frame_pending: false,
        ack_request: true,
        seq: Some(seq),
        dst_pan: Some(PanId(0xabcd)),
        dst_addr: Address::Extended(DST),
        src_pan: None,
        src_addr: Address::Extended(SRC),
        security: Some(AuxSecurityHeaderRepr {
            level,
            key_id: KeyIdentifier::Index(1),
            frame_counter: Some(0),
            asn_in_nonce: false,
        }),
        header_ies: &[],
        payload_ies: &ies,
        payload_termination: false,
        payload: &[],
    };
    let mut buf = vec![0u8; repr.buffer_len(FcsLen::Two)];
    repr.emit(&mut buf, FcsLen::Two).unwrap();
    let mut ccm = AesCcm::new(key).unwrap();
    protect_in_place(&mut buf, FcsLen::Two, &mut ccm, SRC, counter).unwrap();
    buf
}

fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    // Classic pcap header, LINKTYPE_IEEE802_15_4_WITHFCS (195).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&195u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap();
        out.extend_from_slice(&(1_700_000_000 + u32::try_from(i).unwrap()).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

#[test]
fn tshark_decrypts_our_ccm_star_frames() {
    if std::env::var_os("KMP_SKIP_TSHARK").is_some() {
        eprintln!("KMP_SKIP_TSHARK set: skipping the tshark oracle");
        return;
    }
    let frames = vec![
        secured_frame(1, SecurityLevel::EncMic32, 5, &KEY),
        secured_frame(2, SecurityLevel::EncMic64, 6, &KEY),
        secured_frame(3, SecurityLevel::EncMic128, 0x0102_0304, &KEY),
        // Protected with a key tshark does not have: must not decrypt.
        secured_frame(4, SecurityLevel::EncMic64, 7, &OTHER_KEY),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("ccm.pcap");
    write_pcap(&pcap, &frames);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-o",
            r#"uat:ieee802154_keys:"000102030405060708090a0b0c0d0e0f","1","No hash""#,
        ])
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "wpan.fcs_ok",
            "-e",
            "wpan.aux_sec.sec_level",
        ])
        .args(["-e", "wpan.aux_sec.frame_counter", "-e", "wpan.mpx.kmp.id"])
        .args(["-e", "eap.identity"])
        .env("HOME", dir.path())
        .output()
        .expect("tshark must be installed (scripts/test.sh installs it; KMP_SKIP_TSHARK=1 skips)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 4, "tshark output:\n{text}");
    let expect = [
        ("1", "0x05", "5"),
        ("2", "0x06", "6"),
        ("3", "0x07", "16909060"),
    ];
    for (line, (n, level, counter)) in lines.iter().zip(expect) {
        assert_eq!(line[0], n);
        assert_eq!(line[1], "1", "FCS of frame {n}: {text}");
        assert_eq!(line[2], level);
        assert_eq!(line[3], counter);
        assert_eq!(line[4], "1", "KMP ID of frame {n} not decoded:\n{text}");
        assert_eq!(
            line[5], "user",
            "EAP identity of frame {n} not decrypted:\n{text}"
        );
    }
    let wrong = &lines[3];
    assert_eq!(wrong[1], "1");
    assert_eq!(
        wrong[5], "",
        "a frame under another key must not decrypt:\n{text}"
    );
}
