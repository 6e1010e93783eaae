//! `status`, `list` and `release --force`: looking at and freeing locks in a shared store.

use crate::backend::Backend;
use crate::cli::{ListArgs, ReleaseArgs, StatusArgs};
use crate::exit::{Failure, NOT_HELD, OK};
use crate::show::{describe, HolderJson};

/// `cachelock status KEY`: exit 0 and the holder if held, exit 1 if free.
pub fn status(args: &StatusArgs, backend: &Backend) -> Result<u8, Failure> {
    backend.require_shared("status")?;
    let holder = backend
        .lock(&args.key)
        .holder()
        .map_err(|e| Failure::from_lock(&e))?;
    let line = match (&holder, args.json) {
        (Some(holder), true) => json(&HolderJson::held(&args.key, holder))?,
        (None, true) => json(&HolderJson::free(&args.key))?,
        (Some(holder), false) => format!("{}: held by {}", args.key, describe(holder)),
        (None, false) => format!("{}: free", args.key),
    };
    println!("{line}");
    Ok(if holder.is_some() { OK } else { NOT_HELD })
}

/// `cachelock list [PREFIX]`: every held lock whose key starts with PREFIX, sorted by key.
pub fn list(args: &ListArgs, backend: &Backend) -> Result<u8, Failure> {
    backend.require_shared("list")?;
    let scan = format!("{}{}", backend.prefix(), args.filter);
    let mut holders =
        cachelock::held_locks(&**backend.cache(), &scan).map_err(|e| Failure::from_lock(&e))?;
    holders.sort_by(|a, b| a.key.cmp(&b.key));
    if args.json {
        let rows: Vec<HolderJson<'_>> = holders
            .iter()
            .map(|h| HolderJson::held(backend.short_key(&h.key), h))
            .collect();
        println!("{}", json(&rows)?);
    } else {
        for holder in &holders {
            println!(
                "{}: held by {}",
                backend.short_key(&holder.key),
                describe(holder)
            );
        }
    }
    Ok(OK)
}

/// `cachelock release KEY --force`: deletes the lock whoever holds it.
pub fn release(args: &ReleaseArgs, backend: &Backend) -> Result<u8, Failure> {
    if !args.force {
        return Err(Failure::usage(format!(
            "refusing to release `{}` without --force: the holder is not told and may still be \
             working when the next holder starts (stop it first)",
            args.key
        )));
    }
    backend.require_shared("release")?;
    let lock = backend.lock(&args.key);
    let holder = lock.holder().map_err(|e| Failure::from_lock(&e))?;
    let Some(holder) = holder else {
        println!("{}: was not held", args.key);
        return Ok(NOT_HELD);
    };
    lock.force_release().map_err(|e| Failure::from_lock(&e))?;
    println!("{}: released (was held by {})", args.key, describe(&holder));
    Ok(OK)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::internal(format!("cannot write JSON: {e}")))
}
