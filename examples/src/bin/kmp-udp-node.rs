//! `kmp-udp-node`: one node of an IEEE 802.15.9 network whose radio is the UDP virtual radio
//! (`radio_drivers::udp`), in real time. Run a gateway and one or more nodes as separate
//! processes that list each other as peers:
//!
//! ```text
//! kmp-udp-node --role gateway --index 0 --bind 127.0.0.1:4000 --peer 127.0.0.1:4001
//! kmp-udp-node --role node    --index 1 --bind 127.0.0.1:4001 --peer 127.0.0.1:4000
//! ```
//!
//! - The **gateway** (address `node_address(0)`) answers KMPs as responder, listens on the
//!   data Multiplex ID, prints one JSON line per event on stdout and exits 0 once it has
//!   received `--expect-data` data frames (after lingering `--linger-ms` to acknowledge
//!   retransmissions), or 1 on timeout.
//! - A **node** (address `node_address(index)`) starts its KMP towards the gateway (retrying
//!   the KMP-CREATE while its first message is not acknowledged, e.g. before the gateway is
//!   up), then sends `--data-frames` CCM*-protected data frames (level 6, implicit key) and
//!   exits 0 when every one was confirmed with success, 1 on failure or timeout.
//!
//! Bad arguments: one line on stderr, exit 2. Logs go to stderr, filtered by `KMP_LOG`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, WrapFuture};
use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, ValueEnum};
use examples::sim::{
    DATA_MULTIPLEX_ID, SIM_PAN, builtin_configs, node_address, registry_with_plugins,
};
use kmp_api::KmpId;
use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, ShortAddress};
use kmp_api::primitives::{
    KmpCreateRequest, KmpDeleteRequest, KmpHandle, KmpStatus, MacStatus, MpxDataRequest, MpxHandle,
};
use kmp_api::rng::RngHandle;
use kmp_api::security::{KeyIdentifier, SecurityLevel, SecurityParams};
use kmp_api::session::Outcome;
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
    about = "One gateway or node of an IEEE 802.15.9 KMP network over the UDP virtual radio"
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
    /// The KMP: a registry name (dragonfly, …) or a KMP ID number.
    #[arg(long, default_value = "dragonfly")]
    kmp: String,
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
    Ok(())
}

/// Prints one JSON event line on stdout.
fn emit(v: &serde_json::Value) {
    println!("{v}");
}

/// Builds the stack and runs the system to its exit code.
fn run(cli: Cli) -> anyhow::Result<i32> {
    let registry = registry_with_plugins(&cli.plugins)?;
    examples::check_linked_kmps(&registry)?;
    let reg = examples::sim::select_kmp(&registry, &cli.kmp)?;
    let (gw_cfg, node_cfg) = builtin_configs(reg.name);
    let cfg = match cli.role {
        Role::Gateway => gw_cfg,
        Role::Node => node_cfg,
    };
    let factory = reg
        .make_factory(&cfg)
        .map_err(|e| anyhow!("{} configuration: {e}", reg.name))?;
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
        let kmp_id = reg.kmp_id;
        let data_frames = cli.data_frames;
        let expect_data = cli.expect_data;
        let linger = StdDuration::from_millis(cli.linger_ms);
        let mpx2 = mpx_addr.clone();
        let pib2 = pib_addr.clone();
        <App as Actor>::create(move |ctx| {
            let me = ctx.address();
            let mut hcfg = KmpHostConfig::new(ext);
            hcfg.auto_accept = true;
            let host = KmpHost::new(
                hcfg,
                clock.clone(),
                factory,
                rng,
                mpx2.clone(),
                pib2.clone(),
            )
            .with_app(me.clone().recipient())
            .start();
            if role == Role::Gateway {
                mpx2.do_send(Subscribe {
                    multiplex_id: DATA_MULTIPLEX_ID,
                    to: me.recipient(),
                });
            }
            App {
                role,
                ext,
                kmp_id,
                host,
                mpx: mpx2,
                pib: pib2,
                timeout,
                linger,
                data_frames,
                expect_data,
                next_handle: 1,
                current_handle: None,
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
            "kmp": reg.name,
        }));
        anyhow::Ok(())
    })?;
    let code = system.run_with_code().context("running the actor system")?;
    if let Some(t) = &tap {
        t.flush().context("flushing the pcap file")?;
    }
    Ok(code)
}

