use cachelock::once;

#[once(key = "job", cancel_on_lost = true)]
async fn job() -> Option<u32> {
    Some(1)
}

fn main() {
    let _ = job();
}
