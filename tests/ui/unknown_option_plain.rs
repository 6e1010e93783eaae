use cachelock::once;

#[once(key = "job", retries = 3)]
fn job() {}

fn main() {
    job();
}
