//! `kmp-udp-node`: one node of an IEEE 802.15.9 network whose radio is the UDP virtual radio
//! (`radio_drivers::udp`), in real time. Run a gateway and one or more nodes as separate
//! processes that list each other as peers:
//!
//! ```text
//! kmp-udp-node --role gateway --index 0 --bind 127.0.0.1:4000 --peer 127.0.0.1:4001
//! kmp-udp-node --role node    --index 1 --bind 127.0.0.1:4001 --peer 127.0.0.1:4000
//!
//! kmp-udp-node --kmp 8021x --pki /tmp/pki --role gateway --index 0 …
//! kmp-udp-node --kmp 8021x --pki /tmp/pki --role node    --index 1 …
//! ```
//!
//! - The **gateway** (address `node_address(0)`) answers the KMPs a node starts and starts
//!   those that are its to start (with 8021x: the 4-way and group-key handshakes), listens on
//!   the data Multiplex ID, prints one JSON line per event on stdout and exits 0 once it has
//!   received `--expect-data` data frames (after lingering `--linger-ms` to acknowledge
//!   retransmissions), or 1 on timeout.
//! - A **node** (address `node_address(index)`) joins the gateway (retrying the KMP-CREATE
//!   while its first message is not acknowledged, e.g. before the gateway is up), then sends
//!   `--data-frames` CCM*-protected data frames (level 6, implicit key) and exits 0 when every
//!   one was confirmed with success, 1 on failure or timeout.
//!
//! A join is one KMP started by the node (`dragonfly`, `ikev2`, a plugin), or with `--kmp
//! 8021x` (or `1`) the Wi-SUN-shaped join of `kmp-sim --kmp 8021x` (`examples::ieee8021x`):
//! KMP ID 1 (802.1X) started by the node, then the 4-way (6) and group-key (7) handshakes
//! started by the gateway, one KMP host per KMP ID; a node has joined when all three finished
//! with success, and its data then travels under the 4-way handshake's TK. The built-in 802.1X
//! configuration is EAP-TLS with certificates from the CA in `--pki DIR` (made there by
//! whichever process comes first; each process issues its own certificate from it).
//! `--gateway-config` / `--node-config` replace the built-in configuration of the KMP (for
//! 8021x: of KMP ID 1, the PAE TOML of `kmp_mka::pae::config`, its keys at the top level),
//! e.g. a pass-through authenticator whose `[radius]` table names the RADIUS servers; the
//! gateway then puts the RADIUS backend's counters into every KMP ID 1 event (an
//! Access-Reject shows as `"rejects"`). With several KMPs per join, each one finished with a
//! peer is a `step` event, and `joined` follows the last; a failure is `join_failed` with the
//! KMP and the reason (on a node, for a KMP it started, also on stderr, exit 1).
//!
//! Bad arguments: one line on stderr, exit 2. Logs go to stderr, filtered by `KMP_LOG`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};
use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, ValueEnum};
use examples::ieee8021x::{
    GATEWAY_CERT_NAME, JOIN_STEPS, SimCa, Station, builtin_pae_config, gateway_gtk, node_cert_name,
    tls_config,
};
use examples::sim::{
    DATA_MULTIPLEX_ID, SIM_PAN, Starter, builtin_configs, node_address, registry_with_plugins,
};
use kmp_api::KmpId;
use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, ShortAddress};
use kmp_api::primitives::{
    KmpCreateRequest, KmpDeleteRequest, KmpHandle, KmpStatus, MacStatus, MpxDataRequest, MpxHandle,
};
use kmp_api::rng::RngHandle;
use kmp_api::security::{KeyIdentifier, SecurityLevel, SecurityParams};
use kmp_api::session::Outcome;
use kmp_mka::handshake::PaeRole;
use kmp_mka::pae::{PaeConfig, RadiusBackend};
use mpx::pib::{
    FrameType, OwnIdentity, PibConfig, PibStore, SecurityLevelDescriptor, SecurityLevelSet,
};
use mpx::runtime::{
    Clock, ClosePib, GetHostStats, KmpCreate, KmpDelete, KmpEvent, KmpHost, KmpHostConfig,
    MpxActor, MpxActorConfig, MpxConfirm, MpxData, MpxIndication, PibActor, SetIdentity,
    SetSecurityLevel, Subscribe,
};
use mpx::service::MpxConfig;
use radio_drivers::pcap::{KeyLogTap, KeyLogWriter, PcapTap, PcapWriter};
use radio_drivers::udp::{UdpRadio, UdpRadioConfig};
use serde_json::json;

