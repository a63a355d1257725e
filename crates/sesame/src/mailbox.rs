//! The local mailbox over HTTP (`--dev`): captured messages as JSON, each
//! message's `.eml`, clearing, and the delivery events (SES's JSON) that
//! delivery and the mailbox simulator recorded. Unauthenticated like the rest of
//! `/_sesame/`, so it is served only in `--dev` mode.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sesame_model::{EventFilter, EventKind, MessageFilter};
use sesame_store::Store;
use sesame_wire::local;
use std::sync::Arc;

pub fn routes<S>(store: Arc<dyn Store>) -> Router<S> {
    Router::new()
        .route("/_sesame/messages", get(list).delete(clear))
        .route("/_sesame/messages/{id}/raw", get(raw))
        .route("/_sesame/events", get(events))
        .with_state(store)
}

#[derive(Deserialize)]
struct ListQuery {
    recipient: Option<String>,
    sender: Option<String>,
    account: Option<String>,
    limit: Option<u32>,
}

/// A JSON body written by `sesame_wire::local`.
pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn failure(e: sesame_store::StoreError) -> Response {
    tracing::error!(error = %e, "mailbox store failure");
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        local::message("store failure; see the server log"),
    )
}

async fn list(State(store): State<Arc<dyn Store>>, Query(q): Query<ListQuery>) -> Response {
    let filter = MessageFilter {
        recipient: q.recipient,
        sender: q.sender,
        account: q.account,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    match store.list_messages(&filter).await {
        Ok(ms) => json(StatusCode::OK, local::messages(&ms)),
        Err(e) => failure(e),
    }
}

async fn raw(State(store): State<Arc<dyn Store>>, Path(id): Path<String>) -> Response {
    match store.get_message(&id).await {
        Ok(Some(m)) => (
            [
                (header::CONTENT_TYPE, "message/rfc822".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.eml\"", m.message.id),
                ),
            ],
            m.message.raw,
        )
            .into_response(),
        Ok(None) => json(
            StatusCode::NOT_FOUND,
            local::message(&format!("No message {id}.")),
        ),
        Err(e) => failure(e),
    }
}

async fn clear(State(store): State<Arc<dyn Store>>) -> Response {
    match store.clear_messages().await {
        Ok(n) => json(StatusCode::OK, local::deleted(n)),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
struct EventQuery {
    message_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<u32>,
}

async fn events(State(store): State<Arc<dyn Store>>, Query(q): Query<EventQuery>) -> Response {
    let kind = match q.kind.as_deref().map(|k| (k, EventKind::parse(k))) {
        None => None,
        Some((_, Some(k))) => Some(k),
        Some((k, None)) => {
            return json(
                StatusCode::BAD_REQUEST,
                local::message(&format!(
                    "Unknown event type {k}: expected one of {}.",
                    EventKind::ALL.map(EventKind::as_str).join(", ")
                )),
            );
        }
    };
    let filter = EventFilter {
        scope: None,
        message_id: q.message_id,
        kind,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    match store.list_events(&filter).await {
        Ok(es) => json(StatusCode::OK, local::events(&es)),
        Err(e) => failure(e),
    }
}
