//! Outbound half: MPX-DATA.request → 802.15.4 data frames (spec/mpx-wire-format.md §4.4
//! Outbound), one frame in flight per transaction, gated by the MAC's transmit status.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kmp_api::addr::{Address, AddressingMode, PanId};
use kmp_api::id::MultiplexId;
use kmp_api::primitives::{MacStatus, MpxDataRequest, MpxHandle};
use kmp_api::security::{SecurityLevel, SecurityParams};
use kmp_api::time::Instant;

use super::inbound::ReplyTo;
use super::{MpxConfig, MpxCounters, MpxError, Outputs, Transmit, TransmitKind, TxToken};
use crate::wire::ie::{self, MAX_PAYLOAD_IE_LEN};
use crate::wire::mpx_ie::MAX_TRANSACTION_ID;
use crate::wire::{
    self, AuxSecurityHeaderRepr, FcsLen, FrameRepr, FrameType, FrameVersion, MpxIeRepr,
};

/// Octets of the MPX IE descriptor (a payload IE descriptor).
const MPX_IE_DESCRIPTOR_LEN: usize = 2;
/// MPX header octets of a full frame with a 2-octet Multiplex ID (type 0).
const FULL_FRAME_HEADER: usize = 3;
/// MPX header octets of a full frame with a compressed Multiplex ID (type 1).
const COMPRESSED_FULL_FRAME_HEADER: usize = 1;
/// MPX header octets of a first fragment.
const FIRST_FRAGMENT_HEADER: usize = 6;
/// MPX header octets of a middle or last fragment.
const FRAGMENT_HEADER: usize = 2;
/// Fragment numbers are 8 bits, so a transaction has at most 256 fragments.
const MAX_FRAGMENTS: usize = 256;
/// Aborts waiting to go out; beyond this the oldest is dropped, so that a flood of refused
/// first fragments cannot grow the queue without bound.
const MAX_QUEUED_ABORTS: usize = 64;
/// Remembered (destination, TID) pairs that must not be reused yet.
const MAX_QUARANTINED_TIDS: usize = 256;
/// Number of transaction IDs (5 bits).
const TID_SPACE: u8 = MAX_TRANSACTION_ID + 1;

/// Everything of an outgoing frame except its sequence number and its MPX IE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameShape {
    pub(crate) ack_request: bool,
    pub(crate) seq_suppressed: bool,
    pub(crate) dst_pan: Option<PanId>,
    pub(crate) dst_addr: Address,
    pub(crate) src_pan: Option<PanId>,
    pub(crate) src_addr: Address,
    pub(crate) security: SecurityParams,
}

impl FrameShape {
    /// Chooses PAN ID presence with the 2015 PAN ID compression table (802.15.4-2015
    /// Table 7-2, spec §1.2). With `pan_id_suppressed` the row with the fewest PAN IDs;
    /// otherwise the destination PAN ID wherever the table has one (ext/ext: row 7; short
    /// addressing within our PAN: rows 12–14; towards another PAN: rows 9–11 with both), and
    /// our PAN ID as source PAN ID when there is no destination address (row 5, Wi-SUN
    /// broadcast).
    #[allow(clippy::too_many_arguments)] // one argument per field of the frame header
    pub(crate) fn new(
        cfg: &MpxConfig,
        src_addr: Address,
        dst_addr: Address,
        dst_pan: PanId,
        pan_id_suppressed: bool,
        seq_suppressed: bool,
        security: SecurityParams,
        ack_request: bool,
    ) -> FrameShape {
        use AddressingMode as M;
        let own = cfg.pan_id;
        let (dst_pan, src_pan) = match (dst_addr.mode(), src_addr.mode()) {
            _ if pan_id_suppressed => match (dst_addr.mode(), src_addr.mode()) {
                (M::None, _) | (_, M::None) | (M::Extended, M::Extended) => (None, None),
                _ => (Some(dst_pan), None),
            },
            (M::None, M::None) | (_, M::None) | (M::Extended, M::Extended) => (Some(dst_pan), None),
            (M::None, _) => (None, Some(own)),
            _ if dst_pan == own => (Some(dst_pan), None),
            _ => (Some(dst_pan), Some(own)),
        };
        FrameShape {
            ack_request,
            seq_suppressed,
            dst_pan,
            dst_addr,
            src_pan,
            src_addr,
            security,
        }
    }

