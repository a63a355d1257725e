//! The writer thread: every message acceptance and every delivery-queue
//! write (claims and recorded outcomes) of the SQLite backend.
//!
//! It is a dedicated OS thread owning one SQLite connection (rusqlite), not
//! a task on the async pool: a writer round runs a dozen statements, and
//! through sqlx each of them was a hand-off to the connection's worker
//! thread and back (two thread wake-ups a statement). Here a round is one
//! thread running prepared statements back to back; the only hand-offs
//! are the jobs coming in and the answers going out.
//!
//! One writer means no lock contention between requests and the delivery
//! engine (SQLite's busy waits would otherwise throttle both), and one
//! commit serves many acceptances. It takes the waiting jobs in arrival
//! order, decides each acceptance's quotas, writes the accepted messages
//! and the queue jobs in one transaction (each part in its own savepoint
//! when there are several, so that one failing part fails alone), commits,
//! and only then answers
//! each job: an accepted message is durable before its sender hears so.
//! A delivery the acceptance makes itself (capture mode, see
//! [`crate::AcceptanceDelivery`]) is inserted finished, with its event, in
//! the same transaction.
//!
//! Checkpoints run beside it, on the checkpoint thread the writer owns
//! (see [`checkpoints`]).
//!
//! The writer is the only writer of quota state, so it keeps that state in
//! memory: each scope's last 24 hours of counted recipients (loaded from
//! `send_ledger` the first time the scope sends, and written back each
//! round) and its send-rate token bucket (kept only in memory: after a
//! restart a bucket starts full, which is one second's worth of sending).

use super::{from_json, scope_from, to_json};
use crate::{AcceptanceDelivery, Result, StoreError};
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, params};
use sesame_model::delivery::group_by_domain;
use sesame_model::quota::{DAY_MINUTES, QuotaState, minute_of};
use sesame_model::{
    Acceptance, DeliveryUpdate, Event, Millis, NewMessage, QueuedDelivery, QuotaCheck, Scope,
};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// The most jobs taken into one round.
const MAX_BATCH: usize = 512;

/// WAL pages at which the checkpointer catches up and hands the rest of
/// the checkpoint to the writer, so that the next round starts the WAL
/// again from its beginning (see [`checkpoints`]).
const RESTART_AT: i64 = 4000;

/// WAL pages past which the writer checkpoints by itself after a commit
/// (SQLite's own automatic checkpoint), should the checkpointer fall behind.
pub(super) const WAL_HARD_LIMIT: i64 = 4 * RESTART_AT;

/// A catch-up pass that found at most this many new pages leaves the
/// writer a short tail to copy.
const SHORT_TAIL: i64 = 256;

/// The most catch-up passes before the writer is handed the rest anyway.
const CATCH_UP_PASSES: usize = 8;

/// How long the checkpointer rests after each checkpoint, so that one
/// pass copies the last version of pages many commits rewrote.
const CHECKPOINT_REST: Duration = Duration::from_millis(20);

/// The most deliveries waiting in the hand-off.
const HANDOFF_CAP: usize = 1024;

/// The most message bytes waiting in the hand-off (each message counted
/// once, however many of its deliveries wait). A message that would take
/// more is queued instead, so that large messages arriving faster than
/// they are delivered wait in the database, not in memory.
const HANDOFF_BYTES: usize = 64 << 20;

/// While the hand-off serves claims, the queue itself is still searched
/// this often, so that retries and expired leases are never starved.
const QUEUE_SEARCH_EVERY_MS: Millis = 100;

/// Deliveries born claimed. Once the delivery engine has claimed (so it is
/// running, and its lease length is known), the writer inserts each new
/// delivery already `sending` with a lease, and after the commit hands it
/// to the engine here, in memory: the engine's next claim takes it without
/// a query that would mark it `sending` and read back the message just
/// written. The database holds the same state as if the engine had claimed
/// it, so a crash loses nothing (the next start requeues `sending`
/// deliveries), and a delivery left here past its lease is claimable from
/// the queue again, as any expired claim is (it is then dropped from here).
#[derive(Default)]
pub(super) struct HandOff {
    state: Mutex<HandOffState>,
}

#[derive(Default)]
struct HandOffState {
    /// The engine's lease length, known from its first claim.
    lease_ms: Option<Millis>,
    ready: VecDeque<Born>,
    /// The message bytes of `ready` (`Born::bytes`).
    bytes: usize,
    /// When a claim last searched the queue.
    searched_at: Millis,
    /// When the earliest delivery waiting in the queue is due, as far as
    /// this process's writes tell: the last search's answer, lowered by
    /// every delivery queued or requeued since.
    next_due: Option<Millis>,
    /// Whether a search has set `next_due` yet.
    known: bool,
}

