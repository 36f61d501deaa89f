//! The network simulation behind `kmp-sim`: one gateway and N nodes, each a complete stack of
//! runtime actors (PIB actor, MPX actor, one KMP host per KMP ID it runs) on its own simulated
//! radio, all on one simulated 802.15.4 channel in virtual time.
//!
//! Phases:
//! 1. **Join**: each node starts its join towards the gateway at a time drawn uniformly from
//!    `[0, nodes × join_interval)`. A join is a [`JoinStep`] list, the KMPs the node runs with
//!    the gateway one after the other:
//!    - one KMP for most (`dragonfly`, `ikev2`, a plugin): the node starts it
//!      (KMP-CREATE.request) and the gateway's host answers as responder;
//!    - `8021x`, the Wi-SUN-shaped join ([`ieee8021x_join`]): KMP ID 1 (the node's supplicant
//!      sends the Wi-SUN EAPOL-Key request, the gateway's standalone authenticator runs
//!      EAP-TLS with certificates of a PKI generated at start), then KMP ID 6 (the 4-way
//!      handshake, PMK from the EAP MSK) and KMP ID 7 (the group-key handshake, GTK
//!      delivered), both started by the gateway when it has finished the KMP before with that
//!      node (kmp-mka decisions H2, B3).
//!
//!    A step is started by its [`Starter`] as soon as that end has finished the step before
//!    with success. A node has joined when *it* has finished every step with success (its keys
//!    are then durable in its PIB); the join has failed when the starter of a step reports
//!    failure (KMP-FINISHED failure or KMP-CREATE refused). A responder's failure alone does
//!    not end a join: the starter's retransmission makes a new responder, and the starter
//!    reports the outcome.
//! 2. **Data**: once every join has ended, each joined node sends `data_frames` frames to the
//!    gateway under the pairwise key it established (CCM* level 6, key identifier mode 0: the
//!    Dragonfly PMK-derived key, the IKEv2 child SA's key, the 4-way handshake's TK), on
//!    Multiplex ID 0x88B5 (IEEE 802 local experimental EtherType); the gateway counts what it
//!    decrypts.
//!
//! Everything random (positions, start times, backoffs, loss, KMP randomness) comes from the
//! seed, so a run repeats exactly, except with EAP-TLS: the TLS engine draws its own
//! randomness (TLS randoms, ECDHE keys, ECDSA nonces, whose DER signatures vary in length) and
//! the PKI's keys are fresh for every run, so message sizes, and with them timings, vary a
//! little.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use actix::{Actor, Addr, AsyncContext, Context, Handler};
use anyhow::{Context as _, anyhow, bail};
use kmp_api::addr::{Address, AddressingMode, ExtendedAddress, PanId};
use kmp_api::primitives::{
    KmpCreateRequest, KmpHandle, KmpStatus, MacStatus, MpxDataRequest, MpxHandle,
};
use kmp_api::rng::RngHandle;
use kmp_api::security::{KeyIdentifier, SecurityLevel, SecurityParams};
use kmp_api::session::Outcome;
use kmp_api::{Duration, Instant, KmpId, MultiplexId, Registry};
use mpx::pib::{
    FrameType, OwnIdentity, PibConfig, PibStore, SecurityLevelDescriptor, SecurityLevelSet,
};
use mpx::runtime::{
    Clock, GetHostStats, KeyLogSink, KmpCreate, KmpEvent, KmpHost, KmpHostConfig, MpxActor,
    MpxActorConfig, MpxConfirm, MpxData, MpxIndication, PibActor, SetIdentity, SetSecurityLevel,
    Subscribe, TimerSlot, VirtualClock, Wake,
};
use mpx::service::MpxConfig;
use mpx::service::floor::{FloorModel, frame_floor};
use radio_drivers::pcap::{KeyLogTap, KeyLogWriter, PcapTap, PcapWriter};
use radio_drivers::sim::{MediumConfig, MediumStats, SimAddress, SimNetwork};

/// The Multiplex ID of the simulation's data frames: 0x88B5, IEEE Std 802 Local Experimental
/// EtherType 1 (no dissector claims it, so Wireshark shows the payload as data).
pub const DATA_MULTIPLEX_ID: MultiplexId = MultiplexId::EtherType(0x88B5);

/// The largest network `run` simulates (node numbers must fit the handles it uses).
pub const MAX_NODES: usize = 1 << 20;

