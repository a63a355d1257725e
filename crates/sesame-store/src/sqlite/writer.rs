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

//!
//! # Layout
//! - this file: the thread, its rounds and jobs, and checkpointing;
//! - `handoff.rs`: deliveries born claimed, for the engine's next claim;
//! - `accept.rs`: acceptances under the quota rules;
//! - `queue.rs`: claims, outcomes, events, clearing the mailbox.

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

mod accept;
mod handoff;
mod queue;

use accept::*;
use handoff::*;
pub(super) use handoff::{HandOff, OnAcceptance};
use queue::*;

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

/// A write waiting for the writer.
pub(super) enum Job {
    Accept(Box<AcceptJob>),
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
                Job::Accept(a) => accepts.push(*a),
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
