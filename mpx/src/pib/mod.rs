//! The 802.15.4 security PIB (IEEE 802.15.4-2015 9.5): key table, device table with incoming
//! frame counters, security-level table, our own identity and outgoing frame counter, plus the
//! upper-layer SAs of the KMPs, with their persistence.
//!
//! # Shape
//!
//! - [`PibStore`] is the **only writer**. It owns the `redb` store; every write is committed
//!   with `Durability::Immediate` *before* the in-memory tables change, so what the data path
//!   can see is always durable (keys are persisted before KMP-FINISHED is reported).
//! - [`Pib`] is a cheap, cloneable **read handle** on the in-memory tables (`DashMap`s and
//!   atomics). The frame security code on the data path uses it without a message round trip:
//!   [`Pib::lookup_key`], [`Pib::device_by_address`], [`Pib::check_incoming_security_level`],
//!   [`Pib::check_and_update_frame_counter`] and [`Pib::allocate_frame_counter`]. None of these
//!   allocates or does I/O; they take at most a shard read lock of a map.
//!
//! Apart from the store's file I/O the PIB is sans-IO: no threads, no clock. Time comes in as
//! `now` arguments; [`PibStore::poll_timeout`] and [`PibStore::maintain`] drive checkpoints,
//! counter reservations and expiry. **Instants are persisted as given**, so the runtime must
//! take `now` from a clock whose origin survives restarts (e.g. microseconds since the Unix
//! epoch) for expiry to mean the same after a restart.
//!
//! # Durability decisions
//!
//! - Outgoing frame counter: one global counter, reserved ahead in durable blocks; see
//!   [`frame_counter`] for the decision and its reasons.
//! - Keys, devices, security levels, identity, SAs: committed with `Durability::Immediate`
//!   before they are visible; an install is one transaction (all keys of a `KeyInstall` or
//!   none).
//! - Incoming frame counters: see [`store`], "Incoming frame counters".
//!
//! The store file holds key material in the clear (it is created with mode 0600); protecting
//! it at rest is the deployment's job.

mod codec;
pub mod device_table;
mod error;
pub mod frame_counter;
#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub mod fuzzing;
pub mod key_table;
pub mod sa_table;
pub mod security_level;
pub mod store;

use std::sync::{Arc, PoisonError, RwLock};

/// The concurrent maps behind the tables: `DashMap` with aHash, which is several times faster
/// than SipHash on these short keys and still keyed per process, so peers that choose their
/// addresses cannot aim collisions at it.
pub(crate) type Map<K, V> = dashmap::DashMap<K, V, ahash::RandomState>;

use kmp_api::session::KeyDirection;
use kmp_api::{Address, ExtendedAddress, Instant, KmpId, PanId, SecurityLevel, ShortAddress};

/// The frame type the key-usage and security-level tables name (802.15.4-2015 Table 7-1).
pub use crate::wire::FrameType;
pub use device_table::{DeviceDescriptor, FrameCounterError};
pub use error::PibError;
pub use frame_counter::{
    CounterError, DEFAULT_RESERVATION_BLOCK, FRAME_COUNTER_LIMIT, extend_reservation,
};
pub use key_table::{
    KEY_LEN, KeyDescriptor, KeyLookup, KeyLookupError, KeyMaterial, KeyQuery, KeyRef, KeyUsage,
};
pub use sa_table::StoredSa;
pub use security_level::{
    SecurityLevelCheck, SecurityLevelDescriptor, SecurityLevelError, SecurityLevelSet,
};
pub use store::{
    InstallReceipt, LoadReport, MaintenanceReport, PibConfig, PibStore, RemovalReceipt,
};

use device_table::DeviceTable;
use frame_counter::OutgoingFrameCounter;
use key_table::KeyTable;
use sa_table::SaTable;
use security_level::SecurityLevelTable;

/// Our own addresses (802.15.4-2015 `macExtendedAddress`, `macShortAddress`, `macPanId`): the
/// source of our frames and of the CCM* nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnIdentity {
    /// Our EUI-64.
    pub ext_address: ExtendedAddress,
    /// Our short address, [`ShortAddress::NONE_ASSIGNED`] if none.
    pub short_address: ShortAddress,
    /// Our PAN.
    pub pan_id: PanId,
}

/// The outgoing frame counter's state, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingCounterState {
    /// The next value [`Pib::allocate_frame_counter`] would hand out.
    pub next: u64,
    /// The durable reservation ends here (exclusive).
    pub reserved_until: u64,
}

/// The in-memory tables behind [`Pib`].
#[derive(Debug)]
pub(crate) struct Tables {
    pub(crate) keys: KeyTable,
    pub(crate) devices: DeviceTable,
    pub(crate) levels: SecurityLevelTable,
    pub(crate) sas: SaTable,
    pub(crate) identity: RwLock<Option<OwnIdentity>>,
    pub(crate) tx: OutgoingFrameCounter,
}