/// The PAN of the simulated network.
pub const SIM_PAN: PanId = PanId(0x1509);

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Nodes besides the gateway.
    pub nodes: usize,
    /// The KMP: a registry name (`dragonfly`, `vendor-psk`) or a KMP ID number.
    pub kmp: String,
    /// Loss probability of every link, in `[0, 1]`.
    pub loss: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Write every PPDU on air here (pcap, LINKTYPE 195).
    pub pcap: Option<PathBuf>,
    /// Write every installed key here (Wireshark `ieee802154_keys` lines).
    pub keylog: Option<PathBuf>,
    /// Dynamic KMP plugins to load first.
    pub plugins: Vec<PathBuf>,
    /// Data frames each joined node sends.
    pub data_frames: usize,
    /// Mean spacing of join starts (virtual time); `None`: [`default_join_interval`].
    pub join_interval: Option<Duration>,
    /// Radio range in metres.
    pub range_m: f64,
    /// Nodes are placed uniformly in a disk of this radius around the gateway.
    pub radius_m: f64,
    /// The KMP's configuration for the gateway (TOML); `None`: built-in for known KMPs.
    pub gateway_config: Option<String>,
    /// The KMP's configuration for the nodes (TOML); `None`: built-in for known KMPs.
    pub node_config: Option<String>,
    /// Send full frames with MPX transfer type 0 (Multiplex ID spelled out) as Wi-SUN stacks
    /// require, instead of the compressed type 1.
    pub wisun_compat: bool,
    /// Give up when virtual time passes this.
    pub max_virtual_time: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 50,
            kmp: "dragonfly".into(),
            loss: 0.0,
            seed: 1,
            pcap: None,
            keylog: None,
            plugins: Vec::new(),
            data_frames: 3,
            join_interval: None,
            range_m: 30.0,
            radius_m: 14.0,
            gateway_config: None,
            node_config: None,
            wisun_compat: false,
            max_virtual_time: Duration::from_secs(3_600),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    /// The KMP run.
    pub kmp: String,
    /// Nodes besides the gateway.
    pub nodes: usize,
    /// Nodes whose KMP finished with success.
    pub joins_completed: usize,
    /// Nodes whose KMP failed (or never finished).
    pub joins_failed: usize,
    /// Join latency (start to KMP-FINISHED at the node, virtual time), µs, sorted.
    pub join_latencies_us: Vec<u64>,
    /// Data frames the nodes sent (confirmed with success).
    pub data_sent: usize,
    /// Data frames whose MPX-DATA.confirm was not success.
    pub data_failed: usize,
    /// Data frames the gateway received and decrypted.
    pub data_received: usize,
    /// The medium's counters at the end of the join phase.
    pub join_medium: MediumStats,
    /// The medium's counters at the end.
    pub medium: MediumStats,
    /// Upper-layer octets (KMP ID prefix + PDU) all KMP hosts sent.
    pub kmp_upper_layer_octets: u64,
    /// KMP datagrams all hosts sent.
    pub kmp_datagrams: u64,
    /// The framing floor for those datagrams (see `mpx::service::floor`), octets on air.
    pub floor_octets: u64,
    /// Virtual time at the end.
    pub virtual_time: Duration,
    /// Wall-clock time of the run.
    pub wall: std::time::Duration,
    /// Peak resident memory of the process (VmHWM), KiB, if known.
    pub peak_rss_kib: Option<u64>,
    /// Scheduler steps.
    pub steps: u64,
}

impl SimReport {
    /// A latency percentile (0–100) in microseconds.
    pub fn latency_percentile(&self, p: f64) -> Option<u64> {
        let v = &self.join_latencies_us;
        if v.is_empty() {
            return None;
        }
        // Nearest-rank percentile; p is clamped to [0, 100], so the rank fits `usize`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * (v.len() as f64)).ceil() as usize;
        v.get(rank.clamp(1, v.len()) - 1).copied()
    }

    /// Octets on air of the join phase over the framing floor of the KMP frames sent.
    pub fn join_octets_over_floor(&self) -> Option<f64> {
        (self.floor_octets > 0)
            .then(|| self.join_medium.octets_on_air as f64 / self.floor_octets as f64)
    }

    /// Octets on air during the join phase per completed join.
    pub fn octets_per_join(&self) -> Option<f64> {
        (self.joins_completed > 0)
            .then(|| self.join_medium.octets_on_air as f64 / self.joins_completed as f64)
    }
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct SimProgress {
    /// Joins that ended with success.
    pub joined: AtomicUsize,
    /// Joins that failed.
    pub failed: AtomicUsize,
    /// Data frames confirmed (either way).
    pub data_done: AtomicUsize,
    /// Virtual time, µs.
    pub virtual_us: AtomicU64,
    /// The run is complete.
    pub done: AtomicBool,
}

/// The EUI-64 of node `i` (0 is the gateway).
pub fn node_address(i: usize) -> ExtendedAddress {
    let n = (i as u64).to_be_bytes();
    ExtendedAddress([0x02, 0x15, 0x09, 0x00, n[4], n[5], n[6], n[7]])
}

/// A small deterministic generator for positions and start times (splitmix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Built-in KMP configurations for the gateway and the nodes.
pub fn builtin_configs(name: &str) -> (String, String) {
    match name {
        "dragonfly" => (
            "password = \"kmp-sim shared password\"\n\
             anti_clogging_threshold = 100000\n\
             [group_key]\n\
             key_hex = \"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\"\n\
             key_index = 1\n"
                .into(),
            "password = \"kmp-sim shared password\"\nexpect_group_key = true\n".into(),
        ),
        "ikev2" => {
            let c = "psk = \"kmp-sim shared secret\"\n".to_string();
            (c.clone(), c)
        }
        "vendor-psk" => {
            let c = "psk_hex = \"000102030405060708090a0b0c0d0e0f\"\n".to_string();
            (c.clone(), c)
        }
        _ => (String::new(), String::new()),
    }
}

/// Finds a KMP in `registry` by its name or its KMP ID number; the error lists what there is.
pub fn select_kmp(registry: &Registry, kmp: &str) -> anyhow::Result<kmp_api::KmpRegistration> {
    if let Some(r) = registry.iter().find(|r| r.name == kmp) {
        return Ok(*r);
    }
    if let Ok(n) = kmp.parse::<u8>() {
        let m: Vec<_> = registry.iter().filter(|r| r.kmp_id.value() == n).collect();
        match m.as_slice() {
            [one] => return Ok(**one),
            [] => {}
            _ => bail!("KMP ID {n} is served by several KMPs; name one"),
        }
    }
    let known: Vec<String> = registry
        .iter()
        .map(|r| format!("{} ({})", r.name, r.kmp_id.value()))
        .collect();
    Err(anyhow!(
        "no KMP {kmp:?} in this build; available: {}",
        known.join(", ")
    ))
}

/// Which end of a join starts one of its KMPs (KMP-CREATE.request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    /// The node (Dragonfly, IKEv2, the 802.1X supplicant's key request).
    Node,
    /// The gateway (the 802.11 4-way and group-key handshakes: the authenticator starts them).
    Gateway,
}

