//! Test helpers for cachelock (never published).
//!
//! - [`RedisServer`]: a throwaway `redis-server` on a free loopback port, killed on `Drop`,
//!   that can be stopped and restarted on the same port for fault tests.
//! - [`RedisCluster`]: three `redis-server --cluster-enabled yes` nodes on free loopback
//!   ports, joined with `redis-cli --cluster create`, killed on `Drop`.
//! - [`eventually`]: waits, with a generous bound, until a condition holds (tests bound
//!   time from the safe side only: never "by a deadline").
//! - [`TracingCapture`]: a `tracing` subscriber that keeps every event and span field as
//!   text, to check what a library logs.
//! - [`LostReplyProxy`]: a TCP proxy to a real server that lets one command run and loses
//!   its reply (the connection is cut), the fault a resent command must survive.
//! - [`CutProxy`]: a TCP proxy to a real server whose link can be cut and healed (a server
//!   going away, for the stores whose one server the tests share).
//! - [`memcached`], [`etcd`], [`postgres`], [`mysql`]: the servers of those stores' tests.
//! - [`NetNs`]: a throwaway network namespace joined to the host by a veth pair on a
//!   private /30 (`10.213.X.Y`), whose link can be cut and healed; needs root and iproute2.
//! - [`mono_ns`], [`record`], [`event`], [`wait_for`]: events of several processes on one
//!   clock, through a file.
//! - [`free_port`]: a port free on 127.0.0.1 right now.
//! - [`parse_commandstats`]: the per-command call counts in the text of `INFO commandstats`.
//!
//! Only loopback addresses are ever used, except by [`NetNs`] (the private addresses of a
//! veth pair into a namespace it creates and deletes itself). The binaries are `redis-server` and `redis-cli`
//! from `PATH`, or `REDIS_SERVER_BIN` / `REDIS_CLI_BIN`; when one is missing the helper
//! panics with a one-line message that says how to install it.
#![deny(missing_docs)]

mod cut_proxy;
pub mod etcd;
mod events;
mod eventually;
mod lost_reply;
pub mod memcached;
pub mod mysql;
mod netns;
mod port;
pub mod postgres;
mod process;
mod redis_client;
mod redis_cluster;
mod redis_server;
mod tracing_capture;

pub use cut_proxy::CutProxy;
pub use events::{event, mono_ns, record, wait_for};
pub use eventually::eventually;
pub use lost_reply::LostReplyProxy;
pub use netns::NetNs;
pub use port::free_port;
pub use redis_client::parse_commandstats;
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;
pub use tracing_capture::TracingCapture;
