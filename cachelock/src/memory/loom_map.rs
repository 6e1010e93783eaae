//! The stand-in for the moka map in the loom tests (moka cannot run inside a loom model):
//! the part of moka's contract the slot protocol relies on, built on a loom mutex.
//!
//! - `entry_by_ref(key).and_compute_with(f)` runs `f` on the key's current entry and applies
//!   its `Op` atomically with respect to every other compute of the key. moka serializes the
//!   computes of one key; here one mutex serializes all computes (the models use one key).
//! - `get` returns the value present at one instant, and a compute may remove that value
//!   before the caller looks at it: moka's `get` takes no per-key lock, so a reader can hold a
//!   slot that the sweep is removing or has removed. That window is what the `dead` flag is
//!   for (slot.rs, point 3), and loom explores every interleaving inside it.
//! - Nothing leaves the map but by a compute's `Op::Remove` (no capacity, no expiry).

use std::sync::Arc;

use moka::ops::compute::Op;

use super::sync::Mutex;

/// A map of `String` keys to `V`, the few keys of a model in insertion order.
pub(super) struct Map<V> {
    entries: Mutex<Vec<(Arc<String>, V)>>,
}

/// What [`Map::builder`] returns, as moka's builder does (no option is needed).
pub(super) struct Builder<V>(std::marker::PhantomData<V>);

/// The current entry a compute is given.
pub(super) struct Entry<V> {
    value: V,
}

/// A key selected for a compute.
pub(super) struct KeyEntry<'a, V> {
    map: &'a Map<V>,
    key: &'a str,
}

impl<V> Builder<V> {
    pub(super) fn build(self) -> Map<V> {
        Map {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<V> Entry<V> {
    pub(super) fn value(&self) -> &V {
        &self.value
    }

    pub(super) fn into_value(self) -> V {
        self.value
    }
}

impl<V: Clone> Map<V> {
    pub(super) fn builder() -> Builder<V> {
        Builder(std::marker::PhantomData)
    }

    fn locked(&self) -> super::sync::MutexGuard<'_, Vec<(Arc<String>, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key's value at this instant.
    pub(super) fn get(&self, key: &str) -> Option<V> {
        let entries = self.locked();
        entries
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.clone())
    }

    pub(super) fn entry_by_ref<'a>(&'a self, key: &'a str) -> KeyEntry<'a, V> {
        KeyEntry { map: self, key }
    }

    /// A snapshot of the entries (moka's iterator is weakly consistent too).
    pub(super) fn iter(&self) -> std::vec::IntoIter<(Arc<String>, V)> {
        self.locked().clone().into_iter()
    }

    pub(super) fn entry_count(&self) -> u64 {
        self.locked().len() as u64
    }

    pub(super) fn run_pending_tasks(&self) {}
}

impl<V: Clone> KeyEntry<'_, V> {
    /// Runs `f` on the key's entry and applies what it returns, all under the map's mutex.
    pub(super) fn and_compute_with(self, f: impl FnOnce(Option<Entry<V>>) -> Op<V>) {
        let mut entries = self.map.locked();
        let at = entries.iter().position(|(k, _)| k.as_str() == self.key);
        let current = at.map(|i| Entry {
            value: entries[i].1.clone(),
        });
        match (f(current), at) {
            (Op::Nop, _) | (Op::Remove, None) => {}
            (Op::Put(value), Some(i)) => entries[i].1 = value,
            (Op::Put(value), None) => entries.push((Arc::new(self.key.to_owned()), value)),
            (Op::Remove, Some(i)) => {
                entries.remove(i);
            }
        }
    }
}
