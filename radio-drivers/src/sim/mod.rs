//! A deterministic, sans-IO simulated IEEE 802.15.4 medium (O-QPSK, 2450 MHz).
//!
//! [`Medium`] models one channel shared by many radios placed on a plane:
//!
//! - **Topology**: a radio hears another when their distance is at most
//!   [`MediumConfig::range_m`]; radios further apart cannot hear each other, so multi-hop and
//!   hidden terminals arise from positions alone.
//! - **Air time**: every PPDU takes (6 + PSDU octets) × 32 µs ([`phy::air_time`]).
//! - **Unslotted CSMA-CA** (802.15.4-2015 §6.2.5.1): random backoff of 0..2^BE − 1 unit
//!   periods, an 8-symbol CCA, aTurnaroundTime, then the frame; a busy CCA raises NB and BE
//!   and after macMaxCSMABackoffs the transmission fails with
//!   [`MacStatus::ChannelAccessFailure`].
//! - **Acknowledgment** (§6.7.4): a frame with the AR bit requested and a destination radio is
//!   answered, aTurnaroundTime after its last octet, by a 5-octet Imm-Ack on air (which can
//!   collide and be lost like any frame). The sender waits macAckWaitDuration and retries up
//!   to macMaxFrameRetries times (each retry with a fresh CSMA-CA) before
//!   [`MacStatus::NoAck`].
//! - **Collisions**: a receiver loses every frame that overlaps in time with another
//!   transmission it can hear, or with its own transmission (half-duplex).
//! - **Loss**: each successful reception is then dropped with the link's loss probability
//!   (a global default, overridable per directed link).
//!
//! Every random choice comes from one generator seeded by [`MediumConfig::seed`], and time is
//! virtual: the caller passes `now` and asks [`Medium::poll_timeout`] when to call again, so
//! a run repeats exactly and a thousand radios do not wait for simulated air time. The medium
//! delivers every decoded frame to every radio in range (a PHY does not filter addresses);
//! address filtering is the MAC's business above it.
//!
//! Driving loop:
//!
//! ```
//! use kmp_api::Instant;
//! use radio_drivers::sim::{Medium, MediumConfig, MediumEvent};
//!
//! let mut m = Medium::new(MediumConfig { seed: 7, ..MediumConfig::default() });
//! let a = m.add_radio((0.0, 0.0));
//! let b = m.add_radio((10.0, 0.0));
//! m.transmit(Instant::ZERO, a, vec![0x41, 0x88, 0x01, 0, 0], false, None).unwrap();
//! while let Some(t) = m.poll_timeout() {
//!     m.handle_timeout(t);
//! }
//! let mut got = Vec::new();
//! while let Some(ev) = m.poll_event() {
//!     if let MediumEvent::Rx { to, .. } = ev {
//!         got.push(to);
//!     }
//! }
//! assert_eq!(got, vec![b]);
//! ```

pub mod network;
pub mod phy;
mod rng;

pub use network::{SimAddress, SimNetwork, SimNetworkStats, SimRadio};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use kmp_api::primitives::MacStatus;
use kmp_api::{Duration, Instant};

use self::phy::{
    ACK_WAIT_US, CCA_US, IMM_ACK_OCTETS, MAX_BE, MAX_CSMA_BACKOFFS, MAX_FRAME_RETRIES,
    MAX_PSDU_OCTETS, MIN_BE, TURNAROUND_US, UNIT_BACKOFF_US, air_time,
};
use self::rng::SimRng;

/// Finished transmissions are kept this long for overlap checks: longer than any PPDU
/// (4256 µs) plus a CCA window.
const AIR_HISTORY_US: u64 = 10_000;

/// Configuration of a [`Medium`].
#[derive(Debug, Clone, PartialEq)]
pub struct MediumConfig {
    /// Seed of the medium's generator (backoffs, loss): the same seed, radios and calls give
    /// the same event sequence.
    pub seed: u64,
    /// Radio range in metres: radios at most this far apart hear each other.
    pub range_m: f64,
    /// Probability in `[0, 1]` that a reception which did not collide is lost anyway, for
    /// links without an override ([`Medium::set_link_loss`]).
    pub loss: f64,
}

