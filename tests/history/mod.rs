//! One history checker for every store and every fault (issue #17).
//!
//! Worker processes (the test binary run again, see [`worker`]) take a few keys on one
//! store, hold them a few milliseconds and log each hold: key, fence, and the
//! `CLOCK_MONOTONIC` times the claim was sent, the holder got in and left ([`log`]). The
//! run ([`run`]) injects one fault meanwhile; then [`checker`] counts overlapping protected
//! windows and fence inversions and prints
//! `history store=<s> fault=<f> holds=N overlaps=N fence_inversions=N`.
#![allow(dead_code)]

pub mod checker;
pub mod clock;
pub mod log;
pub mod run;
pub mod worker;

#[cfg(test)]
mod checker_tests;
