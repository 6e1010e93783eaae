use cachelock::once;

#[once(key = "job", ttl = "30s", ttl = "1m")]
fn job() {}

fn main() {
    job();
}
