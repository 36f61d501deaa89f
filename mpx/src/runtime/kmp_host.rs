//! The KMP host: runs every session of one KMP ID on one interface.
//!
//! - **Initiators** are created by KMP-CREATE.request ([`KmpCreate`]); KMP-CREATE.confirm
//!   reports whether the session was created and its first message sent (the MAC status of
//!   that message's MPX-DATA.confirm).
//! - **Responders** are created by the first PDU from a peer without a session
//!   (KMP-CREATE.indication to the application, which may refuse with [`KmpAccept`]).
//! - The host drives the sessions' timers, sends their PDUs as MPX-DATA.requests (Multiplex
//!   ID 1, KMP ID prefix), hands their keys to the [`PibActor`] and reports
//!   KMP-FINISHED **only after the PIB confirmed the keys durable**. A session's later actions
//!   wait while its install is under way, so their order is kept.
//! - KMP-DELETE ([`KmpDelete`]) tears a session down and removes the keys its KMP installed
//!   for the peer, also after the session itself has ended.
//!
//! # Bounds
//!
//! The session table holds at most [`KmpHostConfig::max_sessions`] sessions, of which at most
//! [`KmpHostConfig::max_responder_sessions`] may be responders that have not finished. A first
//! PDU beyond that is dropped, counted and logged, so a flood of first messages (from forged
//! addresses) costs a bounded amount of memory and cannot push out sessions that are running;
//! the factory also sees the number of open responder sessions
//! ([`SessionContext::open_responder_sessions`]) to switch on its own anti-clogging defence
//! (Dragonfly's tokens) long before the bound.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
    WrapFuture,
};
use kmp_api::addr::{Address, AddressingMode, PanId};
use kmp_api::primitives::{
    KmpCreateConfirm, KmpCreateIndication, KmpCreateRequest, KmpCreateResponse, KmpDeleteConfirm,
    KmpDeleteIndication, KmpDeleteRequest, KmpFinishedIndication, KmpHandle, KmpStatus, MacStatus,
    MpxDataRequest, MpxHandle,
};
use kmp_api::rng::RngHandle;
use kmp_api::security::SecurityParams;
use kmp_api::session::{
    Action, FailureReason, KeyRemoval, KeySelector, KmpFactory, KmpSession, Outcome, Role,
    SessionContext,
};
use kmp_api::{ExtendedAddress, Instant, KmpId, MultiplexId};

use super::clock::{Clock, TimerSlot, Wake};
use super::mpx_actor::{KmpDatagram, MpxActor, MpxConfirm, MpxData, RegisterKmp};
use super::pib_actor::{InstallKeys, PibActor, RemoveKeys};
use crate::pib::{InstallReceipt, PibError};

/// Responder handles come from here, above every handle an application may choose, so that
/// they are unique across all hosts of a process.
static NEXT_RESPONDER_HANDLE: AtomicU32 = AtomicU32::new(RESPONDER_HANDLE_BASE);

/// Handles at or above this value are assigned by the runtime (responders); applications
/// choose initiator handles below it.
pub const RESPONDER_HANDLE_BASE: u32 = 0x8000_0000;

fn next_responder_handle() -> KmpHandle {
    let h = NEXT_RESPONDER_HANDLE.fetch_add(1, Ordering::Relaxed);
    KmpHandle(h.max(RESPONDER_HANDLE_BASE))
}

/// KMP-CREATE.request. KMP-CREATE.confirm follows as [`KmpEvent::CreateConfirm`].
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct KmpCreate(pub KmpCreateRequest);

/// KMP-CREATE.response: accept (the default) or refuse an indicated responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct KmpAccept(pub KmpCreateResponse);

/// KMP-DELETE.request; replies with KMP-DELETE.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "KmpDeleteConfirm")]
pub struct KmpDelete(pub KmpDeleteRequest);

/// What a host tells the application.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum KmpEvent {
    /// KMP-CREATE.confirm.
    CreateConfirm(KmpCreateConfirm),
    /// KMP-CREATE.indication.
    CreateIndication(KmpCreateIndication),
    /// KMP-FINISHED.indication (on success the keys are durable in the PIB).
    Finished(KmpFinishedIndication),
    /// KMP-DELETE.indication: the runtime deleted an instance (refused, or closed without
    /// an outcome).
    DeleteIndication(KmpDeleteIndication),
}

/// Asks for a host's counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "HostStats")]
pub struct GetHostStats;