impl HandOff {
    /// Takes up to `limit` handed-off deliveries whose lease still holds at
    /// `now`, and says how many to claim from the queue as well.
    pub(super) fn take(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> (Vec<QueuedDelivery>, u32) {
        let Ok(mut st) = self.state.lock() else {
            return (vec![], limit);
        };
        st.lease_ms = Some((lease_until - now).max(0));
        let mut out = Vec::with_capacity(st.ready.len().min(limit as usize));
        while out.len() < limit as usize {
            let Some(d) = st.ready.pop_front() else {
                break;
            };
            st.bytes = st.bytes.saturating_sub(d.bytes);
            if d.lease_until >= now {
                out.push(d.delivery);
            }
        }
        let rest = limit - out.len() as u32;
        let search = st.next_due.is_some_and(|at| at <= now)
            || now.abs_diff(st.searched_at) >= QUEUE_SEARCH_EVERY_MS.unsigned_abs();
        if rest > 0 && search {
            st.searched_at = now;
            (out, rest)
        } else {
            (out, 0)
        }
    }

    /// A search of the queue left the earliest waiting delivery due at
    /// `next_due`.
    fn searched(&self, next_due: Option<Millis>) {
        if let Ok(mut st) = self.state.lock() {
            st.next_due = next_due;
            st.known = true;
        }
    }

    /// When the queue is next due, once a search has told: never later
    /// than the truth for this process's writes, possibly earlier (a due
    /// delivery since claimed keeps it), so a claim made then finds work
    /// or corrects it.
    pub(super) fn next_due(&self) -> Option<Option<Millis>> {
        let st = self.state.lock().ok()?;
        st.known.then_some(st.next_due)
    }

    /// A delivery was queued (or requeued, by the writer or elsewhere) due
    /// at `at`.
    pub(super) fn due_at(&self, at: Millis) {
        if let Ok(mut st) = self.state.lock() {
            st.next_due = Some(st.next_due.map_or(at, |d| d.min(at)));
        }
    }

    /// The lease to give new deliveries, and how many and how many bytes
    /// of them may be handed off, or `None` while no engine has claimed.
    fn room(&self) -> Option<Room> {
        let st = self.state.lock().ok()?;
        Some(Room {
            lease_ms: st.lease_ms?,
            deliveries: HANDOFF_CAP.saturating_sub(st.ready.len()),
            bytes: HANDOFF_BYTES.saturating_sub(st.bytes),
        })
    }

    fn push(&self, born: Vec<Born>) {
        if let Ok(mut st) = self.state.lock() {
            st.bytes += born.iter().map(|b| b.bytes).sum::<usize>();
            st.ready.extend(born);
        }
    }

    pub(super) fn clear(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.bytes = 0;
            st.ready.clear();
        }
    }
}

/// What the hand-off can take in a round.
#[derive(Clone, Copy)]
struct Room {
    lease_ms: Millis,
    deliveries: usize,
    bytes: usize,
}

/// The deliveries acceptances make by themselves (capture mode), if the
/// delivery engine said so; read at the start of each round.
#[derive(Clone, Default)]
pub(super) struct OnAcceptance(Arc<RwLock<Option<Arc<dyn AcceptanceDelivery>>>>);

impl OnAcceptance {
    pub(super) fn set(&self, hook: Arc<dyn AcceptanceDelivery>) {
        if let Ok(mut h) = self.0.write() {
            *h = Some(hook);
        }
    }

    fn get(&self) -> Option<Arc<dyn AcceptanceDelivery>> {
        self.0.read().ok()?.clone()
    }
}

/// A delivery inserted already claimed, until its lease ends.
struct Born {
    delivery: QueuedDelivery,
    lease_until: Millis,
    /// What it counts in the hand-off's bytes: its message's length for
    /// the first of the message's deliveries born, 0 for the others,
    /// which share the message's bytes.
    bytes: usize,
}

/// A write waiting for the writer.
pub(super) enum Job {
    Accept(AcceptJob),
    Queue(QueueJob),
}

/// One acceptance waiting for the writer.
pub(super) struct AcceptJob {
    pub scope: Scope,
    pub message: NewMessage,
    pub quota: QuotaCheck,
    pub reply: oneshot::Sender<Result<Acceptance>>,
}

