use cachelock::once;

trait Job {
    #[once(key = "job")]
    fn run(&self);
}

fn main() {}
