//! `ike-load`: IKEv2 responder capacity over loopback UDP, ours and strongSwan's side by side.
//!
//! ```text
//! ike-load bench [--count 2000] [--concurrency 64] [--proposal aes128ccm8-prfsha256-ecp256]
//!                [--no-strongswan]
//! ike-load serve --bind 127.0.0.1:5500 --count N [--proposal …]
//! ike-load drive --target 127.0.0.1:5500 --count N [--concurrency C] [--proposal …]
//! ```
//!
//! `bench` measures two responders in one run with the same driver, proposal and PSK:
//! 1. ours: `serve` as a child process (one thread, every session of `kmp_ikev2` behind one UDP
//!    socket, keyed by source address and SPIi);
//! 2. strongSwan's charon (unless `--no-strongswan`), started with a private configuration on
//!    free loopback ports (DoS protection off, logging off; its kernel interface has nothing to
//!    install, the IKE SAs have no child SA). For it `bench` re-runs itself under `unshare -n
//!    -m` in a private network namespace with only `lo` and a private /run, as the interop tests
//!    do, so both responders are measured there and charon touches nothing outside; that needs
//!    root (CAP_SYS_ADMIN, CAP_NET_ADMIN).
//!
//! The driver keeps `concurrency` IKE_SA_INIT + IKE_AUTH exchanges in flight until `count` IKE
//! SAs are established. They are childless (RFC 6023, `childless = "force"` without child
//! proposals, DECISIONS I25): PSK, no child SA. `bench` prints one JSON line per responder:
//! completed SAs per second (wall time of the driver) and the responder's CPU time per SA (the
//! sum over its threads of `/proc/PID/task/*/schedstat`, nanoseconds, read before and after the
//! drive), then a comparison line. `drive` alone can target any responder configured with the
//! same PSK and proposal that accepts childless IKE SAs.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration as StdDuration, Instant as WallInstant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use examples::loadtest::{
    cpu_ns, free_udp_port, in_private_namespaces, rerun_in_private_namespaces,
};
use kmp_api::session::{Action, KmpFactory, KmpSession, Outcome, Role, SessionContext};
use kmp_api::{ExtendedAddress, Instant, RngHandle};
use kmp_ikev2::config::Ikev2Config;
use kmp_ikev2::session::Ikev2Factory;

const PSK: &str = "ike-load benchmark pre-shared key";

#[derive(Parser)]
#[command(
    name = "ike-load",
    about = "IKEv2 responder capacity over loopback UDP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start our responder as a child process and drive it.
    Bench {
        /// IKE SAs to establish.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Exchanges in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// IKE proposal (strongSwan spelling).
        #[arg(long, default_value = "aes128ccm8-prfsha256-ecp256")]
        proposal: String,
        /// Measure our responder only.
        #[arg(long)]
        no_strongswan: bool,
    },
    /// Our responder: answer until `count` IKE SAs are established, then print its CPU time.
    Serve {
        /// UDP address to listen on.
        #[arg(long)]
        bind: SocketAddr,
        /// IKE SAs after which to stop.
        #[arg(long)]
        count: usize,
        /// IKE proposal.
        #[arg(long, default_value = "aes128ccm8-prfsha256-ecp256")]
        proposal: String,
    },
    /// Our initiators against a responder.
    Drive {
        /// The responder's UDP address.
        #[arg(long)]
        target: SocketAddr,
        /// IKE SAs to establish.
        #[arg(long)]
        count: usize,
        /// Exchanges in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// IKE proposal.
        #[arg(long, default_value = "aes128ccm8-prfsha256-ecp256")]
        proposal: String,
    },
}

/// The sessions of both sides: PSK, one proposal; the initiator's IKE SAs are childless (RFC
/// 6023) and have no child SA at all, which the responder accepts (`childless = "allow"`).
fn factory(proposal: &str, initiator: bool) -> anyhow::Result<Ikev2Factory> {
    let childless = if initiator {
        "childless = \"force\"\nchild_proposals = []\n"
    } else {
        ""
    };
    let cfg = Ikev2Config::from_toml(&format!(
        "psk = \"{PSK}\"\nike_proposals = [\"{proposal}\"]\nhalf_open_cookie_threshold = 100000\n{childless}"
    ))
    .map_err(|e| anyhow!("{e}"))?;
    Ikev2Factory::new(cfg).map_err(|e| anyhow!("{e}"))
}

fn pseudo_eui64(addr: SocketAddr) -> ExtendedAddress {
    let mut e = [0u8; 8];
    match addr {
        SocketAddr::V4(a) => {
            e[..4].copy_from_slice(&a.ip().octets());
            e[4..6].copy_from_slice(&a.port().to_be_bytes());
        }
        SocketAddr::V6(a) => {
            e[..6].copy_from_slice(&a.ip().octets()[10..]);
            e[6..].copy_from_slice(&a.port().to_be_bytes());
        }
    }
    ExtendedAddress(e)
}