    fn aux_header(&self) -> Option<AuxSecurityHeaderRepr> {
        (self.security.level != SecurityLevel::None).then_some(AuxSecurityHeaderRepr {
            level: self.security.level,
            key_id: self.security.key_id,
            // Placeholder: the outgoing frame-security procedure writes the real counter.
            frame_counter: Some(0),
            asn_in_nonce: false,
        })
    }

    fn repr<'a>(&self, seq: Option<u8>, payload_ies: &'a [u8]) -> FrameRepr<'a> {
        FrameRepr {
            frame_type: FrameType::Data,
            frame_version: FrameVersion::V2015,
            frame_pending: false,
            ack_request: self.ack_request,
            seq: if self.seq_suppressed { None } else { seq },
            dst_pan: self.dst_pan,
            dst_addr: self.dst_addr,
            src_pan: self.src_pan,
            src_addr: self.src_addr,
            security: self.aux_header(),
            header_ies: &[],
            payload_ies,
            payload_termination: false,
            payload: &[],
        }
    }

    /// Octets a frame of this shape spends around the MPX IE content: MHR, auxiliary security
    /// header, HT1, the MPX IE descriptor, MIC and FCS.
    pub(crate) fn overhead(&self, fcs: FcsLen) -> usize {
        // Without IEs the repr has no HT1; add it and the MPX IE descriptor by hand.
        self.repr(Some(0), &[]).buffer_len(fcs) + ie::HT1.len() + MPX_IE_DESCRIPTOR_LEN
    }

    /// The largest MPX IE content that fits one MPDU of `phy` octets.
    pub(crate) fn max_mpx_content(&self, phy: u16, fcs: FcsLen) -> usize {
        usize::from(phy)
            .saturating_sub(self.overhead(fcs))
            .min(MAX_PAYLOAD_IE_LEN)
    }

    /// Builds the complete frame around `mpx`.
    pub(crate) fn build(
        &self,
        seq: Option<u8>,
        mpx: &MpxIeRepr<'_>,
        fcs: FcsLen,
    ) -> wire::Result<Vec<u8>> {
        let ies = mpx.to_payload_ie()?;
        let repr = self.repr(seq, &ies);
        let mut frame = vec![0u8; repr.buffer_len(fcs)];
        let n = repr.emit(&mut frame, fcs)?;
        frame.truncate(n);
        Ok(frame)
    }
}

/// How a request is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// One full frame.
    Full { compressed: bool },
    /// Fragments.
    Fragmented(Fragmenter),
}

/// Progress of a fragmented transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fragmenter {
    /// Upper-layer octets in the first fragment.
    first_cap: usize,
    /// Upper-layer octets in each later fragment.
    cap: usize,
    /// Allocated when the first fragment goes out.
    tid: Option<u8>,
    /// Upper-layer octets acknowledged so far.
    offset: usize,
    /// Number of the next fragment.
    next_number: u8,
}

impl Fragmenter {
    /// The next fragment, where its data ends, and whether it is the last.
    fn next<'a>(
        &self,
        tid: u8,
        multiplex_id: MultiplexId,
        data: &'a [u8],
    ) -> Option<(MpxIeRepr<'a>, usize, bool)> {
        if self.next_number == 0 {
            let end = self.first_cap.min(data.len());
            let repr = MpxIeRepr::FirstFragment {
                transaction_id: tid,
                total_size: u16::try_from(data.len()).ok()?,
                multiplex_id,
                data: &data[..end],
            };
            return Some((repr, end, false));
        }
        let rest = data.get(self.offset..)?;
        if rest.len() <= self.cap {
            let repr = MpxIeRepr::LastFragment {
                transaction_id: tid,
                fragment_number: self.next_number,
                data: rest,
            };
            Some((repr, data.len(), true))
        } else {
            let repr = MpxIeRepr::MiddleFragment {
                transaction_id: tid,
                fragment_number: self.next_number,
                data: &rest[..self.cap],
            };
            Some((repr, self.offset + self.cap, false))
        }
    }
}

/// The frame of a transaction that is waiting for its transmit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    token: TxToken,
    /// Where the frame's upper-layer data ends.
    end: usize,
    /// Whether the frame completes the transaction.
    last: bool,
}

