//! Inbound half: MPX IEs → MPX-DATA.indication, with reassembly keyed by (source address,
//! transaction ID) (spec/mpx-wire-format.md §4.4 Inbound), bounded in count and memory.

use std::collections::BTreeMap;

use kmp_api::addr::{Address, PanId};
use kmp_api::id::MultiplexId;
use kmp_api::primitives::MpxDataIndication;
use kmp_api::security::SecurityParams;
use kmp_api::time::Instant;

use super::{MpxConfig, MpxCounters, RxFrameInfo};
use crate::wire::{self, MpxIeRepr};

/// How to address an Abort back to the sender of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    /// The sender.
    pub(crate) peer: Address,
    /// The sender's PAN.
    pub(crate) peer_pan: PanId,
    /// The sender addressed us by our short address: answer from it.
    pub(crate) our_short: bool,
    /// The sender elided its PAN IDs: do the same.
    pub(crate) pan_id_suppressed: bool,
    /// The sender suppressed its sequence number: do the same.
    pub(crate) seq_suppressed: bool,
    /// The sender's protection: answer with the same.
    pub(crate) security: SecurityParams,
}

impl ReplyTo {
    fn new(cfg: &MpxConfig, info: &RxFrameInfo) -> ReplyTo {
        let (src_pan, _) = info.implied_pans(cfg.pan_id);
        ReplyTo {
            peer: info.src_addr,
            peer_pan: src_pan.unwrap_or(cfg.pan_id),
            our_short: matches!(info.dst_addr, Address::Short(_)),
            pan_id_suppressed: info.src_pan.is_none() && info.dst_pan.is_none(),
            seq_suppressed: info.dsn.is_none(),
            security: info.security,
        }
    }
}

/// What the service has to do after an MPX IE was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RxAction {
    /// Hand this indication to the upper layer.
    Deliver(MpxDataIndication),
    /// Send an Abort for the peer's transaction.
    SendAbort {
        reply: ReplyTo,
        transaction_id: u8,
        max_size: Option<u16>,
    },
    /// The peer sent an Abort: end our outbound transaction with this TID towards it.
    PeerAbort {
        src: Address,
        transaction_id: u8,
        max_size: Option<u16>,
        security: SecurityParams,
    },
}

/// One reassembly in progress.
#[derive(Debug)]
struct Context {
    /// Total Upper-Layer Frame Size announced by the first fragment.
    total: usize,
    multiplex_id: MultiplexId,
    /// Reassembled data so far; its capacity is `total`, reserved up front.
    buf: Vec<u8>,
    /// Length of the first fragment's data (to recognise its duplicates).
    first_len: usize,
    /// Where the previous middle fragment's data starts in `buf` (to recognise duplicates).
    prev_start: usize,
    /// Number of the next fragment. Wider than the field so that it can pass 255.
    expected: u16,
    /// Protection of the first fragment: later fragments must have at least this.
    security: SecurityParams,
    reply: ReplyTo,
    deadline: Instant,
    /// Creation order, for evicting the oldest.
    serial: u64,
}

type Key = (Address, u8);

/// Running reassemblies.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    contexts: BTreeMap<Key, Context>,
    /// Sum of `total` over `contexts`.
    buffered: usize,
    next_serial: u64,
}

fn indication(
    cfg: &MpxConfig,
    info: &RxFrameInfo,
    multiplex_id: MultiplexId,
    upper_layer_frame: Vec<u8>,
    security: SecurityParams,
    now: Instant,
) -> MpxDataIndication {
    let (src_pan, dst_pan) = info.implied_pans(cfg.pan_id);
    MpxDataIndication {
        src_pan,
        src_addr: info.src_addr,
        dst_pan,
        dst_addr: info.dst_addr,
        multiplex_id,
        upper_layer_frame,
        lqi: info.lqi,
        dsn: info.dsn,
        security,
        timestamp: now,
    }
}

impl Reassembler {
    pub(crate) fn buffered_octets(&self) -> usize {
        self.buffered
    }