/// Which side of the KMP this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Responder; receives the data frames.
    Gateway,
    /// Initiator towards the gateway; sends the data frames.
    Node,
}

#[derive(Parser, Debug)]
#[command(
    name = "kmp-udp-node",
    version,
    about = "One gateway or node of an IEEE 802.15.9 KMP network over the UDP virtual radio",
    after_help = "KMPs:\n  \
        dragonfly    Dragonfly (KMP ID 5), password, group key delivered (default)\n  \
        ikev2        IKEv2 (KMP ID 3), PSK, child SA keys\n  \
        8021x        the Wi-SUN-shaped join: 802.1X (KMP ID 1; built in: EAP-TLS with the CA in\n               \
                     --pki DIR), then the 4-way (6) and group-key (7) handshakes started by the\n               \
                     gateway; data under the TK. --gateway-config / --node-config replace the\n               \
                     KMP ID 1 configuration (PAE TOML, e.g. a pass-through gateway with [radius])\n\n\
        Events: one JSON line each on stdout. Exit status: 0 done, 1 failure or timeout, 2 bad\n\
        arguments."
)]
struct Cli {
    /// gateway (responder, receives data) or node (joins, then sends data).
    #[arg(long, value_enum)]
    role: Role,
    /// Address index: the EUI-64 is examples::sim::node_address(index); the gateway is 0.
    #[arg(long)]
    index: usize,
    /// Local UDP socket address of the radio.
    #[arg(long, value_name = "ADDR:PORT")]
    bind: SocketAddr,
    /// A peer radio's UDP socket address; may be repeated.
    #[arg(long = "peer", value_name = "ADDR:PORT", required = true)]
    peers: Vec<SocketAddr>,
    /// The KMP: a registry name (dragonfly, ikev2, 8021x, …) or a KMP ID number (1 is the
    /// 802.1X join).
    #[arg(long, default_value = "dragonfly")]
    kmp: String,
    /// Gateway: the KMP's configuration (TOML file) instead of the built-in one; with 8021x the
    /// PAE configuration of KMP ID 1 (kmp_mka::pae::config), e.g. an authenticator with a
    /// [radius] table (pass-through to RADIUS servers).
    #[arg(long, value_name = "FILE")]
    gateway_config: Option<PathBuf>,
    /// Node: the KMP's configuration (TOML file) instead of the built-in one; with 8021x the
    /// PAE configuration of KMP ID 1 (a supplicant).
    #[arg(long, value_name = "FILE")]
    node_config: Option<PathBuf>,
    /// 8021x with the built-in EAP-TLS configuration: the directory of the test CA the
    /// processes share (created with a new CA if missing or empty; every process issues its
    /// own certificate from it at start). Holds the CA's private key: test material.
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Load a dynamic KMP plugin (shared library); may be repeated.
    #[arg(long = "plugin", value_name = "PATH")]
    plugins: Vec<PathBuf>,
    /// Keep the PIB in this redb file (default: in memory).
    #[arg(long, value_name = "FILE")]
    pib: Option<PathBuf>,
    /// Node: data frames to send after joining.
    #[arg(long, default_value_t = 3)]
    data_frames: usize,
    /// Gateway: exit 0 after this many data frames were received.
    #[arg(long, default_value_t = 3)]
    expect_data: usize,
    /// Gateway: keep running this long after the last expected data frame (to acknowledge
    /// retransmissions whose acknowledgment was lost), milliseconds.
    #[arg(long, default_value_t = 1000)]
    linger_ms: u64,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Probability in [0, 1] that the radio drops a received datagram.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Seed of the radio's loss decisions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// macMaxFrameRetries of the radio (0–7).
    #[arg(long, default_value_t = UdpRadioConfig::DEFAULT_MAX_FRAME_RETRIES)]
    mac_retries: u8,
    /// Write every frame this node sends and receives to this pcap file (LINKTYPE 195).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Write the link keys this node installs to this file for Wireshark. Holds secret keys:
    /// a debugging aid.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if e.use_stderr() {
                // One line: clap's first line carries the error.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or("bad arguments");
                eprintln!("kmp-udp-node: {}", first.trim_start_matches("error: "));
                return ExitCode::from(2);
            }
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Err(e) = check_args(&cli) {
        eprintln!("kmp-udp-node: {e}");
        return ExitCode::from(2);
    }
    examples::init_logging();
    match run(cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kmp-udp-node: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Argument checks clap does not do.
fn check_args(cli: &Cli) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&cli.loss) {
        bail!("--loss must be within [0, 1]");
    }
    if cli.mac_retries > 7 {
        bail!("--mac-retries must be at most 7");
    }
    match cli.role {
        Role::Gateway if cli.index != 0 => bail!("the gateway has --index 0"),
        Role::Node if cli.index == 0 => bail!("--index 0 is the gateway's address"),
        _ => {}
    }
    if cli.timeout_s == 0 {
        bail!("--timeout-s must be at least 1");
    }
    match cli.role {
        Role::Gateway if cli.node_config.is_some() => {
            bail!("--node-config is for --role node (the gateway takes --gateway-config)")
        }
        Role::Node if cli.gateway_config.is_some() => {
            bail!("--gateway-config is for --role gateway (a node takes --node-config)")
        }
        _ => {}
    }
    let own_config = cli.gateway_config.is_some() || cli.node_config.is_some();
    if matches!(cli.kmp.as_str(), "8021x" | "1") && !own_config && cli.pki.is_none() {
        bail!(
            "--kmp {}: the built-in EAP-TLS configuration needs --pki DIR (the CA the gateway \
             and the nodes share), or give this process its own configuration",
            cli.kmp
        );
    }
    Ok(())
}

