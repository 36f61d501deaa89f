//! Injectable randomness.
//!
//! Sessions never call a global RNG: they get an [`RngHandle`] from their
//! [`SessionContext`](crate::SessionContext). Production code uses [`RngHandle::os`]; simulations use
//! [`RngHandle::seeded`] so a whole network replays from one seed; known-answer tests use
//! [`RngHandle::fixed`] to feed the exact nonces and scalars of a published vector.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The random source failed or ran dry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RngError {
    /// The operating system / OpenSSL generator failed.
    #[error("random generator failed: {0}")]
    Failed(String),
    /// A [`RngHandle::fixed`] source had fewer octets left than requested.
    #[error("fixed random source exhausted: {wanted} octets wanted, {left} left")]
    Exhausted {
        /// Octets requested.
        wanted: usize,
        /// Octets that were left.
        left: usize,
    },
}

/// A source of random octets. Implementations must be usable from several threads.
pub trait RngSource: Send + Sync {
    /// Fills `out` completely, or fails without partial output being relied upon.
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError>;
}

/// A cheap, clonable handle to a shared random source.
#[derive(Clone)]
pub struct RngHandle(Arc<dyn RngSource>);

impl fmt::Debug for RngHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RngHandle")
    }
}

impl RngHandle {
    /// Wraps any source.
    pub fn new(source: impl RngSource + 'static) -> RngHandle {
        RngHandle(Arc::new(source))
    }

    /// The OpenSSL CSPRNG (seeded by the operating system).
    pub fn os() -> RngHandle {
        RngHandle::new(OsRng)
    }

    /// A deterministic generator for simulations and tests: SHA-256 in counter mode over the
    /// seed. Not for production keys.
    pub fn seeded(seed: u64) -> RngHandle {
        RngHandle::new(SeededRng {
            seed,
            state: Mutex::new((0, [0; 32], 32)),
        })
    }

    /// Hands out exactly `bytes`, in order, then fails with [`RngError::Exhausted`].
    pub fn fixed(bytes: impl Into<Vec<u8>>) -> RngHandle {
        RngHandle::new(FixedRng(Mutex::new(bytes.into().into())))
    }

    /// Fills `out` with random octets.
    pub fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        self.0.fill(out)
    }

    /// Returns `N` random octets.
    pub fn array<const N: usize>(&self) -> Result<[u8; N], RngError> {
        let mut a = [0u8; N];
        self.fill(&mut a)?;
        Ok(a)
    }

    /// Returns `n` random octets.
    pub fn vec(&self, n: usize) -> Result<Vec<u8>, RngError> {
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// A uniformly distributed integer in `0..bound` (`bound > 0`), without modulo bias.
    pub fn below(&self, bound: u64) -> Result<u64, RngError> {
        if bound <= 1 {
            return Ok(0);
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = u64::from_le_bytes(self.array()?);
            if v < zone {
                return Ok(v % bound);
            }
        }
    }
}

struct OsRng;

impl RngSource for OsRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        openssl::rand::rand_bytes(out).map_err(|e| RngError::Failed(e.to_string()))
    }
}

struct SeededRng {
    seed: u64,
    /// (block counter, current block, octets of the block already used)
    state: Mutex<(u64, [u8; 32], usize)>,
}

impl RngSource for SeededRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (counter, block, used) = &mut *guard;
        for b in out.iter_mut() {
            if *used == 32 {
                let mut input = [0u8; 16];
                input[..8].copy_from_slice(&self.seed.to_be_bytes());
                input[8..].copy_from_slice(&counter.to_be_bytes());
                *block = openssl::sha::sha256(&input);
                *counter = counter.wrapping_add(1);
                *used = 0;
            }
            *b = block[*used];
            *used += 1;
        }
        Ok(())
    }
}

struct FixedRng(Mutex<VecDeque<u8>>);

impl RngSource for FixedRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() < out.len() {
            return Err(RngError::Exhausted {
                wanted: out.len(),
                left: q.len(),
            });
        }
        let n = out.len();
        for (o, b) in out.iter_mut().zip(q.drain(..n)) {
            *o = b;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_seed_dependent() {
        let a = RngHandle::seeded(7).vec(100).unwrap();
        let b = RngHandle::seeded(7).vec(100).unwrap();
        let c = RngHandle::seeded(8).vec(100).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Chunking does not change the stream.
        let r = RngHandle::seeded(7);
        let mut d = r.vec(33).unwrap();
        d.extend(r.vec(67).unwrap());
        assert_eq!(a, d);
    }

    #[test]
    fn fixed_runs_dry() {
        let r = RngHandle::fixed(vec![1, 2, 3]);
        assert_eq!(r.array::<2>().unwrap(), [1, 2]);
        assert_eq!(
            r.array::<2>(),
            Err(RngError::Exhausted { wanted: 2, left: 1 })
        );
    }

    #[test]
    fn os_and_below() {
        let r = RngHandle::os();
        assert_ne!(r.array::<32>().unwrap(), [0u8; 32]);
        for _ in 0..100 {
            assert!(r.below(10).unwrap() < 10);
        }
        assert_eq!(r.below(1).unwrap(), 0);
    }
}
