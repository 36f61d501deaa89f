//! The MPX actor: one per 802.15.4 interface. It owns the [`MpxService`] (fragmenter and
//! reassembler), the frame-security procedures over the PIB's read handles, and the radio
//! driver, and routes what arrives:
//!
//! - Multiplex ID 1 (KMP) by KMP ID, with the OUI for vendor-specific KMP 255, to the
//!   [`KmpHost`](super::KmpHost) registered for it ([`RegisterKmp`]) as a [`KmpDatagram`];
//! - any other Multiplex ID to its subscriber ([`Subscribe`]) as an [`MpxIndication`].
//!
//! Unknown KMP IDs, unknown Multiplex IDs, frames that are malformed, not for us or refused by
//! the security procedure are dropped, counted in [`MpxActorCounters`] (or the service's and
//! security procedure's counters) and logged; none of them changes any state.
//!
//! Outgoing frames leave the service with placeholder security; the actor protects them with
//! CCM* (key, frame counter) just before handing them to the driver, and feeds the driver's
//! transmit status back into the service, which releases the next fragment only then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, Recipient};
use kmp_api::addr::{Address, PanId};
use kmp_api::primitives::{
    KmpPurgeConfirm, KmpPurgeRequest, KmpStatus, MacStatus, MpxDataConfirm, MpxDataIndication,
    MpxDataRequest, MpxHandle, MpxPurgeConfirm, MpxPurgeRequest,
};
use kmp_api::security::{SecurityLevel, SecurityParams};
use kmp_api::{ExtendedAddress, Instant, KmpId, MultiplexId};

use super::clock::{Clock, TimerSlot, Wake};
use super::pib_actor::Maintain;
use super::radio::{FrameTap, MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone};
use crate::pib::Pib;
use crate::security::{FrameSecurity, SecurityCounters, SecurityError};
use crate::service::{MpxConfig, MpxCounters, MpxError, MpxEvent, MpxService, TxToken};
use crate::wire::{Frame, FrameRepr, FrameType, ParseOptions};

/// MPX-DATA.request. Exactly one [`MpxConfirm`] follows, to `confirm_to` (a request the
/// service refuses is confirmed at once with the refusal's status).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct MpxData {
    /// The request; its handle is the caller's and comes back in the confirm.
    pub request: MpxDataRequest,
    /// Where the confirm goes (`None`: nowhere).
    pub confirm_to: Option<Recipient<MpxConfirm>>,
}

/// MPX-DATA.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct MpxConfirm(pub MpxDataConfirm);

/// MPX-DATA.indication for a non-KMP Multiplex ID.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct MpxIndication(pub MpxDataIndication);

/// MPX-PURGE.request; replies with MPX-PURGE.confirm. The purged request's own confirm
/// (status `Purged`) goes to its requester as usual. The handle is the one the actor assigned:
/// this is for callers that purge by the handle their [`MpxConfirm`] will carry.
#[derive(Debug, Clone, Message)]
#[rtype(result = "MpxPurgeConfirm")]
pub struct MpxPurge {
    /// The request to purge, by the caller's handle.
    pub request: MpxPurgeRequest,
    /// The caller's confirm recipient, to tell apart equal handles of different callers.
    pub caller: Option<Recipient<MpxConfirm>>,
}

/// KMP-PURGE.request: drops the KMP datagrams queued towards a peer (all KMPs or one).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "KmpPurgeConfirm")]
pub struct KmpPurge(pub KmpPurgeRequest);

/// Subscribes `to` to MPX-DATA.indications of a non-KMP Multiplex ID (replaces an earlier
/// subscriber).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// The Multiplex ID (not [`MultiplexId::Kmp`]).
    pub multiplex_id: MultiplexId,
    /// The subscriber.
    pub to: Recipient<MpxIndication>,
}