fn ctx(
    local: ExtendedAddress,
    peer: ExtendedAddress,
    role: Role,
    rng: &RngHandle,
    open: usize,
) -> SessionContext {
    SessionContext {
        local,
        peer,
        role,
        rng: rng.clone(),
        now: Instant::ZERO,
        open_responder_sessions: open,
    }
}

fn now_us(start: WallInstant) -> Instant {
    Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Sends what a session wants sent; returns Some(success) when it finished.
fn drain(s: &mut dyn KmpSession, sock: &UdpSocket, to: SocketAddr) -> Option<bool> {
    let mut done = None;
    while let Some(a) = s.poll_action() {
        match a {
            Action::Send(p) => {
                if let Err(e) = sock.send_to(&p, to) {
                    eprintln!("ike-load: send: {e}");
                }
            }
            Action::Finished(Outcome::Success(_)) => done = Some(true),
            Action::Finished(Outcome::Failure(_)) => done = Some(false),
            _ => {}
        }
    }
    done
}

fn spi_i(pdu: &[u8]) -> Option<[u8; 8]> {
    pdu.get(..8).and_then(|s| s.try_into().ok())
}

fn serve(bind: SocketAddr, count: usize, proposal: &str) -> anyhow::Result<()> {
    let f = factory(proposal, false)?;
    let sock = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
    sock.set_read_timeout(Some(StdDuration::from_millis(200)))?;
    let rng = RngHandle::os();
    let local = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
    let start = WallInstant::now();
    let cpu0 = cpu_ns("self").unwrap_or(0);
    let mut sessions: HashMap<(SocketAddr, [u8; 8]), Box<dyn KmpSession>> = HashMap::new();
    let (mut ok, mut failed, mut idle) = (0usize, 0usize, 0u32);
    let mut buf = vec![0u8; 65_535];
    println!("ready");
    while ok < count {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => {
                idle = 0;
                x
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += 1;
                if idle > 150 {
                    bail!("no traffic for 30 s ({ok} established)");
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let pdu = &buf[..n];
        let Some(spi) = spi_i(pdu) else { continue };
        let now = now_us(start);
        let key = (from, spi);
        if !sessions.contains_key(&key) {
            let c = ctx(
                local,
                pseudo_eui64(from),
                Role::Responder,
                &rng,
                sessions.len(),
            );
            match f.new_responder(c, pdu) {
                Ok(s) => {
                    sessions.insert(key, s);
                }
                Err(_) => continue,
            }
        }
        let Some(s) = sessions.get_mut(&key) else {
            continue;
        };
        let _ = s.handle_datagram(now, pdu);
        match drain(s.as_mut(), &sock, from) {
            Some(true) => {
                ok += 1;
                sessions.remove(&key);
            }
            Some(false) => {
                failed += 1;
                sessions.remove(&key);
            }
            None => {}
        }
    }
    let cpu = cpu_ns("self").unwrap_or(0).saturating_sub(cpu0);
    println!(
        "{{\"established\":{ok},\"failed\":{failed},\"cpu_ns\":{cpu},\"cpu_us_per_sa\":{:.1},\"wall_ms\":{}}}",
        cpu as f64 / 1000.0 / ok.max(1) as f64,
        start.elapsed().as_millis()
    );
    Ok(())
}

struct Driven {
    completed: usize,
    failed: usize,
    wall: StdDuration,
}

fn drive(
    target: SocketAddr,
    count: usize,
    concurrency: usize,
    proposal: &str,
) -> anyhow::Result<Driven> {
    let f = factory(proposal, true)?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(StdDuration::from_millis(20)))?;
    let rng = RngHandle::os();
    let local = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x02]);
    let peer = pseudo_eui64(target);
    let start = WallInstant::now();
    let mut inflight: HashMap<[u8; 8], Box<dyn KmpSession>> = HashMap::new();
    let (mut started, mut completed, mut failed) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 65_535];
    let launch = |inflight: &mut HashMap<[u8; 8], Box<dyn KmpSession>>,
                  started: &mut usize|
     -> anyhow::Result<()> {
        let mut s = f
            .new_initiator(ctx(local, peer, Role::Initiator, &rng, 0))
            .map_err(|e| anyhow!("{e}"))?;
        s.start(now_us(start)).map_err(|e| anyhow!("{e}"))?;
        let mut first = None;
        while let Some(a) = s.poll_action() {
            if let Action::Send(p) = a {
                first = spi_i(&p);
                sock.send_to(&p, target)?;
            }
        }
        let spi = first.ok_or_else(|| anyhow!("initiator sent nothing"))?;
        inflight.insert(spi, s);
        *started += 1;
        Ok(())
    };
    while completed + failed < count {
        while inflight.len() < concurrency && started < count {
            launch(&mut inflight, &mut started)?;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let pdu = &buf[..n];
                if let Some(spi) = spi_i(pdu)
                    && let Some(s) = inflight.get_mut(&spi)
                {
                    let _ = s.handle_datagram(now_us(start), pdu);
                    match drain(s.as_mut(), &sock, from) {
                        Some(true) => {
                            completed += 1;
                            inflight.remove(&spi);
                        }
                        Some(false) => {
                            failed += 1;
                            inflight.remove(&spi);
                        }
                        None => {}
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        // Retransmissions and timeouts.
        let now = now_us(start);
        let due: Vec<[u8; 8]> = inflight
            .iter()
            .filter(|(_, s)| s.poll_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for spi in due {
            if let Some(s) = inflight.get_mut(&spi) {
                s.handle_timeout(now);
                if drain(s.as_mut(), &sock, target) == Some(false) {
                    failed += 1;
                    inflight.remove(&spi);
                }
            }
        }
        if start.elapsed() > StdDuration::from_secs(300) {
            bail!("gave up after 300 s: {completed} completed, {failed} failed");
        }
    }
    Ok(Driven {
        completed,
        failed,
        wall: start.elapsed(),
    })
}

/// One responder's result in `bench`.
struct Measured {
    responder: &'static str,
    driven: Driven,
    cpu_ns: u64,
}

impl Measured {
    fn cpu_us_per_sa(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.driven.completed.max(1) as f64
    }

    fn sas_per_second(&self) -> f64 {
        self.driven.completed as f64 / self.driven.wall.as_secs_f64()
    }

    fn json(&self, proposal: &str, count: usize, concurrency: usize) -> serde_json::Value {
        serde_json::json!({
            "responder": self.responder,
            "proposal": proposal,
            "child_sa": false,
            "count": count,
            "concurrency": concurrency,
            "completed": self.driven.completed,
            "failed": self.driven.failed,
            "sas_per_second": (self.sas_per_second() * 10.0).round() / 10.0,
            "responder_cpu_us_per_sa": (self.cpu_us_per_sa() * 10.0).round() / 10.0,
            "wall_ms": u64::try_from(self.driven.wall.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Our responder (`serve` in a child process), driven.
fn bench_ours(count: usize, concurrency: usize, proposal: &str) -> anyhow::Result<Measured> {
    let target: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--bind",
            &target.to_string(),
            "--count",
            &count.to_string(),
            "--proposal",
            proposal,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the responder")?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    // Wait for "ready".
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut first).context("responder did not start")?;
    let d = drive(target, count, concurrency, proposal);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest)?;
    let status = child.wait()?;
    let driven = d?;
    if !status.success() {
        bail!("responder failed: {rest}");
    }
    let server: serde_json::Value =
        serde_json::from_str(rest.trim()).with_context(|| format!("responder said {rest:?}"))?;
    Ok(Measured {
        responder: "kmp-ikev2",
        driven,
        cpu_ns: server["cpu_ns"]
            .as_u64()
            .ok_or_else(|| anyhow!("responder said {rest:?}"))?,
    })
}

/// strongSwan's charon with a private configuration in a temporary directory; killed on drop.
struct Charon {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Charon {
    /// The daemon: Debian's `charon-systemd` (it reads the `charon` section too) or `charon`.
    fn binary() -> anyhow::Result<&'static str> {
        ["/usr/lib/ipsec/charon", "/usr/sbin/charon-systemd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or_else(|| {
                anyhow!(
                    "strongSwan's charon is not installed (scripts/test.sh installs it); \
                     or run with --no-strongswan"
                )
            })
    }

    /// A responder for `proposal` and our PSK on 127.0.0.1:`port` (NAT-T port `port_nat_t`).
    fn start(port: u16, port_nat_t: u16, proposal: &str) -> anyhow::Result<Charon> {
        let bin = Charon::binary()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path().display().to_string();
        // Off unless asked for (IKE_LOAD_CHARON_LOG=1 for charon's level 1 on errors).
        let level = std::env::var("IKE_LOAD_CHARON_LOG").unwrap_or_else(|_| "-1".into());
        // Tuned for capacity, not defaults: no cookies or per-IP blocking (one driver address
        // opens many IKE SAs), a large IKE SA table, no logging, no kernel interface.
        let conf = format!(
            r#"charon {{
  load_modular = no
  load = random nonce openssl sha2 hmac kdf aes gcm kernel-netlink socket-default vici
  port = {port}
  port_nat_t = {port_nat_t}
  interfaces_use = lo
  dos_protection = no
  init_limit_half_open = 0
  cookie_threshold = 1000000
  block_threshold = 1000000
  ikesa_table_size = 4096
  ikesa_table_segments = 16
  plugins {{ vici {{ socket = unix://{d}/charon.vici }} }}
  syslog {{ daemon {{ default = -1 }} }}
  filelog {{ main {{ path = {d}/charon.log
                   default = {level} }} }}
}}
"#
        );
        std::fs::write(dir.path().join("strongswan.conf"), conf)?;
        let swanctl = format!(
            r#"connections {{
  bench {{
    version = 2
    local_addrs = 127.0.0.1
    proposals = {proposal}
    mobike = no
    childless = allow
    send_certreq = no
    local {{ auth = psk
             id = responder.bench }}
    remote {{ auth = psk }}
  }}
}}
secrets {{ ike-1 {{ secret = "{PSK}" }} }}
"#
        );
        std::fs::write(dir.path().join("swanctl.conf"), swanctl)?;
        // We run in our private namespaces (see `bench`): /run and the network are ours.
        let child = Command::new(bin)
            .env("STRONGSWAN_CONF", dir.path().join("strongswan.conf"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log"))?)
            .stderr(std::fs::File::create(dir.path().join("stderr.log"))?)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let charon = Charon { child, dir };
        let started = WallInstant::now();
        while !charon.dir.path().join("charon.vici").exists() {
            if started.elapsed() > StdDuration::from_secs(10) {
                bail!(
                    "charon did not open its vici socket (is this root?): {}",
                    charon.logs()
                );
            }
            std::thread::sleep(StdDuration::from_millis(10));
        }
        let out = Command::new("swanctl")
            .env("SWANCTL_DIR", charon.dir.path())
            .args(["--load-all", "--file", &format!("{d}/swanctl.conf")])
            .args(["--uri", &format!("unix://{d}/charon.vici")])
            .stdin(Stdio::null())
            .output()
            .context("running swanctl")?;
        if !out.status.success() {
            bail!(
                "swanctl --load-all failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(charon)
    }

    fn logs(&self) -> String {
        ["charon.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// strongSwan's responder, driven the same way.
fn bench_strongswan(count: usize, concurrency: usize, proposal: &str) -> anyhow::Result<Measured> {
    // The standard ports, free in our private network namespace: on any other port charon
    // expects the non-ESP marker before every IKE message.
    let (port, port_nat_t) = (500, 4500);
    let charon = Charon::start(port, port_nat_t, proposal)?;
    let pid = charon.child.id().to_string();
    let cpu0 = cpu_ns(&pid).ok_or_else(|| anyhow!("cannot read charon's CPU time"))?;
    let target: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let driven = drive(target, count, concurrency, proposal)
        .with_context(|| format!("driving charon; its log: {}", charon.logs()))?;
    let cpu = cpu_ns(&pid)
        .ok_or_else(|| anyhow!("charon exited: {}", charon.logs()))?
        .saturating_sub(cpu0);
    Ok(Measured {
        responder: "strongswan",
        driven,
        cpu_ns: cpu,
    })
}

/// Set in the re-run of `bench` inside its private namespaces.
const IN_NETNS: &str = "IKE_LOAD_IN_NETNS";

fn bench(count: usize, concurrency: usize, proposal: &str, strongswan: bool) -> anyhow::Result<()> {
    let ours = bench_ours(count, concurrency, proposal)?;
    println!("{}", ours.json(proposal, count, concurrency));
    if strongswan {
        let theirs = bench_strongswan(count, concurrency, proposal)?;
        println!("{}", theirs.json(proposal, count, concurrency));
        println!(
            "{}",
            serde_json::json!({
                "cpu_per_sa_ours_over_strongswan":
                    (ours.cpu_us_per_sa() / theirs.cpu_us_per_sa() * 1000.0).round() / 1000.0,
                "sas_per_second_ours_over_strongswan":
                    (ours.sas_per_second() / theirs.sas_per_second() * 100.0).round() / 100.0,
            })
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match examples::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    examples::init_logging();
    let r = match cli.cmd {
        Cmd::Bench {
            no_strongswan: false,
            ..
        } if !in_private_namespaces(IN_NETNS) => {
            return match rerun_in_private_namespaces(
                IN_NETNS,
                "measuring strongSwan (or use --no-strongswan)",
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ike-load: error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Bench {
            count,
            concurrency,
            proposal,
            no_strongswan,
        } => bench(count, concurrency, &proposal, !no_strongswan),
        Cmd::Serve {
            bind,
            count,
            proposal,
        } => serve(bind, count, &proposal),
        Cmd::Drive {
            target,
            count,
            concurrency,
            proposal,
        } => drive(target, count, concurrency, &proposal).map(|d| {
            println!(
                "{{\"completed\":{},\"failed\":{},\"sas_per_second\":{:.1},\"wall_ms\":{}}}",
                d.completed,
                d.failed,
                d.completed as f64 / d.wall.as_secs_f64(),
                d.wall.as_millis()
            );
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ike-load: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
