//! How a holder is shown to people and to scripts (`--json`).

use std::time::Duration;

use cachelock::Holder;
use serde::Serialize;

use crate::duration::show;

/// `pid 1234 on host web-1, label "backup", 41s left`.
pub fn describe(holder: &Holder) -> String {
    let mut parts = Vec::new();
    match (holder.pid, holder.host.is_empty()) {
        (Some(pid), false) => parts.push(format!("pid {pid} on host {}", holder.host)),
        (Some(pid), true) => parts.push(format!("pid {pid}")),
        (None, _) => parts.push("an unknown owner".to_owned()),
    }
    if let Some(label) = &holder.label {
        parts.push(format!("label {label:?}"));
    }
    if let Some(ttl) = holder.ttl {
        // Whole seconds (rounded up) read better than `59s 496ms`; short TTLs keep their ms.
        let ttl = if ttl >= Duration::from_secs(1) {
            Duration::from_secs(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
        } else {
            ttl
        };
        parts.push(format!("{} left", show(ttl)));
    }
    parts.join(", ")
}

/// One lock as `status --json` and `list --json` print it.
#[derive(Debug, Serialize)]
pub struct HolderJson<'a> {
    /// The key, without the store's prefix.
    pub key: &'a str,
    /// Whether somebody holds it.
    pub held: bool,
    /// The holder's host name.
    pub host: Option<&'a str>,
    /// The holder's process id.
    pub pid: Option<u32>,
    /// The holder's label.
    pub label: Option<&'a str>,
    /// Milliseconds left before the lock expires (unless renewed).
    pub ttl_ms: Option<u64>,
}

impl<'a> HolderJson<'a> {
    /// A held key.
    pub fn held(key: &'a str, holder: &'a Holder) -> Self {
        HolderJson {
            key,
            held: true,
            host: Some(holder.host.as_str()).filter(|h| !h.is_empty()),
            pid: holder.pid,
            label: holder.label.as_deref(),
            ttl_ms: holder
                .ttl
                .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// A free key.
    pub fn free(key: &'a str) -> Self {
        HolderJson {
            key,
            held: false,
            host: None,
            pid: None,
            label: None,
            ttl_ms: None,
        }
    }
}