impl Default for MediumConfig {
    /// Seed 0, 30 m range, no random loss.
    fn default() -> Self {
        MediumConfig {
            seed: 0,
            range_m: 30.0,
            loss: 0.0,
        }
    }
}

/// A radio attached to a [`Medium`], numbered from 0 in the order of [`Medium::add_radio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RadioId(usize);

impl RadioId {
    /// The radio's index (0 for the first radio added).
    pub const fn index(self) -> usize {
        self.0
    }
}

/// Identifies one [`Medium::transmit`] call in its [`MediumEvent::TxDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxToken(pub u64);

/// What the medium reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediumEvent {
    /// Radio `to` decoded `frame` (the whole MPDU, as given to [`Medium::transmit`]); `at` is
    /// when its last octet arrived.
    Rx {
        /// The receiving radio.
        to: RadioId,
        /// The sender.
        from: RadioId,
        /// The MPDU.
        frame: Vec<u8>,
        /// Time of the last octet.
        at: Instant,
        /// Link quality indication, 255 next to the sender down to 0 at the edge of range.
        lqi: u8,
    },
    /// The transmission `token` of radio `from` is over.
    TxDone {
        /// The sending radio.
        from: RadioId,
        /// The token [`Medium::transmit`] returned.
        token: TxToken,
        /// [`MacStatus::Success`], [`MacStatus::NoAck`], [`MacStatus::ChannelAccessFailure`]
        /// or [`MacStatus::FrameTooLong`].
        status: MacStatus,
        /// When the outcome was known.
        at: Instant,
    },
    /// A PPDU went on air: a data frame or an Imm-Ack, whoever hears it. Reported only with
    /// [`Medium::set_capture`], for a sniffer such as the [pcap tap](crate::pcap).
    OnAir {
        /// The transmitting radio.
        from: RadioId,
        /// The MPDU including FCS.
        frame: Vec<u8>,
        /// When its first octet (of the SHR) went on air.
        start: Instant,
        /// Its air time.
        duration: Duration,
    },
}

/// Counters over the medium's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediumStats {
    /// Data PPDUs put on air (every retry counts).
    pub frames: u64,
    /// Imm-Ack PPDUs put on air.
    pub acks: u64,
    /// Imm-Acks that reached the radio waiting for them.
    pub acks_received: u64,
    /// Octets on air including SHR and PHR, data and acks.
    pub octets_on_air: u64,
    /// Sum of all PPDU durations.
    pub air_time: Duration,
    /// Receptions (per receiver) destroyed by an overlapping transmission.
    pub collisions: u64,
    /// Receptions (per receiver) dropped by the link loss probability.
    pub losses: u64,
    /// Frames delivered as [`MediumEvent::Rx`].
    pub delivered: u64,
    /// Transmissions that ended in [`MacStatus::ChannelAccessFailure`].
    pub csma_failures: u64,
    /// Transmissions that ended in [`MacStatus::NoAck`].
    pub no_acks: u64,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediumError {
    /// No radio with this id was added.
    #[error("unknown radio {0:?}")]
    UnknownRadio(RadioId),
    /// A loss probability outside `[0, 1]` (or NaN).
    #[error("loss probability {0} outside [0, 1]")]
    InvalidLoss(String),
}

/// A frame waiting for, or going through, CSMA-CA.
#[derive(Debug)]
struct Job {
    token: TxToken,
    frame: Vec<u8>,
    ack_to: Option<RadioId>,
    retries: u8,
}

/// Where a radio's MAC is in sending its current [`Job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacState {
    Idle,
    /// Waiting out a random backoff.
    Backoff {
        nb: u8,
        be: u8,
    },
    /// Sensing the channel since `since`.
    Cca {
        nb: u8,
        be: u8,
        since: Instant,
    },
    /// Channel clear; switching to transmit.
    Turnaround,
    /// The frame is on air.
    Transmitting,
    /// Frame sent with AR; waiting for the Imm-Ack until the timer.
    WaitAck,
}

