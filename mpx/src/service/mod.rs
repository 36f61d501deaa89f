//! The MPX data service (IEEE 802.15.9 MPX-DATA and MPX-PURGE), sans-IO: fragmentation of
//! upper-layer frames into 802.15.4 data frames carrying MPX IEs, and their reassembly.
//!
//! [`MpxService`] never touches a radio, a clock or a thread. Time comes in as `now`
//! ([`Instant`]); frames come in as parsed, already unprotected [`FrameRepr`]s; everything the
//! service wants done comes out of its `poll_*` methods.
//!
//! # Call contract
//!
//! ```text
//! request(now, MpxDataRequest)      MPX-DATA.request; Err = rejected, no confirm will follow
//! purge(now, MpxPurgeRequest)       MPX-PURGE.request; returns MPX-PURGE.confirm at once
//! receive(now, &FrameRepr, lqi)     a received frame (FCS checked, security removed)
//! handle_tx_status(now, token, st)  the MAC's MCPS-DATA.confirm for a frame from poll_transmit
//! handle_timeout(now)               the instant from poll_timeout() has passed
//! ----
//! poll_transmit(now) -> Transmit    drain until None after every call above
//! poll_event() -> MpxEvent          drain until None after every call above
//! poll_timeout() -> Instant         when to call handle_timeout next (re-read after each call)
//! ```
//!
//! - Every [`Transmit`] must be answered by exactly one [`MpxService::handle_tx_status`] with its
//!   token once the MAC knows the outcome. The service hands out at most one frame per
//!   transaction before that answer: the next fragment of a transaction exists only after the
//!   previous one was acknowledged (spec/mpx-wire-format.md §4.4 Outbound 2). A status for a
//!   token the service does not know is counted and ignored.
//! - A frame that asks for security is handed out with a complete auxiliary security header
//!   whose frame counter is a placeholder (0) and with a zeroed MIC of the right length; the
//!   outgoing frame-security procedure fills both in (and the FCS) before the frame goes on air.
//!   The size budget already includes them.
//! - An accepted request ends in exactly one [`MpxEvent::Confirm`] with its handle: `Success`,
//!   the MAC status that stopped it, [`MacStatus::Purged`] or [`MacStatus::Aborted`]. A request
//!   that `request` rejects gets no confirm; [`MpxError::status`] gives the status to report.
//!
//! # Decisions (project-defined where the standard's text is not public)
//!
//! - **Queueing**: transactions towards one destination run one after the other in request
//!   order, so the peer receives upper-layer frames in the order they were requested;
//!   transactions towards different destinations run concurrently (one frame in flight each).
//! - **Transaction IDs** come from a rolling 5-bit counter shared by all destinations, skipping
//!   any ID in use towards the destination and any ID whose transaction towards it ended in a
//!   failure less than `reassembly_timeout` ago (the peer may still hold a reassembly for it).
//!   They are allocated when the first fragment goes out, not when the request is queued.
//! - **Format**: a frame that fits one MPX IE in one MPDU is always sent whole (type 1 if
//!   enabled and the Multiplex ID is below 32, else type 0 with transaction ID 0). Otherwise it
//!   is fragmented, unless it is a broadcast (destination absent or 0xffff), which is refused.
//!   Fragments always request acknowledgment, whatever `ack_tx` says.
//! - **Failure**: any status other than `Success` for a data frame ends its transaction with
//!   that status. Abort frames we send are fire-and-forget (their status is only counted).
//! - **Reassembly**: keyed by (source address, transaction ID); memory is reserved for the whole
//!   Total Size when the first fragment arrives. Fragments must be unicast. A fragment whose
//!   security level is below that of the transaction's first fragment is ignored, so that an
//!   unprotected frame can neither inject data into nor tear down a protected reassembly. When
//!   a reassembly is dropped while its sender is presumably still sending (eviction, a fragment
//!   out of order, more data than announced) we send the sender an Abort so it stops early.
//! - An Abort received from a peer drops our reassembly for (peer, TID) **and** ends our
//!   outbound transaction to that peer with that TID: on the wire both look the same.

mod config;
mod inbound;
mod outbound;

