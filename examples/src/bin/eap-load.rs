//! `eap-load`: EAP server capacity behind RADIUS over loopback UDP, ours and hostapd's side by
//! side, for EAP-TLS (ECDSA P-256, TLS 1.2 and 1.3) and EAP-PSK.
//!
//! ```text
//! eap-load bench   --method psk|tls12|tls13 [--count 900] [--concurrency 32] [--no-hostapd]
//! eap-load serve   --bind 127.0.0.1:1812 --method … --count N --pki DIR
//! eap-load drive   --target 127.0.0.1:1812 --method … --count N [--concurrency C] --pki DIR
//! eap-load inproc  --method … [--count 2000]
//! ```
//!
//! Every command takes `--tls-engine rustls|openssl` (default rustls: DECISIONS E12) for our
//! EAP-TLS peers and server; `bench` passes it on to its `serve` child.
//!
//! - `serve`: our EAP server as a RADIUS server, one thread, one UDP socket. A conversation is
//!   found by the State we sent in its last Access-Challenge, or, for a first Access-Request
//!   (no State), by source address and User-Name. Every Access-Request must carry a valid
//!   Message-Authenticator (others are dropped); every reply carries one. The EAP side is
//!   `eap::authenticator::Authenticator` started with `start_backend` (RFC 4137 §6) offering
//!   exactly the method asked for; the Access-Accept carries EAP-Success and the MSK as
//!   MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key (RFC 2548). A retransmitted request (same State or
//!   source and User-Name, same Request Authenticator) gets the same reply again. It stops after
//!   `count` conversations ended and prints its CPU time (all threads, from schedstat).
//! - `drive`: our EAP peers (`eap::peer::Peer` with `TlsPeer` or `PskPeer`), one UDP socket
//!   playing NAS and supplicant for `concurrency` conversations at a time: the NAS's Identity
//!   Request goes to the peer, every peer Response goes out in an Access-Request (User-Name,
//!   EAP-Message, State, Message-Authenticator; RFC 3579), every reply is checked (Response
//!   Authenticator and Message-Authenticator) and its EAP-Message handed to the peer. A
//!   conversation completes on an Access-Accept whose MS-MPPE keys equal our peer's MSK;
//!   anything else counts as failed. Requests are retransmitted after 1 s, 5 times at most.
//! - `bench`: a test PKI with the `openssl` command (ECDSA P-256: CA, server, client), then our
//!   server (`serve` as a child) and hostapd 2.10 (`/usr/sbin/hostapd`, `driver=none`, its
//!   internal EAP server as a RADIUS server, the same PKI, PSK and shared secret; unless
//!   `--no-hostapd`), each driven the same way. One JSON line per server (completed per second
//!   by the driver's wall clock, the server's CPU per authentication from
//!   `/proc/PID/task/*/schedstat`, failed) and a comparison line. With hostapd the whole run
//!   re-executes itself under `unshare -n -m` (root) in a private network namespace with only
//!   `lo` and a private /run, as `ike-load` does. hostapd's RADIUS server holds at most 1000
//!   sessions, each kept 5 s after it ended, so a run with hostapd is at most 900
//!   authentications. For TLS, hostapd gets
//!   `tls_flags=[ENABLE-TLSv1.3]` (hostapd 2.10 disables TLS 1.3 by default) and our server
//!   allows both versions: the peer's configuration picks the version.
//! - `inproc`: `count` complete EAP conversations between our peer and our standalone
//!   authenticator in one thread, interleaved in rounds with the crypto floor: the same
//!   public-key, AES, CMAC and HMAC operations both sides do, and the random draws the
//!   protocols require (nonces, Hello randoms, the first Identifier), called directly through
//!   `kmp_api::crypto`. Prints conversations per second, both times and the ratio
//!   floor / exchange.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as WallInstant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use eap::authenticator::{AuthAction, AuthOutcome, Authenticator, AuthenticatorConfig};
use eap::method::{MethodKeys, PeerMethod, ServerMethod};
use eap::peer::{Peer, PeerAction, PeerConfig, PeerOutcome};
use eap::psk::{PskPeer, PskServer, PskStore};
use eap::tls::{
    TlsConfig, TlsEngine, TlsPeer, TlsPeerContext, TlsServer, TlsServerContext, TlsVersions,
};
use eap::wire::{Body, Packet as EapPacket};
use examples::loadtest::{
    cpu_ns, free_udp_port, in_private_namespaces, rerun_in_private_namespaces,
};
use kmp_api::crypto::Key128;
use kmp_api::crypto::SecretBytes;
use kmp_api::rng::RngHandle;
use kmp_api::time::Instant;
use radius::wire::{
    self, Attribute, Code, EapServerDecision, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, Packet, Repr,
};

/// The RADIUS shared secret of the driver (the NAS) and both servers.
const SECRET: &[u8] = b"eap-load shared secret";
/// The EAP-PSK key of every peer.
const PSK: [u8; 16] = *b"eap-load PSK 16B";
/// Peer identities are `node-<n>@bench.example`; both servers know every `node-` identity.
const ID_PREFIX: &str = "node-";
const ID_REALM: &str = "@bench.example";
/// The server's name: EAP-PSK ID_S and hostapd's `server_id`.
const SERVER_ID: &str = "aaa.bench.example";
const CLIENT_CN: &str = "node.bench.example";
/// Largest EAP-TLS type-data per message, on both sides (hostapd's `fragment_size`).
const FRAGMENT_SIZE: usize = 1398;
const HOSTAPD: &str = "/usr/sbin/hostapd";
/// Retransmission timeout of the driver, and how many retransmissions before giving up.
const RTO: StdDuration = StdDuration::from_secs(1);
const MAX_RETRANSMISSIONS: u32 = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Method {
    /// EAP-PSK (RFC 4764).
    Psk,
    /// EAP-TLS with TLS 1.2 (RFC 5216), ECDHE-ECDSA with P-256.
    Tls12,
    /// EAP-TLS with TLS 1.3 (RFC 9190), ECDHE and ECDSA with P-256.
    Tls13,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Psk => "psk",
            Method::Tls12 => "tls12",
            Method::Tls13 => "tls13",
        }
    }

    fn is_tls(self) -> bool {
        self != Method::Psk
    }
}