/// Registers the host of one KMP ID. Fails if another host has it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), KmpId>")]
pub struct RegisterKmp {
    /// The KMP ID (with its OUI for 255).
    pub kmp_id: KmpId,
    /// Where its datagrams go.
    pub host: Recipient<KmpDatagram>,
}

/// A KMP PDU from a peer, routed by KMP ID.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct KmpDatagram {
    /// The KMP it belongs to.
    pub kmp_id: KmpId,
    /// The sender's EUI-64 (a short source address is resolved through the device table).
    pub peer: ExtendedAddress,
    /// The PAN it came from.
    pub peer_pan: PanId,
    /// The KMP PDU (after the KMP ID prefix).
    pub pdu: Vec<u8>,
    /// The protection the frame(s) had.
    pub security: SecurityParams,
    /// Link quality.
    pub lqi: u8,
    /// Reception time.
    pub at: Instant,
}

/// Asks for the actor's counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "MpxStats")]
pub struct GetMpxStats;

/// Everything the MPX actor counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpxStats {
    /// The data service.
    pub service: MpxCounters,
    /// The frame-security procedures.
    pub security: SecurityCounters,
    /// The actor's own routing and filtering.
    pub actor: MpxActorCounters,
    /// Requests waiting for their confirm.
    pub pending_requests: usize,
}

/// What the MPX actor itself counts. They only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpxActorCounters {
    /// Frames from the driver.
    pub rx_frames: u64,
    /// Frames that do not parse as 802.15.4 (or whose FCS is wrong).
    pub rx_malformed: u64,
    /// Frames for another PAN or address (a driver without a hardware filter).
    pub rx_not_for_us: u64,
    /// Acknowledgment frames (the driver's business) passed up anyway.
    pub rx_acks: u64,
    /// Frames the incoming security procedure refused (details in [`SecurityCounters`]).
    pub rx_security_refused: u64,
    /// KMP frames whose KMP ID prefix is missing or truncated.
    pub rx_bad_kmp_prefix: u64,
    /// KMP frames for a KMP ID no host serves.
    pub rx_unknown_kmp: u64,
    /// KMP frames whose sender's EUI-64 could not be found.
    pub rx_unresolved_peer: u64,
    /// Frames of a non-KMP Multiplex ID below the required security level.
    pub rx_insecure_upper_layer: u64,
    /// Frames of a Multiplex ID nobody subscribed to.
    pub rx_unrouted_multiplex_id: u64,
    /// KMP datagrams delivered to hosts.
    pub rx_kmp_datagrams: u64,
    /// Indications delivered to subscribers.
    pub rx_indications: u64,
    /// Frames handed to the driver.
    pub tx_frames: u64,
    /// Frames the outgoing security procedure refused (no key, counter, level).
    pub tx_security_refused: u64,
    /// Transmit statuses from the driver.
    pub tx_done: u64,
}

/// Configuration of an [`MpxActor`].
#[derive(Debug, Clone)]
pub struct MpxActorConfig {
    /// The data service's configuration (our addresses, PHY size, reassembly bounds).
    pub mpx: MpxConfig,
    /// Frames of Multiplex IDs other than KMP must arrive with at least this security level
    /// (KMP frames may be unsecured: they establish the keys). Default `EncMic32`
    /// (project decision: upper-layer data never travels in the clear by default).
    pub min_upper_layer_security: SecurityLevel,
    /// Drop frames for another PAN or address (for drivers without a hardware filter, such as
    /// the simulated medium). Default on.
    pub address_filter: bool,
}

impl MpxActorConfig {
    /// Defaults around a data-service configuration.
    pub fn new(mpx: MpxConfig) -> MpxActorConfig {
        MpxActorConfig {
            mpx,
            min_upper_layer_security: SecurityLevel::EncMic32,
            address_filter: true,
        }
    }
}

#[derive(Debug)]
struct Pending {
    caller_handle: MpxHandle,
    confirm_to: Option<Recipient<MpxConfirm>>,
    dst: Address,
    kmp_id: Option<KmpId>,
}

