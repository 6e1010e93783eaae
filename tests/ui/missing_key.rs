use cachelock::once;

#[once(ttl = "30s")]
fn job() {}

fn main() {
    job();
}