/// One KMP of a node's join and the factories both ends run it with.
#[derive(Clone)]
pub struct JoinStep {
    /// The KMP's registry name.
    pub name: String,
    /// Its KMP ID.
    pub kmp_id: KmpId,
    /// Who starts it, once that end has finished the step before with success.
    pub starter: Starter,
    /// The gateway's factory.
    pub gateway: Arc<dyn kmp_api::KmpFactory>,
    /// The nodes' factories: one shared by every node, or one per node (node 1 first).
    pub nodes: Vec<Arc<dyn kmp_api::KmpFactory>>,
}

impl std::fmt::Debug for JoinStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinStep")
            .field("name", &self.name)
            .field("kmp_id", &self.kmp_id)
            .field("starter", &self.starter)
            .field("node_factories", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl JoinStep {
    /// The factory of node `node` (1-based, as [`node_address`]).
    pub fn node_factory(&self, node: usize) -> Option<Arc<dyn kmp_api::KmpFactory>> {
        match self.nodes.as_slice() {
            [shared] => Some(shared.clone()),
            per_node => per_node.get(node.checked_sub(1)?).cloned(),
        }
    }
}

/// The most KMPs one join may chain (initiator handles carry the step number).
pub const MAX_JOIN_STEPS: usize = 64;

/// The join the simulation runs for `opts.kmp`: the 802.1X join for `8021x` (KMP ID 1), one
/// KMP started by the node for everything else, with the configured or built-in TOML.
pub fn join_plan(registry: &Registry, opts: &SimOptions) -> anyhow::Result<Vec<JoinStep>> {
    let reg = select_kmp(registry, &opts.kmp)?;
    match reg.kmp_id {
        KmpId::Ieee8021xMka => {
            if opts.gateway_config.is_some() || opts.node_config.is_some() {
                bail!(
                    "--kmp {}: the 802.1X join is built in (generated PKI, EAP-TLS, 4-way and \
                     group-key handshakes); --gateway-config and --node-config are not used",
                    opts.kmp
                );
            }
            return ieee8021x_join(opts.nodes, opts.seed);
        }
        KmpId::Ieee80211FourWay | KmpId::Ieee80211GroupKey => bail!(
            "--kmp {}: the 802.11 handshakes need the PMK of an 802.1X authentication; run \
             them as part of --kmp 8021x",
            opts.kmp
        ),
        _ => {}
    }
    let (gw_builtin, node_builtin) = builtin_configs(reg.name);
    let gw_cfg = opts.gateway_config.clone().unwrap_or(gw_builtin);
    let node_cfg = opts.node_config.clone().unwrap_or(node_builtin);
    let gateway = reg
        .make_factory(&gw_cfg)
        .map_err(|e| anyhow!("{} gateway configuration: {e}", reg.name))?;
    let node = reg
        .make_factory(&node_cfg)
        .map_err(|e| anyhow!("{} node configuration: {e}", reg.name))?;
    Ok(vec![JoinStep {
        name: reg.name.to_string(),
        kmp_id: reg.kmp_id,
        starter: Starter::Node,
        gateway,
        nodes: vec![node],
    }])
}

/// The mean spacing of join starts when none is configured: 200 ms, which keeps the channel
/// load of Dragonfly or IKEv2 joins near 8 %, and 2 s for a join with 802.1X (KMP ID 1), whose
/// EAP-TLS exchange puts seven to ten times the octets on air (4–5 kB per join).
pub fn default_join_interval(plan: &[JoinStep]) -> Duration {
    if plan.iter().any(|s| s.kmp_id == KmpId::Ieee8021xMka) {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(200)
    }
}

pub use crate::ieee8021x::{
    GATEWAY_CERT_NAME, PemIdentity, SIM_EPOCH_UNIX_SECS, SimPki, node_cert_name,
};

/// The Wi-SUN-shaped 802.1X join for `nodes` nodes (`--kmp 8021x`):
///
/// 1. KMP ID 1, started by the node: the supplicant's Wi-SUN EAPOL-Key request, then EAP-TLS
///    with the gateway's standalone authenticator (its own EAP server), both with certificates
///    of a [`SimPki`] generated here (one per node); PMK = MSK\[0..32\] into each end's
///    [`kmp_mka::handshake::PmkCache`].
/// 2. KMP ID 6, started by the gateway: the 4-way handshake over that PMK; the TK is the
///    pairwise key (mode 0) in both PIBs, message 3 carries the GTK.
/// 3. KMP ID 7, started by the gateway: the group-key handshake delivers the GTK again (key
///    ID 0, 802.15.4 key index 1, mode 1) as Wi-SUN does after every 4-way handshake.
///
/// Each end is its own [`crate::ieee8021x::Station`] (PMK cache and factories), as separate
/// devices would be (the gateway's GTK set holds one GTK drawn from `seed`).
pub fn ieee8021x_join(nodes: usize, seed: u64) -> anyhow::Result<Vec<JoinStep>> {
    use crate::ieee8021x::{JOIN_STEPS, Station, builtin_pae_config, gateway_gtk, tls_config};
    use kmp_mka::handshake::PaeRole;

    let pki = SimPki::generate(nodes)?;
    let gateway = Station::new(
        builtin_pae_config(
            PaeRole::Authenticator,
            GATEWAY_CERT_NAME,
            &tls_config(&pki.ca, &pki.gateway, None)?,
        )?,
        vec![gateway_gtk(&RngHandle::seeded(seed ^ 0x0047_544b))?],
    )?
    .factories();
    let stations = (1..=nodes)
        .zip(&pki.nodes)
        .map(|(i, id)| {
            let cfg = builtin_pae_config(
                PaeRole::Supplicant,
                &node_cert_name(i),
                &tls_config(&pki.ca, id, Some(GATEWAY_CERT_NAME))?,
            )?;
            Ok(Station::new(cfg, Vec::new())?.factories())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(JOIN_STEPS
        .iter()
        .zip(gateway)
        .enumerate()
        .map(|(k, (spec, gw))| JoinStep {
            name: spec.name.into(),
            kmp_id: spec.kmp_id,
            starter: spec.starter,
            gateway: gw,
            nodes: stations.iter().map(|s| s[k].clone()).collect(),
        })
        .collect())
}

enum Task {
    Join(usize),
    Data(usize, usize),
    /// The join phase's last frame and its ack are on air by now: take the medium's counters.
    Snapshot,
}

struct NodeState {
    started: Option<Instant>,
    outcome: Option<bool>,
    latency_us: Option<u64>,
    /// Steps started, and finished with success at the node and at the gateway (bit = step).
    steps_started: u64,
    node_ok: u64,
    gateway_ok: u64,
}

/// The initiator handle of step `step` of node `node` (1-based): the step above the node
/// number, below the runtime's responder handles.
fn step_handle(node: usize, step: usize) -> KmpHandle {
    let n = u32::try_from(node).unwrap_or(u32::MAX) & 0x001f_ffff;
    let k = u32::try_from(step).unwrap_or(u32::MAX) & 0x3f;
    KmpHandle((k << 21) | n)
}

/// The inverse of [`step_handle`]: (node, step).
fn handle_step(h: KmpHandle) -> (usize, usize) {
    ((h.0 & 0x001f_ffff) as usize, ((h.0 >> 21) & 0x3f) as usize)
}

/// A KMP event of station `station` (0 is the gateway): each station's hosts report to their
/// own [`EventTag`], so a node's responder sessions (whose handles the runtime assigns) are
/// told apart.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct StationEvent {
    station: usize,
    event: KmpEvent,
}

/// Forwards the KMP events of one station's hosts to the director, tagged with the station.
struct EventTag {
    station: usize,
    to: actix::Recipient<StationEvent>,
}

impl Actor for EventTag {
    type Context = Context<Self>;
}

impl Handler<KmpEvent> for EventTag {
    type Result = ();
    fn handle(&mut self, event: KmpEvent, _: &mut Context<Self>) {
        self.to.do_send(StationEvent {
            station: self.station,
            event,
        });
    }
}

/// A step as the director runs it.
#[derive(Debug, Clone, Copy)]
struct StepInfo {
    kmp_id: KmpId,
    starter: Starter,
}

/// Drives the scenario: starts joins, their later steps and data at their virtual times and
/// collects outcomes.
struct Director {
    clock: VirtualClock,
    timer: TimerSlot,
    tasks: BTreeMap<(Instant, u64), Task>,
    task_seq: u64,
    /// `hosts[station][step]`.
    hosts: Vec<Vec<Addr<KmpHost>>>,
    mpx: Vec<Addr<MpxActor>>,
    steps: Vec<StepInfo>,
    nodes: Vec<NodeState>,
    by_addr: HashMap<ExtendedAddress, usize>,
    joins_ended: usize,
    data_frames: usize,
    data_expected: usize,
    data_ok: usize,
    data_failed: usize,
    data_received: usize,
    data_attempts: HashMap<u32, u8>,
    join_snapshot: Option<Box<dyn Fn() + Send>>,
    progress: Arc<SimProgress>,
    rng: SplitMix,
}

impl Director {
    fn add_task(&mut self, at: Instant, t: Task) {
        self.task_seq += 1;
        self.tasks.insert((at, self.task_seq), t);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.tasks.keys().next().map(|(t, _)| *t);
        self.timer
            .set(&Clock::Virtual(self.clock.clone()), ctx, next);
    }

    fn all_steps(&self) -> u64 {
        u64::MAX >> (64 - self.steps.len().clamp(1, MAX_JOIN_STEPS))
    }

    fn join_ended(&mut self, i: usize, ok: bool, now: Instant, ctx: &mut Context<Self>) {
        let Some(n) = self.nodes.get_mut(i) else {
            return;
        };
        if n.outcome.is_some() {
            return;
        }
        n.outcome = Some(ok);
        if ok {
            n.latency_us = n
                .started
                .map(|s| now.saturating_duration_since(s).as_micros());
            self.progress.joined.fetch_add(1, Ordering::Relaxed);
        } else {
            self.progress.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.joins_ended += 1;
        if self.joins_ended == self.nodes.len() {
            self.start_data_phase(now, ctx);
        }
    }

    /// KMP-CREATE.request for step `k` of node `i` (0-based) at the step's starter.
    fn start_step(&mut self, i: usize, k: usize) {
        let (Some(n), Some(step)) = (self.nodes.get_mut(i), self.steps.get(k)) else {
            return;
        };
        let bit = 1u64 << k;
        if n.steps_started & bit != 0 {
            return;
        }
        n.steps_started |= bit;
        let (station, peer) = match step.starter {
            Starter::Node => (i + 1, node_address(0)),
            Starter::Gateway => (0, node_address(i + 1)),
        };
        if let Some(host) = self.hosts.get(station).and_then(|h| h.get(k)) {
            host.do_send(KmpCreate(KmpCreateRequest {
                kmp_id: step.kmp_id,
                peer,
                peer_pan: SIM_PAN,
                handle: step_handle(i + 1, k),
            }));
        }
    }

    /// Step `k` of node `i` finished with success at `side`: the node may have joined, or the
    /// next step's starter may go on.
    fn step_succeeded(
        &mut self,
        i: usize,
        k: usize,
        side: Starter,
        now: Instant,
        ctx: &mut Context<Self>,
    ) {
        let all = self.all_steps();
        let Some(n) = self.nodes.get_mut(i) else {
            return;
        };
        match side {
            Starter::Node => n.node_ok |= 1 << k,
            Starter::Gateway => n.gateway_ok |= 1 << k,
        }
        if n.outcome.is_some() {
            return;
        }
        if n.node_ok == all {
            self.join_ended(i, true, now, ctx);
            return;
        }
        if self.steps.get(k + 1).is_some_and(|s| s.starter == side) {
            self.start_step(i, k + 1);
        }
    }

    /// Step `k` of node `i` failed at `side`: the end of the join if `side` started it.
    fn step_failed(
        &mut self,
        i: usize,
        k: usize,
        side: Starter,
        why: &dyn std::fmt::Debug,
        now: Instant,
        ctx: &mut Context<Self>,
    ) {
        let Some(step) = self.steps.get(k).copied() else {
            return;
        };
        let ended = self.nodes.get(i).is_none_or(|n| n.outcome.is_some());
        if step.starter != side || ended {
            // A responder gave up (the starter's retransmission makes a new one), or the join
            // is already decided.
            tracing::debug!(node = i + 1, kmp = %step.kmp_id, ?side, ?why, "session failed");
            return;
        }
        tracing::warn!(node = i + 1, kmp = %step.kmp_id, ?side, ?why, "join failed");
        self.join_ended(i, false, now, ctx);
    }

    fn start_data_phase(&mut self, now: Instant, ctx: &mut Context<Self>) {
        self.add_task(now + Duration::from_millis(50), Task::Snapshot);
        let joined: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].outcome == Some(true))
            .collect();
        self.data_expected = joined.len() * self.data_frames;
        // Spread the data frames (50 ms of channel per frame) so they do not all contend.
        let window = 50_000u64 * (joined.len() * self.data_frames).max(1) as u64;
        for &i in &joined {
            for k in 0..self.data_frames {
                let at = now + Duration::from_micros(100_000 + self.rng.next() % window);
                self.add_task(at, Task::Data(i, k));
            }
        }
        self.check_done();
        self.rearm(ctx);
    }

    fn check_done(&self) {
        if self.joins_ended == self.nodes.len()
            && self.join_snapshot.is_none()
            && self.data_ok + self.data_failed >= self.data_expected
            && self.data_received >= self.data_ok
        {
            self.progress.done.store(true, Ordering::Release);
        }
    }

    fn run_task(&mut self, t: Task, now: Instant, confirm_to: actix::Recipient<MpxConfirm>) {
        match t {
            Task::Join(i) => {
                self.nodes[i].started = Some(now);
                self.start_step(i, 0);
            }
            Task::Snapshot => {
                if let Some(snap) = self.join_snapshot.take() {
                    snap();
                }
            }
            Task::Data(i, k) => {
                let payload = format!("kmp-sim data {k} from node {}", i + 1).into_bytes();
                self.mpx[i + 1].do_send(MpxData {
                    request: MpxDataRequest {
                        src_addr_mode: AddressingMode::Extended,
                        dst_pan: SIM_PAN,
                        dst_addr: Address::Extended(node_address(0)),
                        multiplex_id: DATA_MULTIPLEX_ID,
                        upper_layer_frame: payload,
                        handle: MpxHandle(
                            (u32::try_from(i).unwrap_or(0) << 8)
                                | (u32::try_from(k).unwrap_or(0) & 0xff),
                        ),
                        ack_tx: true,
                        seq_num_suppressed: false,
                        pan_id_suppressed: true,
                        security: SecurityParams {
                            level: SecurityLevel::EncMic64,
                            key_id: KeyIdentifier::Implicit,
                        },
                    },
                    confirm_to: Some(confirm_to),
                });
            }
        }
    }
}

impl Actor for Director {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.rearm(ctx);
    }
}