/// The MPX actor; see the [module docs](self).
pub struct MpxActor {
    cfg: MpxActorConfig,
    clock: Clock,
    service: MpxService,
    security: FrameSecurity,
    pib: Pib,
    pib_actor: Option<Recipient<Maintain>>,
    maintenance_asked_at: Option<Instant>,
    radio: Box<dyn RadioDriver>,
    tap: Option<Arc<dyn FrameTap>>,
    kmp_routes: HashMap<KmpId, Recipient<KmpDatagram>>,
    mux_routes: HashMap<MultiplexId, Recipient<MpxIndication>>,
    pending: HashMap<MpxHandle, Pending>,
    next_handle: u32,
    unknown_kmp_logged: HashSet<KmpId>,
    timer: TimerSlot,
    counters: MpxActorCounters,
}

impl std::fmt::Debug for MpxActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpxActor")
            .field("address", &self.cfg.mpx.extended_address)
            .field("pending", &self.pending.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The MAC status reported for a frame the outgoing security procedure refused.
fn tx_status_of(e: &SecurityError) -> MacStatus {
    match e {
        SecurityError::UnavailableKey | SecurityError::UnavailableDevice => {
            MacStatus::UnavailableKey
        }
        SecurityError::ImproperSecurityLevel | SecurityError::ImproperKeyType => {
            MacStatus::ImproperSecurityLevel
        }
        SecurityError::CounterError(_) => MacStatus::CounterError,
        _ => MacStatus::InvalidParameter,
    }
}

impl MpxActor {
    /// An actor for one interface. Fails if the data-service configuration is unusable.
    pub fn new(
        cfg: MpxActorConfig,
        clock: Clock,
        pib: Pib,
        radio: Box<dyn RadioDriver>,
    ) -> Result<MpxActor, MpxError> {
        let service = MpxService::new(cfg.mpx.clone())?;
        let security = FrameSecurity::new(pib.clone(), cfg.mpx.fcs_len);
        Ok(MpxActor {
            cfg,
            clock,
            service,
            security,
            pib,
            pib_actor: None,
            maintenance_asked_at: None,
            radio,
            tap: None,
            kmp_routes: HashMap::new(),
            mux_routes: HashMap::new(),
            pending: HashMap::new(),
            next_handle: 1,
            unknown_kmp_logged: HashSet::new(),
            timer: TimerSlot::new(),
            counters: MpxActorCounters::default(),
        })
    }

    /// Asks `pib` for maintenance when the data path runs low on reserved frame counters.
    pub fn with_pib_actor(mut self, pib: Recipient<Maintain>) -> MpxActor {
        self.pib_actor = Some(pib);
        self
    }

    /// Copies every frame sent and received to `tap`.
    pub fn with_tap(mut self, tap: Arc<dyn FrameTap>) -> MpxActor {
        self.tap = Some(tap);
        self
    }

    fn alloc_handle(&mut self) -> MpxHandle {
        loop {
            let h = MpxHandle(self.next_handle);
            self.next_handle = self.next_handle.wrapping_add(1).max(1);
            if !self.pending.contains_key(&h) {
                return h;
            }
        }
    }

    /// Hands every frame the service wants sent to the driver, routes every event, re-arms
    /// the timer.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        loop {
            let mut progressed = false;
            while let Some(t) = self.service.poll_transmit(now) {
                progressed = true;
                let mut frame = t.frame;
                if t.security.level != SecurityLevel::None
                    && let Err(e) = self.security.protect(&mut frame, now)
                {
                    self.counters.tx_security_refused += 1;
                    self.service
                        .handle_tx_status(now, t.token, tx_status_of(&e));
                    continue;
                }
                let dst_pan = Frame::new_checked(&frame[..], self.cfg.mpx.fcs_len)
                    .ok()
                    .and_then(|f| f.dst_pan_id());
                if let Some(tap) = &self.tap {
                    tap.frame(now, &frame);
                }
                self.counters.tx_frames += 1;
                self.radio.transmit(RadioTx {
                    token: t.token.0,
                    frame,
                    ack_request: t.ack_request,
                    dst_pan,
                    dst: t.dst,
                });
            }
            while let Some(ev) = self.service.poll_event() {
                progressed = true;
                self.route(ev);
            }
            if !progressed {
                break;
            }
        }
        self.ask_maintenance(now);
        let next = self.service.poll_timeout();
        let clock = self.clock.clone();
        self.timer.set(&clock, ctx, next);
    }

    fn ask_maintenance(&mut self, now: Instant) {
        let Some(pib) = &self.pib_actor else {
            return;
        };
        if !self.pib.needs_maintenance() {
            return;
        }
        // At most one request per 100 ms: the store needs one commit to catch up.
        let recent = self
            .maintenance_asked_at
            .is_some_and(|t| now.saturating_duration_since(t).as_millis() < 100);
        if !recent {
            self.maintenance_asked_at = Some(now);
            pib.do_send(Maintain);
        }
    }

    fn route(&mut self, ev: MpxEvent) {
        match ev {
            MpxEvent::Confirm(c) => {
                if let Some(p) = self.pending.remove(&c.handle)
                    && let Some(to) = p.confirm_to
                {
                    to.do_send(MpxConfirm(MpxDataConfirm {
                        handle: p.caller_handle,
                        ..c
                    }));
                }
            }
            MpxEvent::Indication(ind) => self.route_indication(ind),
        }
    }

    fn route_indication(&mut self, ind: MpxDataIndication) {
        if ind.multiplex_id != MultiplexId::Kmp {
            if !ind
                .security
                .level
                .satisfies(self.cfg.min_upper_layer_security)
            {
                self.counters.rx_insecure_upper_layer += 1;
                tracing::debug!(src = %ind.src_addr, mux = ?ind.multiplex_id, level = ?ind.security.level,
                    "upper-layer frame below the required security level dropped");
                return;
            }
            match self.mux_routes.get(&ind.multiplex_id) {
                Some(to) => {
                    self.counters.rx_indications += 1;
                    to.do_send(MpxIndication(ind));
                }
                None => {
                    self.counters.rx_unrouted_multiplex_id += 1;
                    tracing::debug!(mux = ?ind.multiplex_id, src = %ind.src_addr, "no subscriber for Multiplex ID");
                }
            }
            return;
        }
        let (kmp_id, pdu) = match KmpId::parse_prefix(&ind.upper_layer_frame) {
            Ok(x) => x,
            Err(e) => {
                self.counters.rx_bad_kmp_prefix += 1;
                tracing::debug!(src = %ind.src_addr, error = %e, "KMP frame without a valid KMP ID");
                return;
            }
        };
        let Some(host) = self.kmp_routes.get(&kmp_id) else {
            self.counters.rx_unknown_kmp += 1;
            if self.unknown_kmp_logged.len() < 256 && self.unknown_kmp_logged.insert(kmp_id) {
                tracing::warn!(kmp = %kmp_id, src = %ind.src_addr, "KMP frame for a KMP ID no host serves (logged once per KMP ID)");
            } else {
                tracing::debug!(kmp = %kmp_id, src = %ind.src_addr, "KMP frame for an unserved KMP ID");
            }
            return;
        };
        let own_pan = self.cfg.mpx.pan_id;
        let (src_pan, _) = crate::service::RxFrameInfo {
            src_pan: ind.src_pan,
            src_addr: ind.src_addr,
            dst_pan: ind.dst_pan,
            dst_addr: ind.dst_addr,
            dsn: ind.dsn,
            security: ind.security,
            lqi: ind.lqi,
        }
        .implied_pans(own_pan);
        let peer_pan = src_pan.unwrap_or(own_pan);
        let peer = match ind.src_addr {
            Address::Extended(e) => Some(e),
            a @ Address::Short(_) => self
                .pib
                .device_by_address(peer_pan, a)
                .map(|d| d.ext_address),
            Address::Absent => None,
        };
        let Some(peer) = peer else {
            self.counters.rx_unresolved_peer += 1;
            tracing::debug!(src = %ind.src_addr, kmp = %kmp_id, "KMP frame from a sender whose EUI-64 is unknown");
            return;
        };
        self.counters.rx_kmp_datagrams += 1;
        host.do_send(KmpDatagram {
            kmp_id,
            peer,
            peer_pan,
            pdu: pdu.to_vec(),
            security: ind.security,
            lqi: ind.lqi,
            at: ind.timestamp,
        });
    }

    /// Whether a frame's destination is us (or broadcast), as a radio's address filter sees it.
    fn for_us(&self, f: &Frame<&[u8]>) -> bool {
        let pan_ok = match f.dst_pan_id() {
            Some(p) => p == self.cfg.mpx.pan_id || p == PanId::BROADCAST,
            None => true,
        };
        let addr_ok = match f.dst_addr() {
            Address::Absent => true,
            Address::Extended(e) => e == self.cfg.mpx.extended_address,
            a @ Address::Short(s) => {
                a.is_broadcast() || self.cfg.mpx.short_address.is_some_and(|own| own == s)
            }
        };
        pan_ok && addr_ok
    }

    fn receive(&mut self, msg: RadioRx, ctx: &mut Context<Self>) {
        self.counters.rx_frames += 1;
        let now = self.clock.now();
        if let Some(tap) = &self.tap {
            tap.frame(msg.at, &msg.frame);
        }
        let fcs = self.cfg.mpx.fcs_len;
        let mut buf = msg.frame;
        {
            let f = match Frame::new_checked(&buf[..], fcs) {
                Ok(f) if f.fcs_ok() => f,
                Ok(_) | Err(_) => {
                    self.counters.rx_malformed += 1;
                    tracing::debug!(len = buf.len(), "received frame malformed or FCS wrong");
                    return;
                }
            };
            if f.frame_type() == FrameType::Ack {
                self.counters.rx_acks += 1;
                return;
            }
            if self.cfg.address_filter && !self.for_us(&f) {
                self.counters.rx_not_for_us += 1;
                return;
            }
        }
        if self.security.unprotect(&mut buf, now).is_err() {
            self.counters.rx_security_refused += 1;
            return;
        }
        let Ok(f) = Frame::new_checked(&buf[..], fcs) else {
            self.counters.rx_malformed += 1;
            return;
        };
        let repr = match FrameRepr::parse_with(
            &f,
            ParseOptions {
                check_fcs: false,
                unprotected: true,
            },
        ) {
            Ok(r) => r,
            Err(e) => {
                self.counters.rx_malformed += 1;
                tracing::debug!(error = %e, "received frame does not parse");
                return;
            }
        };
        self.service.receive(now, &repr, msg.lqi);
        self.pump(ctx);
    }
}

