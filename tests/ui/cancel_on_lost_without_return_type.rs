use cachelock::once;

#[once(key = "job", cancel_on_lost = true)]
async fn job() {}

fn main() {
    let _ = job();
}