#[derive(Parser)]
#[command(
    name = "eap-load",
    about = "EAP server capacity behind RADIUS over loopback UDP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// TLS engine of our EAP-TLS peers and server (DECISIONS E12).
    #[arg(long, global = true, value_enum, default_value_t = Engine::Rustls)]
    tls_engine: Engine,
}

/// `eap::tls::TlsEngine` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    /// rustls with OpenSSL's primitives (the default).
    Rustls,
    /// OpenSSL's libssl.
    Openssl,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Rustls => "rustls",
            Engine::Openssl => "openssl",
        }
    }
}

/// The engine chosen on the command line, for every TLS configuration this process makes.
static TLS_ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Cmd {
    /// Our server (a child process), then hostapd's, driven the same way.
    Bench {
        /// EAP method.
        #[arg(long, value_enum)]
        method: Method,
        /// Authentications per server (at most 900 with hostapd, see `HOSTAPD_MAX_COUNT`).
        #[arg(long, default_value_t = 900)]
        count: usize,
        /// Conversations in flight at once (at most 255: one RADIUS Identifier each).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Measure our server only (no namespaces, no root needed).
        #[arg(long)]
        no_hostapd: bool,
    },
    /// Our EAP server behind RADIUS: answer until `count` conversations ended.
    Serve {
        /// UDP address to listen on.
        #[arg(long)]
        bind: SocketAddr,
        /// EAP method offered.
        #[arg(long, value_enum)]
        method: Method,
        /// Conversations after which to stop.
        #[arg(long)]
        count: usize,
        /// Directory of the test PKI (made there if missing).
        #[arg(long)]
        pki: PathBuf,
    },
    /// Our peers against a RADIUS server with an EAP server.
    Drive {
        /// The RADIUS server's address.
        #[arg(long)]
        target: SocketAddr,
        /// EAP method.
        #[arg(long, value_enum)]
        method: Method,
        /// Authentications.
        #[arg(long)]
        count: usize,
        /// Conversations in flight at once (at most 255).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Directory of the test PKI (made there if missing).
        #[arg(long)]
        pki: PathBuf,
    },
    /// Complete conversations peer ↔ our authenticator in one thread, against the crypto floor.
    Inproc {
        /// EAP method.
        #[arg(long, value_enum)]
        method: Method,
        /// Conversations (and as many floor iterations).
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Test PKI

/// The test PKI's files: a P-256 CA, the server's and the client's certificate and key.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        std::fs::read(self.path(name)).with_context(|| format!("reading {name}"))
    }

    /// The PKI in `dir`, generated with the `openssl` command unless `ca.pem` is there.
    fn ensure(dir: &Path) -> anyhow::Result<Pki> {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        if pki.path("ca.pem").exists() {
            return Ok(pki);
        }
        std::fs::create_dir_all(dir)?;
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .context("running openssl")?;
            if !out.status.success() {
                bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        let p256 = ["genpkey", "-algorithm", "EC", "-pkeyopt"];
        for key in ["ca.key", "server.key", "client.key"] {
            openssl(&[&p256[..], &["ec_paramgen_curve:P-256", "-out", key]].concat())?;
        }
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "3650",
            "-subj",
            "/CN=eap-load test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ])?;
        for (name, cn, serial) in [("server", SERVER_ID, "2"), ("client", CLIENT_CN, "3")] {
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     subjectAltName=DNS:{cn}\n"
                ),
            )?;
            let (key, csr, ext, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.ext"),
                format!("{name}.pem"),
            );
            openssl(&[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                &csr,
            ])?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "3650",
                "-sha256",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ])?;
        }
        Ok(pki)
    }

    /// Our TLS configuration as `who` (`server` or `client`).
    fn tls_config(&self, who: &str, versions: TlsVersions) -> anyhow::Result<TlsConfig> {
        let mut c = TlsConfig::from_pem(
            &self.read(&format!("{who}.pem"))?,
            &self.read(&format!("{who}.key"))?,
            &self.read("ca.pem")?,
        )
        .map_err(|e| anyhow!("{who} TLS configuration: {e}"))?;
        c.versions = versions;
        c.fragment_size = FRAGMENT_SIZE;
        c.engine = match TLS_ENGINE.get().copied().unwrap_or(Engine::Rustls) {
            Engine::Rustls => TlsEngine::Rustls,
            Engine::Openssl => TlsEngine::OpenSsl,
        };
        Ok(c)
    }
}

// ---------------------------------------------------------------------------------------------
// Methods of both sides

/// What our server offers: built once, one fresh method object per conversation.
enum ServerMethods {
    Psk(Arc<dyn PskStore>),
    Tls(TlsServerContext),
}

