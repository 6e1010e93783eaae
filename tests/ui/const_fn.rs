use cachelock::once;

#[once(key = "job")]
const fn job() {}

fn main() {
    job();
}
