use cachelock::once;

#[once(key = "job-< id >")]
fn job(id: u32) {
    let _ = id;
}

fn main() {
    job(1);
}
