//! Persistence of the PIB in a `redb` file, and the PIB's only writer, [`PibStore`].
//!
//! # What is stored, and when
//!
//! - **Key table, devices, security levels, identity, upper-layer SAs**: by each write call, one
//!   transaction per call, `Durability::Immediate`, committed before the in-memory tables change.
//! - **Outgoing frame counter `reserved_until`**: when a new block is reserved, `Immediate`,
//!   committed before any value of the block is handed out.
//! - **Incoming frame counters**: by checkpoints (below) and on [`PibStore::close`],
//!   `Immediate`.
//!
//! Opening a store loads everything into the in-memory tables ([`PibStore::pib`]). Content that
//! does not decode, contradicts itself or is missing gives a typed [`PibError`], never a panic;
//! the storage engine's own structures are checksum-verified on every open. Recoverable
//! problems (a counter record whose key or device is gone, an unclean shutdown) are repaired
//! and logged with `tracing`.
//!
//! # Incoming frame counters
//!
//! Writing every accepted frame counter synchronously would cost a disk flush per received
//! frame, far from the ≥ 1 M frames/s the data path must sustain. The data path therefore only
//! updates atomics ([`Pib::check_and_update_frame_counter`]: a CAS, no lock beyond a map shard's
//! read lock, no allocation, no I/O), and the counters reach the store by **checkpoints**:
//!
//! - when any (device, key) counter has accepted [`PibConfig::checkpoint_after_frames`] frames
//!   since its last checkpoint, or accepts its first frame while the store has no record of it,
//!   the data path raises [`Pib::needs_maintenance`];
//! - [`PibStore::maintain`] checkpoints then, and at least every
//!   [`PibConfig::checkpoint_interval`] ([`PibStore::poll_timeout`]);
//! - [`PibStore::close`] checkpoints everything and marks the store as cleanly closed.
//!
//! Each checkpoint record holds the next acceptable counter and the number of frames the
//! counter accepted in the interval that record closes.
//!
//! **Replay window of a crash.** After a crash the store holds, for each (device, key), the
//! counter as of its last checkpoint; the frames accepted since then (at most about
//! `checkpoint_after_frames`, all within the last `checkpoint_interval`, if the runtime runs
//! `maintain` when asked) could be replayed once each. To close that window, a store that was
//! not closed cleanly resumes each counter at `checkpointed + min(2 × frames in its last
//! checkpointed interval, max_rx_skip_after_crash)` and persists that before any frame is
//! accepted. For a peer whose counter grows by one per frame it sends us (a per-key counter)
//! this skips every frame accepted since the checkpoint unless the peer's rate more than
//! doubled, so no replay is possible; the price is that up to the skipped number of the peer's
//! next genuine frames are refused (at its own recent rate: about two checkpoint intervals of
//! its traffic), or until it is rekeyed. A peer whose counter is shared with other recipients
//! jumps, so the skip may not cover it: for such peers the residual window is the frames
//! accepted since the last checkpoint. `max_rx_skip_after_crash = 0` turns the skip off (no
//! refused frames, the full window). [`LoadReport::clean_shutdown`] tells the runtime, which may
//! also choose to rekey all peers after a crash to close the window completely.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use kmp_api::session::{KeyInstall, KeyRemoval, KeyScope, KeySelector, SecretBytes, UpperLayerSa};
use kmp_api::{Duration, ExtendedAddress, Instant, KeyIdentifier, KmpId, PanId};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::pib::codec::{self, DecodeError};
use crate::pib::device_table::DeviceTable;
use crate::pib::frame_counter::{OutgoingFrameCounter, extend_reservation};
use crate::pib::key_table::{IndexKey, KeyTable};
use crate::pib::sa_table::{SaKey, SaTable};
use crate::pib::security_level::SecurityLevelTable;
use crate::pib::{
    CounterError, DEFAULT_RESERVATION_BLOCK, DeviceDescriptor, FRAME_COUNTER_LIMIT, FrameType,
    KeyDescriptor, KeyMaterial, KeyRef, KeyUsage, OwnIdentity, Pib, PibError,
    SecurityLevelDescriptor, StoredSa, Tables,
};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const KEYS: TableDefinition<'_, u32, &[u8]> = TableDefinition::new("keys");
const DEVICES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("devices");
const RX_COUNTERS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("rx_counters");
const LEVELS: TableDefinition<'_, u16, &[u8]> = TableDefinition::new("security_levels");
const SAS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("upper_layer_sas");

const META_FORMAT: &str = "format";
const META_NEXT_KEY_REF: &str = "next_key_ref";
const META_TX_RESERVED_UNTIL: &str = "tx_reserved_until";
const META_CLEAN_SHUTDOWN: &str = "clean_shutdown";
const META_IDENTITY: &str = "identity";

/// The store format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Page cache of the storage engine; the PIB is small.
const CACHE_SIZE: usize = 8 << 20;

