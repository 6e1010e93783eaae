//! The release listener: one background thread per store, with one connection that runs
//! `LISTEN` on the release channels and wakes the waiters of a released key (or tree lock
//! space). It reconnects after a failure and ends once the store is gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio_postgres::{AsyncMessage, NoTls};

use super::core::Core;
use super::sql::{RELEASED, TREE_RELEASED};
use crate::wake::Board;

/// How often the listener looks whether its store is gone, and checks its connection when
/// nothing arrived for a while.
const TICK: Duration = Duration::from_secs(1);
/// How long without a message before the listener checks its connection.
const CHECK_AFTER: Duration = Duration::from_secs(10);
/// The pause between two connection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// The board key a tree release of `space` wakes.
pub(crate) fn tree_wake_key(space: &str) -> String {
    format!("\u{1}tree\u{1}{space}")
}

struct Shared {
    config: tokio_postgres::Config,
    connect_timeout: Duration,
    statement_timeout: Duration,
    board: Weak<Board>,
    listening: Arc<AtomicBool>,
    notifications: Arc<AtomicU64>,
}

/// One connection's life: connect, `LISTEN`, wake waiters until the connection fails or the
/// store is gone (then `Ok(false)`).
async fn listen_once(shared: &Shared) -> Result<bool, Box<dyn std::error::Error>> {
    let (client, mut connection) =
        tokio::time::timeout(shared.connect_timeout, shared.config.connect(NoTls))
            .await
            .map_err(|_| "connecting timed out")??;
    let (sender, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // Drives the connection; hands over its notifications; ends with it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if sender.send(note).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let outcome = async {
        tokio::time::timeout(
            shared.statement_timeout,
            client.batch_execute(&format!("LISTEN {RELEASED}; LISTEN {TREE_RELEASED}")),
        )
        .await
        .map_err(|_| "LISTEN timed out")??;
        shared.listening.store(true, Ordering::SeqCst);
        let mut last = Instant::now();
        loop {
            match tokio::time::timeout(TICK, messages.recv()).await {
                Ok(Some(note)) => {
                    last = Instant::now();
                    let Some(board) = shared.board.upgrade() else {
                        return Ok(false);
                    };
                    shared.notifications.fetch_add(1, Ordering::SeqCst);
                    if note.channel() == TREE_RELEASED {
                        if let Some((space, _path)) = note.payload().split_once('\n') {
                            board.released(&tree_wake_key(space));
                        }
                    } else {
                        board.released(note.payload());
                    }
                }
                Ok(None) => return Err("the listening connection closed".into()),
                Err(_) => {
                    if shared.board.strong_count() == 0 {
                        return Ok(false);
                    }
                    if last.elapsed() >= CHECK_AFTER {
                        tokio::time::timeout(shared.statement_timeout, client.batch_execute(""))
                            .await
                            .map_err(|_| "the listening connection does not answer")??;
                        last = Instant::now();
                    }
                }
            }
        }
    }
    .await;
    shared.listening.store(false, Ordering::SeqCst);
    driver.abort();
    outcome
}

fn listen_loop(shared: Shared) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "cannot start the PostgreSQL release listener; waiters poll");
            return;
        }
    };
    while shared.board.strong_count() > 0 {
        match runtime.block_on(listen_once(&shared)) {
            Ok(_) => return,
            Err(error) => {
                tracing::debug!(%error, "PostgreSQL release listener lost; reconnecting");
                std::thread::sleep(RECONNECT_PAUSE);
            }
        }
    }
}

impl Core {
    /// Starts the listener thread, once.
    pub(crate) fn ensure_listener(&self) {
        let inner = &*self.inner;
        inner.listener.call_once(|| {
            let shared = Shared {
                config: inner.config.clone(),
                connect_timeout: inner.settings.connect_timeout,
                statement_timeout: inner.settings.statement_timeout,
                board: Arc::downgrade(&inner.board),
                listening: Arc::clone(&inner.listening),
                notifications: Arc::clone(&inner.notifications),
            };
            let spawned = std::thread::Builder::new()
                .name("cachelock-pg-listen".to_owned())
                .spawn(move || listen_loop(shared));
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the PostgreSQL release listener; waiters poll");
            }
        });
    }
}