/// One KMP of this process's join: what it is, who starts it, this process's factory.
struct LocalStep {
    name: String,
    kmp_id: KmpId,
    starter: Starter,
    factory: Arc<dyn kmp_api::KmpFactory>,
}

/// The KMPs this process runs for a join, in order, and the RADIUS backend of a pass-through
/// gateway.
fn local_plan(
    cli: &Cli,
    registry: &kmp_api::Registry,
) -> anyhow::Result<(Vec<LocalStep>, Option<Arc<RadiusBackend>>)> {
    let reg = examples::sim::select_kmp(registry, &cli.kmp)?;
    let own_path = match cli.role {
        Role::Gateway => cli.gateway_config.as_ref(),
        Role::Node => cli.node_config.as_ref(),
    };
    let own_config = own_path
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let unused_pki = || {
        anyhow!(
            "--pki is used only by --kmp 8021x with its built-in configuration (not with \
             another KMP, nor with --gateway-config / --node-config)"
        )
    };
    match reg.kmp_id {
        KmpId::Ieee8021xMka => {
            let pae = match (&own_config, own_path) {
                (Some(text), Some(p)) => {
                    if cli.pki.is_some() {
                        return Err(unused_pki());
                    }
                    PaeConfig::from_toml(text)
                        .map_err(|e| anyhow!("802.1X configuration {}: {e}", p.display()))?
                }
                _ => builtin_pae(cli)?,
            };
            let (want, gtks) = match cli.role {
                Role::Gateway => (PaeRole::Authenticator, vec![gateway_gtk(&RngHandle::os())?]),
                Role::Node => (PaeRole::Supplicant, Vec::new()),
            };
            if pae.role != want {
                bail!(
                    "802.1X configuration: the {:?} PAE needs role = {want:?}",
                    cli.role
                );
            }
            let station = Station::new(pae, gtks)?;
            let radius = station.radius.clone();
            let steps = JOIN_STEPS
                .iter()
                .zip(station.factories())
                .map(|(spec, factory)| LocalStep {
                    name: spec.name.to_string(),
                    kmp_id: spec.kmp_id,
                    starter: spec.starter,
                    factory,
                })
                .collect();
            return Ok((steps, radius));
        }
        KmpId::Ieee80211FourWay | KmpId::Ieee80211GroupKey => bail!(
            "--kmp {}: the 802.11 handshakes need the PMK of an 802.1X authentication; run \
             them as part of --kmp 8021x",
            cli.kmp
        ),
        _ => {}
    }
    if cli.pki.is_some() {
        return Err(unused_pki());
    }
    let (gw_cfg, node_cfg) = builtin_configs(reg.name);
    let cfg = own_config.unwrap_or(match cli.role {
        Role::Gateway => gw_cfg,
        Role::Node => node_cfg,
    });
    let factory = reg
        .make_factory(&cfg)
        .map_err(|e| anyhow!("{} configuration: {e}", reg.name))?;
    Ok((
        vec![LocalStep {
            name: reg.name.to_string(),
            kmp_id: reg.kmp_id,
            starter: Starter::Node,
            factory,
        }],
        None,
    ))
}