/// A host's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Sessions in the table.
    pub sessions: usize,
    /// Responder sessions that have not finished.
    pub open_responders: usize,
    /// Counters.
    pub counters: HostCounters,
}

/// What a host counts. They only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Initiator sessions created.
    pub initiators_created: u64,
    /// Responder sessions created.
    pub responders_created: u64,
    /// KMP-CREATE.requests refused (duplicate, table full, bad handle, factory).
    pub create_refused: u64,
    /// Datagrams received.
    pub rx_datagrams: u64,
    /// Datagrams a session rejected (malformed, unexpected, failed verification).
    pub rx_session_errors: u64,
    /// First PDUs dropped because the session table was full.
    pub rx_table_full: u64,
    /// First PDUs the factory refused.
    pub rx_factory_refused: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Octets of the upper-layer frames sent (KMP ID prefix plus PDU).
    pub tx_upper_layer_octets: u64,
    /// Datagrams whose MPX-DATA.confirm was not `Success`.
    pub tx_failures: u64,
    /// Key installs confirmed durable.
    pub installs: u64,
    /// Key installs the PIB refused (the session then fails).
    pub install_failures: u64,
    /// Sessions finished with success.
    pub finished_success: u64,
    /// Sessions finished with failure.
    pub finished_failure: u64,
    /// Instances deleted (KMP-DELETE or refused).
    pub deleted: u64,
}

/// Configuration of a [`KmpHost`].
#[derive(Debug, Clone)]
pub struct KmpHostConfig {
    /// Our EUI-64.
    pub local: ExtendedAddress,
    /// At most this many sessions at once. Default 1024.
    pub max_sessions: usize,
    /// At most this many unfinished responder sessions. Default 512.
    pub max_responder_sessions: usize,
    /// Responders run without waiting for KMP-CREATE.response (which can still refuse them).
    /// Default on.
    pub auto_accept: bool,
    /// Protection of the KMP's own frames. Default none (the KMP establishes the keys).
    pub security: SecurityParams,
    /// Request MAC acknowledgments for KMP frames. Default on.
    pub ack_tx: bool,
}

impl KmpHostConfig {
    /// Defaults for a host at `local`.
    pub fn new(local: ExtendedAddress) -> KmpHostConfig {
        KmpHostConfig {
            local,
            max_sessions: 1024,
            max_responder_sessions: 512,
            auto_accept: true,
            security: SecurityParams::NONE,
            ack_tx: true,
        }
    }
}

struct Entry {
    session: Box<dyn KmpSession>,
    handle: KmpHandle,
    role: Role,
    peer_pan: PanId,
    generation: u64,
    /// KMP-CREATE.confirm waits for the first message's MPX-DATA.confirm.
    create_confirm_pending: bool,
    /// A key install is under way: later actions wait in `backlog`.
    blocked: bool,
    backlog: VecDeque<Action>,
    deadline: Option<Instant>,
    finished: bool,
}

#[derive(Debug, Clone, Copy)]
struct TxInfo {
    peer: ExtendedAddress,
    generation: u64,
}

/// Runs the sessions of one KMP; see the [module docs](self).
pub struct KmpHost {
    cfg: KmpHostConfig,
    kmp_id: KmpId,
    clock: Clock,
    factory: Arc<dyn KmpFactory>,
    rng: RngHandle,
    mpx: Addr<MpxActor>,
    pib: Addr<PibActor>,
    app: Option<Recipient<KmpEvent>>,
    sessions: HashMap<ExtendedAddress, Entry>,
    by_handle: HashMap<KmpHandle, ExtendedAddress>,
    /// Instances that finished with success, by peer: KMP-DELETE still removes their keys.
    established: HashMap<ExtendedAddress, KmpHandle>,
    deadlines: BTreeSet<(Instant, ExtendedAddress)>,
    tx: HashMap<MpxHandle, TxInfo>,
    next_mpx_handle: u32,
    next_generation: u64,
    timer: TimerSlot,
    counters: HostCounters,
    tx_observer: Option<TxObserver>,
}

/// Called with the length of every upper-layer frame (KMP ID prefix + PDU) a host sends, e.g.
/// to compute a framing floor for a benchmark.
pub type TxObserver = Arc<dyn Fn(usize) + Send + Sync>;

