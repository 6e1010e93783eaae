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

/// Every store's rows.
pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let mut rows = Vec::new();
    let _ = settings;
    #[cfg(feature = "file")]
    if settings.wants_store("file") {
        rows.extend(file::rows(settings));
    }
    if settings.profile.is_some() {
        // `--profile` knows the file and memcached stores' cases only.
        #[cfg(feature = "memcached")]
        rows.extend(memcached::rows(settings));
        return rows;
    }
    #[cfg(feature = "postgres")]
    if settings.wants_store("postgres") {
        rows.extend(postgres::rows(settings));
    }
    #[cfg(feature = "mysql")]
    if settings.wants_store("mysql") {
        rows.extend(mysql::rows(settings));
    }
    #[cfg(feature = "memcached")]
    if settings.wants_store("memcached") {
        rows.extend(memcached::rows(settings));
    }
    #[cfg(feature = "etcd")]
    if settings.wants_store("etcd") {
        rows.extend(etcd::rows(settings));
    }
    rows
}

/// Prints each store's ratios (`# W1 <store> Lock / LIMIT ...`) from `rows`.
pub(crate) fn ratios(settings: &Settings, rows: &[Row]) {
    let _ = (settings, rows);
    #[cfg(feature = "file")]
    if settings.wants_store("file") {
        file::ratios(rows);
    }
    #[cfg(feature = "postgres")]
    if settings.wants_store("postgres") {
        postgres::ratios(rows);
    }
    #[cfg(feature = "mysql")]
    if settings.wants_store("mysql") {
        mysql::ratios(rows);
    }
    #[cfg(feature = "memcached")]
    if settings.wants_store("memcached") {
        memcached::ratios(rows);
    }
    #[cfg(feature = "etcd")]
    if settings.wants_store("etcd") {
        etcd::ratios(rows);
    }
}
