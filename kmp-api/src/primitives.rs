//! The IEEE 802.15.9 service primitives as Rust types.
//!
//! The parameter lists follow the MCPS-DATA primitives of IEEE 802.15.4-2015 (8.3) that the MPX
//! data service extends, plus the Multiplex ID; the KMP transport primitives carry the KMP ID,
//! the peer and a handle. Where the 802.15.9 text is not public the parameter set is a project
//! decision, recorded in `docs/DECISIONS.md`.

use crate::addr::{Address, AddressingMode, ExtendedAddress, PanId};
use crate::id::{KmpId, MultiplexId};
use crate::security::SecurityParams;
use crate::session::Outcome;
use crate::time::Instant;

/// Identifies one MPX-DATA.request until its confirm (project-defined width: 32 bits, so a
/// gateway with thousands of peers never reuses a live handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MpxHandle(pub u32);

/// Identifies one KMP instance (session) from KMP-CREATE to KMP-DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KmpHandle(pub u32);

/// Status codes of MAC and MPX confirms (IEEE 802.15.4-2015 Table 8-4 subset, plus the MPX
/// outcomes of fragmentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacStatus {
    /// The frame (every fragment) was sent and, if requested, acknowledged.
    Success,
    /// No acknowledgment after the MAC's retries.
    NoAck,
    /// CSMA-CA failed.
    ChannelAccessFailure,
    /// The frame does not fit aMaxPhyPacketSize (or a broadcast does not fit one MPX IE).
    FrameTooLong,
    /// The MAC transmit queue is full.
    TransactionOverflow,
    /// An indirect transaction expired.
    TransactionExpired,
    /// A parameter is out of range or inconsistent.
    InvalidParameter,
    /// No key for the requested key identifier.
    UnavailableKey,
    /// The outgoing frame counter is exhausted.
    CounterError,
    /// The requested security level is below what the PIB demands.
    ImproperSecurityLevel,
    /// MPX: the transaction was cancelled by MPX-PURGE.request.
    Purged,
    /// MPX: the peer aborted the transaction; it can take at most this many octets if it said.
    Aborted {
        /// The peer's maximum upper-layer frame size, when its abort carried one.
        peer_max_size: Option<u16>,
    },
    /// MPX: the transaction did not complete in time.
    Timeout,
    /// Resources (transaction IDs, buffers) are exhausted.
    NoResources,
}

/// MPX-DATA.request: send an upper-layer frame to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpxDataRequest {
    /// Source addressing mode to use (short needs a short address assigned).
    pub src_addr_mode: AddressingMode,
    /// Destination PAN ID.
    pub dst_pan: PanId,
    /// Destination address (`Address::Absent` or the short broadcast address for broadcast).
    pub dst_addr: Address,
    /// Who the upper-layer frame belongs to.
    pub multiplex_id: MultiplexId,
    /// The upper-layer frame (for Multiplex ID 1: KMP ID prefix and KMP PDU), ≤ 65535 octets.
    pub upper_layer_frame: Vec<u8>,
    /// Handle echoed in the confirm.
    pub handle: MpxHandle,
    /// Request MAC acknowledgments (fragmentation requires them).
    pub ack_tx: bool,
    /// Leave out the sequence number (frame version 2 only).
    pub seq_num_suppressed: bool,
    /// Leave out the PAN IDs where the 2015 compression table allows.
    pub pan_id_suppressed: bool,
    /// Frame security to apply.
    pub security: SecurityParams,
}

/// MPX-DATA.confirm: the outcome of one MPX-DATA.request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpxDataConfirm {
    /// The request's handle.
    pub handle: MpxHandle,
    /// Success, or the MAC/MPX status that stopped the transaction.
    pub status: MacStatus,
    /// When the last frame was sent (or the failure was detected).
    pub timestamp: Instant,
}

