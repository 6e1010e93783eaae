use cachelock::once;

#[once(key = "report-<usr>-<day>")]
fn report(user: u32, day: u32) {
    let _ = (user, day);
}

fn main() {
    report(1, 2);
}
