//! Our own outgoing frame counter (802.15.4-2015 9.5 `macFrameCounter`), reserved ahead in
//! durable blocks.
//!
//! # Decision: one global counter, not one per key
//!
//! The PIB keeps **one** outgoing frame counter for every key (802.15.4-2015 `macFrameCounter`,
//! `secFrameCounterPerKey` = FALSE), although [`Pib::allocate_frame_counter`] takes the key so
//! that per-key counters could be added later without changing callers. Why:
//!
//! - **Nonce uniqueness needs no per-key state.** The CCM* nonce is source EUI-64 ‖ frame
//!   counter ‖ security level (802.15.4-2015 9.3.2). A counter value that is never handed out
//!   twice is never used twice under any key: keys installed, replaced or re-installed under
//!   the same identifier while frames are in flight cannot collide.
//! - **Interoperability.** Receivers that keep one counter per device (802.15.4-2006/2011
//!   `DeviceDescriptor.FrameCounter`) and receivers that keep one per device and key (2015) both
//!   accept a sender whose counter only grows. A per-key sender is rejected by the former as
//!   soon as it switches to a key whose counter is lower.
//! - **One durable record.** The reservation commit rate depends on our transmit rate only, not
//!   on the number of keys; installing a key never needs a counter reservation of its own.
//!
//! The price is that 2^32 − 1 frames are shared by all keys: at the saturated 2.4 GHz O-QPSK
//! rate (≈ 1 500 short frames/s) that is about 33 days of continuous sending, at realistic
//! gateway loads years. Exhaustion is a typed [`CounterError::Exhausted`]; the counter never
//! wraps. Recovery (all keys replaced, then the counter restarted) is left to a later change.
//!
//! # Durability: reserve, commit, then hand out
//!
//! Counters are handed out from a block `[next, reserved_until)`. `reserved_until` is written
//! to the store with `Durability::Immediate` *before* it is published to the data path, so every
//! value ever handed out is below a durable `reserved_until`. After a restart counting resumes at
//! the persisted `reserved_until`; the unused rest of the old block is skipped and never reused.
//! A crash therefore costs at most one block of counter space and can never repeat a nonce.
//!
//! [`Pib::allocate_frame_counter`]: crate::pib::Pib::allocate_frame_counter

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The first value that is never handed out: 0xffffffff cannot be used, because a receiver
/// could accept no later frame (802.15.4-2015 9.2.1: a frame counter of 0xffffffff gives
/// COUNTER_ERROR).
pub const FRAME_COUNTER_LIMIT: u64 = 0xffff_ffff;

/// Default reservation block: 4096 counters per durable commit.
pub const DEFAULT_RESERVATION_BLOCK: u32 = 4096;

/// Why no outgoing frame counter could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CounterError {
    /// Every value up to 0xfffffffe has been handed out (802.15.4-2015 COUNTER_ERROR). The
    /// counter does not wrap; keys must be replaced.
    #[error("outgoing frame counter exhausted")]
    Exhausted,
    /// The durably reserved block is used up. Transient: the PIB owner must reserve more
    /// (`PibStore::maintain` or `PibStore::reserve_frame_counters`) before frames can be sent.
    #[error("no durably reserved outgoing frame counters left")]
    NotReserved,
    /// The key the frame would be protected with is not in the key table.
    #[error("key {0} is not in the key table")]
    UnknownKey(crate::pib::KeyRef),
}

/// The next `reserved_until` after extending a reservation that ends at `reserved_until` by
/// `block` counters, clamped to [`FRAME_COUNTER_LIMIT`].
///
/// Fails with [`CounterError::Exhausted`] when nothing is left to reserve. A `block` of 0 is
/// treated as 1.
pub const fn extend_reservation(reserved_until: u64, block: u32) -> Result<u64, CounterError> {
    if reserved_until >= FRAME_COUNTER_LIMIT {
        return Err(CounterError::Exhausted);
    }
    let block = if block == 0 { 1 } else { block as u64 };
    let end = reserved_until.saturating_add(block);
    Ok(if end > FRAME_COUNTER_LIMIT {
        FRAME_COUNTER_LIMIT
    } else {
        end
    })
}

/// The live counter: `next` and the published durable `limit`, both only ever growing.
#[derive(Debug)]
pub(crate) struct OutgoingFrameCounter {
    next: AtomicU64,
    limit: AtomicU64,
    /// When fewer than this many reserved values remain, ask for a new block.
    low_water: u64,
    reserve_wanted: AtomicBool,
}

impl OutgoingFrameCounter {
    /// A counter resuming at `reserved_until` with nothing reserved yet.
    pub(crate) fn resume_at(reserved_until: u64, block: u32) -> Self {
        let start = reserved_until.min(FRAME_COUNTER_LIMIT);
        OutgoingFrameCounter {
            next: AtomicU64::new(start),
            limit: AtomicU64::new(start),
            low_water: u64::from(block / 2).max(1),
            reserve_wanted: AtomicBool::new(true),
        }
    }