impl std::fmt::Debug for KmpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmpHost")
            .field("kmp_id", &self.kmp_id)
            .field("sessions", &self.sessions.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl KmpHost {
    /// A host for `factory`'s KMP. It registers itself with `mpx` when started.
    pub fn new(
        cfg: KmpHostConfig,
        clock: Clock,
        factory: Arc<dyn KmpFactory>,
        rng: RngHandle,
        mpx: Addr<MpxActor>,
        pib: Addr<PibActor>,
    ) -> KmpHost {
        KmpHost {
            kmp_id: factory.kmp_id(),
            cfg,
            clock,
            factory,
            rng,
            mpx,
            pib,
            app: None,
            sessions: HashMap::new(),
            by_handle: HashMap::new(),
            established: HashMap::new(),
            deadlines: BTreeSet::new(),
            tx: HashMap::new(),
            next_mpx_handle: 1,
            next_generation: 1,
            timer: TimerSlot::new(),
            counters: HostCounters::default(),
            tx_observer: None,
        }
    }

    /// Reports the length of every upper-layer frame sent to `observer`.
    pub fn with_tx_observer(mut self, observer: TxObserver) -> KmpHost {
        self.tx_observer = Some(observer);
        self
    }

    /// Sends KMP-CREATE.confirm/indication, KMP-FINISHED and KMP-DELETE.indication to `app`.
    pub fn with_app(mut self, app: Recipient<KmpEvent>) -> KmpHost {
        self.app = Some(app);
        self
    }

    fn tell(&self, ev: KmpEvent) {
        if let Some(app) = &self.app {
            app.do_send(ev);
        }
    }

    fn open_responders(&self) -> usize {
        self.sessions
            .values()
            .filter(|e| e.role == Role::Responder && !e.finished)
            .count()
    }

    fn insert(
        &mut self,
        peer: ExtendedAddress,
        session: Box<dyn KmpSession>,
        handle: KmpHandle,
        role: Role,
        peer_pan: PanId,
    ) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.by_handle.insert(handle, peer);
        self.sessions.insert(
            peer,
            Entry {
                session,
                handle,
                role,
                peer_pan,
                generation,
                create_confirm_pending: role == Role::Initiator,
                blocked: false,
                backlog: VecDeque::new(),
                deadline: None,
                finished: false,
            },
        );
    }

    fn remove(&mut self, peer: ExtendedAddress) -> Option<Entry> {
        let e = self.sessions.remove(&peer)?;
        if let Some(d) = e.deadline {
            self.deadlines.remove(&(d, peer));
        }
        self.by_handle.remove(&e.handle);
        Some(e)
    }

    fn send_pdu(&mut self, peer: ExtendedAddress, pdu: Vec<u8>, ctx: &mut Context<Self>) {
        let Some(e) = self.sessions.get(&peer) else {
            return;
        };
        let prefix = self.kmp_id.prefix_len();
        let mut frame = vec![0u8; prefix + pdu.len()];
        if self.kmp_id.emit_prefix(&mut frame).is_none() {
            tracing::error!(kmp = %self.kmp_id, "KMP ID prefix does not fit");
            return;
        }
        frame[prefix..].copy_from_slice(&pdu);
        let handle = MpxHandle(self.next_mpx_handle);
        self.next_mpx_handle = self.next_mpx_handle.wrapping_add(1);
        self.tx.insert(
            handle,
            TxInfo {
                peer,
                generation: e.generation,
            },
        );
        self.counters.tx_datagrams += 1;
        self.counters.tx_upper_layer_octets += frame.len() as u64;
        if let Some(obs) = &self.tx_observer {
            obs(frame.len());
        }
        self.mpx.do_send(MpxData {
            request: MpxDataRequest {
                src_addr_mode: AddressingMode::Extended,
                dst_pan: e.peer_pan,
                dst_addr: Address::Extended(peer),
                multiplex_id: MultiplexId::Kmp,
                upper_layer_frame: frame,
                handle,
                ack_tx: self.cfg.ack_tx,
                seq_num_suppressed: false,
                pan_id_suppressed: true,
                security: self.cfg.security,
            },
            confirm_to: Some(ctx.address().recipient()),
        });
    }

    /// Runs a session's actions in order until it has none or waits for a key install, then
    /// files its deadline or removes it if it closed.
    fn drive(&mut self, peer: ExtendedAddress, ctx: &mut Context<Self>) {
        loop {
            let Some(e) = self.sessions.get_mut(&peer) else {
                return;
            };
            if e.blocked {
                break;
            }
            let Some(action) = e.backlog.pop_front().or_else(|| e.session.poll_action()) else {
                break;
            };
            match action {
                Action::Send(pdu) => self.send_pdu(peer, pdu, ctx),
                Action::InstallKeys(install) => {
                    e.blocked = true;
                    let generation = e.generation;
                    let fut = self.pib.send(InstallKeys(install));
                    ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
                        let res = res.unwrap_or_else(|_| {
                            Err(PibError::Invalid("the PIB actor is gone".into()))
                        });
                        act.installed(peer, generation, res, ctx);
                    }));
                    break;
                }
                Action::RemoveKeys(removal) => {
                    self.pib.do_send(RemoveKeys(removal));
                }
                Action::Finished(outcome) => self.finished(peer, outcome),
            }
        }
        self.settle(peer);
        self.rearm(ctx);
    }

    fn finished(&mut self, peer: ExtendedAddress, outcome: Outcome) {
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        e.finished = true;
        let handle = e.handle;
        match &outcome {
            Outcome::Success(_) => {
                self.counters.finished_success += 1;
                self.established.insert(peer, handle);
                tracing::info!(kmp = %self.kmp_id, %peer, handle = handle.0, "KMP finished: keys established");
            }
            Outcome::Failure(reason) => {
                self.counters.finished_failure += 1;
                tracing::info!(kmp = %self.kmp_id, %peer, handle = handle.0, %reason, "KMP finished: failure");
            }
        }
        self.tell(KmpEvent::Finished(KmpFinishedIndication {
            handle,
            kmp_id: self.kmp_id,
            peer,
            outcome,
        }));
    }

    /// Files the session's next deadline, or drops it if it closed.
    fn settle(&mut self, peer: ExtendedAddress) {
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        if let Some(d) = e.deadline.take() {
            self.deadlines.remove(&(d, peer));
        }
        if e.session.is_closed() && !e.blocked && e.backlog.is_empty() {
            let finished = e.finished;
            let handle = e.handle;
            self.remove(peer);
            if !finished {
                self.counters.deleted += 1;
                self.tell(KmpEvent::DeleteIndication(KmpDeleteIndication {
                    handle,
                    reason: FailureReason::Deleted,
                }));
            }
            return;
        }
        if let Some(d) = e.session.poll_timeout() {
            e.deadline = Some(d);
            self.deadlines.insert((d, peer));
        }
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.deadlines.iter().next().map(|(t, _)| *t);
        let clock = self.clock.clone();
        self.timer.set(&clock, ctx, next);
    }

    fn installed(
        &mut self,
        peer: ExtendedAddress,
        generation: u64,
        res: Result<InstallReceipt, PibError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        if e.generation != generation {
            return;
        }
        e.blocked = false;
        match res {
            Ok(r) => {
                self.counters.installs += 1;
                tracing::debug!(kmp = %self.kmp_id, %peer, keys = r.key_refs.len(), "keys durable");
                self.drive(peer, ctx);
            }
            Err(err) => {
                self.counters.install_failures += 1;
                tracing::error!(kmp = %self.kmp_id, %peer, error = %err, "key install failed: the session fails");
                // Nothing the session queued after the install may run: it would report keys
                // that are not there.
                e.backlog.clear();
                while e.session.poll_action().is_some() {}
                e.session.delete(self.clock.now());
                while e.session.poll_action().is_some() {}
                self.finished(
                    peer,
                    Outcome::Failure(FailureReason::Internal(format!(
                        "key install failed: {err}"
                    ))),
                );
                self.remove(peer);
                self.rearm(ctx);
            }
        }
    }

    fn create(&mut self, req: KmpCreateRequest, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let refuse = |host: &mut KmpHost, status: KmpStatus| {
            host.counters.create_refused += 1;
            tracing::debug!(kmp = %host.kmp_id, peer = %req.peer, ?status, "KMP-CREATE.request refused");
            host.tell(KmpEvent::CreateConfirm(KmpCreateConfirm {
                handle: req.handle,
                status,
            }));
        };
        if req.kmp_id != self.kmp_id {
            return refuse(self, KmpStatus::UnsupportedKmp);
        }
        if req.handle.0 >= RESPONDER_HANDLE_BASE || self.by_handle.contains_key(&req.handle) {
            return refuse(self, KmpStatus::InvalidHandle);
        }
        if self.sessions.contains_key(&req.peer) {
            return refuse(self, KmpStatus::Duplicate);
        }
        if self.sessions.len() >= self.cfg.max_sessions {
            return refuse(self, KmpStatus::NoResources);
        }
        let sctx = SessionContext {
            local: self.cfg.local,
            peer: req.peer,
            role: Role::Initiator,
            rng: self.rng.clone(),
            now,
            open_responder_sessions: self.open_responders(),
        };
        let mut session = match self.factory.new_initiator(sctx) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(kmp = %self.kmp_id, peer = %req.peer, error = %e, "KMP refused to create an initiator");
                return refuse(self, KmpStatus::Refused);
            }
        };
        if let Err(e) = session.start(now) {
            tracing::warn!(kmp = %self.kmp_id, peer = %req.peer, error = %e, "initiator failed to start");
            return refuse(self, KmpStatus::Refused);
        }
        self.counters.initiators_created += 1;
        self.insert(req.peer, session, req.handle, Role::Initiator, req.peer_pan);
        self.drive(req.peer, ctx);
        // A session that sent nothing at start is confirmed at once.
        let sent_nothing = !self.tx.values().any(|t| t.peer == req.peer);
        if let Some(e) = self.sessions.get_mut(&req.peer)
            && e.create_confirm_pending
            && sent_nothing
        {
            e.create_confirm_pending = false;
            let handle = e.handle;
            self.tell(KmpEvent::CreateConfirm(KmpCreateConfirm {
                handle,
                status: KmpStatus::Success,
            }));
        }
    }

    fn datagram(&mut self, d: KmpDatagram, ctx: &mut Context<Self>) {
        self.counters.rx_datagrams += 1;
        let now = self.clock.now();
        let peer = d.peer;
        if !self.sessions.contains_key(&peer) {
            if self.sessions.len() >= self.cfg.max_sessions
                || self.open_responders() >= self.cfg.max_responder_sessions
            {
                self.counters.rx_table_full += 1;
                tracing::debug!(kmp = %self.kmp_id, %peer, "session table full: first PDU dropped");
                return;
            }
            let sctx = SessionContext {
                local: self.cfg.local,
                peer,
                role: Role::Responder,
                rng: self.rng.clone(),
                now,
                open_responder_sessions: self.open_responders(),
            };
            let session = match self.factory.new_responder(sctx, &d.pdu) {
                Ok(s) => s,
                Err(e) => {
                    self.counters.rx_factory_refused += 1;
                    tracing::debug!(kmp = %self.kmp_id, %peer, error = %e, "first PDU refused");
                    return;
                }
            };
            let handle = next_responder_handle();
            self.counters.responders_created += 1;
            self.insert(peer, session, handle, Role::Responder, d.peer_pan);
            self.tell(KmpEvent::CreateIndication(KmpCreateIndication {
                kmp_id: self.kmp_id,
                peer,
                handle,
            }));
        }
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        if let Err(err) = e.session.handle_datagram(now, &d.pdu) {
            self.counters.rx_session_errors += 1;
            tracing::debug!(kmp = %self.kmp_id, %peer, error = %err, kind = err.kind(), "PDU rejected by the session");
        }
        self.drive(peer, ctx);
    }
}

