//! What every operation shares: how a script command is built ([`evalsha`]) and what an
//! operation answers ([`Reply`]).

use std::time::Duration;

use redis::{Cmd, Script};

use crate::tree::TreeEntry;

/// What an operation answered.
#[derive(Debug)]
pub(crate) enum Reply {
    Value(Option<(String, Option<Duration>)>),
    Flag(bool),
    Fence(Option<u64>),
    Entry(Option<TreeEntry>),
    Entries(Vec<TreeEntry>),
    Done,
}

/// `EVALSHA <sha1 of script> <numkeys>`, in a command sized for `data` more bytes of keys
/// and arguments: the command is built directly, one buffer, no per-argument allocation.
pub(crate) fn evalsha(script: &Script, numkeys: u8, args: usize, data: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(3 + args, 7 + 40 + 1 + data);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(numkeys);
    cmd
}

impl Reply {
    /// A claim that was refused: the key is held (by someone else, or, after a resend the
    /// client did not tell about, by this very claim).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, Reply::Flag(false) | Reply::Fence(None))
    }
}
