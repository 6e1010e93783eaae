use cachelock::once;

#[once(key = "job", raise_if_lock = true)]
fn job() {}

fn main() {
    job();
}
