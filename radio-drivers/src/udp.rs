//! A virtual IEEE 802.15.4 radio over UDP (feature `driver-udp`): several processes (or several
//! radios in one process) that list each other as peers form one network.
//!
//! # The air
//!
//! Every transmitted MPDU is sent as one UDP datagram to every peer address. A datagram is
//!
//! ```text
//! octets: 4        1         1      1..=127
//!         "K154"   version   kind   MPDU (with its 2-octet CRC-16 FCS)
//!                  (1)       0 = data frame, 1 = Imm-Ack
//! ```
//!
//! The magic and the version keep stray UDP traffic off the radio; anything else is counted
//! ([`UdpRadioStats`]), logged at debug level and dropped.
//!
//! # Receiving
//!
//! A data datagram (kind 0) whose MPDU parses and whose FCS is right goes through the usual
//! 802.15.4 address filter: the destination PAN ID must be ours or the broadcast PAN ID
//! 0xffff (or absent: implied by PAN ID compression), and the destination address must be our
//! extended address, our short address, the broadcast short address 0xffff, or absent. A
//! frame that passes is delivered to the [`MacPort`] as a [`RadioRx`] (LQI 255). If it
//! requests an acknowledgment and was sent to one of our own addresses, an Imm-Ack (frame
//! control 0x0002, the frame's sequence number, FCS) goes back to the datagram's source
//! address as kind 1. Acknowledgment frames inside kind 0 are not delivered (the radio
//! consumes acknowledgments); frames whose sequence number is suppressed are never
//! acknowledged (they would need an Enh-Ack). Duplicate detection is left to the MAC above, as
//! with a radio chip's automatic acknowledgments.
//!
//! Datagrams that come from our own socket address (a peer list shared by every process,
//! self included) are ignored. For tests, [`UdpRadioConfig::loss`] drops each received
//! datagram (data or ack) with a fixed probability, drawn from a seeded generator.
//!
//! # Sending
//!
//! Frames are sent one at a time, in the order they were queued. A frame without AR, or
//! whose destination is the broadcast address or absent, completes with
//! [`MacStatus::Success`] as soon as it is sent. A frame with AR to a unicast destination
//! waits [`UdpRadioConfig::ack_wait`] for an Imm-Ack with its sequence number from any peer,
//! and is sent again up to [`UdpRadioConfig::max_frame_retries`] times before completing with
//! [`MacStatus::NoAck`]. A frame longer than aMaxPhyPacketSize (127 octets) completes with
//! [`MacStatus::FrameTooLong`]; a frame the socket could not send to any peer with
//! [`MacStatus::ChannelAccessFailure`]; a frame that finds the queue full with
//! [`MacStatus::TransactionOverflow`]. Timestamps are taken from [`Clock::System`].
//!
//! # Use
//!
//! Inside an actix system, [`UdpRadio::bind`] binds the socket, starts the actor and returns
//! a [`UdpRadioDriver`] handle, which implements [`RadioDriver`]. Peers can be given in the
//! configuration or added later ([`AddPeer`], [`SetPeers`]), e.g. after every radio bound
//! port 0 and learned its address.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::prelude::Stream;
use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    SpawnHandle, StreamHandler, WrapFuture,
};
use kmp_api::addr::{Address, PanId, ShortAddress};
use kmp_api::primitives::MacStatus;
use kmp_api::{ExtendedAddress, Instant};
use mpx::runtime::{Clock, MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone};
use mpx::wire::{FcsLen, Frame, FrameType, fcs};

/// The first four octets of every datagram.
pub const MAGIC: [u8; 4] = *b"K154";
/// The datagram format version this driver speaks.
pub const VERSION: u8 = 1;
/// Octets before the MPDU: magic, version, kind.
pub const HEADER_LEN: usize = 6;
/// aMaxPhyPacketSize: the longest MPDU (FCS included).
pub const MAX_MPDU_LEN: usize = 127;

