use cachelock::once;

#[once(key = "count-<day>", raise_if_locked = true)]
fn count(day: u32) -> Option<u32> {
    Some(day)
}

fn main() {
    count(1);
}
