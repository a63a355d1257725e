//! The JSON of Sesame's own endpoints under `/_sesame/`: the `--dev`
//! mailbox and events, the health check, and their errors. Not SES's API,
//! but JSON all the same, so it is written here.

use serde_json::{Value, json};
use sesame_model::{Event, StoredMessage};

fn bytes(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap_or_default()
}

/// `{"message": …}`: what went wrong.
pub fn message(text: &str) -> Vec<u8> {
    bytes(json!({ "message": text }))
}

fn view(m: &StoredMessage) -> Value {
    json!({
        "id": m.message.id,
        "account": m.scope.account.as_str(),
        "region": m.scope.region.as_str(),
        "operation": m.message.operation,
        "source": m.message.source,
        "destinations": m.message.destinations,
        "subject": m.message.subject,
        "timestamp": crate::iso8601(m.message.created_at),
        "mime": String::from_utf8_lossy(&m.message.raw),
    })
}

/// The mailbox's messages, newest first.
pub fn messages(ms: &[StoredMessage]) -> Vec<u8> {
    bytes(json!({ "messages": ms.iter().map(view).collect::<Vec<_>>() }))
}

/// How many messages a clearing deleted.
pub fn deleted(n: u64) -> Vec<u8> {
    bytes(json!({ "deleted": n }))
}

/// Delivery events, each in SES's event JSON.
pub fn events(es: &[Event]) -> Vec<u8> {
    bytes(json!({ "events": es.iter().map(crate::events::event_json).collect::<Vec<_>>() }))
}

/// The health check: ok, or unavailable with its problems.
pub fn health(problems: &[String], connections: usize) -> Vec<u8> {
    if problems.is_empty() {
        bytes(json!({"status": "ok", "connections": connections}))
    } else {
        bytes(json!({"status": "unavailable", "problems": problems, "connections": connections}))
    }
}

/// `sesame audit --format json`: the findings, and how many.
pub fn audit(findings: &[sesame_model::audit::Finding]) -> Vec<u8> {
    let list: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "kind": f.kind.as_str(),
                "account": f.scope.account.as_str(),
                "region": f.scope.region.as_str(),
                "subject": f.subject,
                "detail": f.detail,
                "age_seconds": f.age_ms.map(|ms| ms / 1000),
                "diagnosis": f.diagnosis,
            })
        })
        .collect();
    bytes(json!({ "count": findings.len(), "findings": list }))
}
