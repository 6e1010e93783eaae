use cachelock::once;

#[once(key = "job")]
extern "C" fn job() {}

fn main() {
    job();
}