    /// Hands out the next counter if it lies inside the durable reservation.
    pub(crate) fn allocate(&self) -> Result<u32, CounterError> {
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            if cur >= FRAME_COUNTER_LIMIT {
                return Err(CounterError::Exhausted);
            }
            // Acquire pairs with the Release in `publish_limit`: a limit we see was durable.
            let limit = self.limit.load(Ordering::Acquire);
            if cur >= limit {
                self.want_reservation();
                return Err(CounterError::NotReserved);
            }
            match self.next.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if limit - (cur + 1) <= self.low_water {
                        self.want_reservation();
                    }
                    // cur < FRAME_COUNTER_LIMIT = u32::MAX, so it fits.
                    return u32::try_from(cur).map_err(|_| CounterError::Exhausted);
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn want_reservation(&self) {
        if !self.reserve_wanted.load(Ordering::Relaxed) {
            self.reserve_wanted.store(true, Ordering::Relaxed);
        }
    }

    /// The next value to hand out.
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// The end (exclusive) of the durable reservation published to the data path.
    pub(crate) fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Values still reserved and not handed out.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit().saturating_sub(self.next())
    }

    /// Whether the data path saw the reservation run low.
    pub(crate) fn reservation_wanted(&self) -> bool {
        self.reserve_wanted.load(Ordering::Relaxed)
    }

    /// Whether a new block should be reserved now.
    pub(crate) fn should_reserve(&self) -> bool {
        self.limit() < FRAME_COUNTER_LIMIT && self.remaining() <= self.low_water
    }

    /// Publishes a limit that has been made durable. Only ever raises the limit.
    pub(crate) fn publish_limit(&self, durable_until: u64) {
        self.limit
            .fetch_max(durable_until.min(FRAME_COUNTER_LIMIT), Ordering::Release);
        self.reserve_wanted.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_arithmetic() {
        assert_eq!(extend_reservation(0, 4096), Ok(4096));
        assert_eq!(extend_reservation(4096, 4096), Ok(8192));
        assert_eq!(extend_reservation(5, 0), Ok(6));
        // The last block is clamped so that 0xffffffff is never reserved.
        assert_eq!(
            extend_reservation(0xffff_f000, 4096),
            Ok(FRAME_COUNTER_LIMIT)
        );
        assert_eq!(
            extend_reservation(0xffff_fff0, 4096),
            Ok(FRAME_COUNTER_LIMIT)
        );
        assert_eq!(
            extend_reservation(FRAME_COUNTER_LIMIT, 4096),
            Err(CounterError::Exhausted)
        );
        assert_eq!(
            extend_reservation(u64::MAX, u32::MAX),
            Err(CounterError::Exhausted)
        );
    }

    #[test]
    fn hands_out_only_reserved_values() {
        let c = OutgoingFrameCounter::resume_at(100, 4);
        assert_eq!(c.allocate(), Err(CounterError::NotReserved));
        assert!(c.reservation_wanted());
        c.publish_limit(104);
        assert!(!c.reservation_wanted());
        assert_eq!(c.allocate(), Ok(100));
        assert_eq!(c.allocate(), Ok(101));
        // Two left = low water (block / 2): the data path asks for more.
        assert!(c.reservation_wanted());
        assert!(c.should_reserve());
        assert_eq!(c.allocate(), Ok(102));
        assert_eq!(c.allocate(), Ok(103));
        assert_eq!(c.allocate(), Err(CounterError::NotReserved));
        // A lower limit is never published.
        c.publish_limit(50);
        assert_eq!(c.limit(), 104);
        c.publish_limit(106);
        assert_eq!(c.allocate(), Ok(104));
    }

    #[test]
    fn exhaustion_never_wraps() {
        let c = OutgoingFrameCounter::resume_at(0xffff_fffd, 4096);
        c.publish_limit(extend_reservation(0xffff_fffd, 4096).unwrap());
        assert_eq!(c.allocate(), Ok(0xffff_fffd));
        assert_eq!(c.allocate(), Ok(0xffff_fffe));
        assert_eq!(c.allocate(), Err(CounterError::Exhausted));
        assert_eq!(c.allocate(), Err(CounterError::Exhausted));
        assert!(!c.should_reserve());
        let c = OutgoingFrameCounter::resume_at(u64::MAX, 4096);
        assert_eq!(c.allocate(), Err(CounterError::Exhausted));
    }

    #[test]
    fn concurrent_allocation_is_unique() {
        let c = std::sync::Arc::new(OutgoingFrameCounter::resume_at(0, 4096));
        c.publish_limit(40_000);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(v) = c.allocate() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..40_000).collect::<Vec<_>>());
    }
}
