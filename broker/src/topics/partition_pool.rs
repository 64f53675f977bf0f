//! Opening and closing many partitions at once on a bounded set of threads.
//! Each partition's open or close is mostly waiting on the disk (reads of
//! segment headers, fsyncs of files and directories), so more threads than
//! cores keep more of those waits in the disk's queue at once; 10,000
//! partitions one after another took seconds.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Most threads opening or closing partitions at once.
pub const PARTITION_THREADS_MAX: usize = 16;

/// Threads per core: the work waits on the disk far more than it computes.
const THREADS_PER_CORE: usize = 4;

/// Runs `work` on every item on up to [`PARTITION_THREADS_MAX`] threads and
/// returns the results in the items' order.
pub fn run<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (cores * THREADS_PER_CORE)
        .clamp(1, PARTITION_THREADS_MAX)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let slot = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(slot) else {
                            return done;
                        };
                        done.push((slot, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    results.sort_unstable_by_key(|(slot, _)| *slot);
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(run(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(run(&[] as &[u32], |i| *i).is_empty());
    }
}
