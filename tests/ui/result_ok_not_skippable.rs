use cachelock::once;

#[once(key = "count-<day>")]
fn count(day: u32) -> Result<u32, cachelock::Error> {
    Ok(day)
}

fn main() {
    let _ = count(1);
}