impl Actor for MpxActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        use actix::AsyncContext;
        let addr = ctx.address();
        self.radio.attach(MacPort {
            rx: addr.clone().recipient(),
            tx_done: addr.recipient(),
        });
    }
}

impl Handler<Wake> for MpxActor {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        self.timer.fired(now);
        if self.service.poll_timeout().is_some_and(|t| t <= now) {
            self.service.handle_timeout(now);
        }
        self.pump(ctx);
    }
}

impl Handler<RadioRx> for MpxActor {
    type Result = ();
    fn handle(&mut self, msg: RadioRx, ctx: &mut Context<Self>) {
        self.receive(msg, ctx);
    }
}

impl Handler<RadioTxDone> for MpxActor {
    type Result = ();
    fn handle(&mut self, msg: RadioTxDone, ctx: &mut Context<Self>) {
        self.counters.tx_done += 1;
        let now = self.clock.now();
        self.service
            .handle_tx_status(now, TxToken(msg.token), msg.status);
        self.pump(ctx);
    }
}

impl Handler<MpxData> for MpxActor {
    type Result = ();
    fn handle(&mut self, msg: MpxData, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let MpxData {
            mut request,
            confirm_to,
        } = msg;
        let caller_handle = request.handle;
        let internal = self.alloc_handle();
        request.handle = internal;
        let kmp_id = (request.multiplex_id == MultiplexId::Kmp)
            .then(|| {
                KmpId::parse_prefix(&request.upper_layer_frame)
                    .ok()
                    .map(|(k, _)| k)
            })
            .flatten();
        let dst = request.dst_addr;
        match self.service.request(now, request) {
            Ok(()) => {
                self.pending.insert(
                    internal,
                    Pending {
                        caller_handle,
                        confirm_to,
                        dst,
                        kmp_id,
                    },
                );
                self.pump(ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, dst = %dst, "MPX-DATA.request refused");
                if let Some(to) = confirm_to {
                    to.do_send(MpxConfirm(MpxDataConfirm {
                        handle: caller_handle,
                        status: e.status(),
                        timestamp: now,
                    }));
                }
            }
        }
    }
}

