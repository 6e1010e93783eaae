//! The command line explains itself: `-q` never hides a warning, the help describes the
//! stores once, completions and the man page, `--version`, `-v` and `RUST_LOG`, and what
//! `run` hands its command (`CACHELOCK_KEY`, `CACHELOCK_FENCE`). The real binary, on the
//! default store (a lock directory of the test's own) or `memory://`.

mod common;

use std::process::Output;

use common::*;

fn run_cachelock(args: &[&str]) -> Output {
    cachelock().args(args).output().expect("run cachelock")
}

#[test]
fn quiet_never_hides_that_a_memory_lock_excludes_nobody() {
    for args in [
        &["--store", "memory://", "run", "-q", "-k", "k", "--", "true"][..],
        &[
            "run",
            "--quiet",
            "--store",
            "memory://",
            "-k",
            "k",
            "--",
            "true",
        ],
    ] {
        let output = run_cachelock(args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(message.contains("warning"), "{args:?}: {message}");
        assert!(
            message.contains("excludes no other process"),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn quiet_silences_only_the_held_line() {
    let runtime = fresh_runtime_dir();
    let dir = TempDir::new();
    let holder = cachelock()
        .env("CACHELOCK_DIR", runtime.join("cachelock"))
        .args(["run", "-k", "job", "--", "sh", "-c"])
        .arg(hold_until_stop(&dir, "holder", 0))
        .spawn()
        .unwrap();
    recorded_pid(&dir, "holder");
    let attempt = |quiet: bool| {
        let mut command = cachelock();
        command.env("CACHELOCK_DIR", runtime.join("cachelock"));
        command.args(["run", "-k", "job"]);
        if quiet {
            command.arg("-q");
        }
        command.args(["--", "true"]).output().unwrap()
    };
    let loud = attempt(false);
    assert_eq!(code(&loud), 75);
    assert!(
        stderr(&loud).contains("`job` is held by pid"),
        "{}",
        stderr(&loud)
    );
    let quiet = attempt(true);
    assert_eq!((code(&quiet), stderr(&quiet)), (75, String::new()));
    std::fs::write(dir.file("stop"), "").unwrap();
    wait_exit(holder, "the holder");
}

#[test]
fn the_stores_are_described_once_in_the_top_level_help() {
    let top = stdout(&run_cachelock(&["--help"]));
    assert_eq!(
        top.matches("Stores (where the locks live").count(),
        1,
        "{top}"
    );
    for detail in ["/tmp/cachelock-<uid>", "%2C", "Exit codes:", "RUST_LOG"] {
        assert!(top.contains(detail), "{detail}: {top}");
    }
    for command in [
        "run",
        "status",
        "list",
        "release",
        "serve",
        "completions",
        "man",
    ] {
        for flag in ["--help", "-h"] {
            let output = run_cachelock(&[command, flag]);
            assert_eq!(code(&output), 0, "{command} {flag}");
            let help = stdout(&output);
            if ["completions", "man"].contains(&command) {
                // They open no store, and do not list the store options.
                assert!(!help.contains("--store"), "{command}: {help}");
                continue;
            }
            // The store options are named, briefly, and point to the one description.
            assert!(help.contains("--store <URL>"), "{command}: {help}");
            assert!(help.contains("cachelock --help"), "{command}: {help}");
            for long_text in ["Stores (where the locks live", "%2C", "written %2C"] {
                assert!(
                    !help.contains(long_text),
                    "{command} {flag} repeats {long_text:?}: {help}"
                );
            }
        }
    }
}

#[test]
fn serve_lists_only_the_options_it_uses() {
    let help = stdout(&run_cachelock(&["serve", "--help"]));
    assert!(
        !help.contains("--prefix <PREFIX>"),
        "serve ignores --prefix: {help}"
    );
    let output = run_cachelock(&["serve", "--prefix", "x:", "--listen", "127.0.0.1:0"]);
    assert_eq!(
        code(&output),
        64,
        "serve refuses --prefix: {}",
        stderr(&output)
    );
    for option in [
        "--listen",
        "--space",
        "--default-ttl",
        "--max-ttl",
        "--store",
        "--verbose",
    ] {
        assert!(help.contains(option), "{option}: {help}");
    }
    for command in ["run", "status", "list", "release"] {
        let help = stdout(&run_cachelock(&[command, "--help"]));
        assert!(help.contains("--prefix <PREFIX>"), "{command}: {help}");
    }
}

#[test]
fn help_examples_print_as_written() {
    let help = stdout(&run_cachelock(&["run", "--help"]));
    // A shell line continuation is printed, with the next line indented below it.
    let lines: Vec<&str> = help.lines().collect();
    let at = lines
        .iter()
        .position(|line| {
            line.trim_end()
                .ends_with("cachelock run -k nightly-backup \\")
        })
        .unwrap_or_else(|| panic!("no continued example line: {help}"));
    assert!(
        lines[at + 1]
            .trim_start()
            .starts_with("--redis-cluster redis://"),
        "{help}"
    );
    assert!(help.contains("CACHELOCK_KEY"), "{help}");
    assert!(help.contains("CACHELOCK_FENCE"), "{help}");
    // Examples are never joined into one line by a stray `\` at the end of a Rust line.
    for command in ["", "run", "serve", "completions", "man"] {
        let mut args = vec![command, "--help"];
        args.retain(|a| !a.is_empty());
        let help = stdout(&run_cachelock(&args));
        for line in help.lines() {
            assert!(
                line.matches("cachelock ").count() <= 2,
                "{command}: two examples on one line: {line}"
            );
        }
    }
}

#[test]
fn completions_are_printed_for_every_shell() {
    let bash = run_cachelock(&["completions", "bash"]);
    assert_eq!(code(&bash), 0, "{}", stderr(&bash));
    let script = stdout(&bash);
    assert!(script.contains("cachelock"), "{script}");
    assert!(script.contains("complete "), "{script}");
    assert!(script.contains("--redis-cluster"), "{script}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = run_cachelock(&["completions", shell]);
        assert_eq!(code(&output), 0, "{shell}: {}", stderr(&output));
        assert!(stdout(&output).contains("cachelock"), "{shell}");
    }
    assert_eq!(code(&run_cachelock(&["completions", "tcsh"])), 64);
}

#[test]
fn man_prints_roff_pages_without_touching_a_store() {
    // Neither a bad store nor two stores matter: no store is opened.
    let output = cachelock()
        .env("CACHELOCK_STORE", "gopher://nowhere")
        .env("CACHELOCK_REDIS_URL", "redis://127.0.0.1:1")
        .arg("man")
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let page = stdout(&output);
    assert!(page.contains("\n.TH cachelock 1 "), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        "STORES",
        "EXIT CODES",
        "cachelock\\-run(1)",
    ] {
        assert!(page.contains(section), "{section}: {page}");
    }
    let run = stdout(&run_cachelock(&["man", "run"]));
    assert!(run.contains("\n.TH cachelock-run 1 "), "{run}");
    assert!(run.contains("CACHELOCK_FENCE"), "{run}");
    assert!(run.contains(".nf"), "examples are kept as written: {run}");
    let unknown = run_cachelock(&["man", "nope"]);
    assert_eq!(code(&unknown), 64, "{}", stderr(&unknown));
}

#[test]
fn version_lists_the_stores_and_tls_compiled_in() {
    let long = stdout(&run_cachelock(&["--version"]));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        long.starts_with(&format!(
            "cachelock {version} (stores: memory, file, redis, redis-cluster"
        )),
        "{long}"
    );
    for (store, on) in [
        ("postgres", cfg!(feature = "postgres")),
        ("mysql", cfg!(feature = "mysql")),
        ("memcached", cfg!(feature = "memcached")),
        ("etcd", cfg!(feature = "etcd")),
    ] {
        assert_eq!(long.contains(store), on, "{store}: {long}");
    }
    let tls = if cfg!(feature = "redis-tls") {
        "tls: rediss)"
    } else {
        "tls: none)"
    };
    assert!(long.trim_end().ends_with(tls), "{long}");
    // -V stays short, for scripts.
    assert_eq!(
        stdout(&run_cachelock(&["-V"])),
        format!("cachelock {version}\n")
    );
}

#[test]
fn verbose_shows_the_lock_events_on_stderr() {
    let quiet = run_cachelock(&["run", "-k", "k", "--", "true"]);
    assert_eq!((code(&quiet), stderr(&quiet)), (0, String::new()));

    for args in [
        &["-v", "run", "-k", "k", "--", "true"][..],
        &["run", "-k", "k", "--verbose", "--", "true"],
    ] {
        let output = run_cachelock(args);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let log = stderr(&output);
        assert!(log.contains("lock acquired"), "{args:?}: {log}");
        assert!(log.contains("fence="), "{args:?}: {log}");
        assert!(log.contains("lock released"), "{args:?}: {log}");
        assert!(log.contains("INFO"), "{args:?}: {log}");
        assert!(!log.contains("DEBUG"), "{args:?}: -v is info: {log}");
    }

    // -vv adds the library's own debug events.
    let log = stderr(&run_cachelock(&["-vv", "run", "-k", "k", "--", "true"]));
    assert!(log.contains("DEBUG"), "{log}");
    assert!(
        log.contains("cachelock::acquire"),
        "the library's event: {log}"
    );

    // RUST_LOG overrides -v.
    let output = cachelock()
        .env("RUST_LOG", "off")
        .args(["-v", "run", "-k", "k", "--", "true"])
        .output()
        .unwrap();
    assert_eq!((code(&output), stderr(&output)), (0, String::new()));
    let output = cachelock()
        .env("RUST_LOG", "cachelock::acquire=debug")
        .args(["run", "-k", "k", "--", "true"])
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(log.contains("lock acquired"), "{log}");
    assert!(!log.contains("INFO"), "only the library's events: {log}");
}

#[test]
fn run_hands_its_command_the_key_and_an_increasing_fence() {
    let runtime = fresh_runtime_dir();
    let fence = |key: &str| -> (String, u64) {
        let output = cachelock()
            .env("CACHELOCK_DIR", runtime.join("cachelock"))
            .args([
                "run",
                "-k",
                key,
                "--",
                "sh",
                "-c",
                "echo \"$CACHELOCK_KEY $CACHELOCK_FENCE\"",
            ])
            .output()
            .unwrap();
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let line = stdout(&output);
        let (key, fence) = line
            .trim()
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("{line:?}"));
        (
            key.to_owned(),
            fence.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")),
        )
    };
    let (key, first) = fence("nightly report");
    assert_eq!(key, "nightly report", "the key as given");
    assert!(first > 0, "a real fence: {first}");
    let (_, second) = fence("nightly report");
    assert!(second > first, "{second} > {first}");
}