/// The built-in 802.1X PAE of this process: EAP-TLS with a certificate it issues from the CA
/// in `--pki` (created there if missing).
fn builtin_pae(cli: &Cli) -> anyhow::Result<PaeConfig> {
    let dir = cli
        .pki
        .as_ref()
        .ok_or_else(|| anyhow!("--kmp 8021x with the built-in configuration needs --pki DIR"))?;
    let ca =
        SimCa::load_or_create(dir).with_context(|| format!("the test PKI in {}", dir.display()))?;
    match cli.role {
        Role::Gateway => builtin_pae_config(
            PaeRole::Authenticator,
            GATEWAY_CERT_NAME,
            &tls_config(ca.cert_pem(), &ca.gateway_identity()?, None)?,
        ),
        Role::Node => builtin_pae_config(
            PaeRole::Supplicant,
            &node_cert_name(cli.index),
            &tls_config(
                ca.cert_pem(),
                &ca.node_identity(cli.index)?,
                Some(GATEWAY_CERT_NAME),
            )?,
        ),
    }
}

/// The RADIUS backend's counters as a JSON object.
fn radius_counters(b: &RadiusBackend) -> serde_json::Value {
    b.with_core(|core| {
        let c = core.counters();
        json!({
            "requests": c.requests,
            "challenges": c.challenges,
            "accepts": c.accepts,
            "rejects": c.rejects,
            "no_answer": c.no_answer,
        })
    })
}

/// Prints one JSON event line on stdout.
fn emit(v: &serde_json::Value) {
    println!("{v}");
}

