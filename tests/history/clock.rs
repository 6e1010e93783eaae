//! `CLOCK_MONOTONIC` as a number, and a small seeded generator.

pub use cachelock_testkit::mono_ns;

/// A small xorshift generator, seeded per thread (no dependency needed).
pub struct Rng(u64);

impl Rng {
    pub fn seeded(salt: u64) -> Rng {
        Rng((mono_ns()
            ^ (u64::from(std::process::id()) << 32)
            ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
