//! A memory budget: what may be held at once, counted in KiB, shared by the
//! work that holds it. Requests in hand and delivery attempts in flight
//! each have one, so that large messages cannot take all memory.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct MemoryBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = (bytes / 1024).clamp(1, u32::MAX as usize >> 1) as u32;
        Self {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// The KiB `bytes` count for: at least one, at most the whole budget,
    /// so that something larger than the budget waits for everything else
    /// and then goes alone.
    pub fn cost(&self, bytes: u64) -> u32 {
        bytes.div_ceil(1024).clamp(1, self.total_kib as u64) as u32
    }

    /// The KiB free now.
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }

    /// Waits for room for `bytes`, held until the permit is dropped.
    pub async fn admit(&self, bytes: u64) -> OwnedSemaphorePermit {
        self.kib
            .clone()
            .acquire_many_owned(self.cost(bytes))
            .await
            .expect("a budget's semaphore is never closed")
    }
}