impl Handler<Wake> for Director {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        self.timer.fired(now);
        self.progress
            .virtual_us
            .store(now.as_micros(), Ordering::Relaxed);
        while let Some(entry) = self.tasks.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let t = entry.remove();
            let me = ctx.address().recipient::<MpxConfirm>();
            self.run_task(t, now, me);
        }
        self.rearm(ctx);
    }
}

impl Handler<StationEvent> for Director {
    type Result = ();
    fn handle(&mut self, ev: StationEvent, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let side = if ev.station == 0 {
            Starter::Gateway
        } else {
            Starter::Node
        };
        match ev.event {
            KmpEvent::CreateConfirm(c) => {
                let (node, k) = handle_step(c.handle);
                if node == 0 || node > self.nodes.len() {
                    return;
                }
                match c.status {
                    KmpStatus::Success => {}
                    // The first message was lost on the channel: the session retransmits it.
                    KmpStatus::TxFailure(status) => {
                        tracing::debug!(
                            node,
                            step = k,
                            ?status,
                            "first KMP message not acknowledged"
                        );
                    }
                    status => self.step_failed(node - 1, k, side, &status, now, ctx),
                }
            }
            KmpEvent::Finished(f) => {
                // The node's peer is the gateway; the gateway's peer names the node.
                let node = match side {
                    Starter::Node if f.peer == node_address(0) => Some(ev.station),
                    Starter::Node => None,
                    Starter::Gateway => self.by_addr.get(&f.peer).copied(),
                };
                let step = self.steps.iter().position(|s| s.kmp_id == f.kmp_id);
                if let (Some(node), Some(k)) = (node, step)
                    && (1..=self.nodes.len()).contains(&node)
                {
                    match f.outcome {
                        Outcome::Success(_) => self.step_succeeded(node - 1, k, side, now, ctx),
                        Outcome::Failure(reason) => {
                            self.step_failed(node - 1, k, side, &reason, now, ctx);
                        }
                    }
                }
            }
            KmpEvent::CreateIndication(_) | KmpEvent::DeleteIndication(_) => {}
        }
        self.check_done();
    }
}