/// Tuning of the store. [`PibConfig::default`] is what a gateway should start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PibConfig {
    /// Outgoing frame counters reserved per durable commit (default
    /// [`DEFAULT_RESERVATION_BLOCK`]). A crash skips at most this many counter values.
    pub reservation_block: u32,
    /// Longest time between incoming-counter checkpoints while frames arrive (default 1 s).
    pub checkpoint_interval: Duration,
    /// A (device, key) counter that accepted this many frames since its last checkpoint asks for
    /// one (default 64).
    pub checkpoint_after_frames: u32,
    /// Cap of the skip applied to incoming counters after an unclean shutdown (default 1024;
    /// 0 disables the skip). See the module documentation.
    pub max_rx_skip_after_crash: u32,
    /// KeyUsageList given to link keys installed by KMPs (default: every frame type and
    /// command).
    pub default_key_usage: KeyUsage,
}

impl Default for PibConfig {
    fn default() -> Self {
        PibConfig {
            reservation_block: DEFAULT_RESERVATION_BLOCK,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_after_frames: 64,
            max_rx_skip_after_crash: 1024,
            default_key_usage: KeyUsage::ALL,
        }
    }
}

/// What opening the store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The store was empty and has been initialised.
    pub created: bool,
    /// The previous run closed the store with [`PibStore::close`]. When `false`, incoming
    /// counters were advanced (see the module documentation) and the runtime may want to rekey.
    pub clean_shutdown: bool,
    /// Keys loaded.
    pub keys: usize,
    /// Devices loaded.
    pub devices: usize,
    /// Security-level descriptors loaded.
    pub security_levels: usize,
    /// Upper-layer SAs loaded.
    pub upper_layer_sas: usize,
    /// Incoming counter records loaded.
    pub rx_counters: usize,
    /// Incoming counters advanced because the shutdown was not clean.
    pub rx_counters_skipped: usize,
    /// Records dropped because what they refer to is gone.
    pub orphans_dropped: usize,
    /// The outgoing frame counter resumes here.
    pub tx_resume_at: u64,
}

/// What [`PibStore::install_keys`] did. Everything in it is durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReceipt {
    /// Handles of the installed link keys, in the order of `KeyInstall::link_keys`.
    pub key_refs: Vec<KeyRef>,
    /// Keys removed because a new key took their lookup identifier, device and direction.
    pub replaced: Vec<KeyRef>,
    /// Devices added to the device table for pairwise keys with peers it did not know.
    pub devices_added: Vec<ExtendedAddress>,
    /// Upper-layer SAs stored (an SA with an existing id replaces it).
    pub upper_layer_sas: usize,
}

/// What [`PibStore::remove_keys`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovalReceipt {
    /// Link keys removed.
    pub keys: Vec<KeyRef>,
    /// Upper-layer SAs removed (ids).
    pub upper_layer_sas: Vec<Vec<u8>>,
}

/// What [`PibStore::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// A new outgoing counter block was reserved, ending here.
    pub reserved_until: Option<u64>,
    /// The outgoing counter space is exhausted: keys must be replaced.
    pub counter_exhausted: bool,
    /// Incoming counters written by a checkpoint.
    pub checkpointed: usize,
    /// Keys removed because they expired.
    pub expired_keys: Vec<KeyRef>,
    /// Upper-layer SAs removed because they expired.
    pub expired_upper_layer_sas: usize,
}

/// A set of writes, committed as one transaction and then applied to the in-memory tables.
#[derive(Default)]
struct Change {
    put_keys: Vec<KeyDescriptor>,
    del_keys: BTreeSet<KeyRef>,
    put_devices: Vec<DeviceDescriptor>,
    del_devices: BTreeSet<ExtendedAddress>,
    put_sas: Vec<StoredSa>,
    del_sas: Vec<SaKey>,
    put_levels: Vec<SecurityLevelDescriptor>,
    del_levels: Vec<(FrameType, Option<u8>)>,
    identity: Option<OwnIdentity>,
    next_key_ref: Option<u32>,
}

/// The PIB's owner and only writer: the redb store plus the in-memory tables it publishes
/// through [`Pib`] handles. Every write is durable before it returns and before the tables
/// change; a write that fails changes nothing.
///
/// Not `Clone`: one `PibStore` per store file (the file is locked while open).
#[derive(Debug)]
pub struct PibStore {
    db: Database,
    pib: Pib,
    config: PibConfig,
    next_key_ref: u32,
    last_checkpoint: Instant,
    report: LoadReport,
}

fn corrupt(table: &'static str) -> impl Fn(DecodeError) -> PibError {
    move |e| PibError::corrupt(table, e.0)
}

impl PibStore {
    /// Opens (or creates) the store at `path` and loads it.
    ///
    /// A new file is created with mode 0600. Fails with [`PibError::Locked`] if the store is
    /// open elsewhere, [`PibError::Corrupt`], [`PibError::Missing`] or
    /// [`PibError::UnsupportedFormat`] for bad content. After an unclean shutdown the incoming
    /// counters are advanced and persisted before this returns (see the module documentation).
    pub fn open(
        path: impl AsRef<Path>,
        config: PibConfig,
        now: Instant,
    ) -> Result<PibStore, PibError> {
        let path = path.as_ref();
        create_private_file(path)?;
        let db = guarded("opening", || {
            redb::Builder::new()
                .set_cache_size(CACHE_SIZE)
                .set_check_integrity_on_open(true)
                .create(path)
                .map_err(PibError::from)
        })?;
        guarded("loading", move || Self::load(db, config, now))
    }

