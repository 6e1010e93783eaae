//! The few commands of memcached's meta text protocol the store sends, and their replies.
//!
//! Every request is built whole in one buffer (one write); every reply is one line, `VA`
//! replies followed by their data block. An error line (`ERROR`, `CLIENT_ERROR ...`,
//! `SERVER_ERROR ...`) becomes an [`io::Error`]; after one the connection is closed, never
//! reused (a refused `ms` leaves its data block unread, which the server would take for
//! the next command).

use std::io;

/// The longest reply line read (a `STAT` line, a meta header): far beyond any real one.
pub(super) const MAX_LINE: usize = 8 * 1024;

/// The largest value read back (memcached's default item limit is 1 MiB).
pub(super) const MAX_VALUE: usize = 16 * 1024 * 1024;

/// The first word of a reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    /// `HD`: done (stored, deleted, touched).
    Hd,
    /// `VA <size>`: a value follows.
    Va,
    /// `EN`: no such key (`mg`).
    En,
    /// `NF`: no such key (`md`, `ms` with a CAS).
    Nf,
    /// `NS`: not stored (`ms` in add mode, the key exists).
    Ns,
    /// `EX`: the CAS did not match.
    Ex,
    /// `STORED` (the authentication `set`).
    Stored,
    /// `STAT <name> <value>`.
    Stat,
    /// `END` (the end of `stats`).
    End,
}

/// A parsed reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) code: Code,
    /// The data block's size, for `VA`.
    pub(super) size: usize,
    /// The `c` flag: the item's CAS.
    pub(super) cas: Option<u64>,
    /// The `t` flag: seconds left (-1: no expiry).
    pub(super) ttl: Option<i64>,
    /// `STAT <name> <value>`: the name and the value.
    pub(super) stat: Option<(String, String)>,
}

/// A whole reply: its line, and its value for `VA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub(super) code: Code,
    pub(super) cas: Option<u64>,
    pub(super) ttl: Option<i64>,
    pub(super) value: Option<Vec<u8>>,
}

impl Reply {
    pub(super) fn new(header: Header, value: Option<Vec<u8>>) -> Reply {
        Reply {
            code: header.code,
            cas: header.cas,
            ttl: header.ttl,
            value,
        }
    }
}

/// An error for a reply the store did not expect.
pub(super) fn unexpected(what: &str, reply: &Reply) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected memcached reply to {what}: {:?}", reply.code),
    )
}

fn protocol_error(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Parses one reply line (without its `\r\n`).
pub(super) fn parse_line(line: &[u8]) -> io::Result<Header> {
    let text = std::str::from_utf8(line)
        .map_err(|_| protocol_error("memcached sent a reply line that is not text".to_owned()))?;
    let mut words = text.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    let mut header = Header {
        code: Code::Hd,
        size: 0,
        cas: None,
        ttl: None,
        stat: None,
    };
    header.code = match first {
        "HD" => Code::Hd,
        "VA" => {
            header.size = words
                .next()
                .and_then(|size| size.parse().ok())
                .filter(|&size| size <= MAX_VALUE)
                .ok_or_else(|| {
                    protocol_error(format!("memcached sent a bad VA line: {text:.80}"))
                })?;
            Code::Va
        }
        "EN" => Code::En,
        "NF" => Code::Nf,
        "NS" => Code::Ns,
        "EX" => Code::Ex,
        "STORED" => Code::Stored,
        "END" => Code::End,
        "STAT" => {
            let name = words.next().unwrap_or_default().to_owned();
            let value = words.collect::<Vec<_>>().join(" ");
            header.stat = Some((name, value));
            return Ok(Header {
                code: Code::Stat,
                ..header
            });
        }
        "ERROR" => return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "memcached does not know a meta command (cachelock needs memcached 1.6.13 or later)",
        )),
        "CLIENT_ERROR" => return Err(client_error(text)),
        "SERVER_ERROR" => return Err(io::Error::other(format!("memcached: {text:.200}"))),
        _ => {
            return Err(protocol_error(format!(
                "memcached sent an unknown reply: {text:.80}"
            )))
        }
    };
    for flag in words {
        let (name, token) = flag.split_at(1);
        match name {
            "c" => header.cas = token.parse().ok(),
            "t" => header.ttl = token.parse().ok(),
            _ => {}
        }
    }
    Ok(header)
}