/// How often the application sends a data frame whose MPX-DATA.confirm failed.
const DATA_ATTEMPTS: u8 = 4;

impl Handler<MpxConfirm> for Director {
    type Result = ();
    fn handle(&mut self, c: MpxConfirm, ctx: &mut Context<Self>) {
        let h = c.0.handle.0;
        let attempts = self.data_attempts.entry(h).or_insert(0);
        *attempts += 1;
        if c.0.status == MacStatus::Success {
            self.data_ok += 1;
        } else if *attempts < DATA_ATTEMPTS {
            // Like any application over an unreliable MAC: try again a little later.
            tracing::debug!(handle = h, status = ?c.0.status, "data frame not delivered: retrying");
            let at = self.clock.now() + Duration::from_micros(20_000 + self.rng.next() % 200_000);
            self.add_task(at, Task::Data((h >> 8) as usize, (h & 0xff) as usize));
            self.rearm(ctx);
            return;
        } else {
            self.data_failed += 1;
            tracing::warn!(handle = h, status = ?c.0.status, "data frame not delivered");
        }
        self.progress.data_done.fetch_add(1, Ordering::Relaxed);
        self.check_done();
    }
}

impl Handler<MpxIndication> for Director {
    type Result = ();
    fn handle(&mut self, ind: MpxIndication, _: &mut Context<Self>) {
        if ind.0.upper_layer_frame.starts_with(b"kmp-sim data ")
            && ind.0.security.level == SecurityLevel::EncMic64
        {
            self.data_received += 1;
        }
        self.check_done();
    }
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Builds the registry: linked KMPs, then the plugins.
pub fn registry_with_plugins(plugins: &[PathBuf]) -> anyhow::Result<Registry> {
    let mut registry = Registry::from_inventory().context("KMP registry")?;
    for p in plugins {
        let loaded =
            kmp_api::plugin::load(p).with_context(|| format!("loading plugin {}", p.display()))?;
        registry
            .register(loaded.registration())
            .with_context(|| format!("registering plugin {}", p.display()))?;
        tracing::info!(path = %p.display(), kmp = %loaded.kmp_id(), "plugin loaded");
    }
    Ok(registry)
}

/// What [`spawn_node`] needs for one node of a simulated network.
pub struct NodeSpec<'a> {
    /// Node number (0 is the gateway): its EUI-64 is [`node_address`]`(index)`.
    pub index: usize,
    /// Position in metres.
    pub pos: (f64, f64),
    /// The network (and its virtual clock) the node's radio joins.
    pub net: &'a SimNetwork,
    /// The KMP the node's host runs.
    pub factory: Arc<dyn kmp_api::KmpFactory>,
    /// The host's configuration.
    pub host: KmpHostConfig,
    /// Where installed keys are logged (debugging), if anywhere.
    pub keylog: Option<Arc<dyn KeyLogSink>>,
    /// MPX transfer type 1 for full frames.
    pub compress_small_mux_id: bool,
    /// The first MAC sequence number.
    pub initial_dsn: u8,
    /// The KMP's randomness.
    pub rng: RngHandle,
    /// Receives the host's KMP events.
    pub app: actix::Recipient<KmpEvent>,
    /// Sees every KMP frame the host sends.
    pub tx_observer: Option<mpx::runtime::TxObserver>,
}