/// MPX-DATA.indication: a complete (reassembled) upper-layer frame arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpxDataIndication {
    /// Source PAN ID (after PAN ID compression rules are applied).
    pub src_pan: Option<PanId>,
    /// Source address.
    pub src_addr: Address,
    /// Destination PAN ID.
    pub dst_pan: Option<PanId>,
    /// Destination address.
    pub dst_addr: Address,
    /// Multiplex ID of the frame.
    pub multiplex_id: MultiplexId,
    /// The reassembled upper-layer frame.
    pub upper_layer_frame: Vec<u8>,
    /// Link quality of the last frame.
    pub lqi: u8,
    /// Sequence number of the last frame, if present.
    pub dsn: Option<u8>,
    /// Security the frames were received with (the lowest, if fragments differed).
    pub security: SecurityParams,
    /// Reception time of the last frame.
    pub timestamp: Instant,
}

/// MPX-PURGE.request: cancel a pending MPX-DATA.request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpxPurgeRequest {
    /// The request to cancel.
    pub handle: MpxHandle,
}

/// MPX-PURGE.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpxPurgeConfirm {
    /// The handle named in the request.
    pub handle: MpxHandle,
    /// `Success` if it was found and cancelled, `InvalidParameter` if no such request is pending.
    pub status: MacStatus,
}

/// Status of a KMP transport confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KmpStatus {
    /// Done.
    Success,
    /// No KMP is registered (or enabled) for the KMP ID.
    UnsupportedKmp,
    /// A session with this peer and KMP already exists.
    Duplicate,
    /// The session table is full.
    NoResources,
    /// No such instance.
    InvalidHandle,
    /// The first message could not be sent (link status).
    TxFailure(MacStatus),
    /// The KMP refused to create the session (configuration, credentials).
    Refused,
}

/// KMP-CREATE.request: start a KMP instance as initiator towards a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmpCreateRequest {
    /// Which KMP.
    pub kmp_id: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// The PAN the peer is in.
    pub peer_pan: PanId,
    /// Handle chosen by the caller, echoed in every later primitive of the instance.
    pub handle: KmpHandle,
}

/// KMP-CREATE.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpCreateConfirm {
    /// The request's handle.
    pub handle: KmpHandle,
    /// Whether the instance was created and its first message sent.
    pub status: KmpStatus,
}

/// KMP-CREATE.indication: a peer started a KMP with us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmpCreateIndication {
    /// Which KMP.
    pub kmp_id: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// Handle assigned by the runtime for the new responder instance.
    pub handle: KmpHandle,
}

/// KMP-CREATE.response: the application accepts or refuses the indicated instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpCreateResponse {
    /// The instance.
    pub handle: KmpHandle,
    /// `true` to let it run, `false` to delete it.
    pub accept: bool,
}

/// KMP-FINISHED.indication: an instance has finished. On success its keys are already durable
/// in the PIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmpFinishedIndication {
    /// The instance.
    pub handle: KmpHandle,
    /// Which KMP.
    pub kmp_id: KmpId,
    /// The peer.
    pub peer: ExtendedAddress,
    /// Success with the SA, or why it failed.
    pub outcome: Outcome,
}

/// KMP-DELETE.request: tear an instance down and remove its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpDeleteRequest {
    /// The instance.
    pub handle: KmpHandle,
}

/// KMP-DELETE.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpDeleteConfirm {
    /// The instance.
    pub handle: KmpHandle,
    /// `Success` or `InvalidHandle`.
    pub status: KmpStatus,
}

/// KMP-DELETE.indication: an instance was deleted by the runtime or the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmpDeleteIndication {
    /// The instance.
    pub handle: KmpHandle,
    /// Why.
    pub reason: crate::session::FailureReason,
}

/// KMP-PURGE.request: drop KMP datagrams queued for a peer (all KMPs, or one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpPurgeRequest {
    /// The peer whose queued datagrams are dropped.
    pub peer: ExtendedAddress,
    /// Only this KMP's datagrams, or every KMP's.
    pub kmp_id: Option<KmpId>,
}

/// KMP-PURGE.confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmpPurgeConfirm {
    /// The peer named in the request.
    pub peer: ExtendedAddress,
    /// How many queued datagrams were dropped.
    pub purged: usize,
    /// `Success`.
    pub status: KmpStatus,
}