impl Tables {
    /// Creates the incoming counters a key needs: its peer for a pairwise key, every device
    /// for a group key. Transmit-only keys have none.
    pub(crate) fn attach_counters_for_key(&self, d: &KeyDescriptor) {
        if !d.allows(KeyDirection::Receive) {
            return;
        }
        match d.peer_device() {
            Some(peer) => self.devices.ensure_counter(peer, d.key_ref),
            None => {
                let devices: Vec<ExtendedAddress> =
                    self.devices.devices.iter().map(|e| *e.key()).collect();
                for dev in devices {
                    self.devices.ensure_counter(dev, d.key_ref);
                }
            }
        }
    }

    /// Creates the incoming counters a new device needs: one per receive group key.
    pub(crate) fn attach_counters_for_device(&self, dev: ExtendedAddress) {
        let group_rx: Vec<KeyRef> = self
            .keys
            .by_ref
            .iter()
            .filter(|e| e.peer_device().is_none() && e.allows(KeyDirection::Receive))
            .map(|e| *e.key())
            .collect();
        for k in group_rx {
            self.devices.ensure_counter(dev, k);
        }
    }
}

/// Read handle on the PIB's in-memory tables, shared with the data path. Clone it freely.
///
/// Every method reflects only durable state: the [`PibStore`] that owns the tables commits
/// before it changes them. The exceptions are the incoming frame counters, which the data path
/// itself advances (their durability is described in [`store`]).
#[derive(Debug, Clone)]
pub struct Pib {
    pub(crate) tables: Arc<Tables>,
}

