//! What the side-by-side capacity benchmarks (`ike-load`, `eap-load`) share: the CPU time of a
//! process, a free loopback port, and re-running the command in private namespaces where the
//! third-party server (strongSwan, hostapd) can bind its standard ports and touch nothing
//! outside.

use std::net::UdpSocket;
use std::process::Command;

use anyhow::{Context, bail};

/// CPU time a process has run, all its threads together: the sum of the first field of
/// `/proc/PID/task/*/schedstat` (nanoseconds). `pid` may be `"self"`.
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether this process is the re-run inside the namespaces (`marker` is set).
pub fn in_private_namespaces(marker: &str) -> bool {
    std::env::var_os(marker).is_some()
}

/// Re-runs this command line under `unshare -n -m` with `lo` up and a tmpfs on /run, with
/// `marker` set in its environment, and waits for it. `needs` says what the namespaces are for
/// (in the error when they cannot be made: that needs root).
pub fn rerun_in_private_namespaces(marker: &str, needs: &str) -> anyhow::Result<()> {
    let status = Command::new("unshare")
        .args([
            "-n",
            "-m",
            "--",
            "sh",
            "-c",
            "ip link set lo up && mount -t tmpfs tmpfs /run && exec \"$0\" \"$@\"",
        ])
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(marker, "1")
        .status()
        .context("running unshare (util-linux)")?;
    if !status.success() {
        bail!(
            "the benchmark in its private namespaces failed ({status}); {needs} needs root \
             (unshare -n -m)"
        );
    }
    Ok(())
}
