use cachelock::once;

#[once(key = "job", ttl = "0s")]
fn job() {}

fn main() {
    job();
}
