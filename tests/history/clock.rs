//! `CLOCK_MONOTONIC` as a number, and a small seeded generator.

/// `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every process on this host
/// (`std::time::Instant` is opaque, so it cannot be written to a file and compared across
/// processes).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

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
