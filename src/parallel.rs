//! A small work queue over scoped threads.
//!
//! Hashing and copying are CPU- and I/O-bound per file; two to four workers
//! keep both cores and the disk busy. Jobs are taken in order from a shared
//! index, so the largest files should come first for good balance.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many workers to run: the available cores, at least 2 (one can wait
/// on I/O while the other hashes), at most 8.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8)
}

/// Runs `job` on every item with [`workers`] threads. Stops taking new
/// items after the first error when `stop_on_error` is set; returns every
/// error that occurred, in item order.
pub fn for_each<T: Sync, E: Send>(
    items: &[T],
    stop_on_error: bool,
    job: impl Fn(&T) -> Result<(), E> + Sync,
) -> Vec<E> {
    for_each_with(workers(), items, stop_on_error, job)
}

/// [`for_each`] with an explicit number of threads (for example one per
/// network connection).
pub fn for_each_with<T: Sync, E: Send>(
    threads: usize,
    items: &[T],
    stop_on_error: bool,
    job: impl Fn(&T) -> Result<(), E> + Sync,
) -> Vec<E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let errors: Mutex<Vec<(usize, E)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, 64).min(items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if stop_on_error && failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    if let Err(e) = job(item) {
                        failed.store(true, Ordering::Relaxed);
                        errors.lock().unwrap_or_else(|p| p.into_inner()).push((index, e));
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort_by_key(|(index, _)| *index);
    errors.into_iter().map(|(_, e)| e).collect()
}
