//! The DNS verifier: checks domain identities' records on a schedule and on
//! demand, moves their statuses as SES does, and stores what it found
//! (timestamps, SOA, error type, diagnoses).
//!
//! Each identity is examined outside any transaction (DNS only), then its
//! result is applied to the identity as read and written back with the
//! store's optimistic version. A pass writes its results in batches.
//! Queries in flight never exceed `max_in_flight`, however many identities
//! are examined at once.
//!
//! The rules themselves (what is expected, how an answer is judged, the
//! 72-hour windows, the diagnoses) live in `sesame_model::verification`.

use crate::{Clock, internal};
use sesame_model::verification::{
    Answer, Diagnosis, DiagnosisKind, DnsPublishing, Expected, Finding, RecordType, SoaRecord,
    diagnose, probes,
};
use sesame_model::{Error, ErrorKind, Identity, IdentityKind, Millis, Scope, VerificationStatus};
use sesame_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The lease that makes one node of several sharing a store the verifier.
const LEASE: &str = "dns-verifier";
/// The shortest the lease lasts: its holder renews it before each page.
const LEASE_MIN_MS: Millis = 60_000;

/// DNS as the verifier needs it: one question, one answer. Implemented
/// with hickory in `sesame-dns`.
#[async_trait::async_trait]
pub trait DnsLookup: Send + Sync + 'static {
    async fn query(&self, name: &str, kind: RecordType) -> Answer;
}

#[derive(Debug, Clone)]
pub struct VerifierSettings {
    pub publishing: DnsPublishing,
    /// How often every identity under verification is checked again.
    pub interval: Duration,
    /// At most this many DNS queries in flight.
    pub max_in_flight: usize,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Identities examined (DNS asked).
    pub checked: u64,
    /// Identities whose verification, DKIM or MAIL FROM status changed.
    pub changed: u64,
    /// Results not written because the identity changed meanwhile (the next
    /// pass checks it again).
    pub conflicts: u64,
}

pub struct Verifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    dns: Arc<dyn DnsLookup>,
    settings: VerifierSettings,
    queries: Arc<Semaphore>,
}

/// What the DNS said about one identity.
#[derive(Debug, Clone)]
struct Examined {
    identity: Finding,
    dkim: Finding,
    mail_from: Finding,
    soa: Option<SoaRecord>,
    diagnoses: Vec<Diagnosis>,
}

/// Whether a status is still being verified (and so worth asking DNS).
fn live(s: VerificationStatus) -> bool {
    matches!(
        s,
        VerificationStatus::Pending
            | VerificationStatus::Success
            | VerificationStatus::TemporaryFailure
    )
}

/// Whether DNS can still move this status: it is being verified, and it
/// is not a `Success` no check has seen (set by `--auto-verify` or an
/// operator), which a missing record never takes back.
fn checkable(s: VerificationStatus, track: &sesame_model::verification::Track) -> bool {
    live(s) && !(s == VerificationStatus::Success && track.last_success_at.is_none())
}

/// Whether a pass has anything to ask DNS about this identity. An email
/// address has only its custom MAIL FROM domain to check.
fn needs_dns(i: &Identity) -> bool {
    let mail_from = i
        .mail_from
        .status
        .is_some_and(|s| checkable(s, &i.dns.mail_from));
    match i.kind() {
        IdentityKind::Domain => {
            mail_from
                || checkable(i.verification_status, &i.dns.identity)
                || (i.dkim.is_set_up() && checkable(i.dkim.status, &i.dns.dkim))
        }
        IdentityKind::EmailAddress => mail_from,
    }
}

const PAGE: u32 = 1000;

