//! The boundary between the MPX actor and a radio driver.
//!
//! A driver implements [`RadioDriver`]: the [`MpxActor`](super::MpxActor) owns it, calls
//! [`RadioDriver::attach`] once with the [`MacPort`] to deliver to, then
//! [`RadioDriver::transmit`] for every frame. The driver answers each transmission with exactly
//! one [`RadioTxDone`] and delivers every frame it decoded (and that passed its address filter,
//! if it has one) as a [`RadioRx`]. Frames are whole MPDUs **including the FCS** in both
//! directions.

use actix::{Message, Recipient};
use kmp_api::Instant;
use kmp_api::addr::{Address, PanId};
use kmp_api::primitives::MacStatus;

/// A frame for the radio to send (MCPS-DATA.request after MAC framing and security).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadioTx {
    /// Echoed in the [`RadioTxDone`].
    pub token: u64,
    /// The MPDU with its FCS filled in.
    pub frame: Vec<u8>,
    /// Whether the frame requests an acknowledgment (its AR bit): the driver retries until
    /// acknowledged or out of retries ([`MacStatus::NoAck`]).
    pub ack_request: bool,
    /// Destination PAN ID as in the frame, if present.
    pub dst_pan: Option<PanId>,
    /// Destination address as in the frame.
    pub dst: Address,
}

/// A frame the radio decoded.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct RadioRx {
    /// The MPDU including its FCS.
    pub frame: Vec<u8>,
    /// Link quality indication.
    pub lqi: u8,
    /// When its last octet arrived.
    pub at: Instant,
}

/// The outcome of one [`RadioTx`] (MCPS-DATA.confirm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct RadioTxDone {
    /// The token of the [`RadioTx`].
    pub token: u64,
    /// `Success`, `NoAck`, `ChannelAccessFailure`, `FrameTooLong`, `TransactionOverflow`.
    pub status: MacStatus,
    /// When the outcome was known.
    pub at: Instant,
}

/// Where a driver delivers received frames and transmit outcomes.
#[derive(Debug, Clone)]
pub struct MacPort {
    /// Received frames.
    pub rx: Recipient<RadioRx>,
    /// Transmit outcomes.
    pub tx_done: Recipient<RadioTxDone>,
}

/// A radio as the MPX actor sees it.
pub trait RadioDriver: Send + 'static {
    /// Called once, before any [`RadioDriver::transmit`], with where to deliver.
    fn attach(&mut self, port: MacPort);

    /// Queues a frame. The outcome arrives later as one [`RadioTxDone`] with `tx.token`
    /// (never from inside this call: drivers post it as a message).
    fn transmit(&mut self, tx: RadioTx);
}

/// Receives a copy of every frame an MPX actor sends (after protection) or receives (before
/// unprotection): a capture point that works with any driver, e.g. the pcap tap in
/// `radio-drivers`.
pub trait FrameTap: Send + Sync + 'static {
    /// One frame (MPDU with FCS) seen at `at`.
    fn frame(&self, at: Instant, frame: &[u8]);
}
