//! End to end over the UDP virtual radio with two processes: a `kmp-udp-node` gateway and a
//! `kmp-udp-node` node on loopback; the node joins with Dragonfly and sends three CCM*-protected
//! data frames, which the gateway decrypts. Once without loss, once with 20 % of the datagrams
//! dropped at each radio (KMP and MAC retransmissions must carry it).

// Helpers of an integration test: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Proc, events, free_port};

/// Each run must end well within this (the processes' own `--timeout-s` is shorter).
const TEST_DEADLINE: Duration = Duration::from_secs(20);
/// The processes give up on their own after this.
const PROCESS_TIMEOUT_S: &str = "15";

/// Runs a gateway and a node, each with `extra` arguments, and checks the outcome.
fn run_pair(extra_gateway: &[&str], extra_node: &[&str]) {
    run_pair_with(
        &extra_gateway
            .iter()
            .map(|s| (*s).to_string())
            .collect::<Vec<_>>(),
        extra_node,
    );
}

fn run_pair_with(extra_gateway: &[String], extra_node: &[&str]) {
    let gw_port = free_port();
    let node_port = free_port();
    let gw_addr = format!("127.0.0.1:{gw_port}");
    let node_addr = format!("127.0.0.1:{node_port}");
    let args = |role: &str, index: &str, bind: &str, peer: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--role",
            role,
            "--index",
            index,
            "--bind",
            bind,
            "--peer",
            peer,
            "--kmp",
            "dragonfly",
            "--timeout-s",
            PROCESS_TIMEOUT_S,
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        v.extend(extra.iter().map(|s| (*s).to_string()));
        v
    };
    let started = Instant::now();
    let deadline = started + TEST_DEADLINE;
    let gateway = Proc::spawn(
        "gateway",
        &args(
            "gateway",
            "0",
            &gw_addr,
            &node_addr,
            &[
                &["--expect-data", "3"][..],
                &extra_gateway.iter().map(String::as_str).collect::<Vec<_>>(),
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
            &[&["--data-frames", "3"], extra_node].concat(),
        ),
    );
    let (node_code, node_out, node_err) = node.finish(deadline);
    let (gw_code, gw_out, gw_err) = gateway.finish(deadline);
    let report = format!(
        "gateway exit {gw_code:?}\n--- stdout\n{gw_out}--- stderr\n{gw_err}\n\
         node exit {node_code:?}\n--- stdout\n{node_out}--- stderr\n{node_err}"
    );
    eprintln!("{report}\nelapsed {:?}", started.elapsed());
    assert_eq!(node_code, Some(0), "node failed\n{report}");
    assert_eq!(gw_code, Some(0), "gateway failed\n{report}");

    let node_ext = examples::sim::node_address(1).to_string();
    let gw_events = events(&gw_out);
    assert!(
        gw_events
            .iter()
            .any(|e| e["event"] == "joined" && e["peer"] == node_ext.as_str()),
        "no joined event for {node_ext}\n{report}"
    );
    let data: Vec<&Value> = gw_events.iter().filter(|e| e["event"] == "data").collect();
    assert_eq!(data.len(), 3, "data events\n{report}");
    for d in data {
        assert_eq!(d["level"], 6, "{report}");
        assert_eq!(d["peer"], node_ext.as_str(), "{report}");
        assert!(d["len"].as_u64().unwrap() > 0, "{report}");
    }

    let node_events = events(&node_out);
    assert!(
        node_events.iter().any(|e| e["event"] == "joined"
            && e["peer"] == examples::sim::node_address(0).to_string().as_str()),
        "node did not join\n{report}"
    );
    assert_eq!(
        node_events
            .iter()
            .filter(|e| e["event"] == "data_sent")
            .count(),
        3,
        "{report}"
    );
}

#[test]
fn gateway_and_node_processes_join_and_exchange_data() {
    run_pair(&[], &[]);
}

#[test]
fn gateway_and_node_processes_complete_with_20_percent_loss() {
    // 20 % of the datagrams each radio receives are dropped (data and acknowledgments):
    // Dragonfly's retransmissions and the MAC's (up to 7 retries, so that a frame and its
    // acknowledgment, 64 % per attempt, get through with near certainty) carry the run.
    run_pair(
        &["--loss", "0.2", "--seed", "11", "--mac-retries", "7"],
        &["--loss", "0.2", "--seed", "12", "--mac-retries", "7"],
    );
}

/// The pcap tap on the UDP driver: the gateway's capture decodes in tshark without a malformed
/// frame, and with the gateway's key log every protected data frame decrypts.
#[test]
fn the_gateways_capture_over_udp_decrypts_in_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("gw.pcap");
    let keys = dir.path().join("gw.keys");
    run_pair_with(
        &[
            "--pcap".to_string(),
            pcap.display().to_string(),
            "--keylog".to_string(),
            keys.display().to_string(),
        ],
        &[],
    );
    let log = std::fs::read_to_string(&keys).unwrap();
    // The pairwise key with the node (the gateway delivers the group key, it does not install
    // it through the KMP).
    assert!(!log.is_empty());
    let mut args = vec!["-r".to_string(), pcap.display().to_string()];
    for line in log.lines() {
        args.extend(["-o".into(), format!("uat:ieee802154_keys:{line}")]);
    }
    let count = |filter: &str| -> usize {
        let mut a = args.clone();
        a.extend(["-Y".into(), filter.into()]);
        let out = Command::new("tshark")
            .args(&a)
            .output()
            .expect("tshark installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    assert!(count("wpan.mpx.kmp.id == 5") >= 5);
    assert_eq!(count("_ws.malformed || _ws.expert.severity >= error"), 0);
    let secured = count("wpan.security == 1");
    assert!(secured >= 3, "{secured}");
    assert_eq!(count("data.data contains \"kmp-udp-node data\""), secured);
}
