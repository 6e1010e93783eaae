use cachelock::once;

#[derive(Debug)]
struct ReportError;

#[once(key = "count-<day>", raise_if_locked = true)]
fn count(day: u32) -> Result<u32, ReportError> {
    Ok(day)
}

fn main() {
    let _ = count(1);
}
