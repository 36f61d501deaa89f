//! The 802.1X join (`--kmp 8021x`: KMP ID 1, then the 4-way and group-key handshakes) between
//! a `kmp-udp-node` gateway and a `kmp-udp-node` node over the UDP virtual radio, in real time:
//!
//! - with the built-in EAP-TLS configuration, the two processes sharing the test CA through
//!   `--pki DIR` (created by whichever comes first);
//! - with a pass-through gateway (`--gateway-config`: a PAE with `[radius]` and no methods)
//!   and hostapd 2.10 as the RADIUS server with its internal EAP server (`driver=none`, an
//!   EAP-PSK user), the node an EAP-PSK supplicant (`--node-config`). The 4-way handshake
//!   succeeding proves that the MSK hostapd sent in its Access-Accept is the node's; the data
//!   frames then travel under the TK. A wrong PSK on the node ends in Access-Reject: the node
//!   fails (exit 1, the reason on stderr) and the gateway reports the reject.
//!
//! The RADIUS tests re-run themselves in a private network namespace (`netns_test`, root) with
//! only loopback up; hostapd is killed when its guard drops, and the whole process group at
//! the namespace's time limit. They are skipped with a note when `/usr/sbin/hostapd` (Debian
//! package `hostapd`) is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns_test::hostapd;
use serde_json::Value;

mod common;
use common::{Proc, events, free_port};

const INNER: &str = "KMP_UDP_RADIUS_INNER";
const HOSTAPD: &str = hostapd::PROGRAM;
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// Each pair of processes must end within this (their own `--timeout-s` is shorter).
const RUN_DEADLINE: Duration = Duration::from_secs(40);
const SECRET: &str = "kmp-udp-radius-secret";
const USER: &str = "node-1";
const PSK: &str = "000102030405060708090a0b0c0d0e0f";
const WRONG_PSK: &str = "000102030405060708090a0b0c0d0eff";

/// Runs `body` in a private network namespace with loopback up, unless hostapd is missing.
fn in_netns(name: &str, body: impl FnOnce()) {
    if !Path::new(HOSTAPD).exists() {
        println!("{name}: skipped: {HOSTAPD} is not installed (Debian package hostapd)");
        return;
    }
    let iso = netns_test::Isolation {
        marker: INNER,
        setup: "ip link set lo up",
        limit: TEST_LIMIT,
        what: "the kmp-udp-node RADIUS tests",
    };
    netns_test::run_isolated(name, &iso, body);
}

/// hostapd as a RADIUS server (`driver=none`, netns-test) with its EAP server and one EAP-PSK
/// user, on a free port, its files in `dir`; killed (and `dir` removed) when dropped.
fn start_hostapd(dir: &Path) -> hostapd::Hostapd {
    hostapd::Config::new(dir, SECRET, format!("\"{USER}\" PSK {PSK}\n"))
        .server_id("hostapd.example")
        .start()
}

/// What one pair of processes did.
struct Outcome {
    gw_code: Option<i32>,
    gw: Vec<Value>,
    node_code: Option<i32>,
    node: Vec<Value>,
    node_err: String,
    report: String,
}