/// Frame control of an 802.15.4-2006 Imm-Ack: frame type Ack, everything else clear.
const IMM_ACK_FCF: u16 = 0x0002;
/// Receive buffer: larger than any valid datagram, so oversized ones are seen as such.
const RECV_BUF_LEN: usize = 2048;

/// What a datagram carries (its sixth octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramKind {
    /// 0: a frame handed to the radio for transmission.
    Data,
    /// 1: an Imm-Ack sent by the radio itself.
    Ack,
}

impl DatagramKind {
    /// The kind octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            DatagramKind::Data => 0,
            DatagramKind::Ack => 1,
        }
    }

    /// From the kind octet; other values are not defined.
    pub const fn from_u8(v: u8) -> Option<DatagramKind> {
        match v {
            0 => Some(DatagramKind::Data),
            1 => Some(DatagramKind::Ack),
            _ => None,
        }
    }
}

/// Builds the datagram carrying `mpdu`.
pub fn encode_datagram(kind: DatagramKind, mpdu: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(HEADER_LEN + mpdu.len());
    d.extend_from_slice(&MAGIC);
    d.push(VERSION);
    d.push(kind.to_u8());
    d.extend_from_slice(mpdu);
    d
}

/// Why a datagram was not accepted as one of ours (before its MPDU is looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DatagramError {
    /// Shorter than the header, or the first four octets are not [`MAGIC`].
    #[error("not a K154 datagram")]
    BadMagic,
    /// A version other than [`VERSION`].
    #[error("unsupported datagram version {0}")]
    BadVersion(u8),
    /// An undefined kind octet.
    #[error("unknown datagram kind {0}")]
    BadKind(u8),
    /// The MPDU is empty or longer than [`MAX_MPDU_LEN`].
    #[error("MPDU length {0} out of range")]
    BadLength(usize),
}

/// Splits a datagram into its kind and MPDU, checking the header.
pub fn decode_datagram(d: &[u8]) -> Result<(DatagramKind, &[u8]), DatagramError> {
    let Some((header, mpdu)) = d.split_first_chunk::<HEADER_LEN>() else {
        return Err(DatagramError::BadMagic);
    };
    if header[..4] != MAGIC {
        return Err(DatagramError::BadMagic);
    }
    if header[4] != VERSION {
        return Err(DatagramError::BadVersion(header[4]));
    }
    let kind = DatagramKind::from_u8(header[5]).ok_or(DatagramError::BadKind(header[5]))?;
    if mpdu.is_empty() || mpdu.len() > MAX_MPDU_LEN {
        return Err(DatagramError::BadLength(mpdu.len()));
    }
    Ok((kind, mpdu))
}

/// The 5-octet Imm-Ack MPDU (with FCS) acknowledging sequence number `seq`.
pub fn imm_ack(seq: u8) -> [u8; 5] {
    let [f0, f1] = IMM_ACK_FCF.to_le_bytes();
    let mut ack = [f0, f1, seq, 0, 0];
    fcs::fill(&mut ack, FcsLen::Two);
    ack
}

/// A configuration that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum UdpRadioConfigError {
    /// `loss` is not a probability.
    #[error("loss {0} is not in [0, 1]")]
    Loss(f64),
    /// `ack_wait` is zero.
    #[error("ack_wait must be positive")]
    AckWait,
    /// `max_frame_retries` is above macMaxFrameRetries' range (0..=7).
    #[error("max_frame_retries {0} is above 7")]
    MaxFrameRetries(u8),
    /// `queue_limit` is zero.
    #[error("queue_limit must be at least 1")]
    QueueLimit,
}