pub mod floor;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use kmp_api::addr::{Address, PanId};
use kmp_api::primitives::{
    MacStatus, MpxDataConfirm, MpxDataIndication, MpxDataRequest, MpxHandle, MpxPurgeConfirm,
    MpxPurgeRequest,
};
use kmp_api::security::SecurityParams;
use kmp_api::time::Instant;

pub use config::{
    DEFAULT_REASSEMBLY_TIMEOUT, MpxConfig, PHY_PACKET_SIZE_LEGACY, PHY_PACKET_SIZE_SUN,
};

use crate::wire::{FrameRepr, PayloadIeGroup};
use inbound::{Reassembler, RxAction};
use outbound::Outbound;

/// Identifies one frame handed out by [`MpxService::poll_transmit`] until its status comes back.
///
/// Only values taken from a [`Transmit`] mean anything; others are counted and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxToken(pub u64);

/// What a frame handed out by [`MpxService::poll_transmit`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// A whole upper-layer frame (transfer type 0 or 1).
    FullFrame {
        /// The request it belongs to.
        handle: MpxHandle,
    },
    /// One fragment (transfer type 2, or 4 for the last).
    Fragment {
        /// The request it belongs to.
        handle: MpxHandle,
        /// Transaction ID of the fragments.
        transaction_id: u8,
        /// Fragment number (0 for the first).
        fragment_number: u8,
        /// Whether it is the last fragment.
        last: bool,
    },
    /// An Abort (transfer type 6) for a transaction of ours or of the peer.
    Abort {
        /// The transaction aborted.
        transaction_id: u8,
        /// The maximum size announced, if any.
        max_size: Option<u16>,
    },
}

/// A complete 802.15.4 frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Pass this to [`MpxService::handle_tx_status`] with the MAC's outcome.
    pub token: TxToken,
    /// Destination address (as in the frame).
    pub dst: Address,
    /// The MPDU, FCS included, at most `max_phy_packet_size` octets. If `security.level` is not
    /// `None` its frame counter and MIC are placeholders that the frame-security procedure
    /// fills in.
    pub frame: Vec<u8>,
    /// The protection to apply.
    pub security: SecurityParams,
    /// Whether the frame requests an acknowledgment (the AR bit is set accordingly).
    pub ack_request: bool,
    /// What the frame carries.
    pub kind: TransmitKind,
}

/// Output of the service for the upper layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpxEvent {
    /// MPX-DATA.confirm for an accepted request.
    Confirm(MpxDataConfirm),
    /// MPX-DATA.indication: a full or reassembled upper-layer frame arrived.
    Indication(MpxDataIndication),
}

/// Why `request` (or `new`) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpxError {
    /// The upper-layer frame is longer than 65535 octets or needs more than 256 fragments with
    /// this request's addressing and security.
    #[error("upper-layer frame of {len} octets is too long: at most {max} with this addressing")]
    FrameTooLong {
        /// Length of the frame.
        len: usize,
        /// The largest length that would have been accepted.
        max: usize,
    },
    /// A broadcast frame does not fit one MPX IE in one MPDU (broadcasts are never fragmented).
    #[error("broadcast upper-layer frame of {len} octets does not fit one frame (at most {max})")]
    BroadcastTooLong {
        /// Length of the frame.
        len: usize,
        /// The largest length that fits.
        max: usize,
    },
    /// A request parameter is unusable.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    /// A request with this handle is still pending.
    #[error("handle {0:?} is already pending")]
    DuplicateHandle(MpxHandle),
    /// `max_pending_requests` requests are pending.
    #[error("{pending} requests pending: queue full")]
    QueueFull {
        /// How many are pending.
        pending: usize,
    },
    /// The configuration is unusable.
    #[error("invalid MPX configuration: {0}")]
    InvalidConfig(&'static str),
}

impl MpxError {
    /// The MPX-DATA.confirm status that corresponds to this error.
    pub fn status(&self) -> MacStatus {
        match self {
            MpxError::FrameTooLong { .. } | MpxError::BroadcastTooLong { .. } => {
                MacStatus::FrameTooLong
            }
            MpxError::QueueFull { .. } => MacStatus::TransactionOverflow,
            MpxError::InvalidParameter(_)
            | MpxError::DuplicateHandle(_)
            | MpxError::InvalidConfig(_) => MacStatus::InvalidParameter,
        }
    }
}

