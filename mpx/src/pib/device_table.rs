//! The device table (802.15.4-2015 9.5 `secDeviceTable`) and the incoming frame counters kept
//! per device and key (the 2015 per-key device frame counters).
//!
//! The replay check is the one of the incoming frame security procedure (802.15.4-2015 9.2.3):
//! a frame is accepted only if its counter is at least the stored *next acceptable* value, and
//! accepting it stores `counter + 1`. That is "strictly greater than the last accepted counter",
//! and 0xffffffff is never accepted because no frame could follow it.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kmp_api::{Address, ExtendedAddress, PanId, ShortAddress};

use crate::pib::KeyRef;

/// One device-table entry (802.15.4-2015 9.5 DeviceDescriptor). The frame counters live
/// beside it, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceDescriptor {
    /// The device's PAN.
    pub pan_id: PanId,
    /// Its short address; [`ShortAddress::NONE_ASSIGNED`] if it has none.
    pub short_address: ShortAddress,
    /// Its EUI-64: the key of the table.
    pub ext_address: ExtendedAddress,
    /// Exempt: it may send unsecured frames of the types whose security-level descriptor sets
    /// `device_override` (802.15.4-2015 9.2.6).
    pub exempt: bool,
}

impl DeviceDescriptor {
    /// A device known only by its EUI-64 (no short address, not exempt).
    pub const fn new(pan_id: PanId, ext_address: ExtendedAddress) -> DeviceDescriptor {
        DeviceDescriptor {
            pan_id,
            short_address: ShortAddress::NONE_ASSIGNED,
            ext_address,
            exempt: false,
        }
    }

    /// The `(PAN ID, short address)` it can be found by, if it has a usable short address.
    pub(crate) fn short_key(&self) -> Option<(PanId, ShortAddress)> {
        let s = self.short_address;
        (s != ShortAddress::NONE_ASSIGNED && s != ShortAddress::BROADCAST)
            .then_some((self.pan_id, s))
    }
}

/// Why an incoming frame counter was refused. The frame must be dropped (802.15.4-2015
/// COUNTER_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameCounterError {
    /// The counter is below the next acceptable value: a replay or a reordered old frame.
    #[error("frame counter {received} replayed (next acceptable {next_acceptable})")]
    Replay {
        /// The frame's counter.
        received: u32,
        /// The smallest counter that would have been accepted.
        next_acceptable: u32,
    },
    /// 0xffffffff is never accepted (802.15.4-2015 9.2.3).
    #[error("frame counter 0xffffffff is never accepted")]
    Exhausted,
    /// The device has no counter for this key: it is not in the device table, the key is not
    /// in the key table, or the key is transmit-only.
    #[error("no frame counter for device {device} and {key_ref}")]
    UnknownDeviceKey {
        /// The device.
        device: ExtendedAddress,
        /// The key.
        key_ref: KeyRef,
    },
}

/// One incoming counter. All fields are updated with atomics so that the data path only takes
/// a shard read lock of the map and never allocates.
#[derive(Debug)]
pub(crate) struct RxCounter {
    /// The next acceptable counter (802.15.4 DeviceDescriptor FrameCounter semantics).
    next: AtomicU32,
    /// Frames accepted since the last checkpoint.
    unsaved: AtomicU32,
    /// Frames accepted in the last checkpointed interval (persisted, drives the skip after a
    /// crash).
    last_interval_frames: AtomicU32,
    /// Whether the store has a record of this counter. The first frame under a counter that
    /// has none asks for a checkpoint at once.
    persisted: AtomicBool,
}

impl RxCounter {
    pub(crate) fn new(next: u32, last_interval_frames: u32, persisted: bool) -> RxCounter {
        RxCounter {
            next: AtomicU32::new(next),
            unsaved: AtomicU32::new(0),
            last_interval_frames: AtomicU32::new(last_interval_frames),
            persisted: AtomicBool::new(persisted),
        }
    }

    fn check(&self, counter: u32) -> Result<(), FrameCounterError> {
        if counter == u32::MAX {
            return Err(FrameCounterError::Exhausted);
        }
        let next = self.next.load(Ordering::Acquire);
        if counter < next {
            return Err(FrameCounterError::Replay {
                received: counter,
                next_acceptable: next,
            });
        }
        Ok(())
    }