impl From<UdpRadioConfigError> for io::Error {
    fn from(e: UdpRadioConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// How a [`UdpRadio`] is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct UdpRadioConfig {
    /// The local socket address (port 0 picks a free port; see [`UdpRadioDriver::local_addr`]).
    pub bind: SocketAddr,
    /// Where every frame is sent. May be empty (a radio alone) and may contain `bind` itself
    /// (datagrams from our own address are ignored).
    pub peers: Vec<SocketAddr>,
    /// Our extended address, for the address filter.
    pub ext_address: ExtendedAddress,
    /// Our short address, for the address filter, if we have one.
    pub short_address: Option<ShortAddress>,
    /// Our PAN ID, for the address filter.
    pub pan_id: PanId,
    /// How long a frame with AR waits for its Imm-Ack before it is sent again (default
    /// 20 ms).
    pub ack_wait: Duration,
    /// macMaxFrameRetries: retransmissions after the first attempt, 0..=7 (default 3).
    pub max_frame_retries: u8,
    /// Probability in [0, 1] that a received datagram is dropped, for tests (default 0).
    pub loss: f64,
    /// Seed of the loss decisions.
    pub seed: u64,
    /// Frames that may wait behind the one being sent; more complete with
    /// [`MacStatus::TransactionOverflow`] (default 64).
    pub queue_limit: usize,
}

impl UdpRadioConfig {
    /// Default `ack_wait`.
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_millis(20);
    /// Default `max_frame_retries`.
    pub const DEFAULT_MAX_FRAME_RETRIES: u8 = 3;
    /// Default `queue_limit`.
    pub const DEFAULT_QUEUE_LIMIT: usize = 64;

    /// A radio at `bind` with extended address `ext_address` in PAN `pan_id`, no peers, no
    /// short address, and the defaults for the rest.
    pub fn new(bind: SocketAddr, ext_address: ExtendedAddress, pan_id: PanId) -> UdpRadioConfig {
        UdpRadioConfig {
            bind,
            peers: Vec::new(),
            ext_address,
            short_address: None,
            pan_id,
            ack_wait: Self::DEFAULT_ACK_WAIT,
            max_frame_retries: Self::DEFAULT_MAX_FRAME_RETRIES,
            loss: 0.0,
            seed: 0,
            queue_limit: Self::DEFAULT_QUEUE_LIMIT,
        }
    }

    /// Checks the ranges of the parameters.
    pub fn validate(&self) -> Result<(), UdpRadioConfigError> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(UdpRadioConfigError::Loss(self.loss));
        }
        if self.ack_wait.is_zero() {
            return Err(UdpRadioConfigError::AckWait);
        }
        if self.max_frame_retries > 7 {
            return Err(UdpRadioConfigError::MaxFrameRetries(self.max_frame_retries));
        }
        if self.queue_limit == 0 {
            return Err(UdpRadioConfigError::QueueLimit);
        }
        Ok(())
    }
}

/// Counters of a [`UdpRadio`], read with [`GetStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpRadioStats {
    /// Frame transmissions (first attempts and retries; each sent to every peer).
    pub tx_attempts: u64,
    /// Of `tx_attempts`, the retransmissions.
    pub tx_retries: u64,
    /// Frames completed with [`MacStatus::Success`].
    pub tx_success: u64,
    /// Frames completed with [`MacStatus::NoAck`].
    pub tx_no_ack: u64,
    /// Frames completed with [`MacStatus::ChannelAccessFailure`].
    pub tx_channel_access_failure: u64,
    /// Frames completed with [`MacStatus::FrameTooLong`].
    pub tx_too_long: u64,
    /// Frames completed with [`MacStatus::TransactionOverflow`].
    pub tx_overflow: u64,
    /// Datagrams (data or ack) the socket failed to send to one peer.
    pub tx_send_errors: u64,
    /// Imm-Acks sent.
    pub acks_sent: u64,
    /// Imm-Acks that completed the frame waiting for them.
    pub acks_received: u64,
    /// Well-formed Imm-Acks nobody was waiting for (late, duplicated, another sequence number).
    pub acks_unexpected: u64,
    /// Datagrams received (everything the socket returned).
    pub rx_datagrams: u64,
    /// Of those, dropped by the simulated loss.
    pub rx_lost: u64,
    /// Of those, from our own address.
    pub rx_own: u64,
    /// Of those, not a datagram of this format (magic, version, kind, length).
    pub rx_bad_header: u64,
    /// Of those, an MPDU that does not parse, or of the wrong frame type for its kind.
    pub rx_malformed: u64,
    /// Of those, an MPDU whose FCS is wrong.
    pub rx_bad_fcs: u64,
    /// Of those, data frames for another PAN or another device.
    pub rx_filtered: u64,
    /// Of those, data frames that passed the filter before a [`MacPort`] was attached.
    pub rx_unattached: u64,
    /// Data frames delivered as [`RadioRx`].
    pub rx_delivered: u64,
    /// Errors reading the socket (the radio keeps reading).
    pub rx_errors: u64,
}

