//! `-v`, `-vv`, `-vvv` and `RUST_LOG`: cachelock's events (the library's: lock acquired,
//! renewed, lost; the command line's; `serve`'s requests) as lines on stderr.
//!
//! Without `-v` nor `RUST_LOG` nothing is logged, except by `serve`, which logs its
//! requests (info) as a service does. `RUST_LOG` (tracing's `EnvFilter` syntax, e.g.
//! `cachelock=debug`) replaces the levels `-v` sets.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The events of cachelock: the library's (`cachelock::...`) and this binary's, whose crate
/// is named `cachelock` too (`cachelock::run`, `cachelock::serve::access`).
const TARGET: &str = "cachelock";

/// The level `-v` given `count` times asks for; `None` for no logging at all.
pub fn level(count: u8) -> Option<&'static str> {
    match count {
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    }
}

/// Installs the stderr subscriber: `RUST_LOG` when set (and valid), else `-v`'s level for
/// cachelock's events (at least `floor`, the command's default). Installs nothing when
/// there is nothing to log.
pub fn init(verbose: u8, floor: Option<&'static str>) {
    let from_verbose = level(verbose).or(floor);
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            match EnvFilter::builder().parse(&directives) {
                Ok(filter) => Some(filter),
                Err(error) => {
                    eprintln!("cachelock: warning: ignoring RUST_LOG={directives:?}: {error}");
                    from_verbose.map(for_cachelock)
                }
            }
        }
        _ => from_verbose.map(for_cachelock),
    };
    let Some(filter) = filter else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// cachelock's events at `level`, nothing of the other crates (Redis, HTTP).
fn for_cachelock(level: &str) -> EnvFilter {
    EnvFilter::new(format!("{TARGET}={level}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_is_one_level_more() {
        assert_eq!(level(0), None);
        assert_eq!(level(1), Some("info"));
        assert_eq!(level(2), Some("debug"));
        assert_eq!(level(3), Some("trace"));
        assert_eq!(level(9), Some("trace"));
    }
}