/// Builds the stack and runs the system to its exit code.
fn run(cli: Cli) -> anyhow::Result<i32> {
    let registry = registry_with_plugins(&cli.plugins)?;
    examples::check_linked_kmps(&registry)?;
    let (plan, radius) = local_plan(&cli, &registry)?;
    let kmp_name = cli.kmp.clone();
    let clock = Clock::System;
    let ext = node_address(cli.index);
    let store = match &cli.pib {
        Some(p) => PibStore::open(p, PibConfig::default(), clock.now())
            .with_context(|| format!("opening the PIB {}", p.display()))?,
        None => PibStore::in_memory(PibConfig::default(), clock.now()).context("PIB store")?,
    };
    let rng = RngHandle::os();
    let initial_dsn = rng.array::<1>().map_err(|e| anyhow!("random: {e}"))?[0];

    let tap = match &cli.pcap {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            Some(Arc::new(PcapTap::new(PcapWriter::new(
                std::io::BufWriter::new(f),
            )?)))
        }
        None => None,
    };
    let system = actix::System::new();
    system.block_on(async {
        let mut rcfg = UdpRadioConfig::new(cli.bind, ext, SIM_PAN);
        rcfg.peers = cli.peers.clone();
        rcfg.loss = cli.loss;
        rcfg.seed = cli.seed;
        rcfg.max_frame_retries = cli.mac_retries;
        let radio = UdpRadio::bind(rcfg)
            .await
            .with_context(|| format!("binding the UDP radio to {}", cli.bind))?;

        let mut pib_actor = PibActor::new(store, clock.clone());
        if let Some(p) = &cli.keylog {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            pib_actor = pib_actor.with_key_log(Arc::new(KeyLogTap::new(KeyLogWriter::new(f))));
        }
        let pib = pib_actor.pib();
        let pib_addr = pib_actor.start();
        pib_addr.do_send(SetIdentity(OwnIdentity {
            ext_address: ext,
            short_address: ShortAddress::NONE_ASSIGNED,
            pan_id: SIM_PAN,
        }));
        // KMP frames travel unsecured (they make the keys); data at level 6 (enforced per
        // Multiplex ID by the MPX actor).
        pib_addr.do_send(SetSecurityLevel(SecurityLevelDescriptor {
            frame_type: FrameType::Data,
            command_id: None,
            security_minimum: SecurityLevel::None,
            device_override: false,
            allowed: SecurityLevelSet::ANY,
        }));
        let mut mcfg = MpxConfig::new(ext, SIM_PAN);
        mcfg.initial_dsn = initial_dsn;
        let mut acfg = MpxActorConfig::new(mcfg);
        acfg.min_upper_layer_security = SecurityLevel::EncMic64;
        let mut mpx_actor = MpxActor::new(acfg, clock.clone(), pib, Box::new(radio))
            .map_err(|e| anyhow!("MPX configuration: {e}"))?
            .with_pib_actor(pib_addr.clone().recipient());
        if let Some(t) = &tap {
            mpx_actor = mpx_actor.with_tap(t.clone());
        }
        let mpx_addr = mpx_actor.start();

        let timeout = StdDuration::from_secs(cli.timeout_s);
        let role = cli.role;
        let data_frames = cli.data_frames;
        let expect_data = cli.expect_data;
        let linger = StdDuration::from_millis(cli.linger_ms);
        let mpx2 = mpx_addr.clone();
        let pib2 = pib_addr.clone();
        <App as Actor>::create(move |ctx| {
            let me = ctx.address();
            // One KMP host per KMP ID, all on the one PIB and MPX actor (DECISIONS R18).
            let steps = plan
                .into_iter()
                .map(|s| {
                    let mut hcfg = KmpHostConfig::new(ext);
                    hcfg.auto_accept = true;
                    let host = KmpHost::new(
                        hcfg,
                        clock.clone(),
                        s.factory,
                        rng.clone(),
                        mpx2.clone(),
                        pib2.clone(),
                    )
                    .with_app(me.clone().recipient())
                    .start();
                    Step {
                        name: s.name,
                        kmp_id: s.kmp_id,
                        starter: s.starter,
                        host,
                    }
                })
                .collect();
            if role == Role::Gateway {
                mpx2.do_send(Subscribe {
                    multiplex_id: DATA_MULTIPLEX_ID,
                    to: me.recipient(),
                });
            }
            App {
                role,
                ext,
                steps,
                radius,
                mpx: mpx2,
                pib: pib2,
                timeout,
                linger,
                data_frames,
                expect_data,
                next_handle: 1,
                initiated: HashMap::new(),
                progress: HashMap::new(),
                current: None,
                rx_baseline: 0,
                joined: false,
                data_sent: 0,
                data_received: 0,
                done: false,
                exiting: false,
            }
        });
        emit(&json!({
            "event": "started",
            "role": match role { Role::Gateway => "gateway", Role::Node => "node" },
            "address": ext.to_string(),
            "bind": cli.bind.to_string(),
            "kmp": kmp_name,
        }));
        anyhow::Ok(())
    })?;
    let code = system.run_with_code().context("running the actor system")?;
    if let Some(t) = &tap {
        t.flush().context("flushing the pcap file")?;
    }
    Ok(code)
}

/// One KMP of the join and the host that runs it.
struct Step {
    name: String,
    kmp_id: KmpId,
    starter: Starter,
    host: Addr<KmpHost>,
}

