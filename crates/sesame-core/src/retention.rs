//! Retention: what the store no longer needs (finished deliveries,
//! delivered messages, published events, old rejections and quota-ledger
//! minutes) removed once it is older than the deployment keeps it. One node
//! at a time does it, under the store's `retention` lease.

use crate::{Clock, internal};
use sesame_model::{Error, Millis};
use sesame_store::{Purged, Store};
use std::sync::Arc;
use std::time::Duration;

/// The lease that makes one node of several sharing a store do retention.
const LEASE: &str = "retention";
/// How long the lease lasts; renewed before each batch.
const LEASE_MS: Millis = 10 * 60_000;
/// Rows of each kind removed in one batch (one short transaction each).
const BATCH: u32 = 1000;
/// The shortest retention: SES's sending statistics cover two weeks.
pub const MIN_KEEP: Duration = Duration::from_secs(15 * 24 * 3600);

pub struct RetentionService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keep: Duration,
}

impl RetentionService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, keep: Duration) -> Self {
        Self { store, clock, keep }
    }

    /// Removes everything older than the retention, in batches, while this
    /// node holds the lease: what it removed, or `None` when another node
    /// holds the lease.
    pub async fn pass(&self) -> Result<Option<Purged>, Error> {
        let mut total = Purged::default();
        loop {
            let now = self.clock.now_ms();
            if !self
                .store
                .take_lease(LEASE, now, now + LEASE_MS)
                .await
                .map_err(internal)?
            {
                return Ok((total.total() > 0).then_some(total));
            }
            let before = now - self.keep.as_millis() as Millis;
            let p = self.store.purge(before, BATCH).await.map_err(internal)?;
            if p.total() == 0 {
                return Ok(Some(total));
            }
            total += p;
            // Others' writes go between the batches.
            tokio::task::yield_now().await;
        }
    }

    /// A pass every `every` until `stop` turns true; then the lease is
    /// given up, so that another node need not wait for it to run out.
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        tracing::info!(keep = ?self.keep, ?every, "retention started");
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                r = self.pass() => match r {
                    Ok(Some(p)) if p.total() > 0 => {
                        metrics::counter!("sesame_retention_removed_total").increment(p.total());
                        tracing::info!(
                            deliveries = p.deliveries, messages = p.messages, events = p.events,
                            topic_deliveries = p.topic_deliveries, topic_messages = p.topic_messages,
                            rejections = p.rejections, ledger = p.ledger,
                            "retention removed what is past its keeping"
                        );
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => tracing::debug!("another node holds the retention lease"),
                    Err(e) => tracing::warn!(error = %e.message, "retention failed; retrying"),
                },
                _ = stop.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
        if let Err(e) = self.store.release_lease(LEASE).await {
            tracing::warn!(error = %e, "could not give up the retention lease");
        }
        tracing::info!("retention stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use sesame_store::SqliteStore;
    use sesame_store::conformance::{message, quota, scope};

    const DAY: Millis = 24 * 3600 * 1000;

    #[tokio::test]
    async fn a_pass_removes_delivered_mail_past_its_keeping_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let t = 1_700_000_000_000;
        let clock = Arc::new(ManualClock::new(t));
        let s = scope("969696969696", "us-east-1");
        for id in ["a", "b"] {
            store
                .accept_message(
                    &s,
                    &message(id, &["x@ret.example"]),
                    &quota(t, -1.0, 1e6, 1),
                )
                .await
                .unwrap();
        }
        let claimed = store.claim_deliveries(t + 1, t + 60_000, 10).await.unwrap();
        let a = claimed.iter().find(|d| d.message_id == "a").unwrap();
        store
            .finish_deliveries(
                vec![sesame_model::DeliveryUpdate::Finished {
                    id: a.id,
                    failed: false,
                    at: t + 2,
                }],
                vec![],
            )
            .await
            .unwrap();
        let svc = RetentionService::new(store.clone(), clock.clone(), MIN_KEEP);
        // Within the retention: nothing goes.
        assert_eq!(svc.pass().await.unwrap(), Some(Purged::default()));
        assert!(store.get_message("a").await.unwrap().is_some());
        clock.advance(16 * DAY);
        let p = svc.pass().await.unwrap().unwrap();
        assert_eq!((p.deliveries, p.messages), (1, 1));
        assert!(store.get_message("a").await.unwrap().is_none());
        // b is still being delivered: it stays, with its delivery.
        assert!(store.get_message("b").await.unwrap().is_some());
        assert_eq!(store.queue_summary().await.unwrap().sending, 1);
    }
}
