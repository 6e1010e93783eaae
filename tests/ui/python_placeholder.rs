use cachelock::once;

#[once(key = "foo-{a}-{b}")]
fn func(a: u32, b: u32) {
    let _ = (a, b);
}

fn main() {
    func(1, 2);
}