impl Verifier {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        dns: Arc<dyn DnsLookup>,
        settings: VerifierSettings,
    ) -> Self {
        let queries = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
        Self {
            store,
            clock,
            dns,
            settings,
            queries,
        }
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// Checks every identity under verification, then every `interval`,
    /// until `stop` turns true. A pass cut short by `stop` loses only the
    /// results not yet written; the next start checks them again.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            interval = ?self.settings.interval,
            max_in_flight = self.settings.max_in_flight,
            "DNS verifier started"
        );
        while !*stop.borrow() {
            let started = std::time::Instant::now();
            tokio::select! {
                r = self.pass_leased(true) => match r {
                    Ok(r) => {
                        metrics::counter!("sesame_verification_checks_total").increment(r.checked);
                        metrics::counter!("sesame_verification_changes_total").increment(r.changed);
                        let elapsed = started.elapsed();
                        metrics::gauge!("sesame_verification_pass_seconds")
                            .set(elapsed.as_secs_f64());
                        let elapsed_ms = elapsed.as_millis() as u64;
                        // Quiet passes are debug-level: one line every
                        // interval would only be noise.
                        if r.changed > 0 || r.conflicts > 0 {
                            tracing::info!(
                                checked = r.checked, changed = r.changed,
                                conflicts = r.conflicts, elapsed_ms, "verification pass"
                            );
                        } else {
                            tracing::debug!(
                                checked = r.checked, changed = r.changed,
                                conflicts = r.conflicts, elapsed_ms, "verification pass"
                            );
                        }
                    }
                    Err(e) => tracing::error!(error = %e.message, "verification pass failed"),
                },
                _ = stop.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.changed() => {}
            }
        }
        // Another node need not wait for the lease to run out.
        if let Err(e) = self.store.release_lease(LEASE).await {
            tracing::warn!(error = %e, "could not give up the DNS verifier's lease");
        }
        tracing::info!("DNS verifier stopped");
    }

    /// Takes or renews the verifier's lease: whether this node holds it,
    /// so that one node of several sharing a store checks at a time.
    async fn hold_lease(&self) -> Result<bool, Error> {
        let now = self.clock.now_ms();
        let length = (2 * self.settings.interval.as_millis() as Millis).max(LEASE_MIN_MS);
        self.store
            .take_lease(LEASE, now, now + length)
            .await
            .map_err(internal)
    }

    /// One pass over every identity of every account and region.
    pub async fn pass(self: &Arc<Self>) -> Result<PassReport, Error> {
        self.pass_leased(false).await
    }

    /// A pass; with `leased`, only while this node holds the verifier's
    /// lease, renewed before each page (the server's passes; an operator's
    /// explicit check runs regardless).
    async fn pass_leased(self: &Arc<Self>, leased: bool) -> Result<PassReport, Error> {
        let mut report = PassReport::default();
        let mut after = 0;
        let width = self.settings.max_in_flight.max(1);
        loop {
            if leased && !self.hold_lease().await? {
                tracing::debug!("another node holds the DNS verifier's lease");
                break;
            }
            let page = self
                .store
                .list_all_identities(after, PAGE)
                .await
                .map_err(internal)?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = *last;
            let mut results: Vec<(Scope, Identity)> = Vec::new();
            let mut changed = 0;
            let mut tasks = JoinSet::new();
            for (_, scope, identity) in page {
                let now = self.clock.now_ms();
                if identity.link_expired(now) {
                    let mut i = identity;
                    i.verification_status = VerificationStatus::Failed;
                    results.push((scope, i));
                    changed += 1;
                    continue;
                }
                if !needs_dns(&identity) {
                    continue;
                }
                while tasks.len() >= width {
                    if let Some(Ok((scope, i, c))) = tasks.join_next().await {
                        changed += u64::from(c);
                        results.push((scope, i));
                    }
                }
                let me = self.clone();
                tasks.spawn(async move {
                    let ex = me.examine(&identity).await;
                    let mut i = identity;
                    let c = apply(&mut i, ex, me.clock.now_ms());
                    (scope, i, c)
                });
                report.checked += 1;
            }
            while let Some(done) = tasks.join_next().await {
                if let Ok((scope, i, c)) = done {
                    changed += u64::from(c);
                    results.push((scope, i));
                }
            }
            let written = self
                .store
                .update_identities(&results)
                .await
                .map_err(internal)?;
            for ok in written {
                if !ok {
                    report.conflicts += 1;
                }
            }
            report.changed += changed;
        }
        Ok(report)
    }

    /// Checks one identity now (`sesame identities check`) and stores the
    /// result.
    pub async fn check(&self, scope: &Scope, name: &str) -> Result<Identity, Error> {
        let key = crate::identities::lookup_key(name);
        for _ in 0..5 {
            let identity = self
                .store
                .get_identity(scope, &key)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    Error::not_found(format!("Email identity {name} does not exist."))
                })?;
            if identity.kind() != IdentityKind::Domain && identity.mail_from.domain.is_none() {
                return Err(Error::invalid(format!(
                    "{name} is an email address: it is verified by the link sent to it, not by DNS."
                )));
            }
            let ex = self.examine(&identity).await;
            let mut updated = identity.clone();
            apply(&mut updated, ex, self.clock.now_ms());
            if self
                .store
                .update_identity(scope, &updated)
                .await
                .map_err(internal)?
            {
                updated.version += 1;
                return Ok(updated);
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentModification,
            format!("Identity {name} is being modified concurrently; try again."),
        ))
    }

    async fn ask(&self, name: &str, kind: RecordType) -> Answer {
        let _permit = self.queries.acquire().await;
        self.dns.query(name, kind).await
    }

    /// Asks for `expected` (and its alternative), diagnosing when neither is
    /// there.
    async fn look(
        &self,
        domain: &str,
        expected: &Expected,
        alternative: Option<&Expected>,
        diagnoses: &mut Vec<Diagnosis>,
    ) -> Finding {
        let answer = self.ask(&expected.name, expected.kind).await;
        let mut finding = expected.judge(&answer);
        if finding == Finding::Found {
            return finding;
        }
        if let Some(alt) = alternative {
            let alt_answer = self.ask(&alt.name, alt.kind).await;
            match alt.judge(&alt_answer) {
                Finding::Found => return Finding::Found,
                // A CNAME that exists but points elsewhere is the problem
                // to report; otherwise the TXT answer says more.
                f if !matches!(answer, Answer::Records(_)) && finding != Finding::Unknown => {
                    finding = f
                }
                _ => {}
            }
        }
        let mut asked = Vec::new();
        for p in probes(expected, domain) {
            let a = self.ask(&p.name, p.kind).await;
            asked.push((p, a));
        }
        diagnoses.extend(diagnose(expected, domain, &answer, &asked));
        finding
    }

    async fn examine(&self, i: &Identity) -> Examined {
        let own = i.name.domain_part();
        let domain = own.as_str();
        let is_domain = i.kind() == IdentityKind::Domain;
        let checks = i.dns_checks(&self.settings.publishing);
        let mut dkim_diag = Vec::new();
        let mut dkim = Finding::Unknown;
        if is_domain && i.dkim.is_set_up() && live(i.dkim.status) && !checks.dkim.is_empty() {
            dkim = Finding::Found;
            for (expected, alt) in &checks.dkim {
                let f = self
                    .look(domain, expected, alt.as_ref(), &mut dkim_diag)
                    .await;
                dkim = match (dkim, f) {
                    (Finding::Missing(e), _) => Finding::Missing(e),
                    (_, Finding::Missing(e)) => Finding::Missing(e),
                    (Finding::Unknown, _) | (_, Finding::Unknown) => Finding::Unknown,
                    _ => Finding::Found,
                };
            }
            if self.settings.publishing.cname_zone.is_none()
                && i.dkim.origin == sesame_model::DkimOrigin::AwsSes
            {
                self.explain_cnames(&mut dkim_diag).await;
            }
        }
        // The domain is verified by its `_amazonses` TXT or by its DKIM.
        let mut id_diag = Vec::new();
        let mut identity = dkim;
        if is_domain
            && dkim != Finding::Found
            && live(i.verification_status)
            && let Some(expected) = &checks.identity
        {
            let f = self.look(domain, expected, None, &mut id_diag).await;
            identity = match (f, dkim) {
                (Finding::Found, _) => Finding::Found,
                // With DKIM set up, its error says more to a v2 user.
                (_, Finding::Missing(e)) => Finding::Missing(e),
                (f, _) => f,
            };
        }
        let mut mail_from = Finding::Unknown;
        let mut mf_diag = Vec::new();
        if let (Some(expected), Some(status)) = (&checks.mail_from, i.mail_from.status)
            && live(status)
        {
            mail_from = self.look(domain, expected, None, &mut mf_diag).await;
            let spf = self.ask(&expected.name, RecordType::Txt).await;
            let has_spf = matches!(&spf, Answer::Records(rs) if rs.iter().any(|r| r.trim_start().starts_with("v=spf1")));
            if !has_spf && !matches!(spf, Answer::Error(_)) {
                mf_diag.push(Diagnosis {
                    record: expected.name.clone(),
                    kind: DiagnosisKind::SpfMissing,
                    message: format!(
                        "{} has no SPF record. Publish TXT {} \"{}\" so receivers accept mail whose return path is there.",
                        expected.name,
                        expected.name,
                        self.settings.publishing.spf()
                    ),
                });
            }
        }
        let soa = if is_domain {
            self.soa(domain).await
        } else {
            None
        };
        // Each list is empty when its records were found: what is left is
        // what is wrong, DKIM first (what a v2 user publishes).
        let mut diagnoses = dkim_diag;
        diagnoses.append(&mut id_diag);
        diagnoses.append(&mut mf_diag);
        Examined {
            identity,
            dkim,
            mail_from,
            soa,
            diagnoses,
        }
    }

    /// Without a DKIM zone, Easy DKIM keys are published as TXT. A CNAME at
    /// a token's name (most often to SES's own zone) is the mistake to name.
    async fn explain_cnames(&self, diagnoses: &mut [Diagnosis]) {
        for d in diagnoses.iter_mut() {
            if let Answer::Records(targets) = self.ask(&d.record, RecordType::Cname).await {
                d.kind = DiagnosisKind::NoDkimZone;
                d.message = format!(
                    "{} is a CNAME to {}, but this Sesame serves no DKIM zone (dkim.cname_zone is not set): replace it with the TXT record `sesame identities records` prints.",
                    d.record,
                    targets.join(", ")
                );
            }
        }
    }

    /// The SOA of the zone holding `domain`: the domain's own, or its
    /// nearest parent's.
    async fn soa(&self, domain: &str) -> Option<SoaRecord> {
        let mut name = domain;
        for _ in 0..4 {
            match self.ask(name, RecordType::Soa).await {
                Answer::Records(rs) => return rs.iter().find_map(|r| SoaRecord::parse(r)),
                Answer::Error(_) => return None,
                Answer::NoData | Answer::NxDomain => {}
            }
            match name.split_once('.') {
                Some((_, parent)) if parent.contains('.') => name = parent,
                _ => return None,
            }
        }
        None
    }
}

