//! The compliance audit (`sesame audit`, and the `sesame_audit_findings`
//! gauges): every identity should be verified and its verification
//! monitored. It finds identities that are not verified (with the
//! verifier's diagnosis), senders refused in the last 24 hours, verified
//! domains without DKIM, custom MAIL FROM domains not verified, and, in
//! accounts with production access, identities whose bounces or complaints
//! reach nobody.

use crate::{Clock, internal};
use sesame_model::audit::{Finding, FindingKind};
use sesame_model::identity::{IdentityKind, VerificationStatus};
use sesame_model::{Account, AccountId, Error, EventKind, Identity, Millis, Region, Scope};
use sesame_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Which scopes to audit; `None` is every one.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account: Option<AccountId>,
    pub region: Option<Region>,
}

impl AuditFilter {
    fn admits(&self, s: &Scope) -> bool {
        self.account.as_ref().is_none_or(|a| *a == s.account)
            && self.region.as_ref().is_none_or(|r| *r == s.region)
    }
}

const DAY_MS: Millis = 24 * 3600 * 1000;
/// Identities read a page at a time.
const PAGE: u32 = 500;
/// The rejections read per scope (newest first) for the last 24 hours.
const REJECTIONS: u32 = 1000;

pub struct AuditService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    production_by_default: bool,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, production_by_default: bool) -> Self {
        Self {
            store,
            clock,
            production_by_default,
        }
    }

    /// Every finding in the scopes `filter` admits (those with identities,
    /// and the one it names exactly), in scope and kind order.
    pub async fn run(&self, filter: &AuditFilter) -> Result<Vec<Finding>, Error> {
        let now = self.clock.now_ms();
        let mut by_scope = identities_by_scope(&*self.store, filter).await?;
        if let (Some(a), Some(r)) = (&filter.account, &filter.region) {
            let s = Scope::new(a.clone(), r.clone());
            by_scope.entry(key(&s)).or_insert_with(|| (s, vec![]));
        }
        let mut out = vec![];
        for (scope, identities) in by_scope.into_values() {
            for i in &identities {
                out.extend(identity_findings(&scope, i, now));
            }
            out.extend(self.refused(&scope, now).await?);
            let account = self
                .store
                .get_account(&scope)
                .await
                .map_err(internal)?
                .unwrap_or_else(|| Account::new(self.production_by_default));
            if account.production_access {
                for i in identities
                    .iter()
                    .filter(|i| i.verification_status == VerificationStatus::Success)
                {
                    out.extend(self.feedback(&scope, i).await?);
                }
            }
        }
        out.sort_by_key(|f| (key(&f.scope), f.kind));
        Ok(out)
    }

    /// Senders refused in the last 24 hours, once each.
    async fn refused(&self, scope: &Scope, now: Millis) -> Result<Vec<Finding>, Error> {
        let rejections = self
            .store
            .list_rejections(scope, REJECTIONS)
            .await
            .map_err(internal)?;
        let mut seen = BTreeSet::new();
        let mut out = vec![];
        for r in rejections.iter().filter(|r| r.created_at >= now - DAY_MS) {
            for who in &r.senders {
                if seen.insert(who.clone()) {
                    out.push(Finding {
                        kind: FindingKind::RefusedSender,
                        scope: scope.clone(),
                        subject: who.clone(),
                        detail: format!("{} refused ({}): {}", r.operation, r.rule, r.message),
                        age_ms: None,
                        diagnosis: vec![],
                    });
                }
            }
        }
        Ok(out)
    }

    /// Bounces and complaints with nowhere to go: forwarding is off, and
    /// their topic is gone or has no confirmed subscription, and no
    /// destination of the identity's default configuration set publishes
    /// them.
    async fn feedback(&self, scope: &Scope, i: &Identity) -> Result<Vec<Finding>, Error> {
        if i.feedback_forwarding {
            return Ok(vec![]);
        }
        let set = match &i.configuration_set {
            Some(name) => self
                .store
                .get_configuration_set(scope, name)
                .await
                .map_err(internal)?,
            None => None,
        };
        let mut missing = vec![];
        for (kind, what) in [
            (EventKind::Bounce, "bounces"),
            (EventKind::Complaint, "complaints"),
        ] {
            if set
                .as_ref()
                .is_some_and(|s| s.event_destinations.iter().any(|d| d.publishes(kind)))
            {
                continue;
            }
            let why = match i.notifications.topic_for(kind) {
                None => "no notification topic".to_owned(),
                Some((arn, _)) => match self.listened(arn).await? {
                    true => continue,
                    false => format!("topic {arn} is gone or has no confirmed subscription"),
                },
            };
            missing.push(format!("{what} reach nobody ({why})"));
        }
        if missing.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![Finding {
            kind: FindingKind::NoFeedback,
            scope: scope.clone(),
            subject: i.name.to_string(),
            detail: format!(
                "{}; feedback forwarding is off and no configuration set publishes them",
                missing.join("; ")
            ),
            age_ms: None,
            diagnosis: vec![],
        }])
    }

    /// Whether a topic exists and has a confirmed subscription.
    async fn listened(&self, arn: &str) -> Result<bool, Error> {
        let Some((owner, _)) = self.store.get_topic(arn).await.map_err(internal)? else {
            return Ok(false);
        };
        let mut after = 0;
        loop {
            let page = self
                .store
                .list_subscriptions(&owner, Some(arn), after, PAGE)
                .await
                .map_err(internal)?;
            if page.iter().any(|(_, s)| s.confirmed) {
                return Ok(true);
            }
            match page.last() {
                Some((seq, _)) if page.len() as u32 == PAGE => after = *seq,
                _ => return Ok(false),
            }
        }
    }
}

