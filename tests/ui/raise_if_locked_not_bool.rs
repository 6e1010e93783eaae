use cachelock::once;

#[once(key = "job", raise_if_locked = "yes")]
fn job() -> Result<(), cachelock::Error> {
    Ok(())
}

fn main() {
    let _ = job();
}
