//! Random requests at a live `cachelock serve`: random methods, paths, query strings,
//! headers' sizes and bodies. Never a 5xx, never a crash (the server answers afterwards),
//! and never a lock released without its token.

mod common;

use common::http::{raw_exchange, raw_status, Server};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW",
];

const ENDPOINTS: &[&str] = &["/canhaz", "/nowant", "/stillwant", "/dohaz", "", "/x"];

/// A path segment: words, the held path's parts, dots, percent escapes (valid or not),
/// and a few bytes that are fine in a request target but odd in a path.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("held".to_owned()),
        Just("resource".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        "[a-z0-9]{1,12}",
        "(%[0-9A-Fa-f]{2}){1,4}",
        "%[0-9G-Z]{0,2}",
        "[!$&'()*+,;=:@~_-]{1,6}",
        "[a-z]{1,200}",
    ]
}

/// A random path, or one that touches the held lock (`/held/resource`) or its tree.
fn path() -> impl Strategy<Value = String> {
    let random = (
        prop::sample::select(ENDPOINTS),
        prop::collection::vec(segment(), 0..6),
    )
        .prop_map(|(endpoint, segments)| format!("{endpoint}/{}", segments.join("/")));
    let near = (
        prop::sample::select(&["/nowant", "/stillwant", "/canhaz", "/dohaz"][..]),
        prop::sample::select(
            &[
                "/held/resource",
                "/held",
                "/",
                "/held/resource/",
                "/held//resource",
                "/held/resource/child",
                "/held/%72esource",
                "/HELD/resource",
            ][..],
        ),
    )
        .prop_map(|(endpoint, path)| format!("{endpoint}{path}"));
    prop_oneof![random, near]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("token".to_owned()),
        Just("id".to_owned()),
        Just("ttl".to_owned()),
        Just("lockParents".to_owned()),
        Just("lockChildren".to_owned()),
        "[a-zA-Z%0-9]{0,8}",
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9]{0,40}",
        "[0-9]{1,20}(s|ms|h|d|)",
        Just("-1".to_owned()),
        Just("false".to_owned()),
        Just("True".to_owned()),
        "(%[0-9A-Fa-f]{2}){0,8}",
        "[a-f0-9]{32}",
    ];
    prop::collection::vec((key, value, any::<bool>()), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { k })
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// How the body is sent: its length declared, chunked, or a `Content-Length` that lies.
#[derive(Clone, Debug)]
enum Framing {
    Length,
    Chunked,
    ShortLength,
}

fn request() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        // Mostly GET, which reaches the handlers; the others meet the 405s.
        prop_oneof![3 => Just("GET"), 1 => prop::sample::select(METHODS)],
        path(),
        prop::option::of(query()),
        // Mostly within the 1 KiB limit, sometimes over it.
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 0..4096),
        ],
        prop_oneof![Just(Framing::Length), Just(Framing::Chunked), Just(Framing::ShortLength)],
        "[ -~]{0,300}",
    )
        .prop_map(|(method, path, query, body, framing, header)| {
            let mut target = path;
            if let Some(query) = query {
                target.push('?');
                target.push_str(&query);
            }
            let mut head = format!(
                "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Random: {}\r\n",
                header.trim()
            );
            let mut bytes = Vec::new();
            match framing {
                Framing::Length => head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len())),
                Framing::ShortLength => head.push_str(&format!(
                    "Content-Length: {}\r\n\r\n",
                    body.len() / 2
                )),
                Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
            }
            bytes.extend_from_slice(head.as_bytes());
            match framing {
                Framing::Chunked => {
                    if !body.is_empty() {
                        bytes.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                        bytes.extend_from_slice(&body);
                        bytes.extend_from_slice(b"\r\n");
                    }
                    bytes.extend_from_slice(b"0\r\n\r\n");
                }
                _ => bytes.extend_from_slice(&body),
            }
            (format!("{method} {target}"), bytes)
        })
}

#[test]
fn random_requests_get_no_5xx_do_not_crash_the_server_nor_release_a_lock_without_its_token() {
    // A small body limit, so that the random bodies often cross it.
    let mut server = Server::memory(&["--max-body-size", "1024"]);
    let token = server.lock("/held/resource?id=owner");

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<Option<u16>, usize>::new());
    runner
        .run(&request(), |(what, bytes)| {
            let answer = raw_exchange(server.address(), &bytes);
            let status = raw_status(&answer);
            *statuses.borrow_mut().entry(status).or_default() += 1;
            // No status at all only when hyper gave up on a malformed request (it closes
            // the connection); a 5xx never.
            prop_assert!(status.is_none_or(|s| s < 500), "{}: {}", what, answer);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("statuses of the random requests: {:?}", statuses.borrow());

    // No panic: the process runs, said nothing of a panic, and answers.
    assert!(server.is_running(), "the server exited");
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    let (status, holder) = server.get("/dohaz/held/resource?lockParents=false&lockChildren=false");
    assert_eq!(status, 200);
    // The lock is still held by its owner, with the token it was granted: that token
    // (and only it, as the random `nowant`s with other tokens showed) releases it.
    assert_eq!(holder["lockedBy"], "owner", "{holder}");
    assert_eq!(holder["lockedPath"], "/held/resource", "{holder}");
    server.unlock("/held/resource", &token);
}
