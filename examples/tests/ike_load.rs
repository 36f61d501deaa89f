//! `ike-load bench` as BENCHMARKS.md runs it, small: both responders (ours, then strongSwan's
//! charon in the benchmark's private namespaces) complete every childless IKE SA and report
//! their CPU time. Only that the measurement works is checked here; the numbers are for
//! BENCHMARKS.md, never for a test.

#![cfg(feature = "kmp-ikev2")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn bench(extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ike-load"))
        .args(["bench", "--count", "120", "--concurrency", "16"])
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

fn check(line: &Value, responder: &str) {
    assert_eq!(line["responder"], responder, "{line}");
    assert_eq!(line["completed"], 120, "{line}");
    assert_eq!(line["failed"], 0, "{line}");
    assert_eq!(line["child_sa"], false, "{line}");
    assert!(
        line["responder_cpu_us_per_sa"].as_f64().unwrap() > 0.0,
        "{line}"
    );
    assert!(line["sas_per_second"].as_f64().unwrap() > 0.0, "{line}");
}

#[test]
fn ours_alone() {
    let lines = bench(&["--no-strongswan"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    check(&lines[0], "kmp-ikev2");
}

/// Needs root for the namespaces, as the strongSwan interop tests do.
#[test]
fn ours_and_strongswan_side_by_side() {
    let lines = bench(&[]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    check(&lines[0], "kmp-ikev2");
    check(&lines[1], "strongswan");
    assert!(
        lines[2]["cpu_per_sa_ours_over_strongswan"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
