use cachelock::{once, Error};

#[once(key = "job", cancel_on_lost = true)]
fn job() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = job();
}
