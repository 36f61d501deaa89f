//! `eap-load bench` as BENCHMARKS.md runs it, small: our EAP server behind RADIUS and hostapd's
//! (in the benchmark's private namespaces) complete every EAP-PSK and EAP-TLS 1.3
//! authentication, with the MSK checked against the MS-MPPE keys, and report their CPU time.
//! Only that the measurement works is checked here; the numbers are for BENCHMARKS.md, never
//! for a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const COUNT: u64 = 20;

fn bench(method: &str, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_eap-load"))
        .args([
            "bench",
            "--method",
            method,
            "--count",
            "20",
            "--concurrency",
            "4",
        ])
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn check(line: &Value, server: &str, method: &str) {
    assert_eq!(line["server"], server, "{line}");
    assert_eq!(line["method"], method, "{line}");
    assert_eq!(line["completed"], COUNT, "{line}");
    assert_eq!(line["failed"], 0, "{line}");
    assert!(
        line["server_cpu_us_per_auth"].as_f64().unwrap() > 0.0,
        "{line}"
    );
    assert!(
        line["completed_per_second"].as_f64().unwrap() > 0.0,
        "{line}"
    );
}

fn side_by_side(method: &str) {
    let lines = bench(method, &[]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    check(&lines[0], "ours", method);
    check(&lines[1], "hostapd-2.10", method);
    assert!(
        lines[2]["cpu_per_auth_ours_over_hostapd"].as_f64().unwrap() > 0.0,
        "{}",
        lines[2]
    );
}

#[test]
fn ours_alone_psk_and_tls13() {
    for method in ["psk", "tls13"] {
        let lines = bench(method, &["--no-hostapd"]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        check(&lines[0], "ours", method);
    }
}

/// Needs root for the namespaces and /usr/sbin/hostapd, as the hostapd interop tests do.
#[test]
fn psk_ours_and_hostapd_side_by_side() {
    side_by_side("psk");
}

/// Needs root for the namespaces and /usr/sbin/hostapd.
#[test]
fn tls13_ours_and_hostapd_side_by_side() {
    side_by_side("tls13");
}
