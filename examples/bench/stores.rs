//! The rows of the stores beyond memory and Redis (#16), each measured against its own raw
//! primitive (two round trips: the bare claim and the bare owner-checked release) in the same
//! run: W1 uncontended acquire + release, W2 16 contenders with violations counted. Each
//! store's module is compiled with its cargo feature and starts (or finds) its own server the
//! way its tests do.

use super::{Row, Settings};

#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;

/// The stores whose rows know `--profile` (the others would run their whole bench instead).
const PROFILED: [&str; 2] = ["file", "memcached"];

/// Whether the rows of the store `name` run: named by `--stores-only` (or it names none),
/// and, under `--profile`, one of [`PROFILED`].
fn wanted(settings: &Settings, name: &str) -> bool {
    settings.wants_store(name) && (settings.profile.is_none() || PROFILED.contains(&name))
}

/// Every store's rows.
pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let mut rows = Vec::new();
    let _ = settings;
    #[cfg(feature = "file")]
    if wanted(settings, "file") {
        rows.extend(file::rows(settings));
    }
    #[cfg(feature = "postgres")]
    if wanted(settings, "postgres") {
        rows.extend(postgres::rows(settings));
    }
    #[cfg(feature = "mysql")]
    if wanted(settings, "mysql") {
        rows.extend(mysql::rows(settings));
    }
    #[cfg(feature = "memcached")]
    if wanted(settings, "memcached") {
        rows.extend(memcached::rows(settings));
    }
    #[cfg(feature = "etcd")]
    if wanted(settings, "etcd") {
        rows.extend(etcd::rows(settings));
    }
    rows
}

/// Prints each store's ratios (`# W1 <store> Lock / LIMIT ...`) from `rows`.
pub(crate) fn ratios(settings: &Settings, rows: &[Row]) {
    let _ = (settings, rows);
    #[cfg(feature = "file")]
    if wanted(settings, "file") {
        file::ratios(rows);
    }
    #[cfg(feature = "postgres")]
    if wanted(settings, "postgres") {
        postgres::ratios(rows);
    }
    #[cfg(feature = "mysql")]
    if wanted(settings, "mysql") {
        mysql::ratios(rows);
    }
    #[cfg(feature = "memcached")]
    if wanted(settings, "memcached") {
        memcached::ratios(rows);
    }
    #[cfg(feature = "etcd")]
    if wanted(settings, "etcd") {
        etcd::ratios(rows);
    }
}
