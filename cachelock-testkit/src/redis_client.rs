//! Talking to a Redis server without a client library: one command and its reply, a PING
//! check, and [`parse_commandstats`] for the text of `INFO commandstats`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends one command (as a RESP array of bulk strings) and returns the first reply, as text.
///
/// Replies: `+OK` → `OK`, `:1` → `1`, a bulk string → its content, an error → `Err`.
pub(crate) fn command(port: u16, args: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') | Some(b':') => Ok(line[1..].to_owned()),
        Some(b'-') => Err(line[1..].to_owned()),
        Some(b'$') => {
            let len: i64 = line[1..]
                .parse()
                .map_err(|_| format!("bad reply {line:?}"))?;
            if len < 0 {
                return Ok(String::new());
            }
            let mut body = vec![0u8; len as usize + 2];
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            body.truncate(len as usize);
            String::from_utf8(body).map_err(|e| e.to_string())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

/// Answers PING (or asks for a password, which also means it is up and serving).
pub(crate) fn answers(port: u16) -> bool {
    match command(port, &["PING"]) {
        Ok(reply) => reply == "PONG",
        Err(e) => e.starts_with("NOAUTH"),
    }
}

/// `cmdstat_<name>` → `calls`, parsed from the text of `INFO commandstats`.
///
/// Counts every command the server ran, including those a Lua script ran inside it; callers
/// that want only what the client sent leave those out themselves.
pub fn parse_commandstats(info: &str) -> std::collections::BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}