impl Actor for KmpHost {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let reg = RegisterKmp {
            kmp_id: self.kmp_id,
            host: ctx.address().recipient(),
        };
        ctx.wait(self.mpx.send(reg).into_actor(self).map(|res, act, ctx| {
            use actix::ActorContext;
            match res {
                Ok(Ok(())) => tracing::debug!(kmp = %act.kmp_id, "KMP host registered"),
                Ok(Err(id)) => {
                    tracing::error!(kmp = %id, "another host serves this KMP ID: host stopped");
                    ctx.stop();
                }
                Err(_) => {
                    tracing::error!(kmp = %act.kmp_id, "MPX actor gone: host stopped");
                    ctx.stop();
                }
            }
        }));
    }
}

impl Handler<Wake> for KmpHost {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        self.timer.fired(now);
        while let Some(&(t, peer)) = self.deadlines.iter().next() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, peer));
            if let Some(e) = self.sessions.get_mut(&peer) {
                e.deadline = None;
                e.session.handle_timeout(now);
            }
            self.drive(peer, ctx);
        }
        self.rearm(ctx);
    }
}

impl Handler<KmpDatagram> for KmpHost {
    type Result = ();
    fn handle(&mut self, msg: KmpDatagram, ctx: &mut Context<Self>) {
        self.datagram(msg, ctx);
    }
}

