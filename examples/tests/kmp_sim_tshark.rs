//! `kmp-sim --pcap --keylog`, then tshark (Wireshark's dissectors, not ours) decodes the
//! capture without a malformed frame and decrypts every protected data frame with the key
//! log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn tshark(args: &[String]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark must be installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn count(args: &[String], filter: &str) -> usize {
    let mut a = args.to_vec();
    a.extend(["-Y".into(), filter.into()]);
    tshark(&a).lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn tshark_decodes_and_decrypts_a_kmp_sim_capture() {
    capture_and_check("dragonfly", 5, 7);
}

/// The same with IKEv2: two directional keys per node (each logged once).
#[test]
fn tshark_decodes_and_decrypts_an_ikev2_capture() {
    capture_and_check("ikev2", 3, 12);
}

/// The Wi-SUN-shaped 802.1X join: EAPOL over MPX under KMP ID 1 (the key request, EAP-TLS,
/// EAP-Success), EAPOL-Key under KMP IDs 6 and 7. tshark 4.0 does not reassemble MPX
/// fragments, so only the EAPOL PDUs that fit one frame decode as EAPOL (the key request,
/// small EAP packets, 4-way messages 2 and 4, group message 2); every fragment must still
/// decode as an MPX IE without complaint. Keys: one TK per node and the GTK (each logged once).
#[test]
fn tshark_decodes_the_8021x_join_as_eapol_over_mpx() {
    let nodes = 6;
    let (args, _dir) = capture_and_check("8021x", 1, nodes + 1);
    // KMP ID 1: every node's Wi-SUN key request (an EAPOL-Key with the Request bit), EAP-TLS
    // both ways, an EAP-Success per node.
    assert!(
        count(
            &args,
            "wpan.mpx.kmp.id == 1 && eapol.type == 3 && wlan_rsna_eapol.keydes.key_info.request == 1"
        ) >= nodes
    );
    assert!(count(&args, "wpan.mpx.kmp.id == 1 && eap.type == 13") >= 2 * nodes);
    assert!(count(&args, "wpan.mpx.kmp.id == 1 && eap.code == 3") >= nodes);
    // The server's certificate flight is MPX-fragmented: fragments of KMP ID 1 on air.
    assert!(count(&args, "wpan.mpx.kmp.id == 1 && wpan.mpx.transfer_type == 2") >= nodes);
    // KMP ID 6: messages 2 and 4 of every node's 4-way handshake (1 and 3 are fragmented);
    // KMP ID 7: group message 2.
    assert!(count(&args, "wpan.mpx.kmp.id == 6 && eapol.type == 3") >= 2 * nodes);
    assert!(count(&args, "wpan.mpx.kmp.id == 6") >= 4 * nodes);
    assert!(count(&args, "wpan.mpx.kmp.id == 7 && eapol.type == 3") >= nodes);
    assert!(count(&args, "wpan.mpx.kmp.id == 7") >= 2 * nodes);
    // EAPOL-Key only under 6 and 7 apart from the key requests; never EAP there.
    assert_eq!(
        count(
            &args,
            "(wpan.mpx.kmp.id == 6 || wpan.mpx.kmp.id == 7) && eap"
        ),
        0
    );
}

/// Runs `kmp-sim` with 6 nodes, checks that tshark decodes every frame without complaint
/// and decrypts every data frame with the key log (and none without); returns tshark's
/// arguments with the keys, for more checks, and the directory that holds the capture.
fn capture_and_check(
    kmp: &str,
    kmp_id: u8,
    keys_logged: usize,
) -> (Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sim.pcap");
    let keys = dir.path().join("sim.keys");
    let out = Command::new(env!("CARGO_BIN_EXE_kmp-sim"))
        .args([
            "--nodes", "6", "--seed", "3", "--quiet", "--json", "--kmp", kmp, "--pcap",
        ])
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kmp-sim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["joins_completed"], 6);
    assert_eq!(summary["data_sent"], 18);

    let mut args = vec!["-r".to_string(), pcap.display().to_string()];
    let log = std::fs::read_to_string(&keys).unwrap();
    // Pairwise keys are installed at both ends and logged once.
    assert_eq!(log.lines().count(), keys_logged, "{log}");
    let plain_args = args.clone();
    for line in log.lines() {
        args.extend(["-o".into(), format!("uat:ieee802154_keys:{line}")]);
    }

    let all = count(&args, "frame");
    assert_eq!(
        all as u64,
        summary["frames_on_air"].as_u64().unwrap() + summary["acks_on_air"].as_u64().unwrap()
    );
    assert_eq!(
        count(&args, "_ws.malformed || _ws.expert.severity >= error"),
        0
    );
    // The KMP's frames are seen as MPX IEs carrying its KMP ID (first fragments and whole
    // frames carry the KMP ID).
    let kmp_frames = count(&args, &format!("wpan.mpx.kmp.id == {kmp_id}"));
    assert!(kmp_frames >= 6 * 4, "{kmp_frames}");
    // Every secured frame is a data frame, and every one of them decrypts.
    let secured = count(&args, "wpan.security == 1");
    assert!(secured >= 18, "{secured}");
    assert_eq!(count(&args, "data.data contains \"kmp-sim data\""), secured);
    // Without the key log nothing decrypts: the test above is not vacuous.
    assert_eq!(count(&plain_args, "data.data contains \"kmp-sim data\""), 0);
    (args, dir)
}
