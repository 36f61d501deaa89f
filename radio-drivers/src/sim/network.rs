//! The simulated medium as a driver for the actor runtime, on virtual time.
//!
//! A [`SimNetwork`] owns one [`Medium`] and a [`VirtualClock`]. Each node's MPX actor gets a
//! [`SimRadio`] (its [`RadioDriver`]) from [`SimNetwork::add_radio`]. [`SimNetwork::run`]
//! is the simulation's scheduler: it waits until every actor is idle
//! ([`VirtualClock::settled`]), advances virtual time to the earliest event of the medium or
//! of any actor's timer, delivers what happened (receptions, transmit outcomes, timer
//! wake-ups) and repeats. Run it on [`virtual_time_system`](mpx::runtime::virtual_time_system).
//!
//! Like a radio with a hardware address filter, a [`SimRadio`] passes up only frames with a
//! good FCS for its PAN and address (or broadcast) and never acknowledgment frames; the medium itself
//! acknowledges and retries. With a [`FrameTap`] set ([`SimNetwork::set_tap`]) every PPDU on
//! air, acknowledgments included, is copied to it once, as a sniffer next to the network
//! would see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kmp_api::Instant;
use kmp_api::addr::{Address, ExtendedAddress, PanId, ShortAddress};
use mpx::runtime::{FrameTap, MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone, VirtualClock};
use mpx::wire::{FcsLen, Frame, FrameType};

use super::{Medium, MediumConfig, MediumEvent, MediumStats, RadioId};

/// The identity of a simulated radio's MAC, for address filtering and acknowledgments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimAddress {
    /// Its EUI-64.
    pub ext: ExtendedAddress,
    /// Its short address, if it has one.
    pub short: Option<ShortAddress>,
    /// Its PAN.
    pub pan: PanId,
}

/// Counters of the network driver (the medium has its own, [`MediumStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimNetworkStats {
    /// Receptions passed up to a MAC.
    pub delivered: u64,
    /// Receptions dropped by the address filter (another PAN or address, or an ack).
    pub filtered: u64,
    /// Receptions that did not parse as 802.15.4 or whose FCS was wrong (dropped, as a radio
    /// drops them in hardware).
    pub malformed: u64,
    /// Transmissions refused because the driver had no MAC attached to answer.
    pub unattached: u64,
    /// Scheduler steps (virtual-time advances).
    pub steps: u64,
}

#[derive(Debug)]
struct Node {
    addr: SimAddress,
    port: Option<MacPort>,
}

struct Core {
    medium: Medium,
    nodes: Vec<Node>,
    by_ext: HashMap<ExtendedAddress, RadioId>,
    by_short: HashMap<(PanId, ShortAddress), RadioId>,
    tap: Option<Arc<dyn FrameTap>>,
    /// Medium token → the MAC's token of the same transmission.
    tokens: HashMap<u64, u64>,
    stats: SimNetworkStats,
}

impl Core {
    fn wants(&self, to: RadioId, frame: &[u8]) -> Result<bool, ()> {
        let f = Frame::new_checked(frame, FcsLen::Two).map_err(|_| ())?;
        if !f.fcs_ok() {
            return Err(());
        }
        if f.frame_type() == FrameType::Ack {
            return Ok(false);
        }
        let me = self.nodes[to.index()].addr;
        let pan_ok = f
            .dst_pan_id()
            .is_none_or(|p| p == me.pan || p == PanId::BROADCAST);
        let addr_ok = match f.dst_addr() {
            Address::Absent => true,
            Address::Extended(e) => e == me.ext,
            a @ Address::Short(s) => a.is_broadcast() || me.short == Some(s),
        };
        Ok(pan_ok && addr_ok)
    }

    /// Delivers the medium's pending events; returns how many went to actors.
    fn dispatch(&mut self) -> usize {
        let mut sent = 0;
        while let Some(ev) = self.medium.poll_event() {
            match ev {
                MediumEvent::Rx {
                    to, frame, at, lqi, ..
                } => match self.wants(to, &frame) {
                    Ok(true) => {
                        if let Some(port) = &self.nodes[to.index()].port {
                            self.stats.delivered += 1;
                            port.rx.do_send(RadioRx { frame, lqi, at });
                            sent += 1;
                        }
                    }
                    Ok(false) => self.stats.filtered += 1,
                    Err(()) => {
                        self.stats.malformed += 1;
                        tracing::debug!(radio = to.index(), "simulated reception does not parse");
                    }
                },
                MediumEvent::TxDone {
                    from,
                    token,
                    status,
                    at,
                } => {
                    let Some(mac_token) = self.tokens.remove(&token.0) else {
                        continue;
                    };
                    if let Some(port) = &self.nodes[from.index()].port {
                        port.tx_done.do_send(RadioTxDone {
                            token: mac_token,
                            status,
                            at,
                        });
                        sent += 1;
                    }
                }
                MediumEvent::OnAir { frame, start, .. } => {
                    if let Some(tap) = &self.tap {
                        tap.frame(start, &frame);
                    }
                }
            }
        }
        sent
    }
}

