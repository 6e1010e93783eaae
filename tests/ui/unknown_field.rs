use cachelock::once;

struct User {
    id: u32,
}

#[once(key = "job-<user.name>")]
fn job(user: &User) {
    let _ = user.id;
}

fn main() {
    job(&User { id: 1 });
}