/// Attaches the MAC: where received frames and transmit outcomes go ([`RadioDriver::attach`]).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Attach(pub MacPort);

/// Queues a frame for transmission ([`RadioDriver::transmit`]).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Transmit(pub RadioTx);

/// Adds a peer address (ignored if already a peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct AddPeer(pub SocketAddr);

/// Replaces the peer list.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct SetPeers(pub Vec<SocketAddr>);

/// Sets (or clears) the short address the address filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct SetShortAddress(pub Option<ShortAddress>);

/// Sets the PAN ID the address filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct SetPanId(pub PanId);

/// Reads the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "UdpRadioStats")]
pub struct GetStats;

/// Stops the radio: the socket is closed, and the frame being sent and every queued frame
/// complete with [`MacStatus::ChannelAccessFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// One result of reading the socket.
#[derive(Debug)]
struct Received(io::Result<(Vec<u8>, SocketAddr)>);

/// The socket's datagrams as a stream (never ends).
struct RecvStream {
    socket: Arc<tokio::net::UdpSocket>,
    buf: Box<[u8]>,
}

impl Stream for RecvStream {
    type Item = Received;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Received>> {
        let this = self.get_mut();
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf);
        match this.socket.poll_recv_from(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(from)) => Poll::Ready(Some(Received(Ok((rb.filled().to_vec(), from))))),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Received(Err(e)))),
        }
    }
}

/// Loss decisions: SplitMix64, enough for a coin flip per datagram (never for keys).
#[derive(Debug, Clone)]
struct LossRng(u64);

impl LossRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[allow(clippy::cast_precision_loss)] // 53 bits fit an f64 mantissa exactly
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The frame being sent.
#[derive(Debug)]
struct Current {
    tx: RadioTx,
    /// Distinguishes this attempt from earlier ones, so that late send completions and
    /// timers of a finished frame are ignored.
    attempt_id: u64,
    /// Transmissions so far (1 + retries).
    attempts: u8,
    /// The sequence number an Imm-Ack must carry, when one is awaited.
    awaiting: Option<u8>,
    /// The ack timer, once the datagrams are out.
    timer: Option<SpawnHandle>,
}

/// The UDP radio actor (see the [module docs](self)).
pub struct UdpRadio {
    config: UdpRadioConfig,
    socket: Arc<tokio::net::UdpSocket>,
    local: SocketAddr,
    port: Option<MacPort>,
    queue: VecDeque<RadioTx>,
    current: Option<Current>,
    next_attempt_id: u64,
    rng: LossRng,
    stats: UdpRadioStats,
}