/// The application: drives the join and the data exchange, prints events, decides the exit
/// code.
struct App {
    role: Role,
    ext: ExtendedAddress,
    /// The join's KMPs in order, one host each.
    steps: Vec<Step>,
    /// A pass-through gateway's RADIUS backend (its counters go into the events).
    radius: Option<Arc<RadiusBackend>>,
    mpx: Addr<MpxActor>,
    pib: Addr<PibActor>,
    timeout: StdDuration,
    linger: StdDuration,
    data_frames: usize,
    expect_data: usize,
    next_handle: u32,
    /// The instances this process started: handle → (step, peer).
    initiated: HashMap<KmpHandle, (usize, ExtendedAddress)>,
    /// Per peer, the steps finished here with success (bit = step).
    progress: HashMap<ExtendedAddress, u64>,
    /// The node's current instance of a step it starts, and the step.
    current: Option<(KmpHandle, usize)>,
    /// KMP datagrams the current step's host had received when the instance was created.
    rx_baseline: u64,
    joined: bool,
    data_sent: usize,
    data_received: usize,
    /// The gateway has everything it expected and lingers.
    done: bool,
    exiting: bool,
}

impl App {
    fn gateway() -> ExtendedAddress {
        node_address(0)
    }

    fn my_starter(&self) -> Starter {
        match self.role {
            Role::Gateway => Starter::Gateway,
            Role::Node => Starter::Node,
        }
    }

    /// KMP-CREATE.request of step `k` towards `peer`.
    fn start_step(&mut self, k: usize, peer: ExtendedAddress) {
        let Some(step) = self.steps.get(k) else {
            return;
        };
        let handle = KmpHandle(self.next_handle);
        self.next_handle += 1;
        self.initiated.insert(handle, (k, peer));
        if self.role == Role::Node {
            self.current = Some((handle, k));
        }
        step.host.do_send(KmpCreate(KmpCreateRequest {
            kmp_id: step.kmp_id,
            peer,
            peer_pan: SIM_PAN,
            handle,
        }));
    }

    /// Node: after a KMP-CREATE.confirm with `TxFailure`, restarts the instance `handle` unless
    /// the gateway has answered since it was created.
    fn retry_if_unanswered(&mut self, handle: KmpHandle, ctx: &mut Context<Self>) {
        let Some((current, k)) = self.current else {
            return;
        };
        if self.exiting || self.joined || current != handle {
            return;
        }
        let host = self.steps[k].host.clone();
        let stats = host.send(GetHostStats);
        ctx.spawn(stats.into_actor(self).map(move |res, act, ctx| {
            if act.exiting || act.joined || act.current != Some((handle, k)) {
                return;
            }
            let rx = match res {
                Ok(s) => s.counters.rx_datagrams,
                Err(_) => return,
            };
            if rx > act.rx_baseline {
                tracing::info!("the gateway answered: keeping the KMP instance");
                return;
            }
            act.current = None;
            act.initiated.remove(&handle);
            let del = host.send(KmpDelete(KmpDeleteRequest { handle }));
            ctx.spawn(del.into_actor(act).map(move |_, act, _| {
                act.rx_baseline = rx;
                if !act.exiting && !act.joined {
                    emit(&json!({"event": "create_retry", "handle": handle.0}));
                    act.start_step(k, Self::gateway());
                }
            }));
        }));
    }

    /// Node: the next data frame.
    fn send_data(&mut self, ctx: &mut Context<Self>) {
        let k = self.data_sent;
        let payload = format!("kmp-udp-node data {k} from {}", self.ext).into_bytes();
        self.mpx.do_send(MpxData {
            request: MpxDataRequest {
                src_addr_mode: AddressingMode::Extended,
                dst_pan: SIM_PAN,
                dst_addr: Address::Extended(Self::gateway()),
                multiplex_id: DATA_MULTIPLEX_ID,
                upper_layer_frame: payload,
                handle: MpxHandle(u32::try_from(k).unwrap_or(u32::MAX)),
                ack_tx: true,
                seq_num_suppressed: false,
                pan_id_suppressed: true,
                security: SecurityParams {
                    level: SecurityLevel::EncMic64,
                    key_id: KeyIdentifier::Implicit,
                },
            },
            confirm_to: Some(ctx.address().recipient()),
        });
    }

