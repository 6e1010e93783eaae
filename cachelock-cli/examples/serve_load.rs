//! A load run against `cachelock serve`: not a test (nothing here asserts a speed), a
//! measure to read.
//!
//! Starts the `cachelock` binary built next to this example (`serve --store memory://`
//! unless `--store URL` is given), runs CLIENTS concurrent clients that each take and
//! release a lock of their own ROUNDS times over keep-alive connections, and prints the
//! errors (expected: 0), the latency percentiles of the requests, and the server's
//! resident memory (VmRSS) before the run, at its end, and once the clients are gone. It
//! does that PASSES times on the same server: memory a pass keeps (the allocator's caches)
//! is reused by the next, while memory that leaks grows pass after pass.
//!
//! ```text
//! cargo build --release -p cachelock-cli --bin cachelock --example serve_load
//! target/release/examples/serve_load [--clients 200] [--rounds 100] [--passes 3] [--store URL]
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Options {
    clients: usize,
    rounds: usize,
    passes: usize,
    store: String,
    binary: std::path::PathBuf,
}

fn options() -> Result<Options, String> {
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/examples/serve_load → target/<profile>/cachelock
    let binary = here
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("cachelock"))
        .ok_or("cannot tell where the cachelock binary is")?;
    let mut options = Options {
        clients: 200,
        rounds: 100,
        passes: 3,
        store: "memory://".to_owned(),
        binary,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => {
                options.clients = value.parse().map_err(|e| format!("--clients: {e}"))?
            }
            "--rounds" => options.rounds = value.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--passes" => options.passes = value.parse().map_err(|e| format!("--passes: {e}"))?,
            "--store" => options.store = value,
            "--bin" => options.binary = value.into(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !options.binary.exists() {
        return Err(format!(
            "no cachelock binary at {} (cargo build -p cachelock-cli --bin cachelock, same profile; or --bin PATH)",
            options.binary.display()
        ));
    }
    Ok(options)
}

/// The server and the address it printed.
fn start(options: &Options) -> Result<(Child, String), String> {
    let mut child = Command::new(&options.binary)
        .args([
            "--store",
            &options.store,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        // The request log at 40,000 requests would measure stderr, not the service.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or(format!("no address in {line:?}"))?
        .to_owned();
    Ok((child, base))
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// One client: ROUNDS times canhaz then nowant. Its latencies and its errors.
fn client(base: &str, id: usize, rounds: usize, start: &Barrier) -> (Vec<Duration>, Vec<String>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut latencies = Vec::with_capacity(rounds * 2);
    let mut errors = Vec::new();
    let mut timed = |url: String| -> Result<serde_json::Value, String> {
        let started = Instant::now();
        let result = agent
            .get(&url)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|response| {
                let status = response.status().as_u16();
                let body: serde_json::Value = response
                    .into_body()
                    .read_json()
                    .map_err(|e| e.to_string())?;
                if status == 200 && body["ok"] == true {
                    Ok(body)
                } else {
                    Err(format!("{status} {body}"))
                }
            });
        latencies.push(started.elapsed());
        result
    };
    start.wait();
    for round in 0..rounds {
        let path = format!("/load/client-{id}");
        match timed(format!("{base}/canhaz{path}?id=c{id}r{round}&ttl=1m")) {
            Ok(body) => {
                let token = body["token"].as_str().unwrap_or_default().to_owned();
                if let Err(e) = timed(format!("{base}/nowant{path}?token={token}")) {
                    errors.push(format!("nowant: {e}"));
                }
            }
            Err(e) => errors.push(format!("canhaz: {e}")),
        }
    }
    (latencies, errors)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("serve_load: {message}");
            std::process::exit(2);
        }
    };
    let (mut server, base) = match start(&options) {
        Ok(started) => started,
        Err(message) => {
            eprintln!("serve_load: {message}");
            std::process::exit(1);
        }
    };
    let pid = server.id();
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "serve_load: {} clients x {} rounds (canhaz + nowant) per pass, {} passes, store {}",
        options.clients, options.rounds, options.passes, options.store
    );
    println!("server VmRSS before: {} KiB", rss_kib(pid));
    let mut failed = false;
    for pass in 1..=options.passes {
        failed |= !run_pass(&options, &base, pid, pass);
    }
    let _ = server.kill();
    let _ = server.wait();
    if failed {
        std::process::exit(1);
    }
}

/// One pass: every client's rounds, then its figures. Whether it had no error.
fn run_pass(options: &Options, base: &str, pid: u32, pass: usize) -> bool {
    let barrier = Arc::new(Barrier::new(options.clients));
    let started = Instant::now();
    let threads: Vec<_> = (0..options.clients)
        .map(|id| {
            let (base, barrier) = (base.to_owned(), Arc::clone(&barrier));
            let rounds = options.rounds;
            std::thread::spawn(move || client(&base, id, rounds, &barrier))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok((l, e)) => {
                latencies.extend(l);
                errors.extend(e);
            }
            Err(_) => errors.push("a client thread panicked".to_owned()),
        }
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib(pid);
    // The clients' connections are closed now (their agents are dropped); give the
    // server a moment to drop its side.
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(pid);

    latencies.sort();
    let requests = latencies.len();
    println!(
        "pass {pass}: {requests} requests in {elapsed:.2?} ({:.0} req/s), errors: {}",
        requests as f64 / elapsed.as_secs_f64(),
        errors.len()
    );
    for error in errors.iter().take(10) {
        println!("  {error}");
    }
    println!(
        "  latency: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!("  server VmRSS: at the end of the pass {rss_end} KiB, 2 s after {rss_after} KiB");
    errors.is_empty()
}
