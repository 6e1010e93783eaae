use cachelock::once;

#[once(key = "count-<day>")]
async fn count(day: u32) -> u32 {
    day
}

fn main() {
    drop(count(1));
}