impl Handler<MpxPurge> for MpxActor {
    type Result = MessageResult<MpxPurge>;
    fn handle(&mut self, msg: MpxPurge, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let wanted = msg.request.handle;
        let found = self
            .pending
            .iter()
            .find(|(_, p)| {
                p.caller_handle == wanted
                    && match (&msg.caller, &p.confirm_to) {
                        (Some(a), Some(b)) => a == b,
                        (None, _) => true,
                        (Some(_), None) => false,
                    }
            })
            .map(|(h, _)| *h);
        let status = match found {
            Some(internal) => {
                self.service
                    .purge(now, MpxPurgeRequest { handle: internal })
                    .status
            }
            None => MacStatus::InvalidParameter,
        };
        self.pump(ctx);
        MessageResult(MpxPurgeConfirm {
            handle: wanted,
            status,
        })
    }
}

impl Handler<KmpPurge> for MpxActor {
    type Result = MessageResult<KmpPurge>;
    fn handle(&mut self, msg: KmpPurge, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let KmpPurgeRequest { peer, kmp_id } = msg.0;
        let mut victims: Vec<MpxHandle> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                p.dst == Address::Extended(peer)
                    && p.kmp_id.is_some()
                    && kmp_id.is_none_or(|k| p.kmp_id == Some(k))
            })
            .map(|(h, _)| *h)
            .collect();
        victims.sort_unstable();
        let mut purged = 0;
        for h in victims {
            if self
                .service
                .purge(now, MpxPurgeRequest { handle: h })
                .status
                == MacStatus::Success
            {
                purged += 1;
            }
        }
        self.pump(ctx);
        MessageResult(KmpPurgeConfirm {
            peer,
            purged,
            status: KmpStatus::Success,
        })
    }
}

impl Handler<Subscribe> for MpxActor {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.mux_routes.insert(msg.multiplex_id, msg.to);
    }
}

impl Handler<RegisterKmp> for MpxActor {
    type Result = Result<(), KmpId>;
    fn handle(&mut self, msg: RegisterKmp, _: &mut Context<Self>) -> Self::Result {
        if self.kmp_routes.contains_key(&msg.kmp_id) {
            return Err(msg.kmp_id);
        }
        self.kmp_routes.insert(msg.kmp_id, msg.host);
        Ok(())
    }
}

impl Handler<GetMpxStats> for MpxActor {
    type Result = MessageResult<GetMpxStats>;
    fn handle(&mut self, _: GetMpxStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(MpxStats {
            service: self.service.counters().clone(),
            security: self.security.counters().clone(),
            actor: self.counters.clone(),
            pending_requests: self.pending.len(),
        })
    }
}