/// Counters of everything the service did and everything surprising it saw. They only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpxCounters {
    /// Frames passed to [`MpxService::receive`].
    pub rx_frames: u64,
    /// Received frames without any MPX IE.
    pub rx_frames_without_mpx: u64,
    /// MPX IEs processed (from frames or [`MpxService::receive_mpx_ie`]).
    pub rx_mpx_ies: u64,
    /// MPX IEs that do not parse (truncated, last fragment numbered 0, abort of bad length).
    pub rx_malformed: u64,
    /// MPX IEs with a reserved transfer type (3, 5, 7).
    pub rx_reserved_transfer_type: u64,
    /// Full frames (types 0 and 1) delivered.
    pub rx_full_frames: u64,
    /// Fragments (first, middle, last) received.
    pub rx_fragments: u64,
    /// Upper-layer frames delivered after reassembly.
    pub rx_reassembled: u64,
    /// Duplicate fragments ignored (retransmissions after a lost acknowledgment).
    pub rx_duplicates: u64,
    /// Reassemblies dropped because a fragment number was not the next expected.
    pub rx_out_of_order: u64,
    /// Middle or last fragments for which no reassembly runs.
    pub rx_orphan_fragments: u64,
    /// Fragments or reassemblies dropped because the data did not add up to the Total Size.
    pub rx_size_mismatch: u64,
    /// First fragments refused because the Total Size exceeds what we accept.
    pub rx_oversized: u64,
    /// Fragments dropped because they were broadcast or had no source address.
    pub rx_fragment_not_unicast: u64,
    /// Fragments or aborts ignored because their security level is below the transaction's.
    pub rx_security_mismatch: u64,
    /// Aborts received.
    pub rx_aborts: u64,
    /// Reassemblies dropped at their timeout.
    pub reassembly_timeouts: u64,
    /// Reassemblies evicted to make room for a new one.
    pub reassembly_evicted: u64,
    /// Reassemblies replaced by a new first fragment with the same source and TID.
    pub reassembly_restarted: u64,
    /// Requests accepted.
    pub tx_requests: u64,
    /// Requests rejected by `request`.
    pub tx_rejected: u64,
    /// Frames handed out (full frames, fragments and aborts).
    pub tx_frames: u64,
    /// Full frames handed out.
    pub tx_full_frames: u64,
    /// Fragments handed out.
    pub tx_fragments: u64,
    /// Abort frames handed out.
    pub tx_aborts_sent: u64,
    /// Abort frames whose MAC status was not `Success`.
    pub tx_aborts_failed: u64,
    /// Aborts not sent because the abort queue was full.
    pub tx_aborts_dropped: u64,
    /// Requests confirmed with `Success`.
    pub tx_success: u64,
    /// Requests ended by a MAC failure status.
    pub tx_failures: u64,
    /// Requests ended by the peer's Abort.
    pub tx_peer_aborts: u64,
    /// Requests cancelled by MPX-PURGE.
    pub purged: u64,
    /// Transmit statuses for unknown tokens.
    pub tx_status_unknown: u64,
    /// Frames that could not be built although the request was accepted (a bug if non-zero).
    pub tx_internal_errors: u64,
}

/// What the service needs to know about a received frame besides its MPX IE.
///
/// [`RxFrameInfo::from_frame`] fills it from a parsed frame; a fuzzer or a test can fill it by
/// hand for [`MpxService::receive_mpx_ie`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxFrameInfo {
    /// Source PAN ID as present in the frame.
    pub src_pan: Option<PanId>,
    /// Source address.
    pub src_addr: Address,
    /// Destination PAN ID as present in the frame.
    pub dst_pan: Option<PanId>,
    /// Destination address.
    pub dst_addr: Address,
    /// Sequence number, unless suppressed.
    pub dsn: Option<u8>,
    /// The protection the frame had (already removed).
    pub security: SecurityParams,
    /// Link quality.
    pub lqi: u8,
}