#[derive(Debug)]
struct Radio {
    pos: (f64, f64),
    state: MacState,
    job: Option<Job>,
    queue: VecDeque<Job>,
    /// Bumped whenever the radio's pending timer is superseded.
    timer_gen: u64,
    /// The radio owes (or is sending) an Imm-Ack until then: its own next transmission waits,
    /// as a transceiver busy with an automatic acknowledgment cannot start another frame.
    ack_until: Instant,
}

#[derive(Debug, Clone)]
enum AirKind {
    Data {
        token: TxToken,
        ack_to: Option<RadioId>,
    },
    Ack {
        to: RadioId,
        token: TxToken,
    },
}

#[derive(Debug, Clone)]
struct AirTx {
    from: RadioId,
    start: Instant,
    end: Instant,
    kind: AirKind,
    frame: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The radio's MAC timer (backoff, CCA, turnaround, ack wait), valid if `gen` matches.
    Radio { radio: RadioId, generation: u64 },
    /// Transmission `air` (its id) ends.
    AirEnd { air: u64 },
    /// Radio `from` starts the Imm-Ack to `to` for `token`, answering sequence number `seq`.
    AckStart {
        from: RadioId,
        to: RadioId,
        token: TxToken,
        seq: u8,
    },
}

/// The simulated medium; see the [module documentation](self).
#[derive(Debug)]
pub struct Medium {
    cfg: MediumConfig,
    rng: SimRng,
    now: Instant,
    radios: Vec<Radio>,
    link_loss: BTreeMap<(RadioId, RadioId), f64>,
    /// Transmissions on air or recently ended, by increasing id; `air_base` is the first's id.
    air: VecDeque<AirTx>,
    air_base: u64,
    /// Pending timers ordered by time, then by insertion (`seq`) so ties replay identically.
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_seq: u64,
    next_token: u64,
    events: VecDeque<MediumEvent>,
    stats: MediumStats,
    capture: bool,
}

impl Medium {
    /// An empty medium at virtual time zero.
    pub fn new(cfg: MediumConfig) -> Medium {
        Medium {
            rng: SimRng::new(cfg.seed),
            cfg,
            now: Instant::ZERO,
            radios: Vec::new(),
            link_loss: BTreeMap::new(),
            air: VecDeque::new(),
            air_base: 0,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_token: 0,
            events: VecDeque::new(),
            stats: MediumStats::default(),
            capture: false,
        }
    }

    /// Adds a radio at `pos` (x, y in metres).
    pub fn add_radio(&mut self, pos: (f64, f64)) -> RadioId {
        self.radios.push(Radio {
            pos,
            state: MacState::Idle,
            job: None,
            queue: VecDeque::new(),
            timer_gen: 0,
            ack_until: Instant::ZERO,
        });
        RadioId(self.radios.len() - 1)
    }

    /// Number of radios.
    pub fn radio_count(&self) -> usize {
        self.radios.len()
    }