impl ServerMethods {
    fn new(method: Method, pki: &Pki) -> anyhow::Result<ServerMethods> {
        Ok(match method {
            Method::Psk => {
                let store: Arc<dyn PskStore> = Arc::new(|id: &[u8]| {
                    id.starts_with(ID_PREFIX.as_bytes())
                        .then(|| Key128::new(PSK))
                });
                ServerMethods::Psk(store)
            }
            // Both versions, as hostapd with TLS 1.3 enabled: the peer picks.
            Method::Tls12 | Method::Tls13 => ServerMethods::Tls(
                TlsServerContext::new(&pki.tls_config("server", TlsVersions::Both)?)
                    .map_err(|e| anyhow!("{e}"))?,
            ),
        })
    }

    fn method(&self) -> Box<dyn ServerMethod> {
        match self {
            ServerMethods::Psk(store) => Box::new(PskServer::new(SERVER_ID, Arc::clone(store))),
            ServerMethods::Tls(ctx) => Box::new(TlsServer::new(ctx)),
        }
    }

    fn authenticator(&self, rng: &RngHandle) -> Authenticator {
        Authenticator::new(
            AuthenticatorConfig::default(),
            vec![self.method()],
            rng.clone(),
        )
    }
}

/// What our peers use.
enum PeerMethods {
    Psk,
    Tls(TlsPeerContext),
}

impl PeerMethods {
    fn new(method: Method, pki: &Pki) -> anyhow::Result<PeerMethods> {
        let versions = match method {
            Method::Psk => return Ok(PeerMethods::Psk),
            Method::Tls12 => TlsVersions::Tls12,
            Method::Tls13 => TlsVersions::Tls13,
        };
        Ok(PeerMethods::Tls(
            TlsPeerContext::new(&pki.tls_config("client", versions)?)
                .map_err(|e| anyhow!("{e}"))?,
        ))
    }