impl std::fmt::Debug for UdpRadio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRadio")
            .field("local", &self.local)
            .field("peers", &self.config.peers)
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl UdpRadio {
    /// Validates `config`, binds the socket and starts the radio actor. Must run inside an
    /// actix system (the actor and its socket live on the current arbiter).
    pub async fn bind(config: UdpRadioConfig) -> io::Result<UdpRadioDriver> {
        config.validate()?;
        let socket = tokio::net::UdpSocket::bind(config.bind).await?;
        let local = socket.local_addr()?;
        let rng = LossRng(config.seed);
        let radio = UdpRadio {
            config,
            socket: Arc::new(socket),
            local,
            port: None,
            queue: VecDeque::new(),
            current: None,
            next_attempt_id: 0,
            rng,
            stats: UdpRadioStats::default(),
        };
        tracing::debug!(%local, "UDP radio bound");
        Ok(UdpRadioDriver {
            addr: radio.start(),
            local,
        })
    }

    fn now() -> Instant {
        Clock::System.now()
    }

    fn complete(&mut self, token: u64, status: MacStatus) {
        match status {
            MacStatus::Success => self.stats.tx_success += 1,
            MacStatus::NoAck => self.stats.tx_no_ack += 1,
            MacStatus::ChannelAccessFailure => self.stats.tx_channel_access_failure += 1,
            MacStatus::FrameTooLong => self.stats.tx_too_long += 1,
            MacStatus::TransactionOverflow => self.stats.tx_overflow += 1,
            _ => {}
        }
        let done = RadioTxDone {
            token,
            status,
            at: Self::now(),
        };
        match &self.port {
            Some(port) => port.tx_done.do_send(done),
            None => tracing::warn!(token, ?status, "UDP radio: transmit outcome before attach"),
        }
    }

    /// Starts the next queued frame if none is being sent.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.current.is_none() {
            let Some(tx) = self.queue.pop_front() else {
                return;
            };
            if tx.frame.len() > MAX_MPDU_LEN {
                tracing::debug!(
                    token = tx.token,
                    len = tx.frame.len(),
                    "UDP radio: frame too long"
                );
                self.complete(tx.token, MacStatus::FrameTooLong);
                continue;
            }
            let unicast = !tx.dst.is_broadcast() && tx.dst != Address::Absent;
            let seq = Frame::new_checked(&tx.frame[..], FcsLen::Two)
                .ok()
                .and_then(|f| f.sequence_number());
            let awaiting = if tx.ack_request && unicast { seq } else { None };
            self.current = Some(Current {
                tx,
                attempt_id: 0,
                attempts: 0,
                awaiting,
                timer: None,
            });
            self.send_attempt(ctx);
        }
    }

    /// Sends the current frame to every peer (again).
    fn send_attempt(&mut self, ctx: &mut Context<Self>) {
        let id = self.next_attempt_id;
        self.next_attempt_id += 1;
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.attempt_id = id;
        if cur.attempts > 0 {
            self.stats.tx_retries += 1;
        }
        cur.attempts += 1;
        self.stats.tx_attempts += 1;
        let datagram = encode_datagram(DatagramKind::Data, &cur.tx.frame);
        let socket = Arc::clone(&self.socket);
        let peers = self.config.peers.clone();
        let fut = async move {
            let mut errors = 0usize;
            for peer in &peers {
                if let Err(e) = socket.send_to(&datagram, peer).await {
                    tracing::warn!(%peer, error = %e, "UDP radio: send failed");
                    errors += 1;
                }
            }
            (errors, peers.len())
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(errors, peers), act, ctx| act.sent(id, errors, peers, ctx)),
        );
    }

    /// The datagrams of attempt `id` are out (or failed).
    fn sent(&mut self, id: u64, errors: usize, peers: usize, ctx: &mut Context<Self>) {
        self.stats.tx_send_errors += u64::try_from(errors).unwrap_or(u64::MAX);
        let Some(cur) = self.current.as_mut().filter(|c| c.attempt_id == id) else {
            return; // already acknowledged
        };
        let token = cur.tx.token;
        if peers > 0 && errors == peers {
            self.current = None;
            self.complete(token, MacStatus::ChannelAccessFailure);
            self.pump(ctx);
        } else if cur.awaiting.is_some() {
            let wait = self.config.ack_wait;
            cur.timer = Some(ctx.run_later(wait, move |act, ctx| act.ack_timeout(id, ctx)));
        } else {
            self.current = None;
            self.complete(token, MacStatus::Success);
            self.pump(ctx);
        }
    }

    fn ack_timeout(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(cur) = self.current.as_mut().filter(|c| c.attempt_id == id) else {
            return;
        };
        cur.timer = None;
        if cur.attempts <= self.config.max_frame_retries {
            tracing::trace!(
                token = cur.tx.token,
                attempts = cur.attempts,
                "UDP radio: retry"
            );
            self.send_attempt(ctx);
        } else {
            let token = cur.tx.token;
            tracing::debug!(token, "UDP radio: no ack");
            self.current = None;
            self.complete(token, MacStatus::NoAck);
            self.pump(ctx);
        }
    }

    fn on_datagram(&mut self, d: &[u8], from: SocketAddr, ctx: &mut Context<Self>) {
        self.stats.rx_datagrams += 1;
        if from == self.local {
            self.stats.rx_own += 1;
            return;
        }
        if self.config.loss > 0.0 && self.rng.unit() < self.config.loss {
            self.stats.rx_lost += 1;
            tracing::trace!(%from, "UDP radio: datagram lost (simulated)");
            return;
        }
        let (kind, mpdu) = match decode_datagram(d) {
            Ok(x) => x,
            Err(e) => {
                self.stats.rx_bad_header += 1;
                tracing::debug!(%from, len = d.len(), error = %e, "UDP radio: datagram dropped");
                return;
            }
        };
        let frame = match Frame::new_checked(mpdu, FcsLen::Two) {
            Ok(f) => f,
            Err(e) => {
                self.stats.rx_malformed += 1;
                tracing::debug!(%from, error = %e, "UDP radio: malformed MPDU dropped");
                return;
            }
        };
        if !frame.fcs_ok() {
            self.stats.rx_bad_fcs += 1;
            tracing::debug!(%from, "UDP radio: bad FCS, dropped");
            return;
        }
        let is_ack = frame.frame_type() == FrameType::Ack;
        match kind {
            DatagramKind::Ack if is_ack => self.on_ack(frame.sequence_number(), ctx),
            DatagramKind::Data if !is_ack => self.on_data(&frame, from, ctx),
            _ => {
                self.stats.rx_malformed += 1;
                tracing::debug!(%from, ?kind, "UDP radio: frame type does not match the datagram kind");
            }
        }
    }

    fn on_ack(&mut self, seq: Option<u8>, ctx: &mut Context<Self>) {
        let matches = seq.is_some()
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.awaiting.is_some() && c.awaiting == seq);
        if !matches {
            self.stats.acks_unexpected += 1;
            tracing::trace!(?seq, "UDP radio: unexpected ack");
            return;
        }
        self.stats.acks_received += 1;
        if let Some(cur) = self.current.take() {
            if let Some(t) = cur.timer {
                ctx.cancel_future(t);
            }
            self.complete(cur.tx.token, MacStatus::Success);
        }
        self.pump(ctx);
    }

    fn on_data(&mut self, frame: &Frame<&[u8]>, from: SocketAddr, _ctx: &mut Context<Self>) {
        let pan_ok = match frame.dst_pan_id() {
            None => true,
            Some(p) => p == self.config.pan_id || p == PanId::BROADCAST,
        };
        let dst = frame.dst_addr();
        let to_us = match dst {
            Address::Extended(e) => e == self.config.ext_address,
            Address::Short(s) => self.config.short_address == Some(s),
            Address::Absent => false,
        };
        let addr_ok = to_us || dst.is_broadcast() || dst == Address::Absent;
        if !(pan_ok && addr_ok) {
            self.stats.rx_filtered += 1;
            tracing::trace!(%from, %dst, "UDP radio: frame for someone else");
            return;
        }
        let Some(port) = &self.port else {
            self.stats.rx_unattached += 1;
            tracing::debug!(%from, "UDP radio: frame before attach, dropped");
            return;
        };
        port.rx.do_send(RadioRx {
            frame: frame.as_bytes().to_vec(),
            lqi: 255,
            at: Self::now(),
        });
        self.stats.rx_delivered += 1;
        if let (true, true, Some(seq)) = (frame.ack_request(), to_us, frame.sequence_number()) {
            self.send_ack(seq, from);
        }
    }

    fn send_ack(&mut self, seq: u8, to: SocketAddr) {
        let datagram = encode_datagram(DatagramKind::Ack, &imm_ack(seq));
        // Best effort and immediate (an ack that waited behind anything would be late); a
        // full socket buffer loses the ack like a collision would.
        match self.socket.try_send_to(&datagram, to) {
            Ok(_) => self.stats.acks_sent += 1,
            Err(e) => {
                self.stats.tx_send_errors += 1;
                tracing::debug!(%to, error = %e, "UDP radio: ack not sent");
            }
        }
    }
}