/// A delivery-queue write: a claim or recorded outcomes.
pub(super) enum QueueJob {
    Claim {
        now: Millis,
        lease_until: Millis,
        limit: u32,
        reply: oneshot::Sender<Result<Vec<QueuedDelivery>>>,
    },
    Finish {
        updates: Vec<DeliveryUpdate>,
        events: Vec<Event>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Empties the local mailbox: every message and its unfinished
    /// deliveries (here, so that none is handed off after it).
    Clear { reply: oneshot::Sender<Result<u64>> },
}

/// Opens the writer's connection to the (already migrated) database at
/// `path` and starts the thread. It ends when every sender is gone.
pub(super) fn spawn(
    path: &Path,
    queued: Arc<Notify>,
    handoff: Arc<HandOff>,
    on_acceptance: OnAcceptance,
) -> Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The same settings as the pool's connections: WAL (a property of the
    // file, set at open), NORMAL sync (a commit survives a process crash),
    // the same patience with other processes' writes.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Statement journals (a multi-row UPDATE inside a savepoint) in memory,
    // not in a temporary file created and deleted for each statement.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.pragma_update(None, "wal_autocheckpoint", WAL_HARD_LIMIT)?;
    let checkpoint_conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    checkpoint_conn.busy_timeout(Duration::from_secs(10))?;
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    let thread = std::thread::Builder::new()
        .name("sesame-writer".into())
        .spawn(move || {
            // The writer owns the checkpointer: it ends when the writer
            // drops its end of `wrote`, and the writer waits for it.
            let (wrote, written) = std::sync::mpsc::sync_channel(1);
            let tail = Arc::new(AtomicBool::new(false));
            let tail_ready = tail.clone();
            let checkpointer = std::thread::Builder::new()
                .name("sesame-checkpoint".into())
                .spawn(move || checkpoints(&checkpoint_conn, &written, &tail_ready))
                .inspect_err(|e| {
                    tracing::error!(error = %e,
                        "cannot start the checkpoint thread; the writer checkpoints alone");
                })
                .ok();
            let signals = Signals {
                queued: &queued,
                wrote: &wrote,
                tail: &tail,
            };
            run(conn, rx, &signals, &handoff, &on_acceptance);
            drop(wrote);
            if let Some(t) = checkpointer {
                let _ = t.join();
            }
        })
        .map_err(|e| StoreError::Batch(format!("cannot start the writer thread: {e}")))?;
    Ok((tx, thread))
}

/// What the writer tells others, and hears from the checkpointer.
struct Signals<'a> {
    /// Notified after a commit that queued deliveries.
    queued: &'a Notify,
    /// Told after each round: the checkpointer has work.
    wrote: &'a std::sync::mpsc::SyncSender<()>,
    /// Set by the checkpointer when only a short tail of the WAL is left
    /// to copy.
    tail: &'a AtomicBool,
}

/// The checkpointer: copies the WAL into the database while the writer
/// keeps writing, so that the writer's rounds do not stop for it.
///
/// A checkpoint that runs beside a writer never finishes the WAL (the
/// writer appends while it copies), and SQLite starts the WAL again from
/// its beginning only when a write finds every page of it copied. So
/// once the WAL is `RESTART_AT` pages long, the checkpointer catches up
/// in passes without rest until little is left, and then sets `tail`: the
/// writer copies that short tail itself between two rounds, and its next
/// round starts the WAL over. Should this thread fall behind, SQLite's
/// automatic checkpoint in the writer bounds the WAL at `WAL_HARD_LIMIT`.
/// Ends when the writer drops its end of `written`.
fn checkpoints(conn: &Connection, written: &std::sync::mpsc::Receiver<()>, tail: &AtomicBool) {
    while written.recv().is_ok() {
        if let Some(mut pages) = checkpoint(conn)
            && pages >= RESTART_AT
        {
            for _ in 0..CATCH_UP_PASSES {
                let Some(now) = checkpoint(conn) else { break };
                let new = now - pages;
                pages = now;
                if new <= SHORT_TAIL {
                    break;
                }
            }
            tail.store(true, Ordering::Release);
        }
        std::thread::sleep(CHECKPOINT_REST);
    }
}

