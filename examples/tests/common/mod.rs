//! Helpers shared by the `kmp-udp-node` integration tests: free ports, the node processes
//! (stdout and stderr read by threads, killed at a deadline or on drop) and their JSON events.

#![allow(dead_code)]

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free UDP port on loopback (bound, read, released).
pub(crate) fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A `kmp-udp-node` process whose stdout and stderr are read to the end by threads (so a full
/// pipe never blocks it).
pub(crate) struct Proc {
    name: &'static str,
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

impl Proc {
    /// Starts `kmp-udp-node` with `args` (and no `KMP_LOG`).
    pub(crate) fn spawn(name: &'static str, args: &[String]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kmp-udp-node"))
            .args(args)
            .env_remove("KMP_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning kmp-udp-node");
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Proc {
            name,
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits until `deadline`; kills the process if it is still running then. Returns the
    /// exit code (`None` if killed or ended by a signal), stdout and stderr.
    pub(crate) fn finish(mut self, deadline: Instant) -> (Option<i32>, String, String) {
        let code = loop {
            match self.child.try_wait().unwrap() {
                Some(status) => break status.code(),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    eprintln!("{}: killed at the test deadline", self.name);
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let out = self.stdout.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (code, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A panic between spawn and finish must not leave the process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The JSON events a process printed, one per line.
pub(crate) fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}