impl Actor for UdpRadio {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(RecvStream {
            socket: Arc::clone(&self.socket),
            buf: vec![0u8; RECV_BUF_LEN].into_boxed_slice(),
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let pending: Vec<u64> = self
            .current
            .take()
            .map(|c| c.tx.token)
            .into_iter()
            .chain(self.queue.drain(..).map(|tx| tx.token))
            .collect();
        for token in pending {
            self.complete(token, MacStatus::ChannelAccessFailure);
        }
        tracing::debug!(local = %self.local, stats = ?self.stats, "UDP radio stopped");
    }
}

impl StreamHandler<Received> for UdpRadio {
    fn handle(&mut self, item: Received, ctx: &mut Context<Self>) {
        match item.0 {
            Ok((d, from)) => self.on_datagram(&d, from, ctx),
            Err(e) => {
                // E.g. a port-unreachable report on some platforms: not fatal.
                self.stats.rx_errors += 1;
                tracing::debug!(error = %e, "UDP radio: receive error");
            }
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The stream never ends; the radio stops on `Shutdown` or with its system.
    }
}

impl Handler<Attach> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: Attach, _ctx: &mut Context<Self>) {
        self.port = Some(msg.0);
    }
}

impl Handler<Transmit> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: Transmit, ctx: &mut Context<Self>) {
        if self.queue.len() >= self.config.queue_limit {
            tracing::debug!(token = msg.0.token, "UDP radio: transmit queue full");
            self.complete(msg.0.token, MacStatus::TransactionOverflow);
            return;
        }
        self.queue.push_back(msg.0);
        self.pump(ctx);
    }
}