/// The actors of one simulated node.
#[derive(Debug, Clone)]
pub struct SimNode {
    /// Its PIB actor.
    pub pib: Addr<PibActor>,
    /// Its MPX actor.
    pub mpx: Addr<MpxActor>,
    /// Its first KMP host (more with [`add_kmp_host`]).
    pub host: Addr<KmpHost>,
    /// Its radio on the medium.
    pub radio: radio_drivers::sim::RadioId,
}

/// Starts one node's actors (PIB on an in-memory store, MPX actor on a simulated radio, KMP
/// host) on the network's virtual clock. Call inside the simulation's actix system.
pub fn spawn_node(spec: NodeSpec<'_>) -> anyhow::Result<SimNode> {
    let clock = spec.net.clock().clone();
    let vclock = Clock::Virtual(clock.clone());
    let ext = node_address(spec.index);
    let store = PibStore::in_memory(PibConfig::default(), clock.now()).context("PIB store")?;
    let mut pib_actor = PibActor::new(store, vclock.clone());
    if let Some(k) = spec.keylog {
        pib_actor = pib_actor.with_key_log(k);
    }
    let pib = pib_actor.pib();
    let pib_addr = pib_actor.start();
    pib_addr.do_send(SetIdentity(OwnIdentity {
        ext_address: ext,
        short_address: kmp_api::addr::ShortAddress::NONE_ASSIGNED,
        pan_id: SIM_PAN,
    }));
    // KMP frames travel unsecured (they make the keys); the MPX actor holds every other
    // Multiplex ID to level 6 (DECISIONS R5).
    pib_addr.do_send(SetSecurityLevel(SecurityLevelDescriptor {
        frame_type: FrameType::Data,
        command_id: None,
        security_minimum: SecurityLevel::None,
        device_override: false,
        allowed: SecurityLevelSet::ANY,
    }));
    let radio = spec.net.add_radio(
        spec.pos,
        SimAddress {
            ext,
            short: None,
            pan: SIM_PAN,
        },
    );
    let radio_id = radio.id();
    let mut mcfg = MpxConfig::new(ext, SIM_PAN);
    mcfg.compress_small_mux_id = spec.compress_small_mux_id;
    mcfg.initial_dsn = spec.initial_dsn;
    let mut acfg = MpxActorConfig::new(mcfg);
    acfg.min_upper_layer_security = SecurityLevel::EncMic64;
    let mpx_addr = MpxActor::new(acfg, vclock.clone(), pib, Box::new(radio))
        .context("MPX configuration")?
        .with_pib_actor(pib_addr.clone().recipient())
        .start();
    let host = start_host(
        vclock,
        &pib_addr,
        &mpx_addr,
        HostSpec {
            factory: spec.factory,
            host: spec.host,
            rng: spec.rng,
            app: spec.app,
            tx_observer: spec.tx_observer,
        },
    );
    Ok(SimNode {
        pib: pib_addr,
        mpx: mpx_addr,
        host,
        radio: radio_id,
    })
}