fn client_error(text: &str) -> io::Error {
    let detail = text.trim_start_matches("CLIENT_ERROR").trim();
    if detail.contains("unauthenticated") {
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            "memcached requires authentication: give memcache://user:password@host",
        );
    }
    if detail.contains("authentication") {
        return io::Error::new(
            io::ErrorKind::PermissionDenied,
            "memcached refused the user and password of the URL",
        );
    }
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("memcached refused a command: CLIENT_ERROR {detail:.200}"),
    )
}

fn push_number(out: &mut Vec<u8>, flag: u8, n: u64) {
    out.push(b' ');
    out.push(flag);
    out.extend_from_slice(n.to_string().as_bytes());
}

fn store(key: &str, value: &[u8], exptime: u64, cas: Option<u64>, add: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + value.len() + 48);
    out.extend_from_slice(b"ms ");
    out.extend_from_slice(key.as_bytes());
    out.push(b' ');
    out.extend_from_slice(value.len().to_string().as_bytes());
    push_number(&mut out, b'T', exptime);
    if let Some(cas) = cas {
        push_number(&mut out, b'C', cas);
    }
    if add {
        out.extend_from_slice(b" ME");
    }
    out.extend_from_slice(b" c\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

/// `ms <key> <len> T<exptime> ME c`: store `value` only if the key is absent (add mode),
/// answering the new item's CAS.
pub(super) fn add(key: &str, value: &[u8], exptime: u64) -> Vec<u8> {
    store(key, value, exptime, None, true)
}

/// `ms <key> <len> T<exptime> C<cas> c`: store `value` only if the item's CAS is still
/// `cas`, answering the new CAS.
pub(super) fn replace_cas(key: &str, value: &[u8], exptime: u64, cas: u64) -> Vec<u8> {
    store(key, value, exptime, Some(cas), false)
}

/// `mg <key> v c`: the value and the CAS.
pub(super) fn get_cas(key: &str) -> Vec<u8> {
    format!("mg {key} v c\r\n").into_bytes()
}

/// `mg <key> v t`: the value and the seconds left.
pub(super) fn get_ttl(key: &str) -> Vec<u8> {
    format!("mg {key} v t\r\n").into_bytes()
}

/// `md <key> C<cas>` (only if the CAS still matches), or `md <key>`.
pub(super) fn delete(key: &str, cas: Option<u64>) -> Vec<u8> {
    match cas {
        Some(cas) => format!("md {key} C{cas}\r\n").into_bytes(),
        None => format!("md {key}\r\n").into_bytes(),
    }
}

/// What a connection learns when it opens: which server run it talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Session {
    /// The run marker: a random number stored (without TTL) at a fixed key by the first
    /// connection to a server run; equal on two connections only if they reach the same
    /// run (a restart, a `flush_all` or an eviction makes a new one).
    pub(super) run: u64,
    /// The server's start time (`time - uptime` of `stats`, whole seconds by the server's
    /// clock) in microseconds: what fences add the CAS to.
    pub(super) epoch_micros: u64,
    /// The server's clock (`time` of `stats`) when the connection opened.
    pub(super) server_time: u64,
}

/// The handshake: `stats`, then `ma <marker> N0 J<random> D0 v c` (create the run marker if
/// missing, read it and its CAS), after the authentication `set` when credentials are given.
pub(super) fn handshake(marker: &str, credentials: Option<(&str, &str)>, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    if let Some((user, password)) = credentials {
        let token = format!("{user} {password}");
        out.extend_from_slice(format!("set cachelock-auth 0 0 {}\r\n", token.len()).as_bytes());
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"stats\r\n");
    out.extend_from_slice(format!("ma {marker} N0 J{seed} D0 v c\r\n").as_bytes());
    out
}

/// The oldest memcached the store runs on: 1.6.13 fixed `md` with a CAS (before it, the
/// compare was against 0) and the CAS that `ms` returns.
pub(super) const MIN_VERSION: (u64, u64, u64) = (1, 6, 13);

/// What `stats` told: the version, `time` and `uptime`.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) version: Option<String>,
    pub(super) time: Option<u64>,
    pub(super) uptime: Option<u64>,
}

impl Stats {
    pub(super) fn take(&mut self, header: &Header) {
        if let Some((name, value)) = &header.stat {
            match name.as_str() {
                "version" => self.version = Some(value.clone()),
                "time" => self.time = value.parse().ok(),
                "uptime" => self.uptime = value.parse().ok(),
                _ => {}
            }
        }
    }