impl Pib {
    /// Our own addresses, once [`PibStore::set_own_identity`] has set them.
    pub fn own_identity(&self) -> Option<OwnIdentity> {
        *self
            .tables
            .identity
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The key a frame is protected or unprotected with: KeyDescriptor lookup (802.15.4-2015
    /// 9.2.5) for the query's direction, expiry at `now`, and the key usage policy (9.2.7).
    ///
    /// The caller must still check that the frame's security level satisfies
    /// [`KeyLookup::min_security_level`] and, on receive, the security-level table
    /// ([`Pib::check_incoming_security_level`]).
    pub fn lookup_key(&self, query: &KeyQuery, now: Instant) -> Result<KeyLookup, KeyLookupError> {
        self.tables.keys.lookup(query, now)
    }

    /// A key descriptor by handle (a copy, key material included).
    pub fn key(&self, key_ref: KeyRef) -> Option<KeyDescriptor> {
        self.tables.keys.by_ref.get(&key_ref).map(|d| d.clone())
    }

    /// Every key descriptor, ordered by handle. Allocates; not for the data path.
    pub fn keys(&self) -> Vec<KeyDescriptor> {
        let mut v: Vec<KeyDescriptor> = self
            .tables
            .keys
            .by_ref
            .iter()
            .map(|e| e.value().clone())
            .collect();
        v.sort_by_key(|d| d.key_ref);
        v
    }

    /// A device by its EUI-64.
    pub fn device(&self, ext: ExtendedAddress) -> Option<DeviceDescriptor> {
        self.tables.devices.devices.get(&ext).map(|d| *d)
    }

    /// Device lookup (802.15.4-2015 9.2.4): by extended address, or by `pan` and short address.
    /// `None` for [`Address::Absent`] and unknown devices.
    pub fn device_by_address(&self, pan: PanId, addr: Address) -> Option<DeviceDescriptor> {
        self.tables.devices.by_address(pan, addr)
    }

    /// Every device descriptor, ordered by EUI-64. Allocates; not for the data path.
    pub fn devices(&self) -> Vec<DeviceDescriptor> {
        let mut v: Vec<DeviceDescriptor> = self
            .tables
            .devices
            .devices
            .iter()
            .map(|e| *e.value())
            .collect();
        v.sort_by_key(|d| d.ext_address);
        v
    }

    /// Whether `counter` would pass the replay check for `device` under `key_ref`, without
    /// recording it. Use it before the (costly) MIC check; then record the frame with
    /// [`Pib::check_and_update_frame_counter`].
    pub fn frame_counter_acceptable(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
        counter: u32,
    ) -> Result<(), FrameCounterError> {
        self.tables.devices.check(device, key_ref, counter)
    }

    /// The replay check and update of the incoming frame security procedure (802.15.4-2015
    /// 9.2.3), atomically: accepts `counter` only if it is strictly greater than the last
    /// counter accepted from `device` under `key_ref` (any value but 0xffffffff if none was),
    /// and records it. Of two concurrent calls with the same counter at most one succeeds.
    ///
    /// Call it only **after** the frame's MIC verified, or a forged frame could advance the
    /// counter and block the real sender. Lock-free (a shard read lock and a CAS), allocation-
    /// free. Fails with [`FrameCounterError::UnknownDeviceKey`] if the device is not in the
    /// device table or the key cannot receive.
    pub fn check_and_update_frame_counter(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
        counter: u32,
    ) -> Result<(), FrameCounterError> {
        self.tables
            .devices
            .check_and_update(device, key_ref, counter)
    }

    /// The smallest counter [`Pib::check_and_update_frame_counter`] would accept now.
    pub fn next_acceptable_frame_counter(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
    ) -> Option<u32> {
        self.tables.devices.next_acceptable(device, key_ref)
    }

    /// The security-level descriptor that applies to a frame type (and MAC command).
    pub fn security_level_descriptor(
        &self,
        frame_type: FrameType,
        command_id: Option<u8>,
    ) -> Option<SecurityLevelDescriptor> {
        self.tables.levels.find(frame_type, command_id)
    }

    /// Every security-level descriptor, ordered by frame type and command.
    pub fn security_level_descriptors(&self) -> Vec<SecurityLevelDescriptor> {
        let mut v: Vec<SecurityLevelDescriptor> =
            self.tables.levels.map.iter().map(|e| *e.value()).collect();
        v.sort_by_key(|d| (d.frame_type.bits(), d.command_id));
        v
    }

    /// The incoming security level checking procedure (802.15.4-2015 9.2.6) as the standard
    /// states its result. See [`security_level`] for the one deviation
    /// (unsecured frames with no descriptor fail).
    pub fn security_level_check(
        &self,
        frame_type: FrameType,
        command_id: Option<u8>,
        level: SecurityLevel,
    ) -> SecurityLevelCheck {
        self.tables.levels.check(frame_type, command_id, level)
    }

    /// 9.2.6 resolved for one frame: unsecured frames pass only where the descriptor's minimum
    /// is None, or where its `device_override` is set and `source` is exempt; secured frames
    /// must satisfy the minimum (and the allowed set).
    pub fn check_incoming_security_level(
        &self,
        frame_type: FrameType,
        command_id: Option<u8>,
        level: SecurityLevel,
        source: Option<&DeviceDescriptor>,
    ) -> Result<(), SecurityLevelError> {
        match self.security_level_check(frame_type, command_id, level) {
            SecurityLevelCheck::Passed => Ok(()),
            SecurityLevelCheck::ConditionallyPassed if source.is_some_and(|d| d.exempt) => Ok(()),
            _ => Err(SecurityLevelError::ImproperSecurityLevel { frame_type, level }),
        }
    }

    /// Hands out the next outgoing frame counter for a frame protected with `key_ref`
    /// (802.15.4-2015 9.2.1). The counter is global (see [`frame_counter`]),
    /// each value is handed out once, and every value is below a durably persisted
    /// reservation.
    ///
    /// Lock-free and allocation-free. Fails with [`CounterError::NotReserved`] when the
    /// reservation is used up: the store owner must run [`PibStore::maintain`] (which it should
    /// do whenever [`Pib::needs_maintenance`] says so, before that happens) or
    /// [`PibStore::allocate_frame_counter`], which reserves on demand.
    pub fn allocate_frame_counter(&self, key_ref: KeyRef) -> Result<u32, CounterError> {
        match self.tables.keys.by_ref.get(&key_ref) {
            Some(d) if d.allows(KeyDirection::Transmit) => {}
            _ => return Err(CounterError::UnknownKey(key_ref)),
        }
        self.tables.tx.allocate()
    }

    /// The outgoing frame counter's position and durable reservation.
    pub fn outgoing_frame_counter(&self) -> OutgoingCounterState {
        OutgoingCounterState {
            next: self.tables.tx.next(),
            reserved_until: self.tables.tx.limit(),
        }
    }

    /// Whether the data path wants [`PibStore::maintain`] to run soon: the outgoing counter
    /// reservation runs low, or incoming counters should be checkpointed. A relaxed load of two
    /// flags; poll it after every batch of frames.
    pub fn needs_maintenance(&self) -> bool {
        self.tables.tx.reservation_wanted() || self.tables.devices.checkpoint_wanted()
    }

    /// An upper-layer SA by owner, peer and SA id.
    pub fn upper_layer_sa(
        &self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
    ) -> Option<StoredSa> {
        self.tables.sas.get(owner, peer, sa_id)
    }

    /// Every upper-layer SA of `owner` with `peer`, ordered by SA id.
    pub fn upper_layer_sas(&self, owner: KmpId, peer: ExtendedAddress) -> Vec<StoredSa> {
        self.tables.sas.of_peer(owner, peer)
    }
}