/// One accepted MPX-DATA.request.
#[derive(Debug)]
struct Transaction {
    handle: MpxHandle,
    queued_at: Instant,
    multiplex_id: MultiplexId,
    data: Vec<u8>,
    shape: FrameShape,
    plan: Plan,
    in_flight: Option<Sent>,
}

impl Transaction {
    fn tid(&self) -> Option<u8> {
        match self.plan {
            Plan::Fragmented(f) => f.tid,
            Plan::Full { .. } => None,
        }
    }
}

/// What a token handed out stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    Data(MpxHandle),
    Abort,
    /// The transaction was purged or aborted while this frame was out: ignore its status.
    Orphaned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AbortFrame {
    shape: FrameShape,
    tid: u8,
    max_size: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quarantined {
    dst: Address,
    tid: u8,
    until: Instant,
}

/// The outbound state of the service.
#[derive(Debug)]
pub(crate) struct Outbound {
    transactions: VecDeque<Transaction>,
    aborts: VecDeque<AbortFrame>,
    tokens: BTreeMap<TxToken, TokenUse>,
    next_token: u64,
    dsn: u8,
    next_tid: u8,
    quarantine: VecDeque<Quarantined>,
}

impl Outbound {
    pub(crate) fn new(initial_dsn: u8) -> Outbound {
        Outbound {
            transactions: VecDeque::new(),
            aborts: VecDeque::new(),
            tokens: BTreeMap::new(),
            next_token: 0,
            dsn: initial_dsn,
            next_tid: 0,
            quarantine: VecDeque::new(),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.transactions.len()
    }

    pub(crate) fn request(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        req: MpxDataRequest,
    ) -> Result<(), MpxError> {
        if self.transactions.iter().any(|t| t.handle == req.handle) {
            return Err(MpxError::DuplicateHandle(req.handle));
        }
        if self.transactions.len() >= cfg.max_pending_requests {
            return Err(MpxError::QueueFull {
                pending: self.transactions.len(),
            });
        }
        let len = req.upper_layer_frame.len();
        let max_total = usize::from(u16::MAX);
        if len > max_total {
            return Err(MpxError::FrameTooLong {
                len,
                max: max_total,
            });
        }
        let src_addr = match req.src_addr_mode {
            AddressingMode::None => Address::Absent,
            AddressingMode::Extended => Address::Extended(cfg.extended_address),
            AddressingMode::Short => Address::Short(cfg.usable_short_address().ok_or(
                MpxError::InvalidParameter("short source addressing without a short address"),
            )?),
        };
        if src_addr == Address::Absent && req.dst_addr == Address::Absent {
            return Err(MpxError::InvalidParameter(
                "neither a source nor a destination address",
            ));
        }
        let broadcast = matches!(req.dst_addr, Address::Absent) || req.dst_addr.is_broadcast();
        let mut shape = FrameShape::new(
            cfg,
            src_addr,
            req.dst_addr,
            req.dst_pan,
            req.pan_id_suppressed,
            req.seq_num_suppressed,
            req.security,
            // 802.15.4 forbids acknowledgment requests on broadcast frames.
            req.ack_tx && !broadcast,
        );
        let max_content = shape.max_mpx_content(cfg.max_phy_packet_size, cfg.fcs_len);
        let compressed = cfg.compress_small_mux_id && req.multiplex_id.is_compressible();
        let full_header = if compressed {
            COMPRESSED_FULL_FRAME_HEADER
        } else {
            FULL_FRAME_HEADER
        };
        let plan = if len + full_header <= max_content {
            Plan::Full { compressed }
        } else if broadcast {
            return Err(MpxError::BroadcastTooLong {
                len,
                max: max_content.saturating_sub(full_header),
            });
        } else {
            let limit = cfg.max_fragment_data.map_or(usize::MAX, usize::from);
            let first_cap = max_content.saturating_sub(FIRST_FRAGMENT_HEADER).min(limit);
            let cap = max_content.saturating_sub(FRAGMENT_HEADER).min(limit);
            let max = if first_cap == 0 || cap == 0 {
                0
            } else {
                (first_cap + (MAX_FRAGMENTS - 1) * cap).min(max_total)
            };
            if len > max {
                return Err(MpxError::FrameTooLong { len, max });
            }
            // Fragments are chained on MAC acknowledgments (spec §4.4 Outbound 2).
            shape.ack_request = true;
            Plan::Fragmented(Fragmenter {
                first_cap,
                cap,
                tid: None,
                offset: 0,
                next_number: 0,
            })
        };
        tracing::debug!(
            handle = req.handle.0,
            dst = %req.dst_addr,
            len,
            ?plan,
            "MPX-DATA.request queued"
        );
        self.transactions.push_back(Transaction {
            handle: req.handle,
            queued_at: now,
            multiplex_id: req.multiplex_id,
            data: req.upper_layer_frame,
            shape,
            plan,
            in_flight: None,
        });
        Ok(())
    }

    pub(crate) fn purge(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        handle: MpxHandle,
        outputs: &mut Outputs,
    ) -> MacStatus {
        let Some(idx) = self.position(handle) else {
            tracing::debug!(handle = handle.0, "MPX-PURGE.request for an unknown handle");
            return MacStatus::InvalidParameter;
        };
        let send_abort = cfg.send_abort_on_purge;
        self.end(
            idx,
            now,
            cfg,
            MacStatus::Purged,
            send_abort,
            &mut outputs.counters,
        );
        outputs.counters.purged += 1;
        outputs.confirm(handle, MacStatus::Purged, now);
        tracing::debug!(handle = handle.0, "transaction purged");
        MacStatus::Success
    }

    /// Removes transaction `idx` after a failure. If fragments went out, its TID is not reused
    /// towards the peer for `reassembly_timeout` (the peer may still hold a reassembly for it),
    /// and if `abort`, an Abort tells the peer to drop that reassembly now.
    fn end(
        &mut self,
        idx: usize,
        now: Instant,
        cfg: &MpxConfig,
        status: MacStatus,
        abort: bool,
        counters: &mut MpxCounters,
    ) {
        let Some(tx) = self.transactions.remove(idx) else {
            return;
        };
        if let Some(sent) = tx.in_flight {
            self.tokens.insert(sent.token, TokenUse::Orphaned);
        }
        if let Some(tid) = tx.tid() {
            self.quarantine_tid(tx.shape.dst_addr, tid, now + cfg.reassembly_timeout);
            if abort {
                self.queue_abort(
                    AbortFrame {
                        shape: FrameShape {
                            ack_request: true,
                            ..tx.shape
                        },
                        tid,
                        max_size: None,
                    },
                    counters,
                );
            }
        }
        tracing::debug!(
            handle = tx.handle.0,
            dst = %tx.shape.dst_addr,
            ?status,
            age_us = now.saturating_duration_since(tx.queued_at).as_micros(),
            "transaction ended without success"
        );
    }

    fn quarantine_tid(&mut self, dst: Address, tid: u8, until: Instant) {
        if self.quarantine.len() >= MAX_QUARANTINED_TIDS {
            self.quarantine.pop_front();
        }
        self.quarantine.push_back(Quarantined { dst, tid, until });
    }

    fn queue_abort(&mut self, frame: AbortFrame, counters: &mut MpxCounters) {
        if self.aborts.len() >= MAX_QUEUED_ABORTS {
            self.aborts.pop_front();
            counters.tx_aborts_dropped += 1;
            tracing::warn!("abort queue full: oldest abort dropped");
        }
        self.aborts.push_back(frame);
    }

    /// Queues an Abort in reply to a peer's frame (our reassembly was refused or dropped).
    pub(crate) fn queue_reply_abort(
        &mut self,
        cfg: &MpxConfig,
        reply: &ReplyTo,
        tid: u8,
        max_size: Option<u16>,
        counters: &mut MpxCounters,
    ) {
        let src_addr = match (reply.our_short, cfg.usable_short_address()) {
            (true, Some(short)) => Address::Short(short),
            _ => Address::Extended(cfg.extended_address),
        };
        let shape = FrameShape::new(
            cfg,
            src_addr,
            reply.peer,
            reply.peer_pan,
            reply.pan_id_suppressed,
            reply.seq_suppressed,
            reply.security,
            true,
        );
        self.queue_abort(
            AbortFrame {
                shape,
                tid,
                max_size,
            },
            counters,
        );
    }

    /// The peer `src` aborted transaction `tid`: ends our running transaction towards it with
    /// that TID, if there is one and the abort is protected at least as well as it.
    pub(crate) fn peer_abort(
        &mut self,
        now: Instant,
        src: Address,
        tid: u8,
        max_size: Option<u16>,
        security: SecurityParams,
        outputs: &mut Outputs,
    ) {
        let Some(idx) = self
            .transactions
            .iter()
            .position(|t| t.shape.dst_addr == src && t.tid() == Some(tid))
        else {
            return;
        };
        let tx = &self.transactions[idx];
        if !security.level.satisfies(tx.shape.security.level) {
            outputs.counters.rx_security_mismatch += 1;
            tracing::warn!(
                %src,
                tid,
                level = %security.level,
                "abort protected less than the transaction it names: ignored"
            );
            return;
        }
        let handle = tx.handle;
        let Some(tx) = self.transactions.remove(idx) else {
            return;
        };
        if let Some(sent) = tx.in_flight {
            self.tokens.insert(sent.token, TokenUse::Orphaned);
        }
        outputs.counters.tx_peer_aborts += 1;
        let status = MacStatus::Aborted {
            peer_max_size: max_size,
        };
        tracing::debug!(handle = handle.0, %src, tid, ?max_size, "peer aborted our transaction");
        outputs.confirm(handle, status, now);
    }

    fn position(&self, handle: MpxHandle) -> Option<usize> {
        self.transactions.iter().position(|t| t.handle == handle)
    }

    fn token(&mut self, use_: TokenUse) -> TxToken {
        let t = TxToken(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        self.tokens.insert(t, use_);
        t
    }

    fn next_seq(&mut self, shape: &FrameShape) -> Option<u8> {
        if shape.seq_suppressed {
            return None;
        }
        let s = self.dsn;
        self.dsn = self.dsn.wrapping_add(1);
        Some(s)
    }

    /// A TID not in use towards `dst` and not quarantined for it, from the rolling counter.
    fn allocate_tid(&mut self, now: Instant, dst: Address) -> u8 {
        self.quarantine.retain(|q| q.until > now);
        let blocked = |t: u8| {
            self.transactions
                .iter()
                .any(|x| x.shape.dst_addr == dst && x.tid() == Some(t))
                || self.quarantine.iter().any(|q| q.dst == dst && q.tid == t)
        };
        let free = (0..TID_SPACE)
            .map(|i| (self.next_tid + i) % TID_SPACE)
            .find(|&t| !blocked(t));
        let tid = match free {
            Some(t) => t,
            None => {
                // Every TID is quarantined towards this peer: reuse the one that has waited
                // longest rather than stall the peer's traffic.
                let oldest = self
                    .quarantine
                    .iter()
                    .position(|q| q.dst == dst)
                    .and_then(|i| self.quarantine.remove(i));
                tracing::warn!(%dst, "all transaction IDs quarantined towards peer");
                oldest.map_or(self.next_tid, |q| q.tid)
            }
        };
        self.next_tid = (tid + 1) % TID_SPACE;
        tid
    }

    /// The index of the first transaction that may send now: idle, and the oldest pending one
    /// towards its destination.
    fn next_ready(&self) -> Option<usize> {
        let mut busy = BTreeSet::new();
        for (i, t) in self.transactions.iter().enumerate() {
            if busy.insert(t.shape.dst_addr) && t.in_flight.is_none() {
                return Some(i);
            }
        }
        None
    }

    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        outputs: &mut Outputs,
    ) -> Option<Transmit> {
        while let Some(abort) = self.aborts.pop_front() {
            let mpx = MpxIeRepr::Abort {
                transaction_id: abort.tid,
                max_size: abort.max_size,
            };
            let seq = self.next_seq(&abort.shape);
            match abort.shape.build(seq, &mpx, cfg.fcs_len) {
                Ok(frame) => {
                    let token = self.token(TokenUse::Abort);
                    outputs.counters.tx_frames += 1;
                    outputs.counters.tx_aborts_sent += 1;
                    tracing::debug!(
                        dst = %abort.shape.dst_addr,
                        tid = abort.tid,
                        max_size = ?abort.max_size,
                        "sending abort"
                    );
                    return Some(Transmit {
                        token,
                        dst: abort.shape.dst_addr,
                        frame,
                        security: abort.shape.security,
                        ack_request: abort.shape.ack_request,
                        kind: TransmitKind::Abort {
                            transaction_id: abort.tid,
                            max_size: abort.max_size,
                        },
                    });
                }
                Err(e) => {
                    outputs.counters.tx_internal_errors += 1;
                    tracing::warn!(error = %e, "could not build an abort frame");
                }
            }
        }
        while let Some(idx) = self.next_ready() {
            match self.send_next(idx, now, cfg, &mut outputs.counters) {
                Ok(t) => return Some(t),
                Err(e) => {
                    // Only reachable through a bug: the request was checked when accepted.
                    outputs.counters.tx_internal_errors += 1;
                    tracing::warn!(error = %e, "could not build a frame for an accepted request");
                    if let Some(tx) = self.transactions.remove(idx) {
                        outputs.confirm(tx.handle, MacStatus::FrameTooLong, now);
                    }
                }
            }
        }
        None
    }

    /// Builds and hands out the next frame of transaction `idx`.
    fn send_next(
        &mut self,
        idx: usize,
        now: Instant,
        cfg: &MpxConfig,
        counters: &mut MpxCounters,
    ) -> wire::Result<Transmit> {
        let (dst, needs_tid) = {
            let tx = &self.transactions[idx];
            let needs = matches!(tx.plan, Plan::Fragmented(Fragmenter { tid: None, .. }));
            (tx.shape.dst_addr, needs)
        };
        if needs_tid {
            let tid = self.allocate_tid(now, dst);
            if let Plan::Fragmented(f) = &mut self.transactions[idx].plan {
                f.tid = Some(tid);
            }
        }
        let shape = self.transactions[idx].shape;
        let seq = self.next_seq(&shape);
        let tx = &self.transactions[idx];
        let (mpx, end, last, kind) = match tx.plan {
            Plan::Full { compressed } => {
                let mpx = if compressed {
                    MpxIeRepr::FullFrameCompressed {
                        multiplex_id: tx.multiplex_id,
                        data: &tx.data,
                    }
                } else {
                    MpxIeRepr::FullFrame {
                        transaction_id: 0,
                        multiplex_id: tx.multiplex_id,
                        data: &tx.data,
                    }
                };
                let kind = TransmitKind::FullFrame { handle: tx.handle };
                (mpx, tx.data.len(), true, kind)
            }
            Plan::Fragmented(f) => {
                let tid = f.tid.ok_or(wire::Error::FieldOverflow("transaction ID"))?;
                let (mpx, end, last) = f
                    .next(tid, tx.multiplex_id, &tx.data)
                    .ok_or(wire::Error::FieldOverflow("total size"))?;
                let kind = TransmitKind::Fragment {
                    handle: tx.handle,
                    transaction_id: tid,
                    fragment_number: f.next_number,
                    last,
                };
                (mpx, end, last, kind)
            }
        };
        let frame = tx.shape.build(seq, &mpx, cfg.fcs_len)?;
        if frame.len() > usize::from(cfg.max_phy_packet_size) {
            return Err(wire::Error::FieldOverflow(
                "frame longer than the PHY allows",
            ));
        }
        let token = self.token(TokenUse::Data(tx.handle));
        self.transactions[idx].in_flight = Some(Sent { token, end, last });
        counters.tx_frames += 1;
        match kind {
            TransmitKind::FullFrame { .. } => counters.tx_full_frames += 1,
            _ => counters.tx_fragments += 1,
        }
        Ok(Transmit {
            token,
            dst: shape.dst_addr,
            frame,
            security: shape.security,
            ack_request: shape.ack_request,
            kind,
        })
    }

    pub(crate) fn handle_tx_status(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        token: TxToken,
        status: MacStatus,
        outputs: &mut Outputs,
    ) {
        let handle = match self.tokens.remove(&token) {
            Some(TokenUse::Data(handle)) => handle,
            Some(TokenUse::Abort) => {
                if status != MacStatus::Success {
                    outputs.counters.tx_aborts_failed += 1;
                    tracing::debug!(?status, "abort frame not delivered");
                }
                return;
            }
            Some(TokenUse::Orphaned) => return,
            None => {
                outputs.counters.tx_status_unknown += 1;
                tracing::debug!(token = token.0, "transmit status for an unknown token");
                return;
            }
        };
        let found = self.position(handle).and_then(|idx| {
            let sent = self.transactions[idx].in_flight?;
            (sent.token == token).then_some((idx, sent))
        });
        let Some((idx, sent)) = found else {
            outputs.counters.tx_status_unknown += 1;
            return;
        };
        if status != MacStatus::Success {
            outputs.counters.tx_failures += 1;
            self.transactions[idx].in_flight = None;
            self.end(
                idx,
                now,
                cfg,
                status,
                cfg.send_abort_on_tx_failure,
                &mut outputs.counters,
            );
            outputs.confirm(handle, status, now);
            return;
        }
        if sent.last {
            self.transactions.remove(idx);
            outputs.counters.tx_success += 1;
            outputs.confirm(handle, MacStatus::Success, now);
            return;
        }
        let tx = &mut self.transactions[idx];
        tx.in_flight = None;
        let advanced = match &mut tx.plan {
            Plan::Fragmented(f) => f.next_number.checked_add(1).map(|n| {
                f.next_number = n;
                f.offset = sent.end;
            }),
            Plan::Full { .. } => None,
        };
        if advanced.is_none() {
            // Only reachable through a bug: the fragment count was checked on request.
            outputs.counters.tx_internal_errors += 1;
            self.transactions.remove(idx);
            outputs.confirm(handle, MacStatus::FrameTooLong, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmp_api::addr::{ExtendedAddress, ShortAddress};

    fn cfg() -> MpxConfig {
        MpxConfig::new(ExtendedAddress::from_u64(2), PanId(0xabcd))
    }

    fn presence(shape: &FrameShape) -> (bool, bool) {
        (shape.dst_pan.is_some(), shape.src_pan.is_some())
    }

    #[test]
    fn pan_id_presence_follows_the_2015_table() {
        let c = cfg();
        let ext = Address::Extended(ExtendedAddress::from_u64(1));
        let own_ext = Address::Extended(c.extended_address);
        let short = Address::Short(ShortAddress(0x0001));
        let own_short = Address::Short(ShortAddress(0x0002));
        let bc = Address::Short(ShortAddress::BROADCAST);
        let shape = |src, dst, pan, supp| {
            FrameShape::new(&c, src, dst, pan, supp, false, SecurityParams::NONE, true)
        };
        let here = PanId(0xabcd);
        let there = PanId(0x1234);
        // (src, dst, dst PAN, suppressed) → (dst PAN present, src PAN present)
        let cases = [
            (own_ext, ext, here, true, (false, false)), // row 8 (Ex 2, 3)
            (own_ext, ext, here, false, (true, false)), // row 7 (Ex 1)
            (own_ext, Address::Absent, here, false, (false, true)), // row 5 (Ex 4)
            (own_ext, Address::Absent, here, true, (false, false)), // row 6
            (Address::Absent, ext, here, false, (true, false)), // row 3
            (Address::Absent, ext, here, true, (false, false)), // row 4
            (own_short, short, here, false, (true, false)), // row 14
            (own_short, short, there, false, (true, true)), // row 9
            (own_short, short, there, true, (true, false)), // row 14
            (own_ext, short, here, false, (true, false)), // row 12
            (own_short, ext, there, false, (true, true)), // row 11
            (own_ext, bc, PanId::BROADCAST, false, (true, true)), // row 10
        ];
        for (src, dst, pan, supp, want) in cases {
            let s = shape(src, dst, pan, supp);
            assert_eq!(presence(&s), want, "{src} → {dst} {pan} {supp}");
            // The frame codec accepts every choice.
            let mpx = MpxIeRepr::FullFrame {
                transaction_id: 0,
                multiplex_id: MultiplexId::Kmp,
                data: &[1],
            };
            let f = s.build(Some(1), &mpx, FcsLen::Two).unwrap();
            assert_eq!(f.len(), s.overhead(FcsLen::Two) + 4);
        }
    }

    #[test]
    fn spec_worked_example_overhead() {
        // spec §1.8: 127-octet PHY, ext/ext, PAN IDs elided, seq present, no security, FCS 2:
        // 25 octets of overhead, 102 of MPX content.
        let c = cfg();
        let s = FrameShape::new(
            &c,
            Address::Extended(c.extended_address),
            Address::Extended(ExtendedAddress::from_u64(1)),
            c.pan_id,
            true,
            false,
            SecurityParams::NONE,
            true,
        );
        assert_eq!(s.overhead(FcsLen::Two), 25);
        assert_eq!(s.max_mpx_content(127, FcsLen::Two), 102);
        assert_eq!(s.max_mpx_content(2047, FcsLen::Four), 2047 - 27);
        assert_eq!(s.max_mpx_content(20, FcsLen::Two), 0);
    }
}
