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

type MetricsState = (Option<PrometheusHandle>, Arc<dyn Store>);

pub fn routes<S>(handle: Option<PrometheusHandle>, store: Arc<dyn Store>) -> Router<S> {
    Router::new()
        .route("/_sesame/metrics", get(render))
        .with_state((handle, store))
}

async fn render(State((handle, store)): State<MetricsState>) -> Response {
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
