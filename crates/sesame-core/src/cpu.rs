//! CPU-bound work off the async runtime: template rendering and the MIME
//! work on large messages run on tokio's blocking pool, at most one job a
//! core at a time, so that however much of it callers ask for, the
//! runtime's threads stay free to answer other requests.

use sesame_model::Error;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Runs `job` on the blocking pool once a slot is free.
pub async fn run<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let _slot = slots()
        .acquire()
        .await
        .map_err(|_| Error::internal("the CPU work queue is closed"))?;
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| Error::internal(format!("a CPU-bound job failed: {e}")))?
}
