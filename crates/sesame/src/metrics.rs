//! Prometheus metrics at `/_sesame/metrics`: counters and the latency
//! histogram that core records through the `metrics` facade, and the queue
//! depth read from the store at each scrape.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sesame_store::Store;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often recorded histogram samples are folded into their buckets. The
/// exporter keeps every sample recorded since the last fold (a scrape folds
/// them too), so without this a server that nobody scrapes would grow by
/// each delivery's latency: about 16 bytes a message in the soak benchmark.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded samples every [`UPKEEP_EVERY`] until `stop` turns true.
/// Owned by the server, which stops it with the other background tasks.
pub async fn upkeep(handle: PrometheusHandle, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            // Stopped, or the server (the sender) is gone.
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// Installs the process-wide recorder once; later calls get the same handle.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("sesame_delivery_latency_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        300.0, 3600.0,
                    ],
                )
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics are unavailable");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!("sesame_accepted_total", "Messages accepted for delivery.");
    metrics::describe_counter!(
        "sesame_delivered_total",
        "Recipients a receiving server accepted."
    );
    metrics::describe_counter!(
        "sesame_bounced_total",
        "Recipients that bounced (permanently, or after retrying for the maximum age)."
    );
    metrics::describe_counter!(
        "sesame_dkim_signatures_total",
        "DKIM signatures made: one a message, however many recipient domains it has, and one a retry."
    );
    metrics::describe_counter!(
        "sesame_deferred_total",
        "Recipients whose attempt failed temporarily and will be retried."
    );
    metrics::describe_gauge!(
        "sesame_queue_depth",
        "Deliveries (message and recipient domain) queued or in flight."
    );
    metrics::describe_histogram!(
        "sesame_delivery_latency_seconds",
        "Time from acceptance to the end of delivery."
    );
    metrics::describe_counter!(
        "sesame_verification_checks_total",
        "Domain identities whose DNS records the verifier checked."
    );
    metrics::describe_counter!(
        "sesame_verification_changes_total",
        "Verification, DKIM or MAIL FROM statuses the verifier changed."
    );
    metrics::describe_gauge!(
        "sesame_verification_pass_seconds",
        "How long the last verification pass took."
    );
}

type MetricsState = (Option<PrometheusHandle>, Arc<dyn Store>, Option<Arc<str>>);

/// `/_sesame/metrics`; with a `token`, only for `Authorization: Bearer TOKEN`.
pub fn routes<S>(
    handle: Option<PrometheusHandle>,
    store: Arc<dyn Store>,
    token: Option<String>,
) -> Router<S> {
    Router::new()
        .route("/_sesame/metrics", get(render))
        .with_state((handle, store, token.map(Arc::from)))
}

/// Whether the request carries the token, compared in constant time.
fn authorized(headers: &axum::http::HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

async fn render(
    State((handle, store, token)): State<MetricsState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(token) = &token
        && !authorized(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need Authorization: Bearer <--metrics-token>\n",
        )
            .into_response();
    }
    let Some(handle) = handle else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are unavailable\n").into_response();
    };
    match store.queue_depth().await {
        Ok((queued, sending)) => {
            metrics::gauge!("sesame_queue_depth", "state" => "queued").set(queued as f64);
            metrics::gauge!("sesame_queue_depth", "state" => "sending").set(sending as f64);
        }
        Err(e) => tracing::error!(error = %e, "could not read the queue for metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upkeep folds samples while the server runs and ends when it is
    /// told to stop, or when the server is gone.
    #[tokio::test]
    async fn upkeep_runs_until_stopped() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for i in 0..1000 {
                metrics::histogram!("sesame_test_seconds").record(f64::from(i) / 1000.0);
            }
        });
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(upkeep(handle.clone(), stop));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            handle.render().contains("sesame_test_seconds_count 1000"),
            "{}",
            handle.render()
        );
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("stops when told")
            .unwrap();

        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(upkeep(handle, stop));
        drop(stop_tx);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("stops when the server is gone")
            .unwrap();
    }
}