    /// Closes the PIB cleanly, then stops the system with `code`.
    fn exit(&mut self, code: i32, ctx: &mut Context<Self>) {
        if self.exiting {
            return;
        }
        self.exiting = true;
        ctx.spawn(
            self.pib
                .send(ClosePib)
                .into_actor(self)
                .map(move |res, _, _| {
                    match res {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "closing the PIB"),
                        Err(e) => tracing::warn!(error = %e, "PIB actor gone"),
                    }
                    actix::System::current().stop_with_code(code);
                }),
        );
    }

    /// Step `k` finished here with success with `peer`: start the next one if it is ours to
    /// start; the join is complete when every step has.
    fn step_succeeded(&mut self, k: usize, peer: ExtendedAddress, ctx: &mut Context<Self>) {
        if self.role == Role::Node && peer != Self::gateway() {
            return;
        }
        let n = self.steps.len();
        let bits = self.progress.entry(peer).or_insert(0);
        if *bits & (1 << k) != 0 {
            return;
        }
        *bits |= 1 << k;
        let all = *bits == (1u64 << n) - 1;
        if n > 1 {
            let mut ev = json!({
                "event": "step",
                "kmp": self.steps[k].name,
                "kmp_id": self.steps[k].kmp_id.value(),
                "peer": peer.to_string(),
            });
            if let (Some(b), KmpId::Ieee8021xMka) = (&self.radius, self.steps[k].kmp_id) {
                ev["radius"] = radius_counters(b);
            }
            emit(&ev);
        }
        if let Some(next) = self.steps.get(k + 1)
            && next.starter == self.my_starter()
        {
            self.start_step(k + 1, peer);
        }
        if !all {
            return;
        }
        emit(&json!({"event": "joined", "peer": peer.to_string()}));
        if self.role == Role::Node && !self.joined {
            self.joined = true;
            if self.data_frames == 0 {
                emit(&json!({"event": "done", "data_sent": 0}));
                self.exit(0, ctx);
            } else {
                self.send_data(ctx);
            }
        }
    }

    /// Step `k` failed here with `peer` (`ours`: an instance this process started).
    fn step_failed(
        &mut self,
        k: usize,
        handle: KmpHandle,
        peer: ExtendedAddress,
        reason: &str,
        ctx: &mut Context<Self>,
    ) {
        let ours = self.initiated.remove(&handle).is_some();
        let mut ev = json!({
            "event": "join_failed",
            "peer": peer.to_string(),
            "kmp": self.steps[k].name,
            "reason": reason,
        });
        if let (Some(b), KmpId::Ieee8021xMka) = (&self.radius, self.steps[k].kmp_id) {
            ev["radius"] = radius_counters(b);
        }
        match self.role {
            Role::Gateway => emit(&ev),
            Role::Node if ours && self.current.map(|c| c.0) == Some(handle) => {
                emit(&ev);
                eprintln!(
                    "kmp-udp-node: error: join failed: {} (KMP ID {}) with {peer}: {reason}",
                    self.steps[k].name,
                    self.steps[k].kmp_id.value()
                );
                self.exit(1, ctx);
            }
            Role::Node => {
                // A responder's failure: the gateway started this KMP and has the last word
                // (its retransmission makes a new responder here).
                ev["event"] = json!("step_failed");
                emit(&ev);
            }
        }
    }
}

impl Actor for App {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(self.timeout, |act, ctx| {
            if act.exiting || act.done {
                return;
            }
            emit(&json!({
                "event": "timeout",
                "joined": act.joined,
                "data_sent": act.data_sent,
                "data_received": act.data_received,
            }));
            act.exit(1, ctx);
        });
        if self.role == Role::Node && self.steps.first().map(|s| s.starter) == Some(Starter::Node) {
            self.start_step(0, Self::gateway());
        }
    }
}