/// A passive checkpoint (it waits for nobody); returns the WAL's length in
/// pages, or `None` when it could not run.
fn checkpoint(conn: &Connection) -> Option<i64> {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    }) {
        Ok((0, pages)) => Some(pages),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "a WAL checkpoint failed");
            None
        }
    }
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    signals: &Signals<'_>,
    handoff: &HandOff,
    on_acceptance: &OnAcceptance,
) {
    let mut quotas: HashMap<Scope, QuotaState> = HashMap::new();
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.blocking_recv_many(&mut jobs, MAX_BATCH) > 0 {
        if signals.tail.swap(false, Ordering::Acquire) {
            // Copies what the checkpointer left, so that this round's
            // first write starts the WAL over.
            checkpoint(&conn);
        }
        let mut accepts = Vec::with_capacity(jobs.len());
        let mut others = vec![];
        for job in jobs.drain(..) {
            match job {
                Job::Accept(a) => accepts.push(a),
                Job::Queue(q) => others.push(q),
            }
        }
        let hook = on_acceptance.get();
        round(
            &mut conn,
            &mut quotas,
            accepts,
            others,
            signals.queued,
            handoff,
            hook.as_deref(),
        );
        // Full means the checkpointer has been told already.
        let _ = signals.wrote.try_send(());
    }
}

/// What one queue job's answer will be, sent after the commit.
enum QueueAnswer {
    /// With when the earliest delivery left queued is due.
    Claim(
        oneshot::Sender<Result<Vec<QueuedDelivery>>>,
        Result<(Vec<QueuedDelivery>, Option<Millis>)>,
    ),
    /// With the earliest retry it scheduled.
    Finish(oneshot::Sender<Result<()>>, Result<Option<Millis>>),
    Clear(oneshot::Sender<Result<u64>>, Result<u64>),
}

/// What an accepted batch decided, and what to do once it is committed.
struct Decided {
    results: Vec<Acceptance>,
    /// Deliveries born claimed, for the hand-off.
    born: Vec<Born>,
    /// When the earliest delivery queued instead is due.
    queued_at: Option<Millis>,
    /// The events of deliveries the acceptances made themselves.
    delivered: Vec<Event>,
}

/// Runs one round in one transaction: the acceptances, then the queue jobs,
/// each in its own savepoint when there are several. One commit serves them all; every answer
/// waits for it.
fn round(
    conn: &mut Connection,
    quotas: &mut HashMap<Scope, QuotaState>,
    batch: Vec<AcceptJob>,
    others: Vec<QueueJob>,
    queued: &Notify,
    handoff: &HandOff,
    hook: Option<&dyn AcceptanceDelivery>,
) {
    let room = handoff.room();
    // Savepoints only when the round has more than one part: a lone part
    // that fails rolls the whole (otherwise empty) transaction back.
    let savepoints = usize::from(!batch.is_empty()) + others.len() > 1;
    // What the batch's decisions counted, to take back unless committed.
    let mut counted = Counted::default();
    let written = (|| {
        control(conn, "BEGIN IMMEDIATE")?;
        let mut accepted: Option<Result<Decided>> = None;
        let mut failed_alone = false;
        if !batch.is_empty() {
            accepted = Some(part(conn, savepoints, &mut failed_alone, |c| {
                accept_batch(c, quotas, &mut counted, &batch, room, hook)
            })?);
        }
        let mut answers = Vec::with_capacity(others.len());
        for job in others {
            let answer = match job {
                QueueJob::Claim {
                    now,
                    lease_until,
                    limit,
                    reply,
                } => {
                    let r = part(conn, savepoints, &mut failed_alone, |c| {
                        claim_deliveries(c, now, lease_until, limit)
                    })?;
                    QueueAnswer::Claim(reply, r)
                }
                QueueJob::Finish {
                    updates,
                    events,
                    reply,
                } => {
                    let r = part(conn, savepoints, &mut failed_alone, |c| {
                        finish_deliveries(c, &updates, &events)
                    })?;
                    QueueAnswer::Finish(reply, r)
                }
                QueueJob::Clear { reply } => {
                    let r = part(conn, savepoints, &mut failed_alone, clear_messages)?;
                    QueueAnswer::Clear(reply, r)
                }
            };
            answers.push(answer);
        }
        control(conn, if failed_alone { "ROLLBACK" } else { "COMMIT" })?;
        Ok::<_, StoreError>((accepted, answers))
    })();
    // Acceptances that decided without error were committed: only a lone
    // part that failed rolls the round back.
    if !matches!(&written, Ok((Some(Ok(_)), _))) {
        counted.take_back(quotas);
    }
    if written.is_err()
        && !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "could not roll back a failed write round");
    }
    match written {
        Ok((accepted, answers)) => {
            let cleared = answers
                .iter()
                .any(|a| matches!(a, QueueAnswer::Clear(_, Ok(_))));
            if cleared {
                handoff.clear();
            }
            match accepted {
                Some(Ok(d)) => {
                    // The engine hears of every delivery left to it.
                    let to_deliver = !d.born.is_empty() || d.queued_at.is_some();
                    if !cleared {
                        handoff.push(d.born);
                    }
                    if let Some(at) = d.queued_at {
                        handoff.due_at(at);
                    }
                    if to_deliver {
                        queued.notify_one();
                    }
                    if let Some(hook) = hook
                        && !d.delivered.is_empty()
                    {
                        hook.recorded(&d.delivered);
                    }
                    for (job, r) in batch.into_iter().zip(d.results) {
                        let _ = job.reply.send(Ok(r));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, jobs = batch.len(), "a batch of acceptances failed");
                    for job in batch {
                        let _ = job.reply.send(Err(StoreError::Batch(e.to_string())));
                    }
                }
                None => {}
            }
            for a in answers {
                match a {
                    QueueAnswer::Claim(reply, r) => {
                        let r = r.map(|(found, next_due)| {
                            handoff.searched(next_due);
                            found
                        });
                        let _ = reply.send(r);
                    }
                    QueueAnswer::Finish(reply, r) => {
                        let r = r.map(|retry_at| {
                            if let Some(at) = retry_at {
                                handoff.due_at(at);
                            }
                        });
                        let _ = reply.send(r);
                    }
                    QueueAnswer::Clear(reply, r) => {
                        let _ = reply.send(r);
                    }
                }
            }
        }
        Err(e) => {
            // The round's transaction failed as a whole: nothing was written,
            // and every job hears so. (Queue jobs' replies went with `others`
            // and are dropped, which their callers see as an error.)
            tracing::error!(error = %e, jobs = batch.len(), "a write round failed");
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Batch(e.to_string())));
            }
        }
    }
}

