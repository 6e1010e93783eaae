use cachelock::once;

#[once(key = "job", crate = "not a path")]
fn job() {}

fn main() {
    job();
}
