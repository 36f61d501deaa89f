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

fn capture_and_check(kmp: &str, kmp_id: u8, keys_logged: usize) {
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
}
