use cachelock::once;

#[once(key = "job", ttl = "30sec")]
fn job() {}

fn main() {
    job();
}