/// What [`add_kmp_host`] needs for one more KMP host on a node.
pub struct HostSpec {
    /// The KMP the host runs (its KMP ID must differ from the node's other hosts').
    pub factory: Arc<dyn kmp_api::KmpFactory>,
    /// The host's configuration.
    pub host: KmpHostConfig,
    /// The KMP's randomness.
    pub rng: RngHandle,
    /// Receives the host's KMP events.
    pub app: actix::Recipient<KmpEvent>,
    /// Sees every KMP frame the host sends.
    pub tx_observer: Option<mpx::runtime::TxObserver>,
}

fn start_host(
    clock: Clock,
    pib: &Addr<PibActor>,
    mpx: &Addr<MpxActor>,
    spec: HostSpec,
) -> Addr<KmpHost> {
    let mut host = KmpHost::new(
        spec.host,
        clock,
        spec.factory,
        spec.rng,
        mpx.clone(),
        pib.clone(),
    )
    .with_app(spec.app);
    if let Some(obs) = spec.tx_observer {
        host = host.with_tx_observer(obs);
    }
    host.start()
}

/// Starts one more KMP host on a node [`spawn_node`] started, on the same PIB and MPX actor:
/// a node runs one host per KMP ID (the 802.1X join needs KMP IDs 1, 6 and 7). The MPX actor
/// routes each KMP ID to its host. Call inside the simulation's actix system.
pub fn add_kmp_host(node: &SimNode, net: &SimNetwork, spec: HostSpec) -> Addr<KmpHost> {
    start_host(
        Clock::Virtual(net.clock().clone()),
        &node.pib,
        &node.mpx,
        spec,
    )
}

