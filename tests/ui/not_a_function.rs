use cachelock::once;

#[once(key = "job")]
struct Job;

fn main() {
    let _ = Job;
}