    /// A store kept in memory only (simulations, tests): the same code paths, no file.
    pub fn in_memory(config: PibConfig, now: Instant) -> Result<PibStore, PibError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_SIZE)
            .create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::load(db, config, now)
    }

    /// A read handle for the data path.
    pub fn pib(&self) -> Pib {
        self.pib.clone()
    }

    /// What opening found.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// The configuration in force.
    pub fn config(&self) -> &PibConfig {
        &self.config
    }

    fn tables(&self) -> &Tables {
        &self.pib.tables
    }

    #[allow(clippy::too_many_lines)]
    fn load(db: Database, config: PibConfig, now: Instant) -> Result<PibStore, PibError> {
        let mut report = LoadReport::default();
        let tables = Tables {
            keys: KeyTable::default(),
            devices: DeviceTable::new(config.checkpoint_after_frames),
            levels: SecurityLevelTable::default(),
            sas: SaTable::default(),
            identity: RwLock::new(None),
            tx: OutgoingFrameCounter::resume_at(0, config.reservation_block),
        };
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let (next_key_ref, tx_reserved_until);
        {
            let mut meta = txn.open_table(META)?;
            let keys = txn.open_table(KEYS)?;
            let devices = txn.open_table(DEVICES)?;
            let mut rx = txn.open_table(RX_COUNTERS)?;
            let levels = txn.open_table(LEVELS)?;
            let sas = txn.open_table(SAS)?;

            let read_u64 = |meta: &redb::Table<'_, &str, &[u8]>, k: &'static str| {
                meta.get(k)?
                    .map(|v| codec::decode_u64(v.value()).map_err(corrupt("meta")))
                    .transpose()
            };
            match read_u64(&meta, META_FORMAT)? {
                None => {
                    let empty = meta.is_empty()?
                        && keys.is_empty()?
                        && devices.is_empty()?
                        && rx.is_empty()?
                        && levels.is_empty()?
                        && sas.is_empty()?;
                    if !empty {
                        return Err(PibError::Missing("format version"));
                    }
                    meta.insert(META_FORMAT, codec::encode_u64(FORMAT_VERSION).as_slice())?;
                    meta.insert(META_NEXT_KEY_REF, codec::encode_u64(1).as_slice())?;
                    meta.insert(META_TX_RESERVED_UNTIL, codec::encode_u64(0).as_slice())?;
                    meta.insert(META_CLEAN_SHUTDOWN, codec::encode_u64(1).as_slice())?;
                    report.created = true;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(PibError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            let nkr =
                read_u64(&meta, META_NEXT_KEY_REF)?.ok_or(PibError::Missing("next key handle"))?;
            next_key_ref = u32::try_from(nkr)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| PibError::corrupt("meta", format!("next key handle {nkr}")))?;
            tx_reserved_until = read_u64(&meta, META_TX_RESERVED_UNTIL)?
                .ok_or(PibError::Missing("outgoing frame counter reservation"))?;
            if tx_reserved_until > FRAME_COUNTER_LIMIT {
                return Err(PibError::corrupt(
                    "meta",
                    format!("outgoing frame counter reservation {tx_reserved_until:#x}"),
                ));
            }
            report.clean_shutdown = match read_u64(&meta, META_CLEAN_SHUTDOWN)? {
                Some(1) => true,
                Some(0) => false,
                Some(v) => return Err(PibError::corrupt("meta", format!("clean flag {v}"))),
                None => {
                    tracing::warn!("PIB store has no clean-shutdown flag; treating it as unclean");
                    false
                }
            };
            if let Some(v) = meta.get(META_IDENTITY)? {
                let id = codec::decode_identity(v.value()).map_err(corrupt("meta"))?;
                *tables
                    .identity
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(id);
            }

            for entry in devices.iter()? {
                let (k, v) = entry?;
                let d = codec::decode_device(v.value()).map_err(corrupt("devices"))?;
                if d.ext_address.to_u64() != k.value() {
                    return Err(PibError::corrupt(
                        "devices",
                        format!("record under wrong key {:#x}", k.value()),
                    ));
                }
                tables.devices.upsert(d);
                report.devices += 1;
            }
            for entry in keys.iter()? {
                let (k, v) = entry?;
                let d = codec::decode_key(v.value()).map_err(corrupt("keys"))?;
                if d.key_ref.0 != k.value() || d.key_ref.0 >= next_key_ref {
                    return Err(PibError::corrupt(
                        "keys",
                        format!("record {} under key {}", d.key_ref, k.value()),
                    ));
                }
                for ik in IndexKey::of(d.lookup, d.scope, d.direction) {
                    if let Some(other) = tables.keys.find(&ik) {
                        tracing::warn!(
                            key = %d.key_ref,
                            %other,
                            "two stored keys share a lookup; the later one wins"
                        );
                    }
                }
                tables.keys.insert(d);
                report.keys += 1;
            }
            for d in tables.keys.by_ref.iter() {
                tables.attach_counters_for_key(d.value());
            }
            let skip_all = !report.clean_shutdown && !report.created;
            let mut orphans = Vec::new();
            let mut skipped = Vec::new();
            for entry in rx.iter()? {
                let (k, v) = entry?;
                let (dev, key) = k.value();
                let (device, key_ref) = (ExtendedAddress::from_u64(dev), KeyRef(key));
                let (next, frames) = codec::decode_rx(v.value()).map_err(corrupt("rx_counters"))?;
                let resume = if skip_all {
                    let skip = frames.saturating_mul(2).min(config.max_rx_skip_after_crash);
                    next.saturating_add(skip)
                } else {
                    next
                };
                if tables
                    .devices
                    .restore_counter(device, key_ref, resume, frames)
                {
                    report.rx_counters += 1;
                    if resume != next {
                        skipped.push((dev, key, resume, frames));
                    }
                } else {
                    orphans.push((dev, key));
                }
            }
            if !orphans.is_empty() {
                tracing::warn!(
                    count = orphans.len(),
                    "dropping incoming counter records of removed keys or devices"
                );
            }
            for k in &orphans {
                rx.remove(k)?;
            }
            report.orphans_dropped = orphans.len();
            report.rx_counters_skipped = skipped.len();
            for (dev, key, resume, frames) in skipped {
                rx.insert((dev, key), codec::encode_rx(resume, frames).as_slice())?;
            }

            for entry in levels.iter()? {
                let (k, v) = entry?;
                let d = codec::decode_level(v.value()).map_err(corrupt("security_levels"))?;
                if codec::level_key(d.frame_type, d.command_id) != k.value() {
                    return Err(PibError::corrupt(
                        "security_levels",
                        "record under wrong key",
                    ));
                }
                tables.levels.map.insert(d.table_key(), d);
                report.security_levels += 1;
            }
            for entry in sas.iter()? {
                let (k, v) = entry?;
                let s = codec::decode_sa(v.value()).map_err(corrupt("upper_layer_sas"))?;
                if codec::sa_key(s.owner, s.peer, &s.sa.sa_id) != k.value() {
                    return Err(PibError::corrupt(
                        "upper_layer_sas",
                        "record under wrong key",
                    ));
                }
                tables
                    .sas
                    .map
                    .insert((s.owner, s.peer, s.sa.sa_id.clone()), s);
                report.upper_layer_sas += 1;
            }
            meta.insert(META_CLEAN_SHUTDOWN, codec::encode_u64(0).as_slice())?;
        }
        txn.commit()?;

        let tables = Tables {
            tx: OutgoingFrameCounter::resume_at(tx_reserved_until, config.reservation_block),
            ..tables
        };
        report.tx_resume_at = tx_reserved_until;
        if report.clean_shutdown || report.created {
            tracing::info!(
                keys = report.keys,
                devices = report.devices,
                sas = report.upper_layer_sas,
                "PIB store opened"
            );
        } else {
            tracing::warn!(
                keys = report.keys,
                devices = report.devices,
                skipped = report.rx_counters_skipped,
                "PIB store was not closed cleanly: incoming frame counters advanced, outgoing \
                 counter resumes after the last reservation"
            );
        }
        Ok(PibStore {
            db,
            pib: Pib {
                tables: Arc::new(tables),
            },
            config,
            next_key_ref,
            last_checkpoint: now,
            report,
        })
    }

    /// Commits `c` durably, then applies it to the in-memory tables.
    fn apply(&mut self, c: Change) -> Result<(), PibError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut keys = txn.open_table(KEYS)?;
            for d in &c.put_keys {
                keys.insert(d.key_ref.0, codec::encode_key(d).as_slice())?;
            }
            for r in &c.del_keys {
                keys.remove(r.0)?;
            }
            let mut devices = txn.open_table(DEVICES)?;
            for d in &c.put_devices {
                devices.insert(d.ext_address.to_u64(), codec::encode_device(d).as_slice())?;
            }
            for d in &c.del_devices {
                devices.remove(d.to_u64())?;
            }
            if !c.del_keys.is_empty() || !c.del_devices.is_empty() {
                let mut rx = txn.open_table(RX_COUNTERS)?;
                rx.retain(|(dev, key), _| {
                    !c.del_keys.contains(&KeyRef(key))
                        && !c.del_devices.contains(&ExtendedAddress::from_u64(dev))
                })?;
            }
            let mut sas = txn.open_table(SAS)?;
            for s in &c.put_sas {
                let v = codec::encode_sa(s).map_err(|e| PibError::Invalid(e.0.to_owned()))?;
                sas.insert(
                    codec::sa_key(s.owner, s.peer, &s.sa.sa_id).as_slice(),
                    v.as_slice(),
                )?;
            }
            for (o, p, id) in &c.del_sas {
                sas.remove(codec::sa_key(*o, *p, id).as_slice())?;
            }
            let mut levels = txn.open_table(LEVELS)?;
            for d in &c.put_levels {
                levels.insert(
                    codec::level_key(d.frame_type, d.command_id),
                    codec::encode_level(d).as_slice(),
                )?;
            }
            for (t, cmd) in &c.del_levels {
                levels.remove(codec::level_key(*t, *cmd))?;
            }
            let mut meta = txn.open_table(META)?;
            if let Some(id) = &c.identity {
                meta.insert(META_IDENTITY, codec::encode_identity(id).as_slice())?;
            }
            if let Some(n) = c.next_key_ref {
                meta.insert(
                    META_NEXT_KEY_REF,
                    codec::encode_u64(u64::from(n)).as_slice(),
                )?;
            }
        }
        txn.commit()?;

        // Durable: now make it visible. New keys go in before replaced ones leave, so a lookup
        // never falls into a gap during a rekey.
        let t = self.tables();
        if let Some(id) = c.identity {
            *t.identity.write().unwrap_or_else(PoisonError::into_inner) = Some(id);
        }
        for d in &c.put_devices {
            t.devices.upsert(*d);
            t.attach_counters_for_device(d.ext_address);
        }
        for d in c.put_keys {
            t.attach_counters_for_key(&d);
            t.keys.insert(d);
        }
        for r in &c.del_keys {
            t.keys.remove(*r);
            t.devices.remove_key_counters(*r);
        }
        for d in &c.del_devices {
            t.devices.remove(*d);
        }
        for s in c.put_sas {
            t.sas.map.insert((s.owner, s.peer, s.sa.sa_id.clone()), s);
        }
        for k in &c.del_sas {
            t.sas.map.remove(k);
        }
        for d in c.put_levels {
            t.levels.map.insert(d.table_key(), d);
        }
        for k in &c.del_levels {
            t.levels.map.remove(k);
        }
        if let Some(n) = c.next_key_ref {
            self.next_key_ref = n;
        }
        Ok(())
    }

    /// Sets our own addresses (`macExtendedAddress`, `macShortAddress`, `macPanId`).
    pub fn set_own_identity(&mut self, identity: OwnIdentity) -> Result<(), PibError> {
        self.apply(Change {
            identity: Some(identity),
            ..Change::default()
        })
    }

    /// Adds or replaces a device descriptor (its incoming counters are kept).
    pub fn set_device(&mut self, device: DeviceDescriptor) -> Result<(), PibError> {
        self.apply(Change {
            put_devices: vec![device],
            ..Change::default()
        })
    }

    /// Removes a device and its incoming counters; `false` if it was not there.
    pub fn remove_device(&mut self, ext: ExtendedAddress) -> Result<bool, PibError> {
        if self.pib.device(ext).is_none() {
            return Ok(false);
        }
        self.apply(Change {
            del_devices: BTreeSet::from([ext]),
            ..Change::default()
        })?;
        Ok(true)
    }

    /// Adds or replaces a security-level descriptor. A command id is only valid for
    /// [`FrameType::MacCommand`].
    pub fn set_security_level(&mut self, d: SecurityLevelDescriptor) -> Result<(), PibError> {
        if d.command_id.is_some() && d.frame_type != FrameType::MacCommand {
            return Err(PibError::Invalid(
                "command id on a non-command security-level descriptor".into(),
            ));
        }
        self.apply(Change {
            put_levels: vec![d],
            ..Change::default()
        })
    }

    /// Removes a security-level descriptor; `false` if it was not there.
    pub fn remove_security_level(
        &mut self,
        frame_type: FrameType,
        command_id: Option<u8>,
    ) -> Result<bool, PibError> {
        let key = crate::pib::security_level::table_key(frame_type, command_id);
        if !self.tables().levels.map.contains_key(&key) {
            return Ok(false);
        }
        self.apply(Change {
            del_levels: vec![key],
            ..Change::default()
        })?;
        Ok(true)
    }

    /// Installs the keys and SAs a KMP produced, atomically: all of them or none. Returns only
    /// after they are durable; only then do they become visible to [`Pib`] readers.
    ///
    /// - Link keys must be 16 octets; a group key needs key identifier mode 1–3.
    /// - A key replaces any installed key it shares its lookup identifier, pairwise device and a
    ///   direction with (there can be only one key to find); two keys of one install may not
    ///   collide that way.
    /// - The peer of a pairwise key is added to the device table if it is not there (PAN ID
    ///   from our identity, no short address, not exempt).
    /// - Keys get [`PibConfig::default_key_usage`]; expiry is `now + lifetime`.
    /// - An upper-layer SA replaces one with the same (owner, peer, sa_id).
    pub fn install_keys(
        &mut self,
        install: &KeyInstall,
        now: Instant,
    ) -> Result<InstallReceipt, PibError> {
        let n = install.link_keys.len();
        let first = self.next_key_ref;
        let end = u32::try_from(n)
            .ok()
            .and_then(|n| first.checked_add(n))
            .ok_or(PibError::KeyRefsExhausted)?;
        let own_pan = self
            .pib
            .own_identity()
            .map_or(PanId::BROADCAST, |i| i.pan_id);
        let mut receipt = InstallReceipt::default();
        let mut change = Change::default();
        let mut claimed: BTreeSet<IndexKeyOrd> = BTreeSet::new();
        for (i, lk) in install.link_keys.iter().enumerate() {
            let key = KeyMaterial::from_slice(lk.key.expose()).ok_or_else(|| {
                PibError::Invalid(format!(
                    "link key {i}: {} octets, expected 16",
                    lk.key.len()
                ))
            })?;
            if lk.scope == KeyScope::Group && lk.lookup == KeyIdentifier::Implicit {
                return Err(PibError::Invalid(format!(
                    "link key {i}: a group key needs key identifier mode 1-3"
                )));
            }
            for ik in IndexKey::of(lk.lookup, lk.scope, lk.direction) {
                if !claimed.insert(IndexKeyOrd::from(ik)) {
                    return Err(PibError::Invalid(format!(
                        "link key {i} has the same lookup, device and direction as another key \
                         of this install"
                    )));
                }
                if let Some(old) = self.tables().keys.find(&ik) {
                    change.del_keys.insert(old);
                }
            }
            // `first + i < end <= u32::MAX`, checked above.
            let key_ref = KeyRef(first + u32::try_from(i).map_err(|_| PibError::KeyRefsExhausted)?);
            if let KeyScope::Pairwise(peer) = lk.scope {
                let known = self.pib.device(peer).is_some()
                    || change.put_devices.iter().any(|d| d.ext_address == peer);
                if !known {
                    change
                        .put_devices
                        .push(DeviceDescriptor::new(own_pan, peer));
                    receipt.devices_added.push(peer);
                }
            }
            receipt.key_refs.push(key_ref);
            change.put_keys.push(KeyDescriptor {
                key_ref,
                owner: install.owner,
                installed_for: install.peer,
                lookup: lk.lookup,
                scope: lk.scope,
                direction: lk.direction,
                usage: self.config.default_key_usage,
                min_security_level: lk.min_security_level,
                installed_at: now,
                expires_at: lk.lifetime.map(|l| now + l),
                key,
            });
        }
        let mut sa_ids = BTreeSet::new();
        for sa in &install.upper_layer_sas {
            validate_sa(sa)?;
            if !sa_ids.insert(sa.sa_id.clone()) {
                return Err(PibError::Invalid(
                    "two upper-layer SAs with one sa_id".into(),
                ));
            }
            change.put_sas.push(StoredSa {
                owner: install.owner,
                peer: install.peer,
                sa: sa.clone(),
                installed_at: now,
                expires_at: sa.lifetime.map(|l| now + l),
            });
        }
        if change.put_keys.is_empty() && change.put_sas.is_empty() {
            return Ok(receipt);
        }
        if n > 0 {
            change.next_key_ref = Some(end);
        }
        receipt.replaced = change.del_keys.iter().copied().collect();
        receipt.upper_layer_sas = change.put_sas.len();
        if !receipt.replaced.is_empty() {
            tracing::info!(
                owner = %install.owner,
                peer = %install.peer,
                replaced = ?receipt.replaced,
                "new keys replace installed keys"
            );
        }
        self.apply(change)?;
        Ok(receipt)
    }

    /// Removes keys and SAs a KMP installed (rekey, lifetime end, KMP-DELETE). Durable before it
    /// returns and before the keys disappear from [`Pib`] readers. Removing nothing is not an
    /// error.
    pub fn remove_keys(&mut self, removal: &KeyRemoval) -> Result<RemovalReceipt, PibError> {
        let (owner, peer) = (removal.owner, removal.peer);
        let mut change = Change::default();
        let ours = |d: &KeyDescriptor| d.owner == owner && d.installed_for == peer;
        match &removal.which {
            KeySelector::All => {
                change.del_keys = self.key_refs_where(|d| ours(d));
                change.del_sas = self
                    .pib
                    .upper_layer_sas(owner, peer)
                    .into_iter()
                    .map(|s| (owner, peer, s.sa.sa_id))
                    .collect();
            }
            KeySelector::LinkKey(id) => {
                change.del_keys = self.key_refs_where(|d| ours(d) && d.lookup == *id);
            }
            KeySelector::UpperLayerSa {
                sa_id,
                revoke_children,
            } => {
                let ids = if *revoke_children {
                    self.tables().sas.descendants(owner, peer, sa_id)
                } else if self.pib.upper_layer_sa(owner, peer, sa_id).is_some() {
                    vec![sa_id.clone()]
                } else {
                    Vec::new()
                };
                change.del_sas = ids.into_iter().map(|id| (owner, peer, id)).collect();
            }
        }
        let receipt = RemovalReceipt {
            keys: change.del_keys.iter().copied().collect(),
            upper_layer_sas: change.del_sas.iter().map(|k| k.2.clone()).collect(),
        };
        if !receipt.keys.is_empty() || !receipt.upper_layer_sas.is_empty() {
            self.apply(change)?;
        }
        Ok(receipt)
    }

    /// Removes one key by handle; `false` if it was not there.
    pub fn remove_key(&mut self, key_ref: KeyRef) -> Result<bool, PibError> {
        if self.pib.key(key_ref).is_none() {
            return Ok(false);
        }
        self.apply(Change {
            del_keys: BTreeSet::from([key_ref]),
            ..Change::default()
        })?;
        Ok(true)
    }

    fn key_refs_where(&self, f: impl Fn(&KeyDescriptor) -> bool) -> BTreeSet<KeyRef> {
        self.tables()
            .keys
            .by_ref
            .iter()
            .filter(|e| f(e.value()))
            .map(|e| *e.key())
            .collect()
    }

    /// Stores an upper-layer SA (replacing one with the same owner, peer and id); its expiry is
    /// `now + lifetime`.
    pub fn insert_upper_layer_sa(
        &mut self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa: UpperLayerSa,
        now: Instant,
    ) -> Result<(), PibError> {
        validate_sa(&sa)?;
        let expires_at = sa.lifetime.map(|l| now + l);
        let stored = StoredSa {
            owner,
            peer,
            sa,
            installed_at: now,
            expires_at,
        };
        self.apply(Change {
            put_sas: vec![stored],
            ..Change::default()
        })
    }

    /// Replaces the keys of an existing SA atomically (readers see the old or the new set, never
    /// a mix) and restarts its lifetime at `now`. Fails with [`PibError::Invalid`] if the SA
    /// does not exist.
    pub fn rekey_upper_layer_sa(
        &mut self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
        keys: Vec<(std::borrow::Cow<'static, str>, SecretBytes)>,
        now: Instant,
    ) -> Result<(), PibError> {
        let mut stored = self.pib.upper_layer_sa(owner, peer, sa_id).ok_or_else(|| {
            PibError::Invalid(format!("no upper-layer SA {} to rekey", hex_id(sa_id)))
        })?;
        stored.sa.keys = keys;
        validate_sa(&stored.sa)?;
        stored.installed_at = now;
        stored.expires_at = stored.sa.lifetime.map(|l| now + l);
        self.apply(Change {
            put_sas: vec![stored],
            ..Change::default()
        })
    }

    /// Deletes one SA (not its children); `false` if it was not there.
    pub fn delete_upper_layer_sa(
        &mut self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
    ) -> Result<bool, PibError> {
        if self.pib.upper_layer_sa(owner, peer, sa_id).is_none() {
            return Ok(false);
        }
        self.apply(Change {
            del_sas: vec![(owner, peer, sa_id.to_vec())],
            ..Change::default()
        })?;
        Ok(true)
    }

    /// Revoke-all for a failed parent SA: deletes `sa_id` and every SA of the same owner and
    /// peer whose parent chain leads to it, in one transaction. Returns the deleted ids (root
    /// first; empty if `sa_id` does not exist).
    pub fn revoke_upper_layer_sa(
        &mut self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
    ) -> Result<Vec<Vec<u8>>, PibError> {
        let ids = self.tables().sas.descendants(owner, peer, sa_id);
        if !ids.is_empty() {
            let del_sas = ids.iter().map(|id| (owner, peer, id.clone())).collect();
            self.apply(Change {
                del_sas,
                ..Change::default()
            })?;
        }
        Ok(ids)
    }

    /// An upper-layer SA (the same as [`Pib::upper_layer_sa`]).
    pub fn upper_layer_sa(
        &self,
        owner: KmpId,
        peer: ExtendedAddress,
        sa_id: &[u8],
    ) -> Option<StoredSa> {
        self.pib.upper_layer_sa(owner, peer, sa_id)
    }

    /// Reserves the next block of outgoing frame counters: commits the new `reserved_until`
    /// with `Durability::Immediate`, then lets the data path use it. Returns the new end.
    pub fn reserve_frame_counters(&mut self) -> Result<u64, PibError> {
        let new_until =
            extend_reservation(self.tables().tx.limit(), self.config.reservation_block)?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(
                META_TX_RESERVED_UNTIL,
                codec::encode_u64(new_until).as_slice(),
            )?;
        }
        txn.commit()?;
        self.tables().tx.publish_limit(new_until);
        Ok(new_until)
    }

    /// [`Pib::allocate_frame_counter`], reserving a new block first when the reservation is
    /// used up. For single-threaded owners; a multi-threaded data path uses the [`Pib`] handle
    /// and lets [`PibStore::maintain`] reserve ahead.
    pub fn allocate_frame_counter(&mut self, key_ref: KeyRef) -> Result<u32, PibError> {
        match self.pib.allocate_frame_counter(key_ref) {
            Err(CounterError::NotReserved) => {
                self.reserve_frame_counters()?;
                Ok(self.pib.allocate_frame_counter(key_ref)?)
            }
            other => Ok(other?),
        }
    }

    /// Writes every incoming frame counter that accepted frames since the last checkpoint
    /// (`Durability::Immediate`). Returns how many were written.
    pub fn checkpoint(&mut self) -> Result<usize, PibError> {
        let snaps = self.tables().devices.dirty_snapshot();
        if snaps.is_empty() {
            return Ok(0);
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut rx = txn.open_table(RX_COUNTERS)?;
            for s in &snaps {
                rx.insert(
                    (s.device.to_u64(), s.key_ref.0),
                    codec::encode_rx(s.next, s.frames).as_slice(),
                )?;
            }
        }
        txn.commit()?;
        self.tables().devices.mark_saved(&snaps);
        Ok(snaps.len())
    }

    /// Housekeeping; call it when [`Pib::needs_maintenance`] is set and when
    /// [`PibStore::poll_timeout`] has passed. Reserves outgoing counters ahead (when fewer than
    /// half a block remain), checkpoints incoming counters (when asked or every
    /// [`PibConfig::checkpoint_interval`]) and removes expired keys and SAs.
    pub fn maintain(&mut self, now: Instant) -> Result<MaintenanceReport, PibError> {
        let mut report = MaintenanceReport::default();
        let tx = &self.tables().tx;
        if tx.should_reserve() || (tx.reservation_wanted() && tx.limit() < FRAME_COUNTER_LIMIT) {
            report.reserved_until = Some(self.reserve_frame_counters()?);
        } else if tx.limit() >= FRAME_COUNTER_LIMIT && tx.remaining() == 0 {
            report.counter_exhausted = true;
            tracing::error!("outgoing frame counter exhausted: keys must be replaced");
        }
        let due = now >= self.last_checkpoint + self.config.checkpoint_interval;
        if due || self.tables().devices.checkpoint_wanted() {
            report.checkpointed = self.checkpoint()?;
            self.last_checkpoint = now;
        }
        let expired_keys = self.key_refs_where(|d| d.is_expired(now));
        let expired_sas: Vec<SaKey> = self
            .tables()
            .sas
            .map
            .iter()
            .filter(|e| e.value().is_expired(now))
            .map(|e| e.key().clone())
            .collect();
        if !expired_keys.is_empty() || !expired_sas.is_empty() {
            report.expired_keys = expired_keys.iter().copied().collect();
            report.expired_upper_layer_sas = expired_sas.len();
            tracing::info!(
                keys = ?report.expired_keys,
                sas = expired_sas.len(),
                "removing expired keys"
            );
            self.apply(Change {
                del_keys: expired_keys,
                del_sas: expired_sas,
                ..Change::default()
            })?;
        }
        Ok(report)
    }

    /// When [`PibStore::maintain`] must run next: the next periodic checkpoint or the earliest
    /// key or SA expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let checkpoint = self.last_checkpoint + self.config.checkpoint_interval;
        let keys = self
            .tables()
            .keys
            .by_ref
            .iter()
            .filter_map(|e| e.expires_at)
            .min();
        let sas = self
            .tables()
            .sas
            .map
            .iter()
            .filter_map(|e| e.expires_at)
            .min();
        [Some(checkpoint), keys, sas].into_iter().flatten().min()
    }

    /// Checkpoints the incoming counters, marks the store as cleanly closed and closes it. A
    /// store that is dropped without `close` counts as crashed at the next open.
    pub fn close(mut self) -> Result<(), PibError> {
        self.checkpoint()?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_CLEAN_SHUTDOWN, codec::encode_u64(1).as_slice())?;
        }
        txn.commit()?;
        self.db.close()?;
        Ok(())
    }
}

