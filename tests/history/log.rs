//! The hold logs: one append-only file per worker thread.
//!
//! `E <seq> <key> <fence> <claim_ns> <enter_ns>` when a holder got in, `X <seq> <exit_ns>`
//! when it left (before sending the release). Each line is one `write` to a file opened with
//! `O_APPEND`; a holder killed mid-write leaves a torn last line, which the reader skips.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// One critical section as recorded by its holder.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub key: String,
    /// Who: `file:seq`.
    pub who: String,
    /// The guard's fencing token.
    pub fence: u64,
    /// When the claim was sent (the TTL started at or after this).
    pub claim_ns: u64,
    /// When the holder got in (the claim had succeeded).
    pub enter_ns: u64,
    /// When it left; `None` if it was killed (or abandoned its guard) inside.
    pub exit_ns: Option<u64>,
}

/// A thread's log file.
pub struct HoldLog(File);

impl HoldLog {
    pub fn create(path: &Path) -> HoldLog {
        HoldLog(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("hold log"),
        )
    }

    pub fn enter(&mut self, seq: u64, key: &str, fence: u64, claim_ns: u64, enter_ns: u64) {
        self.write(&format!("E {seq} {key} {fence} {claim_ns} {enter_ns}\n"));
    }

    pub fn exit(&mut self, seq: u64, exit_ns: u64) {
        self.write(&format!("X {seq} {exit_ns}\n"));
    }

    /// One whole line with a single `write` (the file is opened with O_APPEND).
    fn write(&mut self, line: &str) {
        self.0.write_all(line.as_bytes()).expect("hold log write");
    }
}

/// The lines written whole (a killed writer may leave the last one without its newline).
fn whole_lines(text: &str) -> impl Iterator<Item = &str> {
    let whole = match text.rfind('\n') {
        Some(at) => &text[..at],
        None => "",
    };
    whole.lines()
}

/// Every hold in the `*.log` files of `dir`.
pub fn read_holds(dir: &Path) -> Vec<Hold> {
    let mut holds = Vec::new();
    for entry in std::fs::read_dir(dir).expect("log dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("hold log");
        let mut open: BTreeMap<String, Hold> = BTreeMap::new();
        for line in whole_lines(&text) {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["E", seq, key, fence, claim, enter] => {
                    let (Ok(fence), Ok(claim_ns), Ok(enter_ns)) =
                        (fence.parse(), claim.parse(), enter.parse())
                    else {
                        continue;
                    };
                    open.insert(
                        (*seq).to_owned(),
                        Hold {
                            key: (*key).to_owned(),
                            who: format!("{file}:{seq}"),
                            fence,
                            claim_ns,
                            enter_ns,
                            exit_ns: None,
                        },
                    );
                }
                ["X", seq, exit] => {
                    if let (Some(mut hold), Ok(exit_ns)) = (open.remove(*seq), exit.parse()) {
                        hold.exit_ns = Some(exit_ns);
                        holds.push(hold);
                    }
                }
                _ => {}
            }
        }
        holds.extend(open.into_values());
    }
    holds
}

/// Whether worker `worker`'s files show a holder inside right now.
pub fn has_open_hold(dir: &Path, worker: usize) -> bool {
    let prefix = format!("w{worker}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) || !name.ends_with(".log") {
            return false;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut open = HashSet::new();
        for line in whole_lines(&text) {
            let mut f = line.split(' ');
            match (f.next(), f.next()) {
                (Some("E"), Some(seq)) => {
                    open.insert(seq.to_owned());
                }
                (Some("X"), Some(seq)) => {
                    open.remove(seq);
                }
                _ => {}
            }
        }
        !open.is_empty()
    })
}
