use cachelock::once;

#[once(key = job)]
fn job() {}

fn main() {
    job();
}
