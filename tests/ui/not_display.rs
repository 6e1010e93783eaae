use cachelock::once;

#[once(key = "job-<ids>")]
fn job(ids: Vec<u32>) {
    let _ = ids;
}

fn main() {
    job(vec![1]);
}
