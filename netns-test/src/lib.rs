//! Test support for interop tests that start real daemons (strongSwan, FreeRADIUS, hostapd,
//! wpa_supplicant): [`run_isolated`] re-runs one test of the calling test binary (`NAME --exact`)
//! under `unshare -n`, in a fresh network namespace set up by a shell snippet, so the daemons'
//! sockets, TUN and veth devices touch nothing outside and tests run in parallel. The re-run
//! is in its own process group, killed as a whole when the time limit passes; its output is
//! printed; a missing privilege is reported as such. [`freeradius`] runs FreeRADIUS with a
//! private configuration inside such a test, [`hostapd`] hostapd as a RADIUS server with its
//! internal EAP server.

#![forbid(unsafe_code)]

pub mod freeradius;
pub mod hostapd;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to isolate one test.
#[derive(Debug, Clone, Copy)]
pub struct Isolation<'a> {
    /// The environment variable that marks the inner run (one per test file).
    pub marker: &'a str,
    /// Shell commands run in the new namespace before the test (e.g. `ip link set lo up`).
    pub setup: &'a str,
    /// The outer time limit.
    pub limit: Duration,
    /// What the tests are, for the message when the namespace cannot be made.
    pub what: &'a str,
}

/// Runs `body` if this is the inner run; otherwise re-runs test `name` of this binary in a
/// private network namespace and panics unless it passed there.
///
/// # Panics
/// When the inner run fails, times out, or the namespace cannot be created (not root): this is
/// a test harness, its failures are test failures.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn run_isolated(name: &str, iso: &Isolation<'_>, body: impl FnOnce()) {
    if std::env::var_os(iso.marker).is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let log = std::env::temp_dir().join(format!(
        "netns-test-{}-{}-{name}.out",
        iso.marker,
        std::process::id()
    ));
    let out = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut child = Command::new("unshare")
        .args(["-n", "--", "sh", "-c"])
        .arg(format!("{} && exec \"$0\" \"$@\"", iso.setup))
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(iso.marker, "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("cannot run unshare (util-linux)");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > iso.limit {
            // The whole group: the test binary and every daemon it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = std::fs::remove_file(&log);
    println!("{text}");
    if text.contains("unshare failed") || text.contains("RTNETLINK answers") {
        panic!(
            "could not create a private network namespace (unshare -n, then `{}`): {} must run \
             as root (CAP_SYS_ADMIN, CAP_NET_ADMIN)",
            iso.setup, iso.what
        );
    }
    match status {
        None => panic!("{name}: no result within {:?}; killed", iso.limit),
        Some(s) => assert!(s.success(), "{name}: inner run failed ({s})"),
    }
    println!("{name}: {:?} in its namespace", started.elapsed());
}
