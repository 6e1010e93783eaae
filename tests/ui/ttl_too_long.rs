use cachelock::once;

#[once(key = "job", ttl = "31d")]
fn job() {}

fn main() {
    job();
}
