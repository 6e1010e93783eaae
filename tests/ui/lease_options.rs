use cachelock::once;

#[once(key = "a", hold_at_least = "0s")]
fn zero_hold() {}

#[once(key = "b", renew = "no")]
fn renew_not_bool() {}

#[once(key = "c", lock_at_least_for = "5m")]
fn shedlock_name() {}

#[once(key = "d", max_hold = "31d")]
fn max_hold_too_long() {}

fn main() {}
