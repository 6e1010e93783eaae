use cachelock::once;

struct NotACache;

#[once(key = "job", cache = NotACache)]
fn job() {}

fn main() {
    job();
}