    /// The session of a connection from its `stats` and the run marker's reply.
    pub(super) fn session(&self, marker: &Reply) -> io::Result<Session> {
        let version = self.version.as_deref().unwrap_or("unknown");
        if parse_version(version).is_none_or(|v| v < MIN_VERSION) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "memcached {version} is too old: cachelock needs 1.6.13 or later (meta commands with a working CAS)"
                ),
            ));
        }
        let (Some(time), Some(uptime)) = (self.time, self.uptime) else {
            return Err(protocol_error(
                "memcached's stats lack time or uptime".to_owned(),
            ));
        };
        if marker.code != Code::Va {
            return Err(unexpected("the run marker", marker));
        }
        if marker.cas == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "memcached runs without CAS (-C): cachelock's owner checks need it",
            ));
        }
        let run = marker
            .value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| protocol_error("the run marker holds no number".to_owned()))?;
        Ok(Session {
            run,
            epoch_micros: time.saturating_sub(uptime).saturating_mul(1_000_000),
            server_time: time,
        })
    }
}

/// `1.6.18` (or `1.6.18-rc1`) as numbers.
pub(super) fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    });
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_meta_commands() {
        assert_eq!(add("k", b"v|1", 3), b"ms k 3 T3 ME c\r\nv|1\r\n");
        assert_eq!(replace_cas("k", b"v", 9, 42), b"ms k 1 T9 C42 c\r\nv\r\n");
        assert_eq!(get_cas("k"), b"mg k v c\r\n");
        assert_eq!(get_ttl("k"), b"mg k v t\r\n");
        assert_eq!(delete("k", Some(7)), b"md k C7\r\n");
        assert_eq!(delete("k", None), b"md k\r\n");
        assert_eq!(
            handshake("m", Some(("u", "p")), 5),
            b"set cachelock-auth 0 0 3\r\nu p\r\nstats\r\nma m N0 J5 D0 v c\r\n"
        );
    }

    #[test]
    fn replies_parse() {
        let h = parse_line(b"HD c12").unwrap();
        assert_eq!((h.code, h.cas), (Code::Hd, Some(12)));
        let h = parse_line(b"VA 3  t-1 c4").unwrap();
        assert_eq!(
            (h.code, h.size, h.ttl, h.cas),
            (Code::Va, 3, Some(-1), Some(4))
        );
        // Servers before 1.6.21 may reflect an `s` flag after `c`.
        let h = parse_line(b"HD c5 s3").unwrap();
        assert_eq!(h.cas, Some(5));
        for (line, code) in [
            (&b"EN"[..], Code::En),
            (b"NF", Code::Nf),
            (b"NS c0", Code::Ns),
            (b"EX", Code::Ex),
            (b"STORED", Code::Stored),
            (b"END", Code::End),
        ] {
            assert_eq!(parse_line(line).unwrap().code, code);
        }
        let h = parse_line(b"STAT version 1.6.18").unwrap();
        assert_eq!(h.stat, Some(("version".into(), "1.6.18".into())));
        assert_eq!(
            parse_line(b"ERROR").unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        assert_eq!(
            parse_line(b"CLIENT_ERROR unauthenticated")
                .unwrap_err()
                .kind(),
            io::ErrorKind::PermissionDenied
        );
        assert!(parse_line(b"SERVER_ERROR out of memory")
            .unwrap_err()
            .to_string()
            .contains("out of memory"));
        assert!(parse_line(b"VA x").is_err());
        assert!(parse_line(b"WAT").is_err());
    }

    #[test]
    fn versions_and_sessions() {
        assert_eq!(parse_version("1.6.18"), Some((1, 6, 18)));
        assert_eq!(parse_version("1.6.13-rc1"), Some((1, 6, 13)));
        assert_eq!(parse_version("1.6"), Some((1, 6, 0)));
        assert_eq!(parse_version("x"), None);
        let marker = Reply {
            code: Code::Va,
            cas: Some(3),
            ttl: None,
            value: Some(b"77".to_vec()),
        };
        let mut stats = Stats {
            version: Some("1.6.18".into()),
            time: Some(1_000),
            uptime: Some(10),
        };
        let session = stats.session(&marker).unwrap();
        assert_eq!(
            (session.run, session.epoch_micros, session.server_time),
            (77, 990_000_000, 1_000)
        );
        let no_cas = Reply {
            cas: Some(0),
            ..marker.clone()
        };
        assert!(stats
            .session(&no_cas)
            .unwrap_err()
            .to_string()
            .contains("-C"));
        stats.version = Some("1.6.12".into());
        assert!(stats
            .session(&marker)
            .unwrap_err()
            .to_string()
            .contains("1.6.13"));
    }
}