impl Handler<MpxConfirm> for KmpHost {
    type Result = ();
    fn handle(&mut self, msg: MpxConfirm, ctx: &mut Context<Self>) {
        let c = msg.0;
        let Some(info) = self.tx.remove(&c.handle) else {
            return;
        };
        let Some(e) = self.sessions.get_mut(&info.peer) else {
            return;
        };
        if e.generation != info.generation {
            return;
        }
        if e.create_confirm_pending {
            e.create_confirm_pending = false;
            let status = if c.status == MacStatus::Success {
                KmpStatus::Success
            } else {
                KmpStatus::TxFailure(c.status)
            };
            let handle = e.handle;
            self.tell(KmpEvent::CreateConfirm(KmpCreateConfirm { handle, status }));
        }
        let Some(e) = self.sessions.get_mut(&info.peer) else {
            return;
        };
        match c.status {
            MacStatus::Success | MacStatus::Purged => {}
            status => {
                self.counters.tx_failures += 1;
                tracing::debug!(kmp = %self.kmp_id, peer = %info.peer, ?status, "KMP datagram not delivered");
                e.session.handle_link_failure(c.timestamp, status);
                self.drive(info.peer, ctx);
            }
        }
    }
}

impl Handler<KmpCreate> for KmpHost {
    type Result = ();
    fn handle(&mut self, msg: KmpCreate, ctx: &mut Context<Self>) {
        self.create(msg.0, ctx);
    }
}