    pub(crate) fn len(&self) -> usize {
        self.contexts.len()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.contexts.values().map(|c| c.deadline).min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, counters: &mut MpxCounters) {
        let expired: Vec<Key> = self
            .contexts
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(c) = self.remove(&key) {
                counters.reassembly_timeouts += 1;
                tracing::debug!(
                    src = %key.0,
                    tid = key.1,
                    have = c.buf.len(),
                    total = c.total,
                    "reassembly timed out"
                );
            }
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Context> {
        let c = self.contexts.remove(key)?;
        self.buffered = self.buffered.saturating_sub(c.total);
        Some(c)
    }

    /// Drops a reassembly whose sender is presumably still sending, and tells it to stop.
    fn drop_and_abort(&mut self, key: &Key, out: &mut Vec<RxAction>) {
        if let Some(c) = self.remove(key) {
            out.push(RxAction::SendAbort {
                reply: c.reply,
                transaction_id: key.1,
                max_size: None,
            });
        }
    }

    pub(crate) fn receive(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        info: &RxFrameInfo,
        content: &[u8],
        counters: &mut MpxCounters,
        out: &mut Vec<RxAction>,
    ) {
        let repr = match MpxIeRepr::parse_bytes(content) {
            Ok(r) => r,
            Err(wire::Error::ReservedTransferType(t)) => {
                counters.rx_reserved_transfer_type += 1;
                tracing::debug!(src = %info.src_addr, t, "MPX IE with a reserved transfer type");
                return;
            }
            Err(e) => {
                counters.rx_malformed += 1;
                tracing::debug!(src = %info.src_addr, error = %e, "malformed MPX IE");
                return;
            }
        };
        match repr {
            MpxIeRepr::FullFrame {
                multiplex_id, data, ..
            }
            | MpxIeRepr::FullFrameCompressed { multiplex_id, data } => {
                counters.rx_full_frames += 1;
                out.push(RxAction::Deliver(indication(
                    cfg,
                    info,
                    multiplex_id,
                    data.to_vec(),
                    info.security,
                    now,
                )));
            }
            MpxIeRepr::FirstFragment {
                transaction_id,
                total_size,
                multiplex_id,
                data,
            } => {
                counters.rx_fragments += 1;
                if self.unicast(info, counters) {
                    let first = First {
                        tid: transaction_id,
                        total_size,
                        multiplex_id,
                        data,
                    };
                    self.first(now, cfg, info, first, counters, out);
                }
            }
            MpxIeRepr::MiddleFragment {
                transaction_id,
                fragment_number,
                data,
            }
            | MpxIeRepr::LastFragment {
                transaction_id,
                fragment_number,
                data,
            } => {
                counters.rx_fragments += 1;
                if self.unicast(info, counters) {
                    let frag = Later {
                        tid: transaction_id,
                        number: fragment_number,
                        data,
                        last: matches!(repr, MpxIeRepr::LastFragment { .. }),
                    };
                    self.later(now, cfg, info, frag, counters, out);
                }
            }
            MpxIeRepr::Abort {
                transaction_id,
                max_size,
            } => {
                counters.rx_aborts += 1;
                let key = (info.src_addr, transaction_id);
                if let Some(c) = self.contexts.get(&key) {
                    if info.security.level.satisfies(c.security.level) {
                        self.remove(&key);
                        tracing::debug!(src = %key.0, tid = key.1, "reassembly aborted by sender");
                    } else {
                        counters.rx_security_mismatch += 1;
                        tracing::warn!(src = %key.0, tid = key.1, "under-protected abort ignored");
                    }
                }
                out.push(RxAction::PeerAbort {
                    src: info.src_addr,
                    transaction_id,
                    max_size,
                    security: info.security,
                });
            }
        }
    }

    /// Fragments need acknowledgments, so they must come from and go to one device.
    fn unicast(&self, info: &RxFrameInfo, counters: &mut MpxCounters) -> bool {
        let ok = info.is_unicast() && info.src_addr != Address::Absent;
        if !ok {
            counters.rx_fragment_not_unicast += 1;
            tracing::debug!(
                src = %info.src_addr,
                dst = %info.dst_addr,
                "fragment not sent unicast: dropped"
            );
        }
        ok
    }

    fn first(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        info: &RxFrameInfo,
        f: First<'_>,
        counters: &mut MpxCounters,
        out: &mut Vec<RxAction>,
    ) {
        let key = (info.src_addr, f.tid);
        let total = usize::from(f.total_size);
        if total == 0 || f.data.len() > total {
            counters.rx_size_mismatch += 1;
            tracing::debug!(
                src = %key.0,
                tid = key.1,
                total,
                len = f.data.len(),
                "first fragment inconsistent with its Total Size"
            );
            return;
        }
        if let Some(c) = self.contexts.get(&key)
            && !info.security.level.satisfies(c.security.level)
        {
            counters.rx_security_mismatch += 1;
            tracing::warn!(src = %key.0, tid = key.1, "under-protected first fragment ignored");
            return;
        }
        let max = cfg.effective_max_upper_layer_size();
        if f.total_size > max {
            counters.rx_oversized += 1;
            tracing::warn!(
                src = %key.0,
                tid = key.1,
                total,
                max,
                "first fragment announces more than we accept: refused"
            );
            // A new first fragment means the sender gave up whatever ran under this TID.
            self.remove(&key);
            out.push(RxAction::SendAbort {
                reply: ReplyTo::new(cfg, info),
                transaction_id: f.tid,
                max_size: Some(max),
            });
            return;
        }
        if let Some(c) = self.contexts.get(&key) {
            let same = c.total == total
                && c.multiplex_id == f.multiplex_id
                && c.first_len == f.data.len()
                && c.buf.get(..c.first_len) == Some(f.data);
            if same {
                counters.rx_duplicates += 1;
                tracing::debug!(src = %key.0, tid = key.1, "duplicate first fragment ignored");
                return;
            }
            counters.reassembly_restarted += 1;
            tracing::debug!(src = %key.0, tid = key.1, "new transaction reuses a running TID");
            self.remove(&key);
        }
        self.make_room(total, cfg, counters, out);
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(f.data);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.contexts.insert(
            key,
            Context {
                total,
                multiplex_id: f.multiplex_id,
                buf,
                first_len: f.data.len(),
                prev_start: 0,
                expected: 1,
                security: info.security,
                reply: ReplyTo::new(cfg, info),
                deadline: now + cfg.reassembly_timeout,
                serial,
            },
        );
        self.buffered += total;
    }

    /// Evicts the oldest reassemblies until one more of `total` octets fits both bounds.
    /// `total` is at most `max_buffered_octets` (larger ones are refused before).
    fn make_room(
        &mut self,
        total: usize,
        cfg: &MpxConfig,
        counters: &mut MpxCounters,
        out: &mut Vec<RxAction>,
    ) {
        while self.contexts.len() >= cfg.max_concurrent_reassemblies
            || self.buffered + total > cfg.max_buffered_octets
        {
            let Some(oldest) = self
                .contexts
                .iter()
                .min_by_key(|(_, c)| c.serial)
                .map(|(k, _)| *k)
            else {
                break;
            };
            counters.reassembly_evicted += 1;
            tracing::warn!(
                src = %oldest.0,
                tid = oldest.1,
                active = self.contexts.len(),
                buffered = self.buffered,
                "reassembly evicted to make room"
            );
            self.drop_and_abort(&oldest, out);
        }
    }

    fn later(
        &mut self,
        now: Instant,
        cfg: &MpxConfig,
        info: &RxFrameInfo,
        f: Later<'_>,
        counters: &mut MpxCounters,
        out: &mut Vec<RxAction>,
    ) {
        let key = (info.src_addr, f.tid);
        let Some(c) = self.contexts.get_mut(&key) else {
            counters.rx_orphan_fragments += 1;
            tracing::debug!(
                src = %key.0,
                tid = key.1,
                n = f.number,
                "fragment without a running reassembly"
            );
            return;
        };
        if !info.security.level.satisfies(c.security.level) {
            counters.rx_security_mismatch += 1;
            tracing::warn!(src = %key.0, tid = key.1, "under-protected fragment ignored");
            return;
        }
        let n = u16::from(f.number);
        if n != c.expected {
            let duplicate =
                !f.last && n + 1 == c.expected && c.buf.get(c.prev_start..) == Some(f.data);
            if duplicate {
                counters.rx_duplicates += 1;
                tracing::debug!(src = %key.0, tid = key.1, n, "duplicate fragment ignored");
            } else {
                counters.rx_out_of_order += 1;
                tracing::debug!(
                    src = %key.0,
                    tid = key.1,
                    n,
                    expected = c.expected,
                    "fragment out of order: reassembly dropped"
                );
                self.drop_and_abort(&key, out);
            }
            return;
        }
        let have = c.buf.len() + f.data.len();
        if have > c.total || (f.last && have != c.total) {
            counters.rx_size_mismatch += 1;
            tracing::debug!(
                src = %key.0,
                tid = key.1,
                have,
                total = c.total,
                "fragments do not add up to the Total Size: reassembly dropped"
            );
            if f.last {
                self.remove(&key);
            } else {
                self.drop_and_abort(&key, out);
            }
            return;
        }
        if !f.last {
            c.prev_start = c.buf.len();
            c.buf.extend_from_slice(f.data);
            c.expected += 1;
            c.deadline = now + cfg.reassembly_timeout;
            return;
        }
        let Some(mut c) = self.remove(&key) else {
            return;
        };
        c.buf.extend_from_slice(f.data);
        counters.rx_reassembled += 1;
        tracing::debug!(src = %key.0, tid = key.1, len = c.total, "upper-layer frame reassembled");
        out.push(RxAction::Deliver(indication(
            cfg,
            info,
            c.multiplex_id,
            c.buf,
            c.security,
            now,
        )));
    }
}

/// A first fragment's fields.
struct First<'a> {
    tid: u8,
    total_size: u16,
    multiplex_id: MultiplexId,
    data: &'a [u8],
}

/// A middle or last fragment's fields.
struct Later<'a> {
    tid: u8,
    number: u8,
    data: &'a [u8],
    last: bool,
}