/// One scope's quota state, as the writer keeps it; the rules are
/// `sesame_model::quota`'s.
struct ScopeQuota;

impl ScopeQuota {
    /// The scope's state from its ledger: the last 24 hours' counts.
    fn load(conn: &Connection, scope: &Scope, minute: i64) -> Result<QuotaState> {
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

/// Runs a transaction-control statement through the statement cache, so
/// that it is parsed once, not at every round.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs one part of a round, in its own savepoint when `savepoint` is set,
/// so that a part that fails leaves the others' writes standing. Without a
/// savepoint (the round's only part), a failure sets `failed_alone`, and
/// the round rolls back instead of committing. The outer error is the
/// savepoint's own failure, which fails the round.
fn part<T>(
    conn: &Connection,
    savepoint: bool,
    failed_alone: &mut bool,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<Result<T>> {
    if !savepoint {
        let r = f(conn);
        *failed_alone |= r.is_err();
        return Ok(r);
    }
    control(conn, "SAVEPOINT part")?;
    let r = f(conn);
    if r.is_err() {
        control(conn, "ROLLBACK TO part")?;
    }
    control(conn, "RELEASE part")?;
    Ok(r)
}

/// What a batch's decisions counted in the kept quota state: each touched
/// scope's rate bucket as it was, and the recipients counted per scope and
/// minute. A batch that is not committed takes them back.
#[derive(Default)]
struct Counted<'a> {
    buckets: Vec<(&'a Scope, Option<sesame_model::quota::Bucket>)>,
    recipients: Vec<(&'a Scope, i64, i64)>,
}

impl Counted<'_> {
    fn take_back(self, quotas: &mut HashMap<Scope, QuotaState>) {
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
fn accept_batch<'a>(
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
           subject, created_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ])?;
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

/// Deletes every message and its unfinished deliveries.
fn clear_messages(conn: &Connection) -> Result<u64> {
    conn.execute(
        "DELETE FROM deliveries WHERE state IN ('queued', 'sending')",
        [],
    )?;
    Ok(conn.execute("DELETE FROM messages", [])? as u64)
}

/// Claims up to `limit` due deliveries (and any whose lease ran out) and
/// returns them with their messages, and when the earliest delivery left
/// queued is due.
fn claim_deliveries(
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
                d.attempts, d.accepted_at, m.source, m.destinations, m.subject, m.raw
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
fn finish_deliveries(
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

fn insert_events(conn: &Connection, events: &[Event]) -> Result<()> {
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
