//! The memcached store's rows: W1 uncontended acquire + release through `Lock` (sync,
//! fenced and unfenced, and async) against the raw two-round-trip primitive in the same run
//! (`ms <key> <len> T10 ME c` then `md <key> C<cas>` on one bare socket, sync and async),
//! and W2, 16 threads on one key, `Lock` and raw, violations counted. The commands per op
//! are counted by the server (`stats`: `cmd_get` + `cmd_set` + `cmd_touch` + deletes).
//!
//! It starts its own `memcached` on a free loopback port, with **one worker thread**
//! (`-t 1`). memcached hands each new connection to its worker threads in turn, so with two
//! threads the LIMIT's socket and the store's pooled one are served by different threads,
//! and on a 2-core machine the two threads' wake-up costs differ by run and by placement:
//! measured (quiet machine, 3 runs each), `Lock` sync / LIMIT was 0.86-0.88 with `-t 2`
//! and 0.96-0.98 with `-t 1`, the same client code. With one thread both are served alike
//! and the ratio measures the client, which is what it is for.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use cachelock::memcached::MemcachedCache;
use cachelock::Lock;
use cachelock_testkit::memcached::MemcachedServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::super::{
    async_case, case, find, lock_op, lock_op_fencing, note, profile, ratio, sequential, w2_threads,
    Row, Settings, RAW_TOKEN, TTL,
};

const LIMIT_SYNC: &str = "LIMIT memcached raw sync ms ME+md C";
const LIMIT_ASYNC: &str = "LIMIT memcached raw async ms ME+md C";
const LOCK_SYNC: &str = "Lock sync, MemcachedCache";
const LOCK_SYNC_UNFENCED: &str = "Lock sync, MemcachedCache, fencing(false)";
const LOCK_ASYNC: &str = "Lock async, MemcachedCache";
const W2_LOCK: &str = "Lock, MemcachedCache, 16 threads";
const W2_LIMIT: &str = "LIMIT memcached raw, 16 threads";

/// A bare connection: the raw primitive, with nothing of cachelock around it.
struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Raw {
            stream,
            reader,
            line: String::new(),
        }
    }

    fn send(&mut self, request: &[u8]) -> &str {
        self.stream.write_all(request).expect("write");
        self.line.clear();
        self.reader.read_line(&mut self.line).expect("read");
        self.line.trim_end()
    }

    /// `ms key len T10 ME c` (add): the CAS if stored, `None` if the key is held.
    fn add(&mut self, key: &str, value: &str) -> Option<u64> {
        let request = format!("ms {key} {} T10 ME c\r\n{value}\r\n", value.len());
        let reply = self.send(request.as_bytes());
        match reply.strip_prefix("HD c") {
            Some(cas) => Some(cas.split_whitespace().next()?.parse().expect("cas")),
            None => {
                assert!(reply.starts_with("NS"), "add: {reply}");
                None
            }
        }
    }

    /// `md key C<cas>`: `true` if deleted.
    fn delete(&mut self, key: &str, cas: u64) -> bool {
        self.send(format!("md {key} C{cas}\r\n").as_bytes()) == "HD"
    }

    fn op(&mut self, key: &str) {
        let cas = self.add(key, RAW_TOKEN).expect("uncontended add");
        assert!(self.delete(key, cas), "CAS delete");
    }
}

async fn raw_async_op(stream: &mut tokio::io::BufReader<tokio::net::TcpStream>, key: &str) {
    let request = format!("ms {key} {} T10 ME c\r\n{RAW_TOKEN}\r\n", RAW_TOKEN.len());
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .expect("write");
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("read");
    let cas: u64 = line
        .trim_end()
        .strip_prefix("HD c")
        .and_then(|c| c.split_whitespace().next())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("uncontended add: {line}"));
    stream
        .get_mut()
        .write_all(format!("md {key} C{cas}\r\n").as_bytes())
        .await
        .expect("write");
    line.clear();
    stream.read_line(&mut line).await.expect("read");
    assert_eq!(line.trim_end(), "HD");
}

async fn lock_op_async(cache: &MemcachedCache, i: u32) {
    let guard = Lock::new(format!("bench:mc:w1:{i}"))
        .cache(cache.clone())
        .ttl(TTL)
        .try_acquire_async()
        .await
        .expect("uncontended acquire");
    black_box(i);
    guard.release().await.expect("release");
}

/// The commands the server counted (gets, sets, touches, deletes).
fn commands(server: &MemcachedServer) -> u64 {
    [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "delete_hits",
        "delete_misses",
    ]
    .iter()
    .map(|name| server.stat(name).unwrap_or(0))
    .sum()
}

pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    // One worker thread: see the module docs.
    let server = MemcachedServer::start_with_args(&["-t", "1"]);
    let version = server
        .command("version\r\n")
        .first()
        .map(|v| v.trim_start_matches("VERSION ").to_owned())
        .unwrap_or_default();
    let cache = MemcachedCache::from_url(&server.url()).expect("url");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<String> = (0..1000).map(|i| format!("bench:mc:raw:{i}")).collect();
    let mut raw = Raw::connect(server.port());
    let raw_async = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        tokio::io::BufReader::new(stream)
    });

    // Commands per op, each case alone, counted by the server.
    let n = 1000;
    let count = |name: &str, op: &mut dyn FnMut(u32)| {
        op(0); // warm: the connection and its handshake
        let before = commands(&server);
        for i in 0..n {
            op(i);
        }
        let per_op = (commands(&server) - before) as f64 / f64::from(n);
        println!("# memcached {version}: commands per op, {name}: {per_op:.3} (target 2)");
    };
    count("LIMIT raw ms ME + md C", &mut |i| {
        raw.op(&keys[(i % 1000) as usize])
    });
    count("Lock sync", &mut |i| {
        lock_op(&cache, "bench:mc:w1:", i % 1000)
    });
    count("Lock sync, fencing(false)", &mut |i| {
        lock_op_fencing(&cache, "bench:mc:w1:", i % 1000, false)
    });
    count("Lock async", &mut |i| {
        rt.block_on(lock_op_async(&cache, i % 1000))
    });

    // Taken out for each op and put back (one op at a time on this current-thread runtime).
    let raw_async = std::cell::Cell::new(Some(raw_async));
    let mut cases = [
        case(LIMIT_SYNC, |i| raw.op(&keys[(i % 1000) as usize])),
        case(LOCK_SYNC, |i| lock_op(&cache, "bench:mc:w1:", i % 1000)),
        case(LOCK_SYNC_UNFENCED, |i| {
            lock_op_fencing(&cache, "bench:mc:w1:", i % 1000, false)
        }),
        async_case(LIMIT_ASYNC, &rt, |i| {
            let key = &keys[(i % 1000) as usize];
            let raw_async = &raw_async;
            Box::pin(async move {
                let mut stream = raw_async.take().expect("the raw async connection");
                raw_async_op(&mut stream, key).await;
                raw_async.set(Some(stream));
            })
        }),
        async_case(LOCK_ASYNC, &rt, |i| {
            let cache = &cache;
            Box::pin(async move { lock_op_async(cache, i % 1000).await })
        }),
    ];
    if let Some(wanted) = &settings.profile {
        profile(&mut cases, wanted);
        return Vec::new();
    }
    let (mut rows, _) = sequential("W1", settings.redis_ops, settings.passes, &mut cases);
    drop(cases);

    let time = settings.w2_time;
    rows.push(w2_threads(W2_LOCK, time, |_| {
        let cache = cache.clone();
        move |critical: &dyn Fn()| match Lock::new("bench:mc:w2")
            .cache(cache.clone())
            .ttl(TTL)
            .try_acquire()
        {
            Ok(guard) => {
                critical();
                guard.release().expect("release");
                true
            }
            Err(e) if e.is_locked() => false,
            Err(e) => panic!("W2 attempt failed: {e}"),
        }
    }));
    let port = server.port();
    rows.push(w2_threads(W2_LIMIT, time, |w| {
        let mut raw = Raw::connect(port);
        let token = format!("{RAW_TOKEN}-{w}");
        move |critical: &dyn Fn()| match raw.add("bench:mc:w2:raw", &token) {
            Some(cas) => {
                critical();
                assert!(raw.delete("bench:mc:w2:raw", cas), "CAS delete");
                true
            }
            None => false,
        }
    }));
    rows
}

pub(crate) fn ratios(rows: &[Row]) {
    ratio(
        "W1 memcached Lock sync / LIMIT raw sync",
        find(rows, LOCK_SYNC),
        find(rows, LIMIT_SYNC),
        0.90,
    );
    note(
        "W1 memcached Lock sync fencing(false) / LIMIT raw sync (the fence costs no command here)",
        find(rows, LOCK_SYNC_UNFENCED),
        find(rows, LIMIT_SYNC),
    );
    ratio(
        "W1 memcached Lock async / LIMIT raw async",
        find(rows, LOCK_ASYNC),
        find(rows, LIMIT_ASYNC),
        0.90,
    );
    note(
        "W2 memcached Lock / LIMIT raw, 16 threads",
        find(rows, W2_LOCK),
        find(rows, W2_LIMIT),
    );
}
