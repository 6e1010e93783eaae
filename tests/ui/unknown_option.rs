use cachelock::once;

#[once(key = "job", timeout = "30s")]
fn job() {}

fn main() {
    job();
}
