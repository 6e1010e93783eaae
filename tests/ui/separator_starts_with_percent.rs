use cachelock::once;

#[once(key = "job-<a>%<b>")]
fn job(a: u32, b: u32) {
    let _ = (a, b);
}

fn main() {
    job(1, 2);
}
