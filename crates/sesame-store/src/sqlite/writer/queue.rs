//! The queue's writes: claims, outcomes and their events, and clearing the mailbox.

use super::*;

/// Deletes every message and its unfinished deliveries.
pub(super) fn clear_messages(conn: &Connection) -> Result<u64> {
    conn.execute(
        "DELETE FROM deliveries WHERE state IN ('queued', 'sending')",
        [],
    )?;
    Ok(conn.execute("DELETE FROM messages", [])? as u64)
}

/// Claims up to `limit` due deliveries (and any whose lease ran out) and
/// returns them with their messages, and when the earliest delivery left
/// queued is due.
pub(super) fn claim_deliveries(
    conn: &Connection,
    now: Millis,
    lease_until: Millis,
    limit: u32,
) -> Result<(Vec<QueuedDelivery>, Option<Millis>)> {
    let limit = i64::from(limit);
    // Two index searches (due, and expired leases) instead of one OR that
    // would sort every due delivery.
    let ids = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'sending', lease_until = ?1, updated_at = ?2
             WHERE id IN (
               SELECT id FROM (
                 SELECT id FROM (
                   SELECT id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= ?2
                   ORDER BY next_attempt_at LIMIT ?3)
                 UNION ALL
                 SELECT id FROM (
                   SELECT id FROM deliveries WHERE state = 'sending' AND lease_until < ?2
                   LIMIT ?3))
               LIMIT ?3)
             RETURNING id",
        )?
        .query_map(params![lease_until, now, limit], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let next_due: Option<Millis> = conn
        .prepare_cached("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'queued'")?
        .query_row([], |r| r.get(0))?;
    if ids.is_empty() {
        return Ok((vec![], next_due));
    }
    let claimed = ids.len();
    let ids = to_json(&ids)?;
    // The claimed deliveries with their messages, in one query.
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.message_id, d.account_id, d.region, d.domain, d.recipients,
                d.attempts, d.accepted_at, m.source, m.destinations, m.subject, m.raw,
                m.operation, m.meta
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.id IN (SELECT value FROM json_each(?))
         ORDER BY d.next_attempt_at",
    )?;
    let mut rows = stmt.query([&ids])?;
    let mut out = vec![];
    // Deliveries of one message (one a domain) share its bytes, read once.
    let mut raws: HashMap<String, Bytes> = HashMap::new();
    while let Some(r) = rows.next()? {
        let recipients: String = r.get("recipients")?;
        let destinations: String = r.get("destinations")?;
        let message_id: String = r.get("message_id")?;
        let raw = match raws.get(&message_id) {
            Some(raw) => raw.clone(),
            None => {
                let raw = Bytes::from(r.get::<_, Vec<u8>>("raw")?);
                raws.insert(message_id.clone(), raw.clone());
                raw
            }
        };
        out.push(QueuedDelivery {
            id: r.get("id")?,
            scope: scope_from(
                &r.get::<_, String>("account_id")?,
                &r.get::<_, String>("region")?,
            )?,
            message_id,
            source: r.get("source")?,
            destinations: from_json(&destinations)?,
            subject: r.get("subject")?,
            domain: r.get("domain")?,
            recipients: from_json(&recipients)?,
            attempts: r.get::<_, i64>("attempts")?.clamp(0, u32::MAX as i64) as u32,
            accepted_at: r.get("accepted_at")?,
            raw,
            operation: r.get("operation")?,
            meta: from_json(&r.get::<_, String>("meta")?)?,
        });
    }
    // A delivery whose message is gone ends. (Clearing the mailbox takes
    // unfinished deliveries with it; this is for a message deleted behind
    // the store's back.) The join left those out, so the check costs
    // nothing when it came back whole.
    if out.len() < claimed {
        conn.prepare_cached(
            "UPDATE deliveries SET state = 'failed', lease_until = NULL,
               last_error = 'the message was deleted before delivery'
             WHERE id IN (SELECT value FROM json_each(?))
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id)",
        )?
        .execute([&ids])?;
    }
    Ok((out, next_due))
}

/// Records outcomes (finished or to retry) and their events; returns when
/// the earliest retry is due.
pub(super) fn finish_deliveries(
    conn: &Connection,
    updates: &[DeliveryUpdate],
    events: &[Event],
) -> Result<Option<Millis>> {
    let mut finished = conn.prepare_cached(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, lease_until = NULL,
           updated_at = ? WHERE id = ?",
    )?;
    let mut retry = conn.prepare_cached(
        "UPDATE deliveries SET state = 'queued', attempts = attempts + 1,
           recipients = ?, next_attempt_at = ?, lease_until = NULL,
           updated_at = ?, last_error = ? WHERE id = ?",
    )?;
    let mut retry_at: Option<Millis> = None;
    for u in updates {
        match u {
            DeliveryUpdate::Finished { id, failed, at } => {
                let state = if *failed { "failed" } else { "delivered" };
                finished.execute(params![state, at, id])?;
            }
            DeliveryUpdate::Retry {
                id,
                recipients,
                at,
                error,
            } => {
                retry.execute(params![to_json(recipients)?, at, at, error, id])?;
                retry_at = Some(retry_at.map_or(*at, |r| r.min(*at)));
            }
        }
    }
    insert_events(conn, events)?;
    Ok(retry_at)
}

pub(super) fn insert_events(conn: &Connection, events: &[Event]) -> Result<()> {
    let mut event = conn.prepare_cached(
        "INSERT INTO events (account_id, region, message_id, kind, at, data)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for e in events {
        event.execute(params![
            e.scope.account.as_str(),
            e.scope.region.as_str(),
            e.message_id,
            e.kind.as_str(),
            e.at,
            to_json(e)?,
        ])?;
    }
    Ok(())
}