impl Handler<KmpEvent> for App {
    type Result = ();
    fn handle(&mut self, ev: KmpEvent, ctx: &mut Context<Self>) {
        if self.exiting {
            return;
        }
        match ev {
            KmpEvent::CreateConfirm(c) => {
                let Some(&(k, peer)) = self.initiated.get(&c.handle) else {
                    return;
                };
                match c.status {
                    KmpStatus::Success => {
                        emit(&json!({
                            "event": "create",
                            "handle": c.handle.0,
                            "kmp": self.steps[k].name,
                            "peer": peer.to_string(),
                        }));
                    }
                    KmpStatus::TxFailure(status) if self.role == Role::Node => {
                        // The first message was not acknowledged: the gateway may not be up
                        // yet, or only its acknowledgments were lost. Give an answer 200 ms to
                        // arrive; if the gateway said nothing since this create, drop the
                        // instance and start again, else let the KMP's own retransmissions
                        // carry on (restarting would desynchronise the gateway's session).
                        tracing::info!(?status, "KMP-CREATE: first message not acknowledged");
                        let handle = c.handle;
                        ctx.run_later(StdDuration::from_millis(200), move |act, ctx| {
                            act.retry_if_unanswered(handle, ctx);
                        });
                    }
                    KmpStatus::TxFailure(status) => {
                        // The KMP retransmits on its own timer.
                        tracing::info!(?status, %peer, "KMP-CREATE: first message not acknowledged");
                    }
                    status => {
                        self.initiated.remove(&c.handle);
                        emit(&json!({
                            "event": "create_failed",
                            "kmp": self.steps[k].name,
                            "peer": peer.to_string(),
                            "status": format!("{status:?}"),
                        }));
                        if self.role == Role::Node {
                            self.exit(1, ctx);
                        }
                    }
                }
            }
            KmpEvent::Finished(f) => {
                let Some(k) = self.steps.iter().position(|s| s.kmp_id == f.kmp_id) else {
                    return;
                };
                match &f.outcome {
                    Outcome::Success(_) => {
                        self.initiated.remove(&f.handle);
                        self.step_succeeded(k, f.peer, ctx);
                    }
                    Outcome::Failure(reason) => {
                        self.step_failed(k, f.handle, f.peer, &reason.to_string(), ctx);
                    }
                }
            }
            KmpEvent::CreateIndication(i) => {
                tracing::debug!(peer = %i.peer, handle = i.handle.0, "KMP-CREATE.indication");
            }
            KmpEvent::DeleteIndication(_) => {}
        }
    }
}

impl Handler<MpxConfirm> for App {
    type Result = ();
    fn handle(&mut self, c: MpxConfirm, ctx: &mut Context<Self>) {
        if self.exiting || self.role != Role::Node {
            return;
        }
        let c = c.0;
        if c.status != MacStatus::Success {
            emit(&json!({
                "event": "data_failed",
                "seq": c.handle.0,
                "status": format!("{:?}", c.status),
            }));
            self.exit(1, ctx);
            return;
        }
        emit(&json!({"event": "data_sent", "seq": c.handle.0}));
        self.data_sent += 1;
        if self.data_sent >= self.data_frames {
            emit(&json!({"event": "done", "data_sent": self.data_sent}));
            self.exit(0, ctx);
        } else {
            self.send_data(ctx);
        }
    }
}

impl Handler<MpxIndication> for App {
    type Result = ();
    fn handle(&mut self, ind: MpxIndication, ctx: &mut Context<Self>) {
        if self.role != Role::Gateway || self.data_received >= self.expect_data {
            return;
        }
        let ind = ind.0;
        if ind.multiplex_id != DATA_MULTIPLEX_ID {
            return;
        }
        self.data_received += 1;
        emit(&json!({
            "event": "data",
            "peer": ind.src_addr.to_string(),
            "len": ind.upper_layer_frame.len(),
            "level": ind.security.level.bits(),
        }));
        if self.data_received >= self.expect_data {
            emit(&json!({"event": "done", "data_received": self.data_received}));
            self.done = true;
            // Stay a little to acknowledge retransmissions whose acknowledgment was lost.
            ctx.run_later(self.linger, |act, ctx| act.exit(0, ctx));
        }
    }
}