impl RxFrameInfo {
    /// Takes addressing, sequence number and security from a parsed frame.
    pub fn from_frame(frame: &FrameRepr<'_>, lqi: u8) -> RxFrameInfo {
        RxFrameInfo {
            src_pan: frame.src_pan,
            src_addr: frame.src_addr,
            dst_pan: frame.dst_pan,
            dst_addr: frame.dst_addr,
            dsn: frame.seq,
            security: frame
                .security
                .map_or(SecurityParams::NONE, |s| SecurityParams {
                    level: s.level,
                    key_id: s.key_id,
                }),
            lqi,
        }
    }

    /// The PAN IDs after the PAN ID compression rules are applied: an elided source PAN ID is
    /// the destination's, and a PAN ID elided altogether (e.g. ext/ext row 8) is ours.
    pub fn implied_pans(&self, own_pan: PanId) -> (Option<PanId>, Option<PanId>) {
        let dst_pan = match self.dst_addr {
            Address::Absent => self.dst_pan,
            _ => Some(self.dst_pan.unwrap_or(own_pan)),
        };
        let src_pan = match self.src_addr {
            Address::Absent => self.src_pan,
            _ => Some(self.src_pan.or(self.dst_pan).unwrap_or(own_pan)),
        };
        (src_pan, dst_pan)
    }

    /// Whether the frame was sent to one device (fragments must be).
    pub(crate) fn is_unicast(&self) -> bool {
        !matches!(self.dst_addr, Address::Absent) && !self.dst_addr.is_broadcast()
    }
}

/// Counters and the event queue, shared by the outbound and inbound halves.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub(crate) counters: MpxCounters,
    pub(crate) events: VecDeque<MpxEvent>,
}

impl Outputs {
    pub(crate) fn confirm(&mut self, handle: MpxHandle, status: MacStatus, now: Instant) {
        self.events.push_back(MpxEvent::Confirm(MpxDataConfirm {
            handle,
            status,
            timestamp: now,
        }));
    }
}

/// The MPX data service of one 802.15.4 interface. See the [module docs](self) for the call
/// contract.
#[derive(Debug)]
pub struct MpxService {
    config: MpxConfig,
    out: Outbound,
    rx: Reassembler,
    outputs: Outputs,
}

