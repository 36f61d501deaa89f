//! `ike-load`: IKEv2 responder capacity over loopback UDP.
//!
//! ```text
//! ike-load bench [--count 2000] [--concurrency 64] [--proposal aes128ccm8-prfsha256-ecp256]
//! ike-load serve --bind 127.0.0.1:5500 --count N [--proposal …]
//! ike-load drive --target 127.0.0.1:5500 --count N [--concurrency C] [--proposal …]
//! ```
//!
//! `bench` starts `serve` as a child process (our responder: one thread, every session of
//! `kmp_ikev2` behind one UDP socket, keyed by source address and SPIi) and `drive`s it: our
//! initiators keep `concurrency` IKE_SA_INIT + IKE_AUTH exchanges (PSK, and the child SA our
//! IKE_AUTH always carries) in flight until `count` IKE SAs are established. It prints one JSON
//! line: completed SAs per second (wall time of the driver) and the responder's CPU time per SA
//! (from its `/proc/self/schedstat`, nanosecond resolution). `drive` alone can target any
//! responder configured with the same PSK and proposal (e.g. strongSwan).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration as StdDuration, Instant as WallInstant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
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

fn factory(proposal: &str) -> anyhow::Result<Ikev2Factory> {
    let cfg = Ikev2Config::from_toml(&format!(
        "psk = \"{PSK}\"\nike_proposals = [\"{proposal}\"]\nchild_proposals = [\"aes128ccm8\"]\n\
         half_open_cookie_threshold = 100000\nlocal_ts = [\"0.0.0.0/0\"]\nremote_ts = [\"0.0.0.0/0\"]\n"
    ))
    .map_err(|e| anyhow!("{e}"))?;
    Ikev2Factory::new(cfg).map_err(|e| anyhow!("{e}"))
}

/// CPU time this process has run, from `/proc/self/schedstat` (nanoseconds).
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
    let f = factory(proposal)?;
    let sock = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
    sock.set_read_timeout(Some(StdDuration::from_millis(200)))?;
    let rng = RngHandle::os();
    let local = ExtendedAddress([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
    let start = WallInstant::now();
    let cpu0 = cpu_ns().unwrap_or(0);
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
    let cpu = cpu_ns().unwrap_or(0).saturating_sub(cpu0);
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
    let f = factory(proposal)?;
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

fn bench(count: usize, concurrency: usize, proposal: &str) -> anyhow::Result<()> {
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse()?;
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
    let d = d?;
    if !status.success() {
        bail!("responder failed: {rest}");
    }
    let server: serde_json::Value =
        serde_json::from_str(rest.trim()).with_context(|| format!("responder said {rest:?}"))?;
    println!(
        "{}",
        serde_json::json!({
            "responder": "kmp-ikev2",
            "proposal": proposal,
            "count": count,
            "concurrency": concurrency,
            "completed": d.completed,
            "failed": d.failed,
            "sas_per_second": d.completed as f64 / d.wall.as_secs_f64(),
            "responder_cpu_us_per_sa": server["cpu_us_per_sa"],
            "wall_ms": u64::try_from(d.wall.as_millis()).unwrap_or(u64::MAX),
        })
    );
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
            count,
            concurrency,
            proposal,
        } => bench(count, concurrency, &proposal),
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