impl Handler<AddPeer> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: AddPeer, _ctx: &mut Context<Self>) {
        if !self.config.peers.contains(&msg.0) {
            self.config.peers.push(msg.0);
        }
    }
}

impl Handler<SetPeers> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: SetPeers, _ctx: &mut Context<Self>) {
        self.config.peers = msg.0;
    }
}

impl Handler<SetShortAddress> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: SetShortAddress, _ctx: &mut Context<Self>) {
        self.config.short_address = msg.0;
    }
}

impl Handler<SetPanId> for UdpRadio {
    type Result = ();

    fn handle(&mut self, msg: SetPanId, _ctx: &mut Context<Self>) {
        self.config.pan_id = msg.0;
    }
}

impl Handler<GetStats> for UdpRadio {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Context<Self>) -> MessageResult<GetStats> {
        MessageResult(self.stats)
    }
}

impl Handler<Shutdown> for UdpRadio {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Context<Self>) {
        use actix::ActorContext;
        ctx.stop();
    }
}

/// A handle on a running [`UdpRadio`]: what the MPX actor owns as its [`RadioDriver`]. Cheap to
/// clone; every clone talks to the same radio.
#[derive(Debug, Clone)]
pub struct UdpRadioDriver {
    addr: Addr<UdpRadio>,
    local: SocketAddr,
}

impl UdpRadioDriver {
    /// The address the socket is bound to (the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The radio actor, for [`AddPeer`], [`SetPeers`], [`GetStats`] and the other messages.
    pub fn addr(&self) -> &Addr<UdpRadio> {
        &self.addr
    }
}

impl RadioDriver for UdpRadioDriver {
    fn attach(&mut self, port: MacPort) {
        self.addr.do_send(Attach(port));
    }

    fn transmit(&mut self, tx: RadioTx) {
        self.addr.do_send(Transmit(tx));
    }
}
