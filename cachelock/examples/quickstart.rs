//! The first thing to run: a lock taken, a second attempt refused, then granted after release.
//!
//! In memory, no server needed:
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use cachelock::{Error, Lock};

fn main() -> Result<(), Error> {
    let lock = Lock::new("quickstart-report").ttl(Duration::from_secs(30));

    // 1. Take the lock. The guard holds it until it is released or dropped.
    let guard = lock.try_acquire()?;
    println!("1. first holder: acquired `{}`", guard.key());

    // 2. A second attempt, from another thread, is refused at once.
    let second = std::thread::scope(|s| s.spawn(|| lock.try_acquire()).join());
    match second {
        Ok(Err(Error::Locked { key })) => println!("2. second attempt: refused, `{key}` is held"),
        Ok(Err(other)) => return Err(other),
        Ok(Ok(_)) => unreachable!("a held lock must never be granted twice"),
        Err(_) => panic!("the second thread panicked"),
    }

    // 3. Release, and the next attempt is granted.
    guard.release()?;
    let third = lock.try_acquire()?;
    println!("3. after release: acquired `{}` again", third.key());

    // 4. Or wait for a holder to finish: the closure form releases on return, error or panic.
    drop(third);
    let answer = lock.wait(Duration::from_secs(1)).run(|| 6 * 7)?;
    println!("4. ran a closure under the lock: {answer}");
    Ok(())
}