/// Runs a gateway and node 1 with `--kmp 8021x` and their extra arguments.
fn run_pair(gateway_extra: &[String], node_extra: &[String], gateway_timeout_s: u64) -> Outcome {
    let gw_addr = format!("127.0.0.1:{}", free_port());
    let node_addr = format!("127.0.0.1:{}", free_port());
    let args = |role: &str, index: &str, bind: &str, peer: &str, timeout: u64, extra: &[String]| {
        let mut v: Vec<String> = [
            "--role", role, "--index", index, "--bind", bind, "--peer", peer, "--kmp", "8021x",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        v.extend(["--timeout-s".to_string(), timeout.to_string()]);
        v.extend(extra.iter().cloned());
        v
    };
    let started = Instant::now();
    let deadline = started + RUN_DEADLINE;
    let gateway = Proc::spawn(
        "gateway",
        &args(
            "gateway",
            "0",
            &gw_addr,
            &node_addr,
            gateway_timeout_s,
            &[
                &["--expect-data".to_string(), "3".to_string()],
                gateway_extra,
            ]
            .concat(),
        ),
    );
    let node = Proc::spawn(
        "node",
        &args(
            "node",
            "1",
            &node_addr,
            &gw_addr,
            20,
            &[&["--data-frames".to_string(), "3".to_string()], node_extra].concat(),
        ),
    );
    let (node_code, node_out, node_err) = node.finish(deadline);
    let (gw_code, gw_out, gw_err) = gateway.finish(deadline);
    let report = format!(
        "gateway exit {gw_code:?}\n--- stdout\n{gw_out}--- stderr\n{gw_err}\n\
         node exit {node_code:?}\n--- stdout\n{node_out}--- stderr\n{node_err}"
    );
    eprintln!("{report}\nelapsed {:?}", started.elapsed());
    Outcome {
        gw_code,
        gw: events(&gw_out),
        node_code,
        node: events(&node_out),
        node_err,
        report,
    }
}

/// Both processes finished every step of the join with each other, and the gateway decrypted
/// the node's three data frames (level 6, under the TK).
fn assert_joined_with_data(o: &Outcome) {
    let report = &o.report;
    assert_eq!(o.node_code, Some(0), "node failed\n{report}");
    assert_eq!(o.gw_code, Some(0), "gateway failed\n{report}");
    let node_ext = examples::sim::node_address(1).to_string();
    let gw_ext = examples::sim::node_address(0).to_string();
    for (who, evs, peer) in [("gateway", &o.gw, &node_ext), ("node", &o.node, &gw_ext)] {
        for id in [1, 6, 7] {
            assert!(
                evs.iter().any(|e| e["event"] == "step"
                    && e["kmp_id"] == id
                    && e["peer"] == peer.as_str()),
                "{who} did not finish KMP ID {id}\n{report}"
            );
        }
        assert!(
            evs.iter()
                .any(|e| e["event"] == "joined" && e["peer"] == peer.as_str()),
            "{who}: no joined event\n{report}"
        );
    }
    let data: Vec<&Value> = o.gw.iter().filter(|e| e["event"] == "data").collect();
    assert_eq!(data.len(), 3, "data events\n{report}");
    for d in data {
        assert_eq!(d["level"], 6, "{report}");
        assert_eq!(d["peer"], node_ext.as_str(), "{report}");
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Writes the pass-through gateway's and the EAP-PSK node's PAE configurations into `dir`.
fn configs(dir: &Path, radius_port: u16, node_psk: &str) -> (PathBuf, PathBuf) {
    let gw = dir.join("gateway.toml");
    std::fs::write(
        &gw,
        format!(
            "role = \"authenticator\"\nidentity = \"gateway\"\nbackend_poll_ms = 10\n\
             [radius]\nnas_identifier = \"kmp-udp-node\"\nretransmit_ms = 1000\n\
             [[radius.servers]]\naddr = \"127.0.0.1:{radius_port}\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let node = dir.join("node.toml");
    std::fs::write(
        &node,
        format!(
            "role = \"supplicant\"\nidentity = \"{USER}\"\nmethods = [\"psk\"]\n\
             [psk]\nid = \"{USER}\"\npsk_hex = \"{node_psk}\"\n"
        ),
    )
    .unwrap();
    (gw, node)
}

#[test]
fn eap_tls_join_with_a_shared_pki_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki").display().to_string();
    let o = run_pair(&strings(&["--pki", &pki]), &strings(&["--pki", &pki]), 20);
    assert_joined_with_data(&o);
    assert!(dir.path().join("pki/ca.pem").exists());
    assert!(dir.path().join("pki/ca.key.pem").exists());
}

#[test]
fn node_joins_through_a_pass_through_gateway_and_hostapd() {
    in_netns(
        "node_joins_through_a_pass_through_gateway_and_hostapd",
        || {
            let dir = tempfile::tempdir().unwrap();
            let hostapd = start_hostapd(&dir.path().join("hostapd"));
            let (gw_cfg, node_cfg) = configs(dir.path(), hostapd.port, PSK);
            let o = run_pair(
                &strings(&["--gateway-config", &gw_cfg.display().to_string()]),
                &strings(&["--node-config", &node_cfg.display().to_string()]),
                20,
            );
            let log = hostapd.log();
            assert_joined_with_data(&o);
            let ok =
                o.gw.iter()
                    .find(|e| e["event"] == "step" && e["kmp_id"] == 1)
                    .unwrap();
            assert_eq!(ok["radius"]["accepts"], 1, "{}", o.report);
            assert_eq!(ok["radius"]["rejects"], 0, "{}", o.report);
            assert!(
                log.contains("EAP-PSK") && log.contains("Sending Access-Accept"),
                "hostapd did not accept an EAP-PSK authentication:\n{log}"
            );
        },
    );
}

#[test]
fn wrong_psk_is_rejected_by_hostapd_and_the_node_fails() {
    in_netns(
        "wrong_psk_is_rejected_by_hostapd_and_the_node_fails",
        || {
            let dir = tempfile::tempdir().unwrap();
            let hostapd = start_hostapd(&dir.path().join("hostapd"));
            let (gw_cfg, node_cfg) = configs(dir.path(), hostapd.port, WRONG_PSK);
            let o = run_pair(
                &strings(&["--gateway-config", &gw_cfg.display().to_string()]),
                &strings(&["--node-config", &node_cfg.display().to_string()]),
                6,
            );
            let log = hostapd.log();
            let report = &o.report;
            assert_eq!(o.node_code, Some(1), "the node must fail\n{report}");
            assert!(
                o.node_err.contains("join failed: 8021x (KMP ID 1)")
                    && o.node_err.contains("authentication failed"),
                "no clear error on the node's stderr\n{report}"
            );
            assert!(
                o.node
                    .iter()
                    .any(|e| e["event"] == "join_failed" && e["kmp"] == "8021x"),
                "{report}"
            );
            assert!(!o.node.iter().any(|e| e["event"] == "joined"), "{report}");
            // The gateway saw the Access-Reject, failed the node's KMP ID 1 and never joined it.
            let failed =
                o.gw.iter()
                    .find(|e| e["event"] == "join_failed" && e["kmp"] == "8021x")
                    .unwrap_or_else(|| panic!("the gateway reported no failure\n{report}"));
            assert_eq!(failed["radius"]["rejects"], 1, "{report}");
            assert_eq!(failed["radius"]["accepts"], 0, "{report}");
            assert!(!o.gw.iter().any(|e| e["event"] == "joined"), "{report}");
            assert_eq!(o.gw_code, Some(1), "the gateway times out\n{report}");
            assert!(
                log.contains("EAP-PSK: Invalid MAC_P") && log.contains("Sending Access-Reject"),
                "hostapd did not reject the wrong PSK:\n{log}"
            );
        },
    );
}