/// The application: drives the join and the data exchange, prints events, decides the exit
/// code.
struct App {
    role: Role,
    ext: ExtendedAddress,
    kmp_id: KmpId,
    host: Addr<KmpHost>,
    mpx: Addr<MpxActor>,
    pib: Addr<PibActor>,
    timeout: StdDuration,
    linger: StdDuration,
    data_frames: usize,
    expect_data: usize,
    next_handle: u32,
    /// The node's current KMP instance.
    current_handle: Option<KmpHandle>,
    /// KMP datagrams the host had received when the current instance was created.
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

    /// Node: KMP-CREATE.request towards the gateway.
    fn start_kmp(&mut self) {
        let handle = KmpHandle(self.next_handle);
        self.next_handle += 1;
        self.current_handle = Some(handle);
        self.host.do_send(KmpCreate(KmpCreateRequest {
            kmp_id: self.kmp_id,
            peer: Self::gateway(),
            peer_pan: SIM_PAN,
            handle,
        }));
    }

    /// Node: after a KMP-CREATE.confirm with `TxFailure`, restarts the instance `handle` unless
    /// the gateway has answered since it was created.
    fn retry_if_unanswered(&mut self, handle: KmpHandle, ctx: &mut Context<Self>) {
        if self.exiting || self.joined || self.current_handle != Some(handle) {
            return;
        }
        let stats = self.host.send(GetHostStats);
        ctx.spawn(stats.into_actor(self).map(move |res, act, ctx| {
            if act.exiting || act.joined || act.current_handle != Some(handle) {
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
            act.current_handle = None;
            let del = act.host.send(KmpDelete(KmpDeleteRequest { handle }));
            ctx.spawn(del.into_actor(act).map(move |_, act, _| {
                act.rx_baseline = rx;
                if !act.exiting && !act.joined {
                    emit(&json!({"event": "create_retry", "handle": handle.0}));
                    act.start_kmp();
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
        if self.role == Role::Node {
            self.start_kmp();
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
                if self.role != Role::Node || Some(c.handle) != self.current_handle {
                    return;
                }
                match c.status {
                    KmpStatus::Success => {
                        emit(&json!({"event": "create", "handle": c.handle.0}));
                    }
                    KmpStatus::TxFailure(status) => {
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
                    status => {
                        emit(&json!({"event": "create_failed", "status": format!("{status:?}")}));
                        self.exit(1, ctx);
                    }
                }
            }
            KmpEvent::Finished(f) => match (&f.outcome, self.role) {
                (Outcome::Success(_), Role::Gateway) => {
                    emit(&json!({"event": "joined", "peer": f.peer.to_string()}));
                }
                (Outcome::Success(_), Role::Node) => {
                    if f.peer != Self::gateway() || self.joined {
                        return;
                    }
                    self.joined = true;
                    emit(&json!({"event": "joined", "peer": f.peer.to_string()}));
                    if self.data_frames == 0 {
                        emit(&json!({"event": "done", "data_sent": 0}));
                        self.exit(0, ctx);
                    } else {
                        self.send_data(ctx);
                    }
                }
                (Outcome::Failure(reason), Role::Gateway) => {
                    emit(&json!({
                        "event": "join_failed",
                        "peer": f.peer.to_string(),
                        "reason": reason.to_string(),
                    }));
                }
                (Outcome::Failure(reason), Role::Node) => {
                    if Some(f.handle) != self.current_handle {
                        return;
                    }
                    emit(&json!({
                        "event": "join_failed",
                        "peer": f.peer.to_string(),
                        "reason": reason.to_string(),
                    }));
                    self.exit(1, ctx);
                }
            },
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
