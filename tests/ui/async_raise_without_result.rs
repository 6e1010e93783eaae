use cachelock::once;

#[once(key = "job", raise_if_locked = true)]
async fn job() -> Option<u32> {
    Some(1)
}

fn main() {
    drop(job());
}