    /// Accepts `counter` if it is not a replay; returns whether a checkpoint is now due.
    fn check_and_update(
        &self,
        counter: u32,
        checkpoint_after: u32,
    ) -> Result<bool, FrameCounterError> {
        if counter == u32::MAX {
            return Err(FrameCounterError::Exhausted);
        }
        // fetch_update is a CAS loop: two frames with the same counter racing on two cores
        // cannot both be accepted.
        self.next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |next| {
                (counter >= next).then_some(counter + 1)
            })
            .map_err(|next| FrameCounterError::Replay {
                received: counter,
                next_acceptable: next,
            })?;
        let unsaved = self
            .unsaved
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        Ok(
            unsaved == checkpoint_after
                || (unsaved == 1 && !self.persisted.load(Ordering::Relaxed)),
        )
    }

    pub(crate) fn next(&self) -> u32 {
        self.next.load(Ordering::Acquire)
    }

    pub(crate) fn unsaved(&self) -> u32 {
        self.unsaved.load(Ordering::Relaxed)
    }

    pub(crate) fn last_interval_frames(&self) -> u32 {
        self.last_interval_frames.load(Ordering::Relaxed)
    }

    /// Records that `frames` of the unsaved frames are now durable.
    pub(crate) fn mark_saved(&self, frames: u32) {
        let _ = self
            .unsaved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(frames))
            });
        if frames > 0 {
            self.last_interval_frames.store(frames, Ordering::Relaxed);
        }
        self.persisted.store(true, Ordering::Relaxed);
    }
}

/// What a checkpoint writes for one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxCounterSnapshot {
    pub(crate) device: ExtendedAddress,
    pub(crate) key_ref: KeyRef,
    pub(crate) next: u32,
    /// Frames accepted since the previous checkpoint, at snapshot time.
    pub(crate) frames: u32,
    pub(crate) last_interval_frames: u32,
}

/// The in-memory device table with its short-address map and incoming counters.
#[derive(Debug)]
pub(crate) struct DeviceTable {
    pub(crate) devices: crate::pib::Map<ExtendedAddress, DeviceDescriptor>,
    pub(crate) short: crate::pib::Map<(PanId, ShortAddress), ExtendedAddress>,
    pub(crate) rx: crate::pib::Map<(ExtendedAddress, KeyRef), RxCounter>,
    checkpoint_after: u32,
    checkpoint_wanted: AtomicBool,
}

impl DeviceTable {
    pub(crate) fn new(checkpoint_after: u32) -> DeviceTable {
        DeviceTable {
            devices: crate::pib::Map::default(),
            short: crate::pib::Map::default(),
            rx: crate::pib::Map::default(),
            checkpoint_after: checkpoint_after.max(1),
            checkpoint_wanted: AtomicBool::new(false),
        }
    }

    /// Inserts or replaces a descriptor and keeps the short-address map in step. A short
    /// address another device held moves to this one.
    pub(crate) fn upsert(&self, d: DeviceDescriptor) {
        if let Some(old) = self.devices.insert(d.ext_address, d)
            && let Some(k) = old.short_key()
            && Some(k) != d.short_key()
        {
            self.short.remove_if(&k, |_, e| *e == d.ext_address);
        }
        if let Some(k) = d.short_key()
            && let Some(prev) = self.short.insert(k, d.ext_address)
            && prev != d.ext_address
        {
            tracing::warn!(
                pan = %k.0, short = %k.1, from = %prev, to = %d.ext_address,
                "short address reassigned to another device"
            );
        }
    }

    /// Removes a device, its short-address mapping and all its counters.
    pub(crate) fn remove(&self, ext: ExtendedAddress) -> Option<DeviceDescriptor> {
        self.rx.retain(|(dev, _), _| *dev != ext);
        let (_, d) = self.devices.remove(&ext)?;
        if let Some(k) = d.short_key() {
            self.short.remove_if(&k, |_, e| *e == ext);
        }
        Some(d)
    }

    /// Device lookup (802.15.4-2015 9.2.4): by extended address, or by PAN ID and short
    /// address.
    pub(crate) fn by_address(&self, pan: PanId, addr: Address) -> Option<DeviceDescriptor> {
        let ext = match addr {
            Address::Extended(e) => e,
            Address::Short(s) => *self.short.get(&(pan, s))?,
            Address::Absent => return None,
        };
        self.devices.get(&ext).map(|d| *d)
    }

    /// Creates the counter of `(device, key)` if it does not exist.
    pub(crate) fn ensure_counter(&self, device: ExtendedAddress, key_ref: KeyRef) {
        self.rx
            .entry((device, key_ref))
            .or_insert_with(|| RxCounter::new(0, 0, false));
    }

    /// Sets a counter from its store record; `false` if the counter does not exist (an orphan
    /// record).
    pub(crate) fn restore_counter(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
        next: u32,
        last_interval_frames: u32,
    ) -> bool {
        match self.rx.get_mut(&(device, key_ref)) {
            Some(mut c) => {
                *c = RxCounter::new(next, last_interval_frames, true);
                true
            }
            None => false,
        }
    }

    /// Drops every counter of `key_ref`.
    pub(crate) fn remove_key_counters(&self, key_ref: KeyRef) {
        self.rx.retain(|(_, k), _| *k != key_ref);
    }