/// `IndexKey` with a total order, for duplicate detection inside one install.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct IndexKeyOrd(KeyIdentifier, Option<ExtendedAddress>, bool);

impl From<IndexKey> for IndexKeyOrd {
    fn from(k: IndexKey) -> Self {
        IndexKeyOrd(
            k.id,
            k.device,
            k.slot == crate::pib::key_table::Slot::Transmit,
        )
    }
}

fn validate_sa(sa: &UpperLayerSa) -> Result<(), PibError> {
    let ok = sa.sa_id.len() <= usize::from(u16::MAX)
        && sa.kind.len() <= usize::from(u8::MAX)
        && sa.keys.len() <= usize::from(u16::MAX)
        && sa
            .parent
            .as_ref()
            .is_none_or(|p| p.len() <= usize::from(u16::MAX))
        && sa
            .keys
            .iter()
            .all(|(n, k)| n.len() <= usize::from(u8::MAX) && k.len() <= usize::from(u16::MAX));
    if ok {
        Ok(())
    } else {
        Err(PibError::Invalid(format!(
            "upper-layer SA {}: a field is too long",
            hex_id(&sa.sa_id)
        )))
    }
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the store file with mode 0600 if it does not exist yet.
fn create_private_file(path: &Path) -> Result<(), PibError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?;
    Ok(())
}

/// Runs `f`, turning a panic inside the storage engine (which debug builds of redb may raise
/// on a corrupt file) into [`PibError::Corrupt`]. Has no effect under `panic = "abort"`.
fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T, PibError>) -> Result<T, PibError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("storage engine panicked while {what} the PIB store");
        Err(PibError::corrupt(
            "file",
            format!("storage engine panicked while {what} the store"),
        ))
    })
}

#[cfg(test)]
mod tests;
