//! The hand-off: deliveries born claimed, kept for the engine's next claim, and the acceptance hook.

use super::*;

/// The most deliveries waiting in the hand-off.
pub(super) const HANDOFF_CAP: usize = 1024;

/// The most message bytes waiting in the hand-off (each message counted
/// once, however many of its deliveries wait). A message that would take
/// more is queued instead, so that large messages arriving faster than
/// they are delivered wait in the database, not in memory.
pub(super) const HANDOFF_BYTES: usize = 64 << 20;

/// While the hand-off serves claims, the queue itself is still searched
/// this often, so that retries and expired leases are never starved.
pub(super) const QUEUE_SEARCH_EVERY_MS: Millis = 100;

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
pub(crate) struct HandOff {
    pub(super) state: Mutex<HandOffState>,
}

#[derive(Default)]
pub(super) struct HandOffState {
    /// The engine's lease length, known from its first claim.
    pub(super) lease_ms: Option<Millis>,
    pub(super) ready: VecDeque<Born>,
    /// The message bytes of `ready` (`Born::bytes`).
    pub(super) bytes: usize,
    /// When a claim last searched the queue.
    pub(super) searched_at: Millis,
    /// When the earliest delivery waiting in the queue is due, as far as
    /// this process's writes tell: the last search's answer, lowered by
    /// every delivery queued or requeued since.
    pub(super) next_due: Option<Millis>,
    /// Whether a search has set `next_due` yet.
    pub(super) known: bool,
}

impl HandOff {
    /// Takes up to `limit` handed-off deliveries whose lease still holds at
    /// `now`, and says how many to claim from the queue as well.
    pub(crate) fn take(
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
    pub(super) fn searched(&self, next_due: Option<Millis>) {
        if let Ok(mut st) = self.state.lock() {
            st.next_due = next_due;
            st.known = true;
        }
    }

    /// When the queue is next due, once a search has told: never later
    /// than the truth for this process's writes, possibly earlier (a due
    /// delivery since claimed keeps it), so a claim made then finds work
    /// or corrects it.
    pub(crate) fn next_due(&self) -> Option<Option<Millis>> {
        let st = self.state.lock().ok()?;
        st.known.then_some(st.next_due)
    }

    /// A delivery was queued (or requeued, by the writer or elsewhere) due
    /// at `at`.
    pub(crate) fn due_at(&self, at: Millis) {
        if let Ok(mut st) = self.state.lock() {
            st.next_due = Some(st.next_due.map_or(at, |d| d.min(at)));
        }
    }

    /// The lease to give new deliveries, and how many and how many bytes
    /// of them may be handed off, or `None` while no engine has claimed.
    pub(super) fn room(&self) -> Option<Room> {
        let st = self.state.lock().ok()?;
        Some(Room {
            lease_ms: st.lease_ms?,
            deliveries: HANDOFF_CAP.saturating_sub(st.ready.len()),
            bytes: HANDOFF_BYTES.saturating_sub(st.bytes),
        })
    }

    pub(super) fn push(&self, born: Vec<Born>) {
        if let Ok(mut st) = self.state.lock() {
            st.bytes += born.iter().map(|b| b.bytes).sum::<usize>();
            st.ready.extend(born);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.bytes = 0;
            st.ready.clear();
        }
    }
}

/// What the hand-off can take in a round.
#[derive(Clone, Copy)]
pub(super) struct Room {
    pub(super) lease_ms: Millis,
    pub(super) deliveries: usize,
    pub(super) bytes: usize,
}

/// The deliveries acceptances make by themselves (capture mode), if the
/// delivery engine said so; read at the start of each round.
#[derive(Clone, Default)]
pub(crate) struct OnAcceptance(Arc<RwLock<Option<Arc<dyn AcceptanceDelivery>>>>);

impl OnAcceptance {
    pub(crate) fn set(&self, hook: Arc<dyn AcceptanceDelivery>) {
        if let Ok(mut h) = self.0.write() {
            *h = Some(hook);
        }
    }

    pub(super) fn get(&self) -> Option<Arc<dyn AcceptanceDelivery>> {
        self.0.read().ok()?.clone()
    }
}

/// A delivery inserted already claimed, until its lease ends.
pub(super) struct Born {
    pub(super) delivery: QueuedDelivery,
    pub(super) lease_until: Millis,
    /// What it counts in the hand-off's bytes: its message's length for
    /// the first of the message's deliveries born, 0 for the others,
    /// which share the message's bytes.
    pub(super) bytes: usize,
}
