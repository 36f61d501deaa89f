//! The medium's random generator: xorshift64* seeded through SplitMix64.
//!
//! Not [`kmp_api::RngHandle::seeded`]: that one hashes (SHA-256) behind a mutex per draw, built
//! for key material in tests, while the medium draws a backoff or a loss decision for every
//! frame of every radio and owns its generator alone. Statistical quality of xorshift64* is
//! plenty for backoff slots and loss decisions; it must never produce keys.

/// A small deterministic generator; the same seed gives the same sequence on every platform.
#[derive(Debug, Clone)]
pub(crate) struct SimRng(u64);

impl SimRng {
    /// Seeds the state with one SplitMix64 step, so seed 0 is fine too.
    pub(crate) fn new(seed: u64) -> SimRng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        SimRng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound` (`bound` ≥ 1); the modulo bias is below 2⁻⁵⁰ for the small bounds
    /// used here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits exactly fill an f64 mantissa.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
