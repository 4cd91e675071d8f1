//! The async runtime every command runs on, and the Redis-bound limit of the benchmark too
//! (`examples/redis_limit.rs`), so that both are measured on the same one.
//!
//! One thread by default (`work --threads`, `[worker] threads`): a worker process then takes one core,
//! as one `queue:work` process does, and more processes (Supervisor's `numprocs`, systemd instances)
//! use more cores. On one thread a job's task is never stolen by, and never wakes, another thread: on
//! the benchmark's drain (2 cores, Redis on the same machine) CPU per job at `info` went from 0.0222 to
//! 0.0175 ms and the drains ran 12 % (as deployed) and 33 % (quiet) more jobs/s than on one thread per
//! core (the README's Performance section has the runs and the command). More threads can pay off when
//! the actions themselves are CPU-heavy.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// The threads running tasks when nothing else is asked for.
pub const DEFAULT_THREADS: usize = 1;

/// A runtime with `threads` threads running tasks (at least one), I/O and timers enabled.
pub fn build(threads: usize) -> io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_threads_asked_for_and_at_least_one() {
        assert_eq!(build(3).unwrap().metrics().num_workers(), 3);
        assert_eq!(build(DEFAULT_THREADS).unwrap().metrics().num_workers(), 1);
        assert_eq!(build(0).unwrap().metrics().num_workers(), 1);
    }
}
