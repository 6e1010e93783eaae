//! The release subscriber: one background thread per store, with one connection subscribed
//! to the release channels, that wakes the waiters of a released key (or tree lock space).

use std::sync::Weak;
use std::time::Duration;

use redis::RedisResult;

use super::core::{Backend, Core};
use super::tree_wake::{TreeLog, TREE_RELEASED};
use crate::wake::Board;

/// The channel the release script publishes each released key on.
const RELEASED: &str = "cachelock:released";

/// The subscriber thread: wakes the waiters of every key published on [`RELEASED`], and of
/// every tree lock space published on [`TREE_RELEASED`] (recording the released path first).
/// Reconnects after a failure; ends once the cache (its board) is gone.
fn subscribe_loop(
    connect: impl Fn() -> Option<RedisResult<redis::Connection>>,
    board: Weak<Board>,
    tree_log: Weak<TreeLog>,
) {
    while board.strong_count() > 0 {
        let Some(Ok(mut con)) = connect() else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        if con.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
            continue;
        }
        let mut pubsub = con.as_pubsub();
        if let Err(error) = pubsub.subscribe(&[RELEASED, TREE_RELEASED]) {
            tracing::debug!(%error, "cannot subscribe to lock releases; waiters poll");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        loop {
            match pubsub.get_message() {
                Ok(message) => {
                    let Some(board) = board.upgrade() else { return };
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    if message.get_channel_name() == TREE_RELEASED {
                        let Some(log) = tree_log.upgrade() else {
                            return;
                        };
                        if let Some(key) = log.record(&payload) {
                            board.released(key);
                        }
                    } else {
                        board.released(&payload);
                    }
                }
                Err(error) if error.is_timeout() => {
                    if board.strong_count() == 0 {
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "lock release subscription lost; reconnecting");
                    break;
                }
            }
        }
    }
}

impl<B: Backend> Core<B> {
    /// Starts the subscriber thread, once, if the backend has a release channel; returns
    /// whether waiters can expect a wake-up.
    pub(super) fn ensure_subscriber(&self) {
        self.inner.subscribed.call_once(|| {
            let weak_inner = std::sync::Arc::downgrade(&self.inner);
            let board = std::sync::Arc::downgrade(&self.inner.board);
            let tree_log = std::sync::Arc::downgrade(&self.inner.tree_log);
            let spawned = std::thread::Builder::new()
                .name("cachelock-released".to_owned())
                .spawn(move || {
                    subscribe_loop(
                        || {
                            let inner = weak_inner.upgrade()?;
                            inner.backend.subscriber(&inner.settings)
                        },
                        board,
                        tree_log,
                    )
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the release subscriber; waiters poll");
            }
        });
    }
}