    fn peer(&self, identity: &[u8], rng: &RngHandle, now: Instant) -> Peer {
        let method: Box<dyn PeerMethod> = match self {
            PeerMethods::Psk => Box::new(PskPeer::new(identity.to_vec(), Key128::new(PSK))),
            PeerMethods::Tls(ctx) => Box::new(TlsPeer::new(ctx)),
        };
        Peer::new(PeerConfig::new(identity), vec![method], rng.clone(), now)
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers

fn now_us(start: WallInstant) -> Instant {
    Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

// ---------------------------------------------------------------------------------------------
// Our server

/// One conversation of `serve`.
struct Conversation {
    auth: Authenticator,
    /// Where it was started from, and with which User-Name (the key of a first request).
    start_key: (SocketAddr, Vec<u8>),
    /// The Request Authenticator of the last request answered, and the reply.
    last: Option<([u8; 16], Vec<u8>)>,
}

/// Answers one Access-Request of a conversation with what its authenticator wants sent.
/// Returns the reply and, when the conversation ended, whether the peer was accepted.
fn reply_for(
    auth: &mut Authenticator,
    request: &Repr,
    state: &[u8],
    rng: &RngHandle,
) -> anyhow::Result<(Vec<u8>, Option<bool>)> {
    let (mut eap_out, mut outcome) = (None, None);
    while let Some(a) = auth.poll_action() {
        match a {
            AuthAction::Send(p) => eap_out = Some(p),
            AuthAction::Finished(o) => outcome = Some(o),
        }
    }
    let decision = match &outcome {
        None => EapServerDecision::Challenge { state },
        Some(AuthOutcome::Success { keys, .. }) => EapServerDecision::Accept {
            msk: keys.as_ref().map(|k| k.msk.expose()),
            salts: [rng.array::<2>()?, rng.array::<2>()?],
        },
        Some(AuthOutcome::Failure(_)) => EapServerDecision::Reject,
    };
    let out = wire::eap_server_reply(request, SECRET, eap_out.as_deref(), decision)?;
    let ended = outcome.map(|o| matches!(o, AuthOutcome::Success { .. }));
    Ok((out, ended))
}

fn serve(bind: SocketAddr, method: Method, count: usize, pki: &Path) -> anyhow::Result<()> {
    let pki = Pki::ensure(pki)?;
    let methods = ServerMethods::new(method, &pki)?;
    let sock = UdpSocket::bind(bind).with_context(|| format!("binding {bind}"))?;
    sock.set_read_timeout(Some(StdDuration::from_millis(200)))?;
    let rng = RngHandle::os();
    let state_prefix = rng.array::<8>()?;
    let start = WallInstant::now();
    let cpu0 = cpu_ns("self").unwrap_or(0);
    let mut live: HashMap<Vec<u8>, Conversation> = HashMap::new();
    let mut starts: HashMap<(SocketAddr, Vec<u8>), Vec<u8>> = HashMap::new();
    // Ended conversations: State → the last request's authenticator and our final reply, for
    // retransmissions; the oldest are forgotten.
    let mut ended: HashMap<Vec<u8>, ([u8; 16], Vec<u8>)> = HashMap::new();
    let mut ended_order: VecDeque<Vec<u8>> = VecDeque::new();
    let (mut ok, mut failed, mut dropped, mut idle, mut serial) =
        (0usize, 0usize, 0u64, 0u32, 0u64);
    let mut buf = vec![0u8; 65_535];
    println!("ready");
    while ok + failed < count {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => {
                idle = 0;
                x
            }
            Err(e) if is_timeout(&e) => {
                idle += 1;
                if idle > 150 {
                    bail!("no traffic for 30 s ({ok} accepted, {failed} rejected)");
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let bytes = &buf[..n];
        let request = match Packet::new_checked(bytes).and_then(|p| Repr::parse(&p)) {
            Ok(r) if r.code == Code::AccessRequest => r,
            _ => {
                dropped += 1;
                continue;
            }
        };
        // RFC 3579 §3.2: an Access-Request with EAP-Message needs a valid Message-Authenticator.
        let eap_in = match request.eap_message() {
            Some(e)
                if wire::verify_message_authenticator(bytes, &request.authenticator, SECRET)
                    .is_ok() =>
            {
                e
            }
            _ => {
                dropped += 1;
                continue;
            }
        };
        let now = now_us(start);
        let state = match request.state() {
            Some(st) => st.to_vec(),
            None => {
                let user = request
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        Attribute::UserName(u) => Some(u.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let key = (from, user);
                if let Some(st) = starts.get(&key)
                    && live.get(st).and_then(|c| c.last.as_ref()).map(|l| l.0)
                        == Some(request.authenticator)
                {
                    // A retransmitted first request.
                    st.clone()
                } else {
                    // A new conversation (one from the same source and User-Name still at its
                    // start is abandoned).
                    if let Some(old) = starts.remove(&key) {
                        live.remove(&old);
                    }
                    serial += 1;
                    let mut st = state_prefix.to_vec();
                    st.extend_from_slice(&serial.to_be_bytes());
                    let mut auth = methods.authenticator(&rng);
                    if auth.start_backend(now, &eap_in).is_err() {
                        dropped += 1;
                        continue;
                    }
                    starts.insert(key.clone(), st.clone());
                    live.insert(
                        st.clone(),
                        Conversation {
                            auth,
                            start_key: key,
                            last: None,
                        },
                    );
                    st
                }
            }
        };
        let Some(conv) = live.get_mut(&state) else {
            if let Some((auth, reply)) = ended.get(&state)
                && *auth == request.authenticator
            {
                sock.send_to(reply, from)?;
            } else {
                dropped += 1;
            }
            continue;
        };
        if let Some((auth, reply)) = &conv.last {
            if *auth == request.authenticator {
                sock.send_to(reply, from)?;
                continue;
            }
            // The next request of the conversation: it is no longer at its start.
            starts.remove(&conv.start_key);
            if conv.auth.handle_packet(now, &eap_in).is_err() {
                dropped += 1;
                continue;
            }
        }
        let (reply, end) = reply_for(&mut conv.auth, &request, &state, &rng)?;
        sock.send_to(&reply, from)?;
        match end {
            None => conv.last = Some((request.authenticator, reply)),
            Some(accepted) => {
                if accepted {
                    ok += 1;
                } else {
                    failed += 1;
                }
                if let Some(c) = live.remove(&state) {
                    starts.remove(&c.start_key);
                }
                ended.insert(state.clone(), (request.authenticator, reply));
                ended_order.push_back(state);
                if ended_order.len() > 4096
                    && let Some(old) = ended_order.pop_front()
                {
                    ended.remove(&old);
                }
            }
        }
    }
    let cpu = cpu_ns("self").unwrap_or(0).saturating_sub(cpu0);
    println!(
        "{}",
        serde_json::json!({
            "accepted": ok,
            "rejected": failed,
            "dropped": dropped,
            "cpu_ns": cpu,
            "cpu_us_per_auth": (cpu as f64 / 1000.0 / (ok + failed).max(1) as f64 * 10.0).round() / 10.0,
            "wall_ms": u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The driver

/// One conversation of the driver.
struct Client {
    peer: Peer,
    identity: Vec<u8>,
    /// The last Access-Request, its Request Authenticator, when it went out, how often.
    request: Vec<u8>,
    authenticator: [u8; 16],
    sent: WallInstant,
    retransmissions: u32,
}

struct Driven {
    completed: usize,
    failed: usize,
    wall: StdDuration,
}

/// The EAP packet the peer wants sent and its outcome, if it finished.
fn peer_output(peer: &mut Peer) -> (Option<Vec<u8>>, Option<PeerOutcome>) {
    let (mut send, mut outcome) = (None, None);
    while let Some(a) = peer.poll_action() {
        match a {
            PeerAction::Send(p) => send = Some(p),
            PeerAction::Finished(o) => outcome = Some(o),
            PeerAction::Notification(_) => {}
        }
    }
    (send, outcome)
}

/// A signed Access-Request carrying `eap`.
fn access_request(
    identifier: u8,
    authenticator: [u8; 16],
    user: &[u8],
    eap: &[u8],
    state: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let mut r = Repr {
        code: Code::AccessRequest,
        identifier,
        authenticator,
        attributes: vec![
            Attribute::UserName(user.to_vec()),
            Attribute::NasIdentifier(b"eap-load".to_vec()),
            Attribute::FramedMtu(1400),
        ],
    };
    if let Some(st) = state {
        r.attributes.push(Attribute::State(st.to_vec()));
    }
    r.push_eap_message(eap);
    r.attributes.push(Attribute::MessageAuthenticator([0; 16]));
    let mut out = r.to_bytes()?;
    wire::sign_request(&mut out, SECRET)?;
    Ok(out)
}

/// Whether the Access-Accept's MS-MPPE-Recv-Key ‖ MS-MPPE-Send-Key is our peer's MSK.
fn mppe_matches(reply: &Repr, request_authenticator: &[u8; 16], keys: &MethodKeys) -> bool {
    let key = |t: u8| {
        reply
            .microsoft_attributes(t)
            .next()
            .and_then(|v| wire::decrypt_mppe_key(v, SECRET, request_authenticator).ok())
    };
    let msk = keys.msk.expose();
    match (key(MS_MPPE_RECV_KEY), key(MS_MPPE_SEND_KEY)) {
        (Some(recv), Some(send)) => {
            let both: Vec<u8> = [recv.expose(), send.expose()].concat();
            SecretBytes::new(both).expose() == msk
        }
        _ => false,
    }
}

fn drive(
    target: SocketAddr,
    method: Method,
    count: usize,
    concurrency: usize,
    pki: &Path,
) -> anyhow::Result<Driven> {
    if !(1..=255).contains(&concurrency) {
        bail!("--concurrency must be 1..=255 (one RADIUS Identifier per conversation)");
    }
    let pki = Pki::ensure(pki)?;
    let methods = PeerMethods::new(method, &pki)?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(StdDuration::from_millis(10)))?;
    let rng = RngHandle::os();
    let start = WallInstant::now();
    let mut free: VecDeque<u8> = (0..=255).collect();
    let mut inflight: HashMap<u8, Client> = HashMap::new();
    let (mut started, mut completed, mut failed) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 65_535];
    // Sends `eap` for `client` in a new Access-Request with a fresh Identifier.
    let send = |client: &mut Client,
                free: &mut VecDeque<u8>,
                eap: &[u8],
                state: Option<&[u8]>|
     -> anyhow::Result<u8> {
        let id = free
            .pop_front()
            .ok_or_else(|| anyhow!("out of RADIUS Identifiers"))?;
        client.authenticator = rng.array::<16>()?;
        client.request = access_request(id, client.authenticator, &client.identity, eap, state)?;
        client.sent = WallInstant::now();
        client.retransmissions = 0;
        sock.send_to(&client.request, target)?;
        Ok(id)
    };
    while completed + failed < count {
        while inflight.len() < concurrency && started < count {
            let identity = format!("{ID_PREFIX}{started}{ID_REALM}").into_bytes();
            let mut peer = methods.peer(&identity, &rng, now_us(start));
            // The NAS's Identity Request; the peer's Identity Response starts the RADIUS part.
            let nas_id = rng.array::<1>()?[0];
            let _ = peer.handle_packet(
                now_us(start),
                &EapPacket::Request {
                    identifier: nas_id,
                    body: Body::Identity(&[]),
                }
                .to_vec(),
            );
            let (Some(eap), None) = peer_output(&mut peer) else {
                bail!("our peer did not answer the Identity Request");
            };
            let mut c = Client {
                peer,
                identity,
                request: Vec::new(),
                authenticator: [0; 16],
                sent: WallInstant::now(),
                retransmissions: 0,
            };
            let id = send(&mut c, &mut free, &eap, None)?;
            inflight.insert(id, c);
            started += 1;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let bytes = &buf[..n];
                let Ok(reply) = Packet::new_checked(bytes).and_then(|p| Repr::parse(&p)) else {
                    continue;
                };
                let Some(c) = inflight.get(&reply.identifier) else {
                    continue;
                };
                let a = c.authenticator;
                if wire::verify_response_authenticator(bytes, &a, SECRET).is_err()
                    || wire::verify_message_authenticator(bytes, &a, SECRET).is_err()
                {
                    continue;
                }
                let Some(mut c) = inflight.remove(&reply.identifier) else {
                    continue;
                };
                free.push_back(reply.identifier);
                let eap_in = reply.eap_message().unwrap_or_default();
                let _ = c.peer.handle_packet(now_us(start), &eap_in);
                let (out, outcome) = peer_output(&mut c.peer);
                match (reply.code, out, outcome) {
                    (Code::AccessChallenge, Some(eap), None) => {
                        let id = send(&mut c, &mut free, &eap, reply.state())?;
                        inflight.insert(id, c);
                    }
                    (
                        Code::AccessAccept,
                        _,
                        Some(PeerOutcome::Success {
                            keys: Some(keys), ..
                        }),
                    ) if mppe_matches(&reply, &a, &keys) => completed += 1,
                    (code, _, outcome) => {
                        if failed < 3 {
                            eprintln!("eap-load: conversation failed: {code:?}, peer {outcome:?}");
                        }
                        failed += 1;
                    }
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // Retransmissions.
        let due: Vec<u8> = inflight
            .iter()
            .filter(|(_, c)| c.sent.elapsed() >= RTO)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(c) = inflight.get_mut(&id) {
                if c.retransmissions >= MAX_RETRANSMISSIONS {
                    inflight.remove(&id);
                    free.push_back(id);
                    failed += 1;
                    continue;
                }
                c.retransmissions += 1;
                c.sent = WallInstant::now();
                sock.send_to(&c.request, target)?;
            }
        }
        if start.elapsed() > StdDuration::from_secs(600) {
            bail!("gave up after 600 s: {completed} completed, {failed} failed");
        }
    }
    Ok(Driven {
        completed,
        failed,
        wall: start.elapsed(),
    })
}

// ---------------------------------------------------------------------------------------------
// bench

/// One server's result in `bench`.
struct Measured {
    server: &'static str,
    driven: Driven,
    cpu_ns: u64,
}

impl Measured {
    fn cpu_us_per_auth(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.driven.completed.max(1) as f64
    }

    fn per_second(&self) -> f64 {
        self.driven.completed as f64 / self.driven.wall.as_secs_f64()
    }

    fn json(&self, method: Method, count: usize, concurrency: usize) -> serde_json::Value {
        serde_json::json!({
            "server": self.server,
            "method": method.name(),
            "tls_engine": TLS_ENGINE.get().copied().unwrap_or(Engine::Rustls).name(),
            "count": count,
            "concurrency": concurrency,
            "completed": self.driven.completed,
            "failed": self.driven.failed,
            "completed_per_second": (self.per_second() * 10.0).round() / 10.0,
            "server_cpu_us_per_auth": (self.cpu_us_per_auth() * 10.0).round() / 10.0,
            "wall_ms": u64::try_from(self.driven.wall.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Our server (`serve` in a child process), driven.
fn bench_ours(
    method: Method,
    count: usize,
    concurrency: usize,
    pki: &Path,
) -> anyhow::Result<Measured> {
    let target: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--bind", &target.to_string(), "--method"])
        .arg(method.name())
        .args(["--count", &count.to_string(), "--pki"])
        .arg(pki)
        .args([
            "--tls-engine",
            TLS_ENGINE.get().copied().unwrap_or(Engine::Rustls).name(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting our server")?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut first).context("our server did not start")?;
    let d = drive(target, method, count, concurrency, pki);
    if d.is_err() {
        let _ = child.kill();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest)?;
    let status = child.wait()?;
    let driven = d?;
    if !status.success() {
        bail!("our server failed: {rest}");
    }
    let server: serde_json::Value =
        serde_json::from_str(rest.trim()).with_context(|| format!("our server said {rest:?}"))?;
    Ok(Measured {
        server: "ours",
        driven,
        cpu_ns: server["cpu_ns"]
            .as_u64()
            .ok_or_else(|| anyhow!("our server said {rest:?}"))?,
    })
}

/// hostapd as a RADIUS server with its internal EAP server; killed on drop.
struct Hostapd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Hostapd {
    fn start(method: Method, port: u16, pki: &Pki) -> anyhow::Result<Hostapd> {
        if !Path::new(HOSTAPD).exists() {
            bail!("{HOSTAPD} is not installed (Debian package hostapd); or use --no-hostapd");
        }
        let dir = tempfile::tempdir()?;
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(
            p("clients"),
            format!("127.0.0.1/32 {}\n", String::from_utf8_lossy(SECRET)),
        )?;
        // A prefix wildcard: every node-… identity.
        let user = match method {
            Method::Psk => format!("\"{ID_PREFIX}\"* PSK {}\n", hex::encode(PSK)),
            Method::Tls12 | Method::Tls13 => format!("\"{ID_PREFIX}\"* TLS\n"),
        };
        std::fs::write(p("eap_user"), user)?;
        let tls = if method.is_tls() {
            format!(
                "ca_cert={}\nserver_cert={}\nprivate_key={}\nfragment_size={FRAGMENT_SIZE}\n\
                 tls_flags=[ENABLE-TLSv1.3]\n",
                pki.path("ca.pem").display(),
                pki.path("server.pem").display(),
                pki.path("server.key").display()
            )
        } else {
            String::new()
        };
        std::fs::write(
            p("hostapd.conf"),
            format!(
                "driver=none\ninterface=lo\nlogger_syslog=0\nlogger_stdout=0\n\
                 eap_server=1\neap_user_file={}\nserver_id={SERVER_ID}\n\
                 radius_server_clients={}\nradius_server_auth_port={port}\n{tls}",
                p("eap_user"),
                p("clients"),
            ),
        )?;
        // EAP_LOAD_HOSTAPD_DEBUG=1: hostapd's debug log (costs CPU; not for measurements).
        let debug = std::env::var_os("EAP_LOAD_HOSTAPD_DEBUG").is_some();
        let mut cmd = Command::new(HOSTAPD);
        if debug {
            cmd.arg("-dd");
        }
        let child = cmd
            .arg(p("hostapd.conf"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(p("stdout.log"))?)
            .stderr(std::fs::File::create(p("stderr.log"))?)
            .spawn()
            .context("starting hostapd")?;
        let mut h = Hostapd { child, dir };
        // Ready when its RADIUS socket is bound (read from /proc, so as not to race for it).
        let started = WallInstant::now();
        while !udp_port_bound(port) {
            if let Some(status) = h.child.try_wait()? {
                bail!("hostapd exited ({status}): {}", h.logs());
            }
            if started.elapsed() > StdDuration::from_secs(10) {
                bail!("hostapd did not open its RADIUS port: {}", h.logs());
            }
            std::thread::sleep(StdDuration::from_millis(10));
        }
        Ok(h)
    }

    fn logs(&self) -> String {
        ["stdout.log", "stderr.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Hostapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether some socket of this network namespace has UDP port `port` (IPv4 or IPv6).
fn udp_port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| format!("{a} ").ends_with(&needle))
            })
        })
    })
}

/// hostapd, driven the same way.
fn bench_hostapd(
    method: Method,
    count: usize,
    concurrency: usize,
    pki: &Path,
) -> anyhow::Result<Measured> {
    let port = free_udp_port()?;
    let hostapd = Hostapd::start(method, port, &Pki::ensure(pki)?)?;
    let pid = hostapd.child.id().to_string();
    let cpu0 = cpu_ns(&pid).ok_or_else(|| anyhow!("cannot read hostapd's CPU time"))?;
    let target: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let driven = drive(target, method, count, concurrency, pki)
        .with_context(|| format!("driving hostapd; its log: {}", hostapd.logs()))?;
    let cpu = cpu_ns(&pid)
        .ok_or_else(|| anyhow!("hostapd exited: {}", hostapd.logs()))?
        .saturating_sub(cpu0);
    Ok(Measured {
        server: "hostapd-2.10",
        driven,
        cpu_ns: cpu,
    })
}

/// Set in the re-run of `bench` inside its private namespaces.
const IN_NETNS: &str = "EAP_LOAD_IN_NETNS";

/// hostapd's RADIUS server keeps at most 1000 sessions (`RADIUS_MAX_SESSION`) and keeps each
/// for 5 s after it ended (`RADIUS_SESSION_MAINTAIN`); beyond that it sends Access-Reject.
const HOSTAPD_MAX_COUNT: usize = 900;

fn bench(method: Method, count: usize, concurrency: usize, hostapd: bool) -> anyhow::Result<()> {
    if hostapd && count > HOSTAPD_MAX_COUNT {
        bail!(
            "hostapd's RADIUS server rejects new sessions while 1000 are kept (each for 5 s \
             after it ended): use --count {HOSTAPD_MAX_COUNT} or less, or --no-hostapd"
        );
    }
    let pki_dir = tempfile::tempdir()?;
    Pki::ensure(pki_dir.path())?;
    let ours = bench_ours(method, count, concurrency, pki_dir.path())?;
    println!("{}", ours.json(method, count, concurrency));
    if hostapd {
        let theirs = bench_hostapd(method, count, concurrency, pki_dir.path())?;
        println!("{}", theirs.json(method, count, concurrency));
        println!(
            "{}",
            serde_json::json!({
                "method": method.name(),
                "cpu_per_auth_ours_over_hostapd":
                    (ours.cpu_us_per_auth() / theirs.cpu_us_per_auth() * 1000.0).round() / 1000.0,
                "completed_per_second_ours_over_hostapd":
                    (ours.per_second() / theirs.per_second() * 100.0).round() / 100.0,
            })
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// inproc: the exchange against its crypto floor

/// One complete conversation: our peer against our standalone authenticator (Identity first),
/// both in this thread. Fails unless both succeed with the same MSK.
fn exchange(server: &ServerMethods, peers: &PeerMethods, rng: &RngHandle) -> anyhow::Result<()> {
    const IDENTITY: &[u8] = b"node-0@bench.example";
    let now = Instant::ZERO;
    let mut peer = peers.peer(IDENTITY, rng, now);
    let mut auth = server.authenticator(rng);
    auth.start(now)?;
    let (mut auth_done, mut peer_done) = (None, None);
    let (mut to_peer, mut to_auth) = (Vec::with_capacity(2), Vec::with_capacity(2));
    for _ in 0..64 {
        while let Some(a) = auth.poll_action() {
            match a {
                AuthAction::Send(p) => to_peer.push(p),
                AuthAction::Finished(o) => auth_done = Some(o),
            }
        }
        for p in to_peer.drain(..) {
            let _ = peer.handle_packet(now, &p);
            while let Some(a) = peer.poll_action() {
                match a {
                    PeerAction::Send(p) => to_auth.push(p),
                    PeerAction::Finished(o) => peer_done = Some(o),
                    PeerAction::Notification(_) => {}
                }
            }
        }
        if to_auth.is_empty() {
            break;
        }
        for p in to_auth.drain(..) {
            let _ = auth.handle_packet(now, &p);
        }
    }
    match (auth_done, peer_done) {
        (
            Some(AuthOutcome::Success {
                keys: Some(server_keys),
                ..
            }),
            Some(PeerOutcome::Success {
                keys: Some(peer_keys),
                ..
            }),
        ) if server_keys.msk == peer_keys.msk => Ok(()),
        (a, p) => bail!("conversation failed: authenticator {a:?}, peer {p:?}"),
    }
}

/// Long-term keys and messages of the crypto floor, made once.
struct Floor {
    method: Method,
    ca: kmp_api::crypto::P256KeyPair,
    server: kmp_api::crypto::P256KeyPair,
    client: kmp_api::crypto::P256KeyPair,
    /// A to-be-signed certificate and a handshake transcript, about the sizes of ours.
    tbs: Vec<u8>,
    transcript: Vec<u8>,
    ca_sig_server: [u8; 64],
    ca_sig_client: [u8; 64],
    /// The server's and the client's signatures over the transcript.
    server_sig: [u8; 64],
    client_sig: [u8; 64],
}

impl Floor {
    fn new(method: Method, rng: &RngHandle) -> anyhow::Result<Floor> {
        use kmp_api::crypto::P256KeyPair;
        let ca = P256KeyPair::generate(rng)?;
        let tbs = rng.vec(350)?;
        let transcript = rng.vec(1200)?;
        let server = P256KeyPair::generate(rng)?;
        let client = P256KeyPair::generate(rng)?;
        Ok(Floor {
            method,
            ca_sig_server: ca.sign(&tbs)?,
            ca_sig_client: ca.sign(&tbs)?,
            server_sig: server.sign(&transcript)?,
            client_sig: client.sign(&transcript)?,
            ca,
            server,
            client,
            tbs,
            transcript,
        })
    }

    /// What both sides of one conversation compute, done directly.
    fn run(&self, rng: &RngHandle) -> anyhow::Result<()> {
        use kmp_api::crypto::{P256KeyPair, cmac, eax::AesEax, gcm, hmac};
        // Every method: the authenticator's random first Identifier (RFC 4137 §5, DECISIONS
        // E4), one draw from the random source like the protocols' nonces below.
        let _identifier = rng.array::<1>()?;
        if self.method == Method::Psk {
            // Both sides: AK and KDK, MAC_P and MAC_S (made and checked), TEK/MSK/EMSK, the
            // PCHANNEL of #3 and #4 (sealed and opened, one EAX key schedule a side), RAND_S
            // and RAND_P.
            let psk = Key128::new(PSK);
            let rand_s = rng.array::<16>()?;
            let rand_p = rng.array::<16>()?;
            let mut mac_in = Vec::with_capacity(96);
            mac_in.extend_from_slice(b"node-0@bench.example");
            mac_in.extend_from_slice(SERVER_ID.as_bytes());
            mac_in.extend_from_slice(&rand_s);
            mac_in.extend_from_slice(&rand_p);
            for _ in 0..2 {
                let (ak, kdk) = eap::psk::derive_ak_kdk(&psk)?;
                let _ = cmac::aes_cmac(ak.expose(), &mac_in)?;
                let _ = cmac::aes_cmac(ak.expose(), &mac_in[20..])?;
                let (tek, _msk, _emsk) = eap::psk::derive_session_keys(&kdk, &rand_p)?;
                let mut eax = AesEax::new(tek.expose())?;
                let sealed = eax.seal(&[0; 16], &mac_in[..22], &[0x80], 16)?;
                let _ = eax.open(&[0; 16], &mac_in[..22], &sealed, 16)?;
            }
            return Ok(());
        }
        // TLS: each side an ephemeral P-256 key and ECDH, one signature (ServerKeyExchange or
        // the server's CertificateVerify; the client's CertificateVerify), the other side's
        // certificate (signed by the CA) and its signature checked; the key schedule as HMACs;
        // the Finished messages (and TLS 1.3's encrypted handshake and success indication) as
        // AES-GCM records.
        let (hmacs, records) = match self.method {
            Method::Tls12 => (20, 2),
            _ => (30, 6),
        };
        // ClientHello.random and ServerHello.random.
        let _client_random = rng.array::<32>()?;
        let _server_random = rng.array::<32>()?;
        let server_eph = P256KeyPair::generate(rng)?;
        let client_eph = P256KeyPair::generate(rng)?;
        let _ = server_eph.diffie_hellman(client_eph.public_key())?;
        let _ = client_eph.diffie_hellman(server_eph.public_key())?;
        for (me, other, other_ca_sig, other_sig) in [
            (
                &self.server,
                &self.client,
                &self.ca_sig_client,
                &self.client_sig,
            ),
            (
                &self.client,
                &self.server,
                &self.ca_sig_server,
                &self.server_sig,
            ),
        ] {
            let _ = me.sign(&self.transcript)?;
            self.ca.public_key().verify(&self.tbs, other_ca_sig)?;
            other.public_key().verify(&self.transcript, other_sig)?;
            let key = hmac::sha256(&self.transcript);
            for i in 0..hmacs {
                let _ = hmac::hmac_sha256(&key, &self.transcript[i * 32..i * 32 + 100])?;
            }
            for _ in 0..records {
                let sealed =
                    gcm::gcm_seal(&key[..16], &[0; 12], &[23], &self.transcript[..64], 16)?;
                let _ = gcm::gcm_open(&key[..16], &[0; 12], &[23], &sealed, 16)?;
            }
        }
        Ok(())
    }
}

fn inproc(method: Method, count: usize) -> anyhow::Result<()> {
    let pki_dir = tempfile::tempdir()?;
    let pki = Pki::ensure(pki_dir.path())?;
    let server = ServerMethods::new(method, &pki)?;
    let peers = PeerMethods::new(method, &pki)?;
    let rng = RngHandle::os();
    let floor = Floor::new(method, &rng)?;
    // Warm up, then interleave rounds of each so that both see the same machine.
    for _ in 0..20 {
        exchange(&server, &peers, &rng)?;
        floor.run(&rng)?;
    }
    // Many short rounds (wall clock; the thread's schedstat CPU time only advances at
    // scheduler ticks, too coarse for rounds of a few milliseconds).
    let rounds = 100usize;
    let per_round = count.div_ceil(rounds).max(1);
    let (mut t_exchange, mut t_floor) = (StdDuration::ZERO, StdDuration::ZERO);
    for _ in 0..rounds {
        let t = WallInstant::now();
        for _ in 0..per_round {
            exchange(&server, &peers, &rng)?;
        }
        t_exchange += t.elapsed();
        let t = WallInstant::now();
        for _ in 0..per_round {
            floor.run(&rng)?;
        }
        t_floor += t.elapsed();
    }
    let n = (rounds * per_round) as f64;
    let exchange_us = t_exchange.as_secs_f64() * 1e6 / n;
    let floor_us = t_floor.as_secs_f64() * 1e6 / n;
    println!(
        "{}",
        serde_json::json!({
            "method": method.name(),
            "tls_engine": TLS_ENGINE.get().copied().unwrap_or(Engine::Rustls).name(),
            "conversations": rounds * per_round,
            "exchange_us": (exchange_us * 10.0).round() / 10.0,
            "exchanges_per_second": (1e6 / exchange_us).round(),
            "crypto_floor_us": (floor_us * 10.0).round() / 10.0,
            "ratio_floor_over_exchange": (floor_us / exchange_us * 1000.0).round() / 1000.0,
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
    let _ = TLS_ENGINE.set(cli.tls_engine);
    let r = match cli.cmd {
        Cmd::Bench {
            no_hostapd: false, ..
        } if !in_private_namespaces(IN_NETNS) => {
            return match rerun_in_private_namespaces(
                IN_NETNS,
                "measuring hostapd (or use --no-hostapd)",
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("eap-load: error: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Bench {
            method,
            count,
            concurrency,
            no_hostapd,
        } => bench(method, count, concurrency, !no_hostapd),
        Cmd::Serve {
            bind,
            method,
            count,
            pki,
        } => serve(bind, method, count, &pki),
        Cmd::Drive {
            target,
            method,
            count,
            concurrency,
            pki,
        } => drive(target, method, count, concurrency, &pki).map(|d| {
            println!(
                "{}",
                serde_json::json!({
                    "completed": d.completed,
                    "failed": d.failed,
                    "completed_per_second":
                        (d.completed as f64 / d.wall.as_secs_f64() * 10.0).round() / 10.0,
                    "wall_ms": u64::try_from(d.wall.as_millis()).unwrap_or(u64::MAX),
                })
            );
        }),
        Cmd::Inproc { method, count } => inproc(method, count),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eap-load: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
