use cachelock::once;

#[once(key = "count-<day>")]
fn count(day: u32) -> u32 {
    day
}

fn main() {
    count(1);
}