    /// Sets the loss probability of the directed link `from` → `to` (`1.0` cuts it).
    pub fn set_link_loss(&mut self, from: RadioId, to: RadioId, p: f64) -> Result<(), MediumError> {
        self.check(from)?;
        self.check(to)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(MediumError::InvalidLoss(p.to_string()));
        }
        self.link_loss.insert((from, to), p);
        Ok(())
    }

    /// Whether `a` and `b` are within range of each other (a radio is not in range of itself).
    pub fn in_range(&self, a: RadioId, b: RadioId) -> bool {
        a != b && self.distance(a, b).is_some_and(|d| d <= self.cfg.range_m)
    }

    /// Whether to report every PPDU (acks included) as [`MediumEvent::OnAir`]; off by default.
    pub fn set_capture(&mut self, on: bool) {
        self.capture = on;
    }

    /// The counters so far.
    pub fn stats(&self) -> MediumStats {
        self.stats
    }

    /// The latest time the medium has been advanced to.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Queues `frame` (a whole MPDU including FCS, at most aMaxPhyPacketSize = 127 octets) for
    /// radio `from`. With `ack_request` and `dst = Some(radio)`, radio `dst` acknowledges it
    /// if it decodes it and `from` retries until acknowledged; otherwise (broadcast, or no AR)
    /// the transmission succeeds once on air.
    ///
    /// Frames of one radio go out in order, one at a time. The outcome comes later as
    /// [`MediumEvent::TxDone`] with the returned token (an over-long frame fails at once with
    /// [`MacStatus::FrameTooLong`]). Call [`Medium::handle_timeout`] for every due timeout
    /// before passing a later `now`; a `now` earlier than the medium's time counts as its time.
    pub fn transmit(
        &mut self,
        now: Instant,
        from: RadioId,
        frame: Vec<u8>,
        ack_request: bool,
        dst: Option<RadioId>,
    ) -> Result<TxToken, MediumError> {
        self.check(from)?;
        if let Some(d) = dst {
            self.check(d)?;
        }
        self.now = self.now.max(now);
        let token = TxToken(self.next_token);
        self.next_token += 1;
        if frame.len() > MAX_PSDU_OCTETS {
            self.events.push_back(MediumEvent::TxDone {
                from,
                token,
                status: MacStatus::FrameTooLong,
                at: self.now,
            });
            return Ok(token);
        }
        let ack_to = if ack_request {
            dst.filter(|d| *d != from)
        } else {
            None
        };
        let job = Job {
            token,
            frame,
            ack_to,
            retries: 0,
        };
        let radio = &mut self.radios[from.0];
        if radio.job.is_none() {
            radio.job = Some(job);
            self.start_csma(from);
        } else {
            radio.queue.push_back(job);
        }
        Ok(token)
    }

    /// When [`Medium::handle_timeout`] must be called next, `None` if nothing is under way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Advances virtual time to `now`, running every timer due by then in time order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, _, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, _, timer))) = self.timers.pop() else {
                break;
            };
            self.now = self.now.max(t);
            match timer {
                Timer::Radio { radio, generation } => {
                    if self.radios[radio.0].timer_gen == generation {
                        self.on_radio_timer(radio);
                    }
                }
                Timer::AirEnd { air } => self.on_air_end(air),
                Timer::AckStart {
                    from,
                    to,
                    token,
                    seq,
                } => self.start_ack(from, to, token, seq),
            }
        }
        self.now = self.now.max(now);
        self.prune_air();
    }

    /// The next event, `None` when drained. Call after [`Medium::transmit`] and
    /// [`Medium::handle_timeout`].
    pub fn poll_event(&mut self) -> Option<MediumEvent> {
        self.events.pop_front()
    }

    fn check(&self, r: RadioId) -> Result<(), MediumError> {
        if r.0 < self.radios.len() {
            Ok(())
        } else {
            Err(MediumError::UnknownRadio(r))
        }
    }

    fn distance(&self, a: RadioId, b: RadioId) -> Option<f64> {
        let (pa, pb) = (self.radios.get(a.0)?.pos, self.radios.get(b.0)?.pos);
        Some(((pa.0 - pb.0).powi(2) + (pa.1 - pb.1).powi(2)).sqrt())
    }

    /// Whether radio `r` would sense or suffer a transmission by `from`: in range, or itself.
    fn affects(&self, from: RadioId, r: RadioId) -> bool {
        from == r || self.in_range(from, r)
    }

    fn lqi(&self, from: RadioId, to: RadioId) -> u8 {
        let d = self.distance(from, to).unwrap_or(f64::INFINITY);
        let q = if self.cfg.range_m > 0.0 {
            1.0 - d / self.cfg.range_m
        } else {
            1.0
        };
        #[allow(clippy::cast_possible_truncation, reason = "clamped to 0..=255 first")]
        let lqi = (q.clamp(0.0, 1.0) * 255.0).round() as u8;
        lqi
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, self.timer_seq, timer)));
        self.timer_seq += 1;
    }

    fn set_radio_timer(&mut self, r: RadioId, at: Instant) {
        self.radios[r.0].timer_gen += 1;
        let generation = self.radios[r.0].timer_gen;
        self.schedule(
            at,
            Timer::Radio {
                radio: r,
                generation,
            },
        );
    }

    /// §6.2.5.1 step 1: NB = 0, BE = macMinBE, then a random backoff.
    fn start_csma(&mut self, r: RadioId) {
        self.backoff(r, 0, MIN_BE);
    }

    /// Delays a random number of unit backoff periods in 0..=2^BE − 1 (§6.2.5.1 step 2).
    fn backoff(&mut self, r: RadioId, nb: u8, be: u8) {
        let slots = self.rng.below(1u64 << be);
        self.radios[r.0].state = MacState::Backoff { nb, be };
        let at = self.now + Duration::from_micros(slots * UNIT_BACKOFF_US);
        self.set_radio_timer(r, at);
    }

    fn on_radio_timer(&mut self, r: RadioId) {
        match self.radios[r.0].state {
            MacState::Backoff { .. } | MacState::Turnaround
                if self.radios[r.0].ack_until > self.now =>
            {
                // Busy acknowledging a frame it just received: resume once the ack is out.
                let at = self.radios[r.0].ack_until;
                self.set_radio_timer(r, at);
            }
            MacState::Backoff { nb, be } => {
                self.radios[r.0].state = MacState::Cca {
                    nb,
                    be,
                    since: self.now,
                };
                self.set_radio_timer(r, self.now + Duration::from_micros(CCA_US));
            }
            MacState::Cca { nb, be, since } => {
                let now = self.now;
                let busy = self
                    .air
                    .iter()
                    .any(|a| a.start <= now && a.end > since && self.affects(a.from, r));
                if !busy {
                    self.radios[r.0].state = MacState::Turnaround;
                    self.set_radio_timer(r, now + Duration::from_micros(TURNAROUND_US));
                } else if nb + 1 > MAX_CSMA_BACKOFFS {
                    // §6.2.5.1 step 4: NB > macMaxCSMABackoffs.
                    self.stats.csma_failures += 1;
                    tracing::trace!(radio = r.0, nb, "channel access failure");
                    self.finish(r, MacStatus::ChannelAccessFailure);
                } else {
                    self.backoff(r, nb + 1, (be + 1).min(MAX_BE));
                }
            }
            MacState::Turnaround => self.start_data(r),
            MacState::WaitAck => {
                let retry = match &mut self.radios[r.0].job {
                    Some(job) if job.retries < MAX_FRAME_RETRIES => {
                        job.retries += 1;
                        true
                    }
                    _ => false,
                };
                if retry {
                    self.start_csma(r);
                } else {
                    self.stats.no_acks += 1;
                    tracing::trace!(radio = r.0, "no ack after retries");
                    self.finish(r, MacStatus::NoAck);
                }
            }
            MacState::Idle | MacState::Transmitting => {}
        }
    }

    fn put_on_air(&mut self, from: RadioId, kind: AirKind, frame: Vec<u8>) {
        let dur = air_time(frame.len());
        let start = self.now;
        let end = start + dur;
        self.stats.air_time = self.stats.air_time + dur;
        self.stats.octets_on_air += dur.as_micros() / phy::OCTET_US;
        let id = self.air_base + self.air.len() as u64;
        if self.capture {
            self.events.push_back(MediumEvent::OnAir {
                from,
                frame: frame.clone(),
                start,
                duration: dur,
            });
        }
        self.air.push_back(AirTx {
            from,
            start,
            end,
            kind,
            frame,
        });
        self.schedule(end, Timer::AirEnd { air: id });
    }

    fn start_data(&mut self, r: RadioId) {
        let Some(job) = &self.radios[r.0].job else {
            self.radios[r.0].state = MacState::Idle;
            return;
        };
        let kind = AirKind::Data {
            token: job.token,
            ack_to: job.ack_to,
        };
        let frame = job.frame.clone();
        self.radios[r.0].state = MacState::Transmitting;
        self.stats.frames += 1;
        self.put_on_air(r, kind, frame);
    }

    fn start_ack(&mut self, from: RadioId, to: RadioId, token: TxToken, seq: u8) {
        // Frame control: frame type Acknowledgment (0b010), version 2003/2006; no FCS check
        // in the medium, but a real FCS keeps captures of it valid.
        let mut ack = vec![0x02, 0x00, seq];
        let fcs = crc16_kermit(&ack);
        ack.extend_from_slice(&fcs.to_le_bytes());
        debug_assert_eq!(ack.len(), IMM_ACK_OCTETS);
        self.stats.acks += 1;
        self.put_on_air(from, AirKind::Ack { to, token }, ack);
    }

    /// Whether `r` decodes `tx`: no overlapping transmission it can hear or is making, and the
    /// link's loss draw passes. Counts collisions and losses.
    fn receives(&mut self, tx: &AirTx, tx_id: u64, r: RadioId) -> bool {
        let collided = self.air.iter().enumerate().any(|(i, a)| {
            self.air_base + i as u64 != tx_id
                && a.start < tx.end
                && a.end > tx.start
                && self.affects(a.from, r)
        });
        if collided {
            self.stats.collisions += 1;
            return false;
        }
        let p = self
            .link_loss
            .get(&(tx.from, r))
            .copied()
            .unwrap_or(self.cfg.loss);
        if p > 0.0 && self.rng.unit() < p {
            self.stats.losses += 1;
            return false;
        }
        true
    }

    fn on_air_end(&mut self, id: u64) {
        let Some(idx) = id
            .checked_sub(self.air_base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(tx) = self.air.get(idx).cloned() else {
            return;
        };
        match tx.kind {
            AirKind::Data { token, ack_to } => {
                for i in 0..self.radios.len() {
                    let r = RadioId(i);
                    if !self.in_range(tx.from, r) || !self.receives(&tx, id, r) {
                        continue;
                    }
                    self.stats.delivered += 1;
                    self.events.push_back(MediumEvent::Rx {
                        to: r,
                        from: tx.from,
                        frame: tx.frame.clone(),
                        at: self.now,
                        lqi: self.lqi(tx.from, r),
                    });
                    if ack_to == Some(r) {
                        let seq = tx.frame.get(2).copied().unwrap_or(0);
                        let at = self.now + Duration::from_micros(TURNAROUND_US);
                        let ack_end = at + air_time(IMM_ACK_OCTETS);
                        let radio = &mut self.radios[r.0];
                        radio.ack_until = radio.ack_until.max(ack_end);
                        self.schedule(
                            at,
                            Timer::AckStart {
                                from: r,
                                to: tx.from,
                                token,
                                seq,
                            },
                        );
                    }
                }
                if ack_to.is_some() {
                    self.radios[tx.from.0].state = MacState::WaitAck;
                    self.set_radio_timer(tx.from, self.now + Duration::from_micros(ACK_WAIT_US));
                } else {
                    self.finish(tx.from, MacStatus::Success);
                }
            }
            AirKind::Ack { to, token } => {
                let waiting = self.radios[to.0].state == MacState::WaitAck
                    && self.radios[to.0]
                        .job
                        .as_ref()
                        .is_some_and(|j| j.token == token);
                if waiting && self.in_range(tx.from, to) && self.receives(&tx, id, to) {
                    self.stats.acks_received += 1;
                    self.finish(to, MacStatus::Success);
                }
            }
        }
    }

    /// Reports the current job's outcome and starts the next queued one.
    fn finish(&mut self, r: RadioId, status: MacStatus) {
        let radio = &mut self.radios[r.0];
        radio.timer_gen += 1;
        radio.state = MacState::Idle;
        if let Some(job) = radio.job.take() {
            self.events.push_back(MediumEvent::TxDone {
                from: r,
                token: job.token,
                status,
                at: self.now,
            });
        }
        let radio = &mut self.radios[r.0];
        if let Some(next) = radio.queue.pop_front() {
            radio.job = Some(next);
            self.start_csma(r);
        }
    }

    fn prune_air(&mut self) {
        while self
            .air
            .front()
            .is_some_and(|a| a.end + Duration::from_micros(AIR_HISTORY_US) < self.now)
        {
            self.air.pop_front();
            self.air_base += 1;
        }
    }
}

/// CRC-16/KERMIT (the 802.15.4 FCS, §7.2.10), transmitted low octet first.
fn crc16_kermit(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests;
