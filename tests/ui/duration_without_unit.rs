use cachelock::once;

#[once(key = "job", wait = 30)]
fn job() {}

fn main() {
    job();
}