impl MpxService {
    /// A service with no pending request and no reassembly. Fails if the configuration is
    /// unusable ([`MpxConfig::validate`]).
    pub fn new(config: MpxConfig) -> Result<MpxService, MpxError> {
        config.validate()?;
        Ok(MpxService {
            out: Outbound::new(config.initial_dsn),
            rx: Reassembler::default(),
            outputs: Outputs::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MpxConfig {
        &self.config
    }

    /// MPX-DATA.request. On `Ok` the frame is queued and exactly one [`MpxEvent::Confirm`] with
    /// `request.handle` will follow; its frames come out of [`MpxService::poll_transmit`]. On
    /// `Err` nothing was queued and no confirm follows.
    ///
    /// Fails with [`MpxError::FrameTooLong`] (too long for 256 fragments or 65535 octets),
    /// [`MpxError::BroadcastTooLong`] (a broadcast that does not fit one frame),
    /// [`MpxError::InvalidParameter`] (short source addressing without a short address, no
    /// address at all), [`MpxError::DuplicateHandle`] or [`MpxError::QueueFull`].
    pub fn request(&mut self, now: Instant, request: MpxDataRequest) -> Result<(), MpxError> {
        let r = self.out.request(now, &self.config, request);
        match &r {
            Ok(()) => self.outputs.counters.tx_requests += 1,
            Err(e) => {
                self.outputs.counters.tx_rejected += 1;
                tracing::debug!(error = %e, "MPX-DATA.request rejected");
            }
        }
        r
    }

    /// MPX-PURGE.request: cancels a queued or running transaction. Frames already handed out
    /// cannot be recalled, but no further fragment goes out; the transaction's MPX-DATA.confirm
    /// (status [`MacStatus::Purged`]) is queued as an event. Returns `Success`, or
    /// `InvalidParameter` if no request with that handle is pending.
    pub fn purge(&mut self, now: Instant, request: MpxPurgeRequest) -> MpxPurgeConfirm {
        let status = self
            .out
            .purge(now, &self.config, request.handle, &mut self.outputs);
        MpxPurgeConfirm {
            handle: request.handle,
            status,
        }
    }

    /// The next frame to hand to the MAC, or `None` when there is nothing to send now. Call it
    /// until it returns `None` after every input; answer each frame with
    /// [`MpxService::handle_tx_status`]. Aborts go first, then transactions in request order.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.out.poll_transmit(now, &self.config, &mut self.outputs)
    }

    /// The MAC's outcome (MCPS-DATA.confirm status) for the frame with `token`. `Success` lets
    /// the next fragment out or completes the transaction; anything else ends it with that
    /// status (and, if configured, queues an Abort to the peer).
    pub fn handle_tx_status(&mut self, now: Instant, token: TxToken, status: MacStatus) {
        self.out
            .handle_tx_status(now, &self.config, token, status, &mut self.outputs);
    }

    /// A received frame: FCS checked, frame security already removed. Every MPX IE in its
    /// payload IE list is processed in order. Never panics, whatever the frame holds.
    pub fn receive(&mut self, now: Instant, frame: &FrameRepr<'_>, lqi: u8) {
        self.outputs.counters.rx_frames += 1;
        let info = RxFrameInfo::from_frame(frame, lqi);
        let mut any = false;
        for ie in frame.payload_ies() {
            if ie.group == PayloadIeGroup::Mpx {
                any = true;
                self.receive_mpx_ie(now, &info, ie.content);
            }
        }
        if !any {
            self.outputs.counters.rx_frames_without_mpx += 1;
            tracing::debug!(src = %info.src_addr, "received frame carries no MPX IE");
        }
    }

    /// One MPX IE's content (descriptor excluded) received in a frame described by `info`.
    /// This is what [`MpxService::receive`] calls for each MPX IE; it accepts arbitrary octets
    /// and never panics.
    pub fn receive_mpx_ie(&mut self, now: Instant, info: &RxFrameInfo, content: &[u8]) {
        self.outputs.counters.rx_mpx_ies += 1;
        let mut actions = Vec::new();
        self.rx.receive(
            now,
            &self.config,
            info,
            content,
            &mut self.outputs.counters,
            &mut actions,
        );
        for action in actions {
            match action {
                RxAction::Deliver(indication) => {
                    self.outputs
                        .events
                        .push_back(MpxEvent::Indication(indication));
                }
                RxAction::SendAbort {
                    reply,
                    transaction_id,
                    max_size,
                } => self.out.queue_reply_abort(
                    &self.config,
                    &reply,
                    transaction_id,
                    max_size,
                    &mut self.outputs.counters,
                ),
                RxAction::PeerAbort {
                    src,
                    transaction_id,
                    max_size,
                    security,
                } => self.out.peer_abort(
                    now,
                    src,
                    transaction_id,
                    max_size,
                    security,
                    &mut self.outputs,
                ),
            }
        }
    }

    /// The next confirm or indication, or `None`. Drain it after every input.
    pub fn poll_event(&mut self) -> Option<MpxEvent> {
        self.outputs.events.pop_front()
    }

    /// When [`MpxService::handle_timeout`] must be called next (the earliest reassembly
    /// deadline), or `None` if no timer runs. Re-read it after every input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rx.poll_timeout()
    }

    /// Drops every reassembly whose deadline is at or before `now`. Calling it early or
    /// repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.rx.handle_timeout(now, &mut self.outputs.counters);
    }

    /// The counters.
    pub fn counters(&self) -> &MpxCounters {
        &self.outputs.counters
    }

    /// Reassembly memory reserved right now (the sum of the Total Sizes of running
    /// reassemblies); never more than `max_buffered_octets`.
    pub fn buffered_octets(&self) -> usize {
        self.rx.buffered_octets()
    }

    /// Reassemblies running right now; never more than `max_concurrent_reassemblies`.
    pub fn active_reassemblies(&self) -> usize {
        self.rx.len()
    }

    /// Requests accepted and not yet confirmed.
    pub fn pending_requests(&self) -> usize {
        self.out.pending()
    }
}