impl Handler<KmpAccept> for KmpHost {
    type Result = ();
    fn handle(&mut self, msg: KmpAccept, ctx: &mut Context<Self>) {
        if msg.0.accept {
            return;
        }
        let Some(&peer) = self.by_handle.get(&msg.0.handle) else {
            return;
        };
        let now = self.clock.now();
        if let Some(e) = self.sessions.get_mut(&peer) {
            e.session.delete(now);
            while e.session.poll_action().is_some() {}
        }
        self.remove(peer);
        self.counters.deleted += 1;
        self.tell(KmpEvent::DeleteIndication(KmpDeleteIndication {
            handle: msg.0.handle,
            reason: FailureReason::Deleted,
        }));
        self.rearm(ctx);
    }
}

impl Handler<KmpDelete> for KmpHost {
    type Result = MessageResult<KmpDelete>;
    fn handle(&mut self, msg: KmpDelete, ctx: &mut Context<Self>) -> Self::Result {
        let handle = msg.0.handle;
        let now = self.clock.now();
        let peer = match self.by_handle.get(&handle) {
            Some(&p) => Some(p),
            None => self
                .established
                .iter()
                .find(|(_, h)| **h == handle)
                .map(|(p, _)| *p),
        };
        let Some(peer) = peer else {
            return MessageResult(KmpDeleteConfirm {
                handle,
                status: KmpStatus::InvalidHandle,
            });
        };
        if let Some(e) = self.sessions.get_mut(&peer) {
            e.session.delete(now);
            // Whatever the session still sends (a delete notification) goes out; its own key
            // removals run; a late outcome is not reported for a deleted instance.
            let mut actions: Vec<Action> = e.backlog.drain(..).collect();
            while let Some(a) = e.session.poll_action() {
                actions.push(a);
            }
            for a in actions {
                match a {
                    Action::Send(pdu) => self.send_pdu(peer, pdu, ctx),
                    Action::RemoveKeys(r) => self.pib.do_send(RemoveKeys(r)),
                    Action::InstallKeys(_) | Action::Finished(_) => {}
                }
            }
            self.remove(peer);
        }
        self.established.remove(&peer);
        self.pib.do_send(RemoveKeys(KeyRemoval {
            owner: self.kmp_id,
            peer,
            which: KeySelector::All,
        }));
        self.counters.deleted += 1;
        self.rearm(ctx);
        MessageResult(KmpDeleteConfirm {
            handle,
            status: KmpStatus::Success,
        })
    }
}

impl Handler<GetHostStats> for KmpHost {
    type Result = MessageResult<GetHostStats>;
    fn handle(&mut self, _: GetHostStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(HostStats {
            sessions: self.sessions.len(),
            open_responders: self.open_responders(),
            counters: self.counters.clone(),
        })
    }
}
