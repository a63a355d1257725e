//! A read cache for the lookups every send makes (the account, and the
//! identities that could cover its addresses), so a request need not read
//! SQLite for them.
//!
//! Invalidation: every write of accounts or identities, from any process
//! sharing the data directory (the server, or an operator command), replaces
//! the file `cache-epoch` with a fresh random value after its commit. Each
//! cached read first compares that file with the value last seen, and
//! empties the cache when it changed. A write is therefore visible to the
//! next request that starts after the writer returns.

use sesame_model::{Account, Identity, Scope};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// More entries than this and the cache starts over, bounding its memory.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(crate) struct Entries {
    /// Moves on every clearing, so a read that started before a write
    /// cannot store what it found after the write cleared the cache.
    pub generation: u64,
    accounts: HashMap<Scope, Option<Account>>,
    /// By scope, then name, so that a lookup borrows its key.
    identities: HashMap<Scope, HashMap<String, Option<Arc<Identity>>>>,
    /// How many names `identities` holds, over all scopes.
    identity_count: usize,
}

impl Entries {
    fn clear(&mut self) {
        self.generation += 1;
        self.accounts.clear();
        self.identities.clear();
        self.identity_count = 0;
    }

    pub fn account(&self, scope: &Scope) -> Option<Option<Account>> {
        self.accounts.get(scope).cloned()
    }

    pub fn put_account(&mut self, scope: &Scope, a: Option<Account>) {
        if self.accounts.len() >= MAX_ENTRIES {
            self.accounts.clear();
        }
        self.accounts.insert(scope.clone(), a);
    }

    /// The cached identities among `names` (found ones only), and the names
    /// not cached at all.
    pub fn identities(&self, scope: &Scope, names: &[String]) -> (Vec<Arc<Identity>>, Vec<String>) {
        let mut hits = vec![];
        let mut misses = vec![];
        let cached = self.identities.get(scope);
        for n in names {
            match cached.and_then(|c| c.get(n.as_str())) {
                Some(Some(i)) => hits.push(i.clone()),
                Some(None) => {}
                None => misses.push(n.clone()),
            }
        }
        (hits, misses)
    }

    /// Records what a read of `names` found, absent names included.
    pub fn put_identities(&mut self, scope: &Scope, names: &[String], found: &[Arc<Identity>]) {
        if names.is_empty() {
            return;
        }
        if self.identity_count + names.len() >= MAX_ENTRIES {
            self.identities.clear();
            self.identity_count = 0;
        }
        let cached = self.identities.entry(scope.clone()).or_default();
        for n in names {
            let hit = found.iter().find(|i| i.name.as_str() == n).cloned();
            if cached.insert(n.clone(), hit).is_none() {
                self.identity_count += 1;
            }
        }
    }
}

/// The epoch's size: a value written in place, read with one `pread`.
const EPOCH_LEN: usize = 32;
type Epoch = Option<[u8; EPOCH_LEN]>;

pub(crate) struct ReadCache {
    /// `cache-epoch`, held open; `None` if it could not be opened, and then
    /// nothing is cached.
    epoch: Option<File>,
    inner: Mutex<(Epoch, Entries)>,
}

impl ReadCache {
    pub fn new(dir: &std::path::Path) -> Self {
        let path: PathBuf = dir.join("cache-epoch");
        let epoch = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|f| {
                if f.metadata()?.len() < EPOCH_LEN as u64 {
                    f.write_all_at(&fresh_value(), 0)?;
                }
                Ok(f)
            })
            .map_err(|e| tracing::warn!(error = %e, path = %path.display(), "no read cache: cannot open the cache epoch"))
            .ok();
        let cache = Self {
            epoch,
            inner: Mutex::new((None, Entries::default())),
        };
        let seen = cache.read_epoch();
        if let Ok(mut g) = cache.inner.lock() {
            g.0 = seen;
        }
        cache
    }

    fn read_epoch(&self) -> Epoch {
        let mut buf = [0u8; EPOCH_LEN];
        self.epoch.as_ref()?.read_exact_at(&mut buf, 0).ok()?;
        Some(buf)
    }

    /// The entries, emptied first if another writer has moved the epoch.
    /// `None` when there is no cache (the caller then reads the store).
    pub fn entries(&self) -> Option<MutexGuard<'_, (Epoch, Entries)>> {
        let now = self.read_epoch()?;
        let mut g = self.inner.lock().ok()?;
        if g.0 != Some(now) {
            g.0 = Some(now);
            g.1.clear();
        }
        Some(g)
    }

    /// The entries for storing what a read found, if nothing cleared them
    /// since `generation` (taken from [`Self::entries`] before the read).
    /// A write in another process that raced the read moved the epoch, and
    /// the next [`Self::entries`] empties the cache.
    pub fn entries_since(&self, generation: u64) -> Option<MutexGuard<'_, (Epoch, Entries)>> {
        self.inner
            .lock()
            .ok()
            .filter(|g| g.1.generation == generation)
    }

    /// Called after a committed write of accounts or identities: moves the
    /// epoch for every process and empties this one's cache.
    pub fn bump(&self) {
        let value = fresh_value();
        if let Some(f) = &self.epoch
            && let Err(e) = f.write_all_at(&value, 0)
        {
            tracing::error!(error = %e, "cannot move the cache epoch; other processes may read stale settings");
        }
        if let Ok(mut g) = self.inner.lock() {
            g.0 = Some(value);
            g.1.clear();
        }
    }
}

fn fresh_value() -> [u8; EPOCH_LEN] {
    let mut out = [0u8; EPOCH_LEN];
    out.copy_from_slice(format!("{:032x}", rand_value()).as_bytes());
    out
}

/// A value that differs between bumps, in this process and across processes.
fn rand_value() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128;
    t ^ (u128::from(std::process::id()) << 96) ^ (n << 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{identity, scope};

    /// A lookup finds what was put for its scope only, tells found, absent
    /// and unknown names apart, and the count of names stays bounded.
    #[test]
    fn identities_are_kept_by_scope_and_name_and_bounded() {
        let (a, b) = (
            scope("111111111111", "us-east-1"),
            scope("111111111111", "eu-west-1"),
        );
        let mut e = Entries::default();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        e.put_identities(
            &a,
            &names(&["x.com", "y.com"]),
            &[Arc::new(identity("x.com"))],
        );
        let (hits, misses) = e.identities(&a, &names(&["x.com", "y.com", "z.com"]));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].name.as_str(), "x.com");
        assert_eq!(misses, names(&["z.com"]), "y.com is known to be absent");
        let (hits, misses) = e.identities(&b, &names(&["x.com"]));
        assert!(hits.is_empty());
        assert_eq!(misses, names(&["x.com"]), "another region knows nothing");
        for i in 0..MAX_ENTRIES + 5 {
            e.put_identities(&b, &[format!("n{i}.com")], &[]);
            assert!(e.identity_count < MAX_ENTRIES);
        }
        assert_eq!(
            e.identity_count,
            e.identities.values().map(HashMap::len).sum::<usize>()
        );
    }
}
