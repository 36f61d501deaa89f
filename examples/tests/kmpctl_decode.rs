//! `kmpctl decode` as a user runs it: JSON on stdout, exit 0; bad input: one line on stderr and
//! exit 2.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use kmp_api::addr::{Address, ExtendedAddress};
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::id::MultiplexId;
use kmp_api::security::{KeyIdentifier, SecurityLevel};
use mpx::security::protect_in_place;
use mpx::wire::{AuxSecurityHeaderRepr, FcsLen, FrameRepr, FrameType, FrameVersion, MpxIeRepr};
use serde_json::Value;

fn kmpctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kmpctl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn decode(args: &[&str]) -> Value {
    let mut full = vec!["decode"];
    full.extend_from_slice(args);
    let (code, stdout, stderr) = kmpctl(&full);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one JSON object on one line");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn ex1_full_frame() {
    let v = decode(&["21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4"]);
    assert_eq!(v["frame_type"], "data");
    assert_eq!(v["frame_version"], 2);
    assert_eq!(v["seq"], 5);
    assert_eq!(v["dst_pan"], "0xabcd");
    assert_eq!(v["src_pan"], Value::Null);
    assert_eq!(v["dst_addr"], "02:00:00:00:00:00:00:01");
    assert_eq!(v["src_addr"], "02:00:00:00:00:00:00:02");
    assert_eq!(v["fcs_ok"], true);
    assert_eq!(v["security"], Value::Null);
    assert_eq!(v["header_ies"], serde_json::json!([]));
    assert_eq!(
        v["payload_ies"],
        serde_json::json!([{"group": 3, "len": 8}])
    );
    let m = &v["mpx"][0];
    assert_eq!(m["transfer_type"], "full");
    assert_eq!(m["transaction_id"], 0);
    assert_eq!(m["fragment_number"], Value::Null);
    assert_eq!(m["total_size"], Value::Null);
    assert_eq!(m["multiplex_id"], 1);
    assert_eq!(m["kmp_id"], 1);
    assert_eq!(m["oui"], Value::Null);
    assert_eq!(m["data"], "0103010000");
}

#[test]
fn fragments_abort_vendor_and_fcs32() {
    let v = decode(&["61ee1001000000000000020200000000000002003f0c982a0010000100060303000b10af17"]);
    let m = &v["mpx"][0];
    assert_eq!(m["transfer_type"], "fragment");
    assert_eq!(
        (m["transaction_id"].clone(), m["fragment_number"].clone()),
        (5.into(), 0.into())
    );
    assert_eq!(m["total_size"], 16);
    assert_eq!(m["kmp_id"], 6);
    let v = decode(&["61ee1201000000000000020200000000000002003f06982c021718191a80ad"]);
    let m = &v["mpx"][0];
    assert_eq!(m["transfer_type"], "last_fragment");
    assert_eq!(m["fragment_number"], 2);
    assert_eq!(m["multiplex_id"], Value::Null);
    assert_eq!(m["kmp_id"], Value::Null);
    assert_eq!(m["data"], "1718191a");
    let v = decode(&["61ee1301000000000000020200000000000002003f03982e00048629"]);
    assert_eq!(v["mpx"][0]["transfer_type"], "abort");
    assert_eq!(v["mpx"][0]["total_size"], 1024);
    let v = decode(&["61ef01000000000000020200000000000002003f06980901030100001c27"]);
    assert_eq!(v["seq"], Value::Null);
    assert_eq!(v["mpx"][0]["transfer_type"], "full_compressed");
    assert_eq!(v["mpx"][0]["multiplex_id"], 1);
    let v = decode(&["61ee3001000000000000020200000000000002003f0b98000100ff0050c2deadbeefbe92"]);
    assert_eq!(v["mpx"][0]["kmp_id"], 255);
    assert_eq!(v["mpx"][0]["oui"], "00:50:c2");
    let ex6 = "61ee420100000000000002020000000000000205150106000000003f7d98000100060303007502008a00100000000000000001202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000016dd14000fac04a0a1a2a3a4a5a6a7a8a9aaabacadaeaf520ec704";
    let v = decode(&["--fcs32", ex6]);
    assert_eq!(v["fcs_ok"], true);
    assert_eq!(v["header_ies"], serde_json::json!([{"id": 42, "len": 5}]));
    assert_eq!(v["mpx"][0]["kmp_id"], 6);
    // A damaged FCS is reported, and the frame is still decoded.
    let v = decode(&["21ee05cdab01000000000000020200000000000002003f08980001000103010000caa5"]);
    assert_eq!(v["fcs_ok"], false);
    assert_eq!(v["mpx"][0]["kmp_id"], 1);
    // Ex 6 read with a 2-octet FCS leaves two stray octets in the payload IE list: bad input.
    let (code, _, stderr) = kmpctl(&["decode", ex6]);
    assert_eq!(code, 2);
    assert!(stderr.contains("malformed frame"), "{stderr}");
}