    pub(crate) fn check(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
        counter: u32,
    ) -> Result<(), FrameCounterError> {
        self.rx
            .get(&(device, key_ref))
            .ok_or(FrameCounterError::UnknownDeviceKey { device, key_ref })?
            .check(counter)
    }

    pub(crate) fn check_and_update(
        &self,
        device: ExtendedAddress,
        key_ref: KeyRef,
        counter: u32,
    ) -> Result<(), FrameCounterError> {
        let due = self
            .rx
            .get(&(device, key_ref))
            .ok_or(FrameCounterError::UnknownDeviceKey { device, key_ref })?
            .check_and_update(counter, self.checkpoint_after)?;
        if due && !self.checkpoint_wanted.load(Ordering::Relaxed) {
            self.checkpoint_wanted.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    pub(crate) fn next_acceptable(&self, device: ExtendedAddress, key_ref: KeyRef) -> Option<u32> {
        self.rx.get(&(device, key_ref)).map(|c| c.next())
    }

    pub(crate) fn checkpoint_wanted(&self) -> bool {
        self.checkpoint_wanted.load(Ordering::Relaxed)
    }

    /// The counters with frames accepted since the last checkpoint. Clears the "wanted" flag:
    /// updates after this call raise it again.
    pub(crate) fn dirty_snapshot(&self) -> Vec<RxCounterSnapshot> {
        self.checkpoint_wanted.store(false, Ordering::Relaxed);
        self.rx
            .iter()
            .filter_map(|e| {
                let frames = e.unsaved();
                (frames > 0).then(|| RxCounterSnapshot {
                    device: e.key().0,
                    key_ref: e.key().1,
                    next: e.next(),
                    frames,
                    last_interval_frames: e.last_interval_frames(),
                })
            })
            .collect()
    }

    /// Marks a snapshot durable.
    pub(crate) fn mark_saved(&self, snaps: &[RxCounterSnapshot]) {
        for s in snaps {
            if let Some(c) = self.rx.get(&(s.device, s.key_ref)) {
                c.mark_saved(s.frames);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAN: PanId = PanId(0xabcd);

    fn ext(v: u64) -> ExtendedAddress {
        ExtendedAddress::from_u64(v)
    }

    #[test]
    fn lookup_by_short_and_extended() {
        let t = DeviceTable::new(64);
        let mut d = DeviceDescriptor::new(PAN, ext(1));
        t.upsert(d);
        assert_eq!(t.by_address(PAN, Address::Extended(ext(1))), Some(d));
        assert_eq!(
            t.by_address(PAN, Address::Short(ShortAddress::NONE_ASSIGNED)),
            None
        );
        assert!(t.short.is_empty());
        d.short_address = ShortAddress(0x0001);
        t.upsert(d);
        assert_eq!(t.by_address(PAN, Address::Short(ShortAddress(1))), Some(d));
        assert_eq!(
            t.by_address(PanId(1), Address::Short(ShortAddress(1))),
            None
        );
        assert_eq!(t.by_address(PAN, Address::Absent), None);
        // A new short address replaces the old mapping.
        d.short_address = ShortAddress(0x0002);
        t.upsert(d);
        assert_eq!(t.by_address(PAN, Address::Short(ShortAddress(1))), None);
        assert_eq!(t.by_address(PAN, Address::Short(ShortAddress(2))), Some(d));
        // Another device takes short address 2; removing the first keeps the new mapping.
        let mut e = DeviceDescriptor::new(PAN, ext(2));
        e.short_address = ShortAddress(2);
        t.upsert(e);
        assert_eq!(t.remove(ext(1)), Some(d));
        assert_eq!(t.by_address(PAN, Address::Short(ShortAddress(2))), Some(e));
        assert_eq!(t.remove(ext(1)), None);
        assert_eq!(t.by_address(PAN, Address::Extended(ext(1))), None);
    }

    #[test]
    fn replay_check() {
        let t = DeviceTable::new(64);
        let (dev, k) = (ext(1), KeyRef(9));
        assert_eq!(
            t.check_and_update(dev, k, 0),
            Err(FrameCounterError::UnknownDeviceKey {
                device: dev,
                key_ref: k
            })
        );
        t.ensure_counter(dev, k);
        assert_eq!(t.check(dev, k, 0), Ok(()));
        assert_eq!(t.check_and_update(dev, k, 0), Ok(()));
        assert_eq!(
            t.check_and_update(dev, k, 0),
            Err(FrameCounterError::Replay {
                received: 0,
                next_acceptable: 1
            })
        );
        assert_eq!(t.check_and_update(dev, k, 5), Ok(()));
        assert_eq!(
            t.check(dev, k, 5).unwrap_err(),
            FrameCounterError::Replay {
                received: 5,
                next_acceptable: 6
            }
        );
        assert!(t.check_and_update(dev, k, 3).is_err());
        assert_eq!(t.check_and_update(dev, k, 6), Ok(()));
        assert_eq!(
            t.check_and_update(dev, k, u32::MAX),
            Err(FrameCounterError::Exhausted)
        );
        assert_eq!(t.check(dev, k, u32::MAX), Err(FrameCounterError::Exhausted));
        assert_eq!(t.check_and_update(dev, k, u32::MAX - 1), Ok(()));
        assert_eq!(t.next_acceptable(dev, k), Some(u32::MAX));
        assert!(t.check_and_update(dev, k, u32::MAX - 1).is_err());
        // Counters are per key: the same device starts from 0 under another key.
        t.ensure_counter(dev, KeyRef(10));
        assert_eq!(t.check_and_update(dev, KeyRef(10), 0), Ok(()));
        // ensure_counter never resets an existing counter.
        t.ensure_counter(dev, k);
        assert_eq!(t.next_acceptable(dev, k), Some(u32::MAX));
        t.remove_key_counters(k);
        assert_eq!(t.next_acceptable(dev, k), None);
        assert_eq!(t.next_acceptable(dev, KeyRef(10)), Some(1));
    }

    proptest::proptest! {
        /// The replay check against a model: accept exactly the counters above every counter
        /// accepted before, and never 0xffffffff.
        #[test]
        fn replay_check_matches_model(counters in proptest::collection::vec(
            proptest::prop_oneof![
                0u32..50,
                proptest::prelude::Just(u32::MAX),
                u32::MAX - 3..u32::MAX,
            ],
            0..64,
        )) {
            let t = DeviceTable::new(64);
            t.ensure_counter(ext(1), KeyRef(1));
            let mut last: Option<u32> = None;
            for c in counters {
                let expect = c != u32::MAX && last.is_none_or(|l| c > l);
                proptest::prop_assert_eq!(t.frame_counter_ok(c), expect);
                proptest::prop_assert_eq!(t.check_and_update(ext(1), KeyRef(1), c).is_ok(), expect);
                if expect {
                    last = Some(c);
                }
            }
        }
    }

    impl DeviceTable {
        fn frame_counter_ok(&self, c: u32) -> bool {
            self.check(ext(1), KeyRef(1), c).is_ok()
        }
    }

    #[test]
    fn concurrent_updates_accept_each_counter_once() {
        let t = std::sync::Arc::new(DeviceTable::new(64));
        t.ensure_counter(ext(1), KeyRef(1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..20_000u32)
                        .filter(|&c| t.check_and_update(ext(1), KeyRef(1), c).is_ok())
                        .count()
                })
            })
            .collect();
        let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        // Every counter is accepted at most once overall.
        assert!(accepted <= 20_000);
        assert_eq!(t.next_acceptable(ext(1), KeyRef(1)), Some(20_000));
    }

    #[test]
    fn checkpoint_bookkeeping() {
        let t = DeviceTable::new(3);
        t.ensure_counter(ext(1), KeyRef(1));
        t.ensure_counter(ext(2), KeyRef(1));
        assert!(t.dirty_snapshot().is_empty());
        t.rx.insert((ext(1), KeyRef(1)), RxCounter::new(0, 0, true));
        t.check_and_update(ext(1), KeyRef(1), 10).unwrap();
        t.check_and_update(ext(1), KeyRef(1), 11).unwrap();
        assert!(!t.checkpoint_wanted());
        t.check_and_update(ext(1), KeyRef(1), 12).unwrap();
        assert!(t.checkpoint_wanted());
        let snap = t.dirty_snapshot();
        assert!(!t.checkpoint_wanted());
        assert_eq!(snap.len(), 1);
        assert_eq!((snap[0].next, snap[0].frames), (13, 3));
        // A frame accepted between snapshot and commit stays unsaved.
        t.check_and_update(ext(1), KeyRef(1), 20).unwrap();
        t.mark_saved(&snap);
        let snap = t.dirty_snapshot();
        assert_eq!(
            (snap[0].next, snap[0].frames, snap[0].last_interval_frames),
            (21, 1, 3)
        );
        t.mark_saved(&snap);
        assert!(t.dirty_snapshot().is_empty());
        // A counter the store has no record of asks for a checkpoint on its first frame.
        assert!(!t.checkpoint_wanted());
        t.check_and_update(ext(2), KeyRef(1), 0).unwrap();
        assert!(t.checkpoint_wanted());
        let snap = t.dirty_snapshot();
        t.mark_saved(&snap);
        t.check_and_update(ext(2), KeyRef(1), 1).unwrap();
        assert!(!t.checkpoint_wanted());
        t.remove(ext(1));
        assert_eq!(t.rx.len(), 1);
    }
}