/// Runs a simulation to its end. `on_step` is called often with the live counters.
#[allow(clippy::too_many_lines)]
pub fn run(opts: &SimOptions, on_step: &dyn Fn(&SimProgress)) -> anyhow::Result<SimReport> {
    let wall = std::time::Instant::now();
    if !(0.0..=1.0).contains(&opts.loss) {
        bail!("--loss must be within [0, 1]");
    }
    if opts.nodes == 0 || opts.nodes > MAX_NODES {
        bail!("--nodes must be within 1..={MAX_NODES}");
    }
    if opts.data_frames > 255 {
        bail!("--data-frames must be at most 255");
    }
    let registry = registry_with_plugins(&opts.plugins)?;
    let plan = join_plan(&registry, opts)?;
    if plan.is_empty() || plan.len() > MAX_JOIN_STEPS {
        bail!("a join has 1..={MAX_JOIN_STEPS} KMPs");
    }
    let kmp_name = plan
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kmp_id))
        .collect::<Vec<_>>()
        .join(" + ");

    let pcap_tap = match &opts.pcap {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            Some(Arc::new(PcapTap::new(PcapWriter::new(
                std::io::BufWriter::new(f),
            )?)))
        }
        None => None,
    };
    let keylog = match &opts.keylog {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            Some(Arc::new(KeyLogTap::new(KeyLogWriter::new(f))))
        }
        None => None,
    };

    let system = mpx::runtime::virtual_time_system().context("building the runtime")?;
    let progress = Arc::new(SimProgress::default());
    let clock = VirtualClock::new();
    let net = SimNetwork::new(
        MediumConfig {
            seed: opts.seed,
            range_m: opts.range_m,
            loss: opts.loss,
        },
        clock.clone(),
    );
    if let Some(t) = &pcap_tap {
        net.set_tap(t.clone());
    }
    let join_snapshot: Arc<std::sync::Mutex<Option<MediumStats>>> = Arc::default();
    // The framing floor of every KMP frame sent: the same PDUs with the smallest legal framing.
    let floor = Arc::new(AtomicU64::new(0));
    let floor_model = FloorModel::legacy();
    let floor_obs: mpx::runtime::TxObserver = {
        let floor = floor.clone();
        Arc::new(move |len| {
            let f = frame_floor(&floor_model, len, 1);
            floor.fetch_add(f.octets as u64, Ordering::Relaxed);
        })
    };

    let report = system.block_on(async {
        let mut rng = SplitMix(opts.seed ^ 0x5eed_1509);
        let mut hosts = Vec::with_capacity(opts.nodes + 1);
        let mut mpxs = Vec::with_capacity(opts.nodes + 1);
        let n = opts.nodes;
        let ctx: Context<Director> = Context::new();
        let me = ctx.address();
        for i in 0..=n {
            let pos = if i == 0 {
                (0.0, 0.0)
            } else {
                let r = opts.radius_m * rng.unit().sqrt();
                let a = rng.unit() * std::f64::consts::TAU;
                (r * a.cos(), r * a.sin())
            };
            let host_config = || {
                let mut host = KmpHostConfig::new(node_address(i));
                if i == 0 {
                    host.max_sessions = n + 64;
                    host.max_responder_sessions = n + 64;
                }
                host
            };
            let factory = |step: &JoinStep| {
                if i == 0 {
                    Ok(step.gateway.clone())
                } else {
                    step.node_factory(i)
                        .ok_or_else(|| anyhow!("{}: no factory for node {i}", step.name))
                }
            };
            // Step 0 keeps the seed scheme of single-KMP joins; later steps get their own.
            let host_rng = |k: usize| {
                RngHandle::seeded(
                    opts.seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add(i as u64)
                        .wrapping_add((k as u64) << 40),
                )
            };
            let app = EventTag {
                station: i,
                to: me.clone().recipient(),
            }
            .start()
            .recipient();
            let node = spawn_node(NodeSpec {
                index: i,
                pos,
                net: &net,
                factory: factory(&plan[0])?,
                host: host_config(),
                keylog: keylog.clone().map(|k| k as Arc<dyn KeyLogSink>),
                compress_small_mux_id: !opts.wisun_compat,
                initial_dsn: (rng.next() & 0xff) as u8,
                rng: host_rng(0),
                app: app.clone(),
                tx_observer: Some(floor_obs.clone()),
            })?;
            let mut station_hosts = vec![node.host.clone()];
            for (k, step) in plan.iter().enumerate().skip(1) {
                station_hosts.push(add_kmp_host(
                    &node,
                    &net,
                    HostSpec {
                        factory: factory(step)?,
                        host: host_config(),
                        rng: host_rng(k),
                        app: app.clone(),
                        tx_observer: Some(floor_obs.clone()),
                    },
                ));
            }
            if i == 0 {
                node.mpx.do_send(Subscribe {
                    multiplex_id: DATA_MULTIPLEX_ID,
                    to: me.clone().recipient(),
                });
            }
            hosts.push(station_hosts);
            mpxs.push(node.mpx);
        }
        let director = {
            let mut d = Director {
                clock: clock.clone(),
                timer: TimerSlot::new(),
                tasks: BTreeMap::new(),
                task_seq: 0,
                hosts,
                mpx: mpxs,
                steps: plan
                    .iter()
                    .map(|s| StepInfo {
                        kmp_id: s.kmp_id,
                        starter: s.starter,
                    })
                    .collect(),
                nodes: (0..n)
                    .map(|_| NodeState {
                        started: None,
                        outcome: None,
                        latency_us: None,
                        steps_started: 0,
                        node_ok: 0,
                        gateway_ok: 0,
                    })
                    .collect(),
                by_addr: (1..=n).map(|i| (node_address(i), i)).collect(),
                joins_ended: 0,
                data_frames: opts.data_frames,
                data_expected: 0,
                data_ok: 0,
                data_failed: 0,
                data_received: 0,
                data_attempts: HashMap::new(),
                join_snapshot: None,
                progress: progress.clone(),
                rng: SplitMix(opts.seed ^ 0xda7a),
            };
            let snap = join_snapshot.clone();
            let net2 = net.clone();
            d.join_snapshot = Some(Box::new(move || {
                if let Ok(mut g) = snap.lock() {
                    *g = Some(net2.medium_stats());
                }
            }));
            let window = opts
                .join_interval
                .unwrap_or_else(|| default_join_interval(&plan))
                .as_micros()
                .saturating_mul(n as u64)
                .max(1);
            for i in 0..n {
                let at = Instant::from_micros(rng.next() % window);
                d.add_task(at, Task::Join(i));
            }
            ctx.run(d)
        };
        let deadline = Instant::ZERO + opts.max_virtual_time;
        let p2 = progress.clone();
        let end = net
            .run(
                || {
                    on_step(&p2);
                    p2.done.load(Ordering::Acquire)
                },
                deadline,
            )
            .await;
        let mut kmp_octets = 0;
        let mut kmp_datagrams = 0;
        let hosts = director
            .send(GetHosts)
            .await
            .map_err(|e| anyhow!("director: {e}"))?;
        for h in hosts {
            if let Ok(s) = h.send(GetHostStats).await {
                kmp_octets += s.counters.tx_upper_layer_octets;
                kmp_datagrams += s.counters.tx_datagrams;
            }
        }
        let summary = director
            .send(GetSummary)
            .await
            .map_err(|e| anyhow!("director: {e}"))?;
        anyhow::Ok((end, kmp_octets, kmp_datagrams, summary))
    });
    let (end, kmp_octets, kmp_datagrams, summary) = report?;
    on_step(&progress);
    if let Some(t) = &pcap_tap {
        t.flush()?;
    }
    let mut latencies: Vec<u64> = summary.latencies;
    latencies.sort_unstable();
    let medium = net.medium_stats();
    let join_medium = join_snapshot.lock().ok().and_then(|g| *g).unwrap_or(medium);
    Ok(SimReport {
        kmp: kmp_name,
        nodes: opts.nodes,
        joins_completed: summary.joined,
        joins_failed: opts.nodes - summary.joined,
        join_latencies_us: latencies,
        data_sent: summary.data_ok,
        data_failed: summary.data_failed,
        data_received: summary.data_received,
        join_medium,
        medium,
        kmp_upper_layer_octets: kmp_octets,
        kmp_datagrams,
        floor_octets: floor.load(Ordering::Relaxed),
        virtual_time: end.saturating_duration_since(Instant::ZERO),
        wall: wall.elapsed(),
        peak_rss_kib: peak_rss_kib(),
        steps: net.stats().steps,
    })
}

/// The director's view at the end.
#[derive(Debug, Clone, Default)]
struct Summary {
    joined: usize,
    latencies: Vec<u64>,
    data_ok: usize,
    data_failed: usize,
    data_received: usize,
}

#[derive(actix::Message)]
#[rtype(result = "Summary")]
struct GetSummary;

#[derive(actix::Message)]
#[rtype(result = "Vec<Addr<KmpHost>>")]
struct GetHosts;

impl Handler<GetSummary> for Director {
    type Result = actix::MessageResult<GetSummary>;
    fn handle(&mut self, _: GetSummary, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(Summary {
            joined: self
                .nodes
                .iter()
                .filter(|n| n.outcome == Some(true))
                .count(),
            latencies: self.nodes.iter().filter_map(|n| n.latency_us).collect(),
            data_ok: self.data_ok,
            data_failed: self.data_failed,
            data_received: self.data_received,
        })
    }
}

impl Handler<GetHosts> for Director {
    type Result = actix::MessageResult<GetHosts>;
    fn handle(&mut self, _: GetHosts, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.hosts.iter().flatten().cloned().collect())
    }
}
