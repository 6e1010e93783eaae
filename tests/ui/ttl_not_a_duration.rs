use cachelock::once;

const TTL_SECS: u64 = 30;

#[once(key = "job", ttl = TTL_SECS)]
fn job() {}

fn main() {
    job();
}