/// A shared simulated network; see the [module docs](self). Cloning gives another handle.
#[derive(Clone)]
pub struct SimNetwork {
    core: Arc<Mutex<Core>>,
    clock: VirtualClock,
}

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNetwork")
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl SimNetwork {
    /// A network over a new medium, on `clock`.
    pub fn new(cfg: MediumConfig, clock: VirtualClock) -> SimNetwork {
        SimNetwork {
            core: Arc::new(Mutex::new(Core {
                medium: Medium::new(cfg),
                nodes: Vec::new(),
                by_ext: HashMap::new(),
                by_short: HashMap::new(),
                tap: None,
                tokens: HashMap::new(),
                stats: SimNetworkStats::default(),
            })),
            clock,
        }
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The virtual clock the network advances.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Places a radio at `pos` (metres) for the MAC `addr`; returns its driver.
    pub fn add_radio(&self, pos: (f64, f64), addr: SimAddress) -> SimRadio {
        let mut core = self.core();
        let id = core.medium.add_radio(pos);
        core.nodes.push(Node { addr, port: None });
        core.by_ext.insert(addr.ext, id);
        if let Some(s) = addr.short {
            core.by_short.insert((addr.pan, s), id);
        }
        SimRadio {
            net: self.clone(),
            id,
        }
    }

    /// Copies every PPDU on air to `tap` (turns the medium's capture on).
    pub fn set_tap(&self, tap: Arc<dyn FrameTap>) {
        let mut core = self.core();
        core.medium.set_capture(true);
        core.tap = Some(tap);
    }

    /// Overrides the loss probability of the directed link `from` → `to`.
    pub fn set_link_loss(
        &self,
        from: RadioId,
        to: RadioId,
        p: f64,
    ) -> Result<(), super::MediumError> {
        self.core().medium.set_link_loss(from, to, p)
    }

    /// The medium's counters.
    pub fn medium_stats(&self) -> MediumStats {
        self.core().medium.stats()
    }

    /// The driver's counters.
    pub fn stats(&self) -> SimNetworkStats {
        self.core().stats
    }

    /// Runs the scheduler until `until` completes (e.g. "every node joined"), or until
    /// nothing at all is left to happen, or virtual time passes `deadline`. Returns the virtual
    /// time reached.
    pub async fn run<F>(&self, until: F, deadline: Instant) -> Instant
    where
        F: Fn() -> bool,
    {
        loop {
            self.clock.settled().await;
            if until() {
                break;
            }
            let next = {
                let mut core = self.core();
                if core.dispatch() > 0 {
                    continue;
                }
                let medium_next = core.medium.poll_timeout();
                match (medium_next, self.clock.next_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            let Some(t) = next else {
                // Nothing scheduled: the simulation is over unless `until` has more to wait
                // for, which no one could now cause.
                break;
            };
            if t > deadline {
                self.clock.advance_to(deadline);
                break;
            }
            self.clock.advance_to(t);
            {
                let mut core = self.core();
                core.stats.steps += 1;
                core.medium.handle_timeout(t);
                core.dispatch();
            }
            self.clock.fire_due();
        }
        self.clock.now()
    }
}

/// One simulated radio: the [`RadioDriver`] of one node's MPX actor.
#[derive(Debug, Clone)]
pub struct SimRadio {
    net: SimNetwork,
    id: RadioId,
}

impl SimRadio {
    /// Its id on the medium.
    pub fn id(&self) -> RadioId {
        self.id
    }
}

impl RadioDriver for SimRadio {
    fn attach(&mut self, port: MacPort) {
        self.net.core().nodes[self.id.index()].port = Some(port);
    }

    fn transmit(&mut self, tx: RadioTx) {
        let now = self.net.clock.now();
        let mut core = self.net.core();
        let dst = match tx.dst {
            Address::Extended(e) => core.by_ext.get(&e).copied(),
            a @ Address::Short(s) if !a.is_broadcast() => {
                let pan = tx.dst_pan.unwrap_or(core.nodes[self.id.index()].addr.pan);
                core.by_short.get(&(pan, s)).copied()
            }
            _ => None,
        };
        // A unicast to an address no radio has goes on air once and succeeds without an ack
        // (the medium only waits for acks from a radio it knows).
        let res = core
            .medium
            .transmit(now, self.id, tx.frame, tx.ack_request, dst)
            .map(|t| {
                core.tokens.insert(t.0, tx.token);
            });
        drop(core);
        match res {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "simulated transmit refused");
                self.net.core().stats.unattached += 1;
            }
        }
        self.net.clock.poke();
    }
}
