//! The result and future types of store operations.

use std::future::Future;
use std::pin::Pin;

use crate::error::BoxError;

/// A boxed, `Send` future, as returned by the async methods of the store traits.
///
/// The futures are boxed so that the traits stay dyn-compatible: the process default store
/// lives behind an `Arc<dyn LockStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a store (or [`Cache`](crate::Cache)) operation.
pub type CacheResult<T> = Result<T, BoxError>;