fn secured_hex(key: &[u8; 16]) -> String {
    let src = ExtendedAddress([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
    let mpx = MpxIeRepr::FullFrame {
        transaction_id: 0,
        multiplex_id: MultiplexId::Kmp,
        data: &[5, 0xaa, 0xbb],
    };
    let ies = mpx.to_payload_ie().unwrap();
    let repr = FrameRepr {
        frame_type: FrameType::Data,
        frame_version: FrameVersion::V2015,
        frame_pending: false,
        ack_request: true,
        seq: Some(9),
        dst_pan: None,
        dst_addr: Address::Extended(ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 1])),
        src_pan: None,
        src_addr: Address::Extended(src),
        security: Some(AuxSecurityHeaderRepr {
            level: SecurityLevel::EncMic64,
            key_id: KeyIdentifier::Index(3),
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
    protect_in_place(
        &mut buf,
        FcsLen::Two,
        &mut AesCcm::new(key).unwrap(),
        src,
        77,
    )
    .unwrap();
    hex::encode(buf)
}

#[test]
fn secured_frame_with_and_without_key() {
    let key = [0x42u8; 16];
    let frame = secured_hex(&key);
    let v = decode(&[&frame]);
    assert_eq!(v["security"]["security_level"], 6);
    assert_eq!(v["security"]["key_id_mode"], 1);
    assert_eq!(v["security"]["frame_counter"], 77);
    assert_eq!(v["security"]["key_index"], 3);
    assert_eq!(v["security"]["key_source"], Value::Null);
    assert_eq!(v["security"]["decrypted"], false);
    assert_eq!(v["mpx"], serde_json::json!([]));
    // Wrong key first, right key second: the right one is found.
    let wrong = hex::encode([0x41u8; 16]);
    let right = hex::encode(key);
    let v = decode(&["--key", &wrong, "--key", &right, &frame]);
    assert_eq!(v["security"]["decrypted"], true);
    assert_eq!(v["fcs_ok"], true);
    assert_eq!(v["mpx"][0]["kmp_id"], 5);
    assert_eq!(v["mpx"][0]["data"], "05aabb");
    let v = decode(&["--key", &wrong, &frame]);
    assert_eq!(v["security"]["decrypted"], false);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        vec!["decode", "zz"],
        vec!["decode", "0102"],
        vec!["decode", "04000000"],
        vec![
            "decode",
            "--key",
            "0011",
            "21ee05cdab01000000000000020200000000000002003f08980001000103010000caa4",
        ],
        // A reserved MPX transfer type inside an otherwise valid frame (FCS not checked).
        vec![
            "decode",
            "21ee05cdab01000000000000020200000000000002003f0898030100010301000000000",
        ],
        vec!["decode"],
    ] {
        let (code, stdout, stderr) = kmpctl(&args);
        assert_eq!(code, 2, "{args:?}: {stdout} {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert!(!stderr.trim().is_empty(), "{args:?}");
    }
}

#[test]
fn kmps_lists_the_linked_kmps() {
    let (code, stdout, _) = kmpctl(&["kmps"]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.contains(&serde_json::json!({"kmp_id": 5, "name": "dragonfly"})),
        "{stdout}"
    );
}

#[test]
fn kmps_with_a_plugin_that_is_not_a_library_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("libnot-a-plugin.so");
    std::fs::write(&bogus, b"not an ELF file").unwrap();
    let (code, stdout, stderr) = kmpctl(&["kmps", "--plugin", bogus.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("loading plugin"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