/// Applies what DNS said to `i`, moving its statuses; whether one moved.
fn apply(i: &mut Identity, ex: Examined, now: Millis) -> bool {
    let before = (i.verification_status, i.dkim.status, i.mail_from.status);
    let created = i.created_at;
    let is_domain = i.kind() == IdentityKind::Domain;
    if is_domain {
        i.verification_status =
            i.dns
                .identity
                .step(i.verification_status, ex.identity, now, created);
    }
    if is_domain && i.dkim.is_set_up() {
        i.dkim.status = i.dns.dkim.step(i.dkim.status, ex.dkim, now, created);
        // "The domain's verification status also changes to Success when it
        // is DKIM verified", even after it had failed.
        if ex.dkim == Finding::Found && i.verification_status == VerificationStatus::Failed {
            i.verification_status = VerificationStatus::Success;
            i.dns.identity.last_success_at = Some(now);
            i.dns.identity.lost_at = None;
        }
    }
    if let Some(s) = i.mail_from.status {
        i.mail_from.status = Some(i.dns.mail_from.step(s, ex.mail_from, now, created));
    }
    i.dns.last_checked_at = Some(now);
    i.dns.error = if !is_domain || i.verification_status == VerificationStatus::Success {
        None
    } else {
        ex.identity.error()
    };
    if ex.soa.is_some() {
        i.dns.soa = ex.soa;
    }
    i.dns.diagnoses = ex.diagnoses;
    let changed = before != (i.verification_status, i.dkim.status, i.mail_from.status);
    if changed {
        tracing::info!(
            identity = %i.name,
            verification = i.verification_status.as_str(),
            dkim = i.dkim.status.as_str(),
            mail_from = i.mail_from.status.map(|s| s.as_str()),
            "verification status changed"
        );
    }
    changed
}

#[cfg(test)]
mod tests;
