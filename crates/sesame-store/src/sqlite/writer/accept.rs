//! Acceptances: each batch decided under the scopes' quota state (`sesame_model::quota`), written with its ledger rows and deliveries.

use super::*;

/// One scope's quota state, as the writer keeps it; the rules are
/// `sesame_model::quota`'s.
pub(super) struct ScopeQuota;

impl ScopeQuota {
    /// The scope's state from its ledger: the last 24 hours' counts.
    pub(super) fn load(conn: &Connection, scope: &Scope, minute: i64) -> Result<QuotaState> {
        let mut stmt = conn.prepare_cached(
            "SELECT minute, recipients FROM send_ledger
             WHERE account_id = ? AND region = ? AND minute > ? ORDER BY minute",
        )?;
        let minutes = stmt
            .query_map(
                params![
                    scope.account.as_str(),
                    scope.region.as_str(),
                    minute - DAY_MINUTES
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(QuotaState::from_ledger(minutes))
    }
}

/// What a batch's decisions counted in the kept quota state: each touched
/// scope's rate bucket as it was, and the recipients counted per scope and
/// minute. A batch that is not committed takes them back.
#[derive(Default)]
pub(super) struct Counted<'a> {
    buckets: Vec<(&'a Scope, Option<sesame_model::quota::Bucket>)>,
    recipients: Vec<(&'a Scope, i64, i64)>,
}

impl Counted<'_> {
    pub(super) fn take_back(self, quotas: &mut HashMap<Scope, QuotaState>) {
        for (scope, bucket) in self.buckets {
            if let Some(q) = quotas.get_mut(scope) {
                q.set_bucket(bucket);
            }
        }
        for (scope, minute, n) in self.recipients {
            if let Some(q) = quotas.get_mut(scope) {
                q.uncount(minute, n);
            }
        }
    }
}

/// Decides and writes a batch of acceptances; returns each decision. The
/// decisions count in `quotas` at once (no copy of a scope's 24 hours per
/// round), and `counted` says what to take back if the batch is not
/// committed.
pub(super) fn accept_batch<'a>(
    conn: &Connection,
    quotas: &mut HashMap<Scope, QuotaState>,
    counted: &mut Counted<'a>,
    batch: &'a [AcceptJob],
    room: Option<Room>,
    hook: Option<&dyn AcceptanceDelivery>,
) -> Result<Decided> {
    let mut out = Vec::with_capacity(batch.len());
    let mut accepted = vec![];
    for job in batch {
        if !quotas.contains_key(&job.scope) {
            let state = ScopeQuota::load(conn, &job.scope, minute_of(job.quota.now))?;
            quotas.insert(job.scope.clone(), state);
        }
        let state = quotas.get_mut(&job.scope).expect("loaded above");
        if !counted.buckets.iter().any(|(s, _)| **s == job.scope) {
            counted.buckets.push((&job.scope, state.bucket()));
        }
        let decision = state.decide(&job.quota);
        if decision == Acceptance::Accepted {
            accepted.push(job);
            if job.quota.daily_recipients > 0 {
                let minute = minute_of(job.quota.now);
                let n = i64::from(job.quota.daily_recipients);
                match counted
                    .recipients
                    .iter_mut()
                    .find(|(s, m, _)| **s == job.scope && *m == minute)
                {
                    Some((_, _, total)) => *total += n,
                    None => counted.recipients.push((&job.scope, minute, n)),
                }
            }
        }
        out.push(decision);
    }
    let mut ledger = conn.prepare_cached(
        "INSERT INTO send_ledger (account_id, region, minute, recipients) VALUES (?, ?, ?, ?)
         ON CONFLICT (account_id, region, minute) DO UPDATE SET
           recipients = send_ledger.recipients + excluded.recipients",
    )?;
    for &(scope, minute, n) in &counted.recipients {
        ledger.execute(params![
            scope.account.as_str(),
            scope.region.as_str(),
            minute,
            n
        ])?;
    }
    let mut message = conn.prepare_cached(
        "INSERT INTO messages (id, account_id, region, operation, source, destinations,
           subject, created_at, raw, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    // One delivery per accepted message and recipient domain: made by the
    // acceptance itself (finished as it is born), born claimed while the
    // hand-off has room, or queued.
    let mut delivery = conn.prepare_cached(
        "INSERT INTO deliveries (message_id, account_id, region, domain, recipients, state,
           attempts, lease_until, next_attempt_at, accepted_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut room = room.unwrap_or(Room {
        lease_ms: 0,
        deliveries: 0,
        bytes: 0,
    });
    let mut born = vec![];
    let mut queued_at: Option<Millis> = None;
    let mut delivered = vec![];
    for job in accepted {
        let m = &job.message;
        let (account, region) = (job.scope.account.as_str(), job.scope.region.as_str());
        message.execute(params![
            m.id,
            account,
            region,
            m.operation,
            m.source,
            to_json(&m.destinations)?,
            m.subject,
            m.created_at,
            m.raw,
            to_json(&m.meta)?,
        ])?;
        // The acceptance's own events (Send) come before its deliveries'.
        insert_events(conn, &m.events)?;
        // One copy of the message for all its domains' born deliveries.
        let mut shared: Option<Bytes> = None;
        for (domain, recipients) in group_by_domain(&m.destinations) {
            let made = hook.and_then(|h| h.delivered(&job.scope, m, &domain, &recipients));
            // A message's later domains share the bytes its first took.
            let fits = shared.is_some() || m.raw.len() <= room.bytes;
            let claimed = made.is_none() && room.deliveries > 0 && fits;
            let (state, attempts, updated_at) = match &made {
                Some(event) => ("delivered", 1, event.at),
                None if claimed => ("sending", 0, m.created_at),
                None => {
                    queued_at = Some(queued_at.map_or(m.created_at, |at| at.min(m.created_at)));
                    ("queued", 0, m.created_at)
                }
            };
            let lease_until = claimed.then_some(m.created_at + room.lease_ms);
            delivery.execute(params![
                m.id,
                account,
                region,
                domain,
                to_json(&recipients)?,
                state,
                attempts,
                lease_until,
                m.created_at,
                m.created_at,
                updated_at,
            ])?;
            if let Some(event) = made {
                delivered.push(event);
                continue;
            }
            if let Some(lease_until) = lease_until {
                room.deliveries -= 1;
                let bytes = if shared.is_none() { m.raw.len() } else { 0 };
                room.bytes -= bytes;
                born.push(Born {
                    lease_until,
                    bytes,
                    delivery: QueuedDelivery {
                        id: conn.last_insert_rowid(),
                        scope: job.scope.clone(),
                        message_id: m.id.clone(),
                        source: m.source.clone(),
                        destinations: m.destinations.clone(),
                        subject: m.subject.clone(),
                        domain,
                        recipients,
                        attempts: 0,
                        accepted_at: m.created_at,
                        raw: shared
                            .get_or_insert_with(|| Bytes::copy_from_slice(&m.raw))
                            .clone(),
                        operation: m.operation.clone(),
                        meta: m.meta.clone(),
                    },
                });
            }
        }
    }
    insert_events(conn, &delivered)?;
    Ok(Decided {
        results: out,
        born,
        queued_at,
        delivered,
    })
}