/// Every identity of the scopes `filter` admits, by scope, a page at a
/// time.
pub async fn identities_by_scope(
    store: &dyn Store,
    filter: &AuditFilter,
) -> Result<BTreeMap<(String, String), (Scope, Vec<Identity>)>, Error> {
    let mut by_scope: BTreeMap<(String, String), (Scope, Vec<Identity>)> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store
            .list_all_identities(after, PAGE)
            .await
            .map_err(internal)?;
        let Some((last, ..)) = page.last() else {
            break;
        };
        after = *last;
        let full = page.len() as u32 == PAGE;
        for (_, scope, identity) in page.into_iter().filter(|(_, s, _)| filter.admits(s)) {
            by_scope
                .entry(key(&scope))
                .or_insert_with(|| (scope, vec![]))
                .1
                .push(identity);
        }
        if !full {
            break;
        }
    }
    Ok(by_scope)
}

fn key(s: &Scope) -> (String, String) {
    (s.account.as_str().to_owned(), s.region.as_str().to_owned())
}

/// What is wrong with one identity itself.
fn identity_findings(scope: &Scope, i: &Identity, now: Millis) -> Vec<Finding> {
    let mut out = vec![];
    let finding = |kind, detail: String| Finding {
        kind,
        scope: scope.clone(),
        subject: i.name.to_string(),
        detail,
        age_ms: None,
        diagnosis: vec![],
    };
    if i.verification_status != VerificationStatus::Success {
        let mut f = finding(
            FindingKind::Unverified,
            format!("verification status {}", i.verification_status.as_str()),
        );
        f.age_ms = Some(now - i.created_at);
        f.diagnosis = i.dns.diagnoses.iter().map(|d| d.message.clone()).collect();
        out.push(f);
        return out;
    }
    if i.name.kind() == IdentityKind::Domain
        && (i.dkim.status != VerificationStatus::Success || !i.dkim.signing_enabled)
    {
        out.push(finding(
            FindingKind::NoDkim,
            format!(
                "DKIM status {}, signing {}",
                i.dkim.status.as_str(),
                if i.dkim.signing_enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            ),
        ));
    }
    if let Some(d) = &i.mail_from.domain
        && i.mail_from.status != Some(VerificationStatus::Success)
    {
        out.push(finding(
            FindingKind::MailFromUnverified,
            format!(
                "MAIL FROM domain {d} status {}",
                i.mail_from
                    .status
                    .map(|s| s.as_str())
                    .unwrap_or("NotStarted")
            ),
        ));
    }
    out
}

/// Label sets of `sesame_audit_findings` kept at most.
const MAX_GAUGES: usize = 10_000;

impl AuditService {
    /// Keeps `sesame_audit_findings{kind, account, region}` (how many
    /// findings of each kind a scope has) current: the audit runs at start
    /// and every `every` until `stop` turns true. A scope whose findings
    /// are fixed goes back to 0.
    pub async fn watch(
        self: Arc<Self>,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut shown: BTreeSet<(FindingKind, String, String)> = BTreeSet::new();
        loop {
            if *stop.borrow() {
                return;
            }
            match self.run(&AuditFilter::default()).await {
                Ok(findings) => {
                    let mut counts: BTreeMap<(FindingKind, String, String), u64> = BTreeMap::new();
                    for f in &findings {
                        let (a, r) = key(&f.scope);
                        *counts.entry((f.kind, a, r)).or_default() += 1;
                    }
                    for k in shown.iter().filter(|k| !counts.contains_key(*k)) {
                        gauge(k).set(0.0);
                    }
                    shown.retain(|k| counts.contains_key(k));
                    for (k, n) in counts {
                        if shown.len() >= MAX_GAUGES && !shown.contains(&k) {
                            continue;
                        }
                        gauge(&k).set(n as f64);
                        shown.insert(k);
                    }
                }
                Err(e) => tracing::warn!(error = %e.message, "the audit failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

fn gauge((kind, account, region): &(FindingKind, String, String)) -> metrics::Gauge {
    metrics::gauge!(
        "sesame_audit_findings",
        "kind" => kind.as_str(),
        "account" => account.clone(),
        "region" => region.clone()
    )
}
