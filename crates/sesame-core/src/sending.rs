//! Sending under SES's rules. Every send goes through [`SendService::send`]:
//! validation, the account's state, the identity checks (senders always;
//! recipients too in the sandbox), then the quotas, which the store checks
//! and applies atomically with storing the message. A refusal is recorded
//! with the rule and identities behind it.

use crate::compose::{self, Attachment, Compose};
use crate::templates;
use crate::{AccountService, Clock, internal};
use sesame_model::address::SIMULATOR_DOMAIN;
use sesame_model::suppression::{DEFAULT_REASONS, Reason};
use sesame_model::{
    Acceptance, Error, ErrorKind, Event, EventDetail, EventKind, Identity, MailInfo, Mailbox,
    MessageMeta, NewMessage, QuotaCheck, Rejection, Scope, TemplateParts,
};
use sesame_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// SES's limit of recipients (To, Cc and Bcc together) per message.
pub const MAX_RECIPIENTS: usize = 50;

/// What the message consists of.
#[derive(Debug, Clone)]
pub enum Content {
    Simple {
        subject: String,
        text: Option<String>,
        html: Option<String>,
        headers: Vec<(String, String)>,
        attachments: Vec<Attachment>,
    },
    /// A complete MIME message as the caller built it.
    Raw(Vec<u8>),
    /// A stored or inline template with its data (a JSON object as text).
    Template {
        template: TemplateRef,
        data: String,
        headers: Vec<(String, String)>,
        attachments: Vec<Attachment>,
    },
}

/// Which template a templated send uses.
#[derive(Debug, Clone)]
pub enum TemplateRef {
    Named(String),
    Inline(TemplateParts),
}

/// One destination of a bulk send.
#[derive(Debug, Clone, Default)]
pub struct BulkDestination {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// JSON object merged over the default data.
    pub replacement_data: Option<String>,
    pub replacement_tags: Vec<(String, String)>,
}

/// SES's limit of destinations per bulk call.
pub const MAX_BULK_DESTINATIONS: usize = 50;

/// One send request, with addresses exactly as the caller wrote them.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub operation: &'static str,
    /// v1 `Source` / v2 `FromEmailAddress`; for raw mail it may be absent.
    pub source: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// v1 SendRawEmail `Destinations` / v2 Raw `Destination`: the envelope.
    pub destinations: Vec<String>,
    pub reply_to: Vec<String>,
    pub return_path: Option<String>,
    pub tags: Vec<(String, String)>,
    pub configuration_set: Option<String>,
    pub content: Content,
    /// Set for mail Sesame sends itself; `None` for a caller's.
    pub system: Option<SystemMail>,
    /// The address the request came from (SES's `ses:source-ip` tag).
    pub source_ip: Option<String>,
    /// The API request it came in (`x-amzn-RequestId`), recorded with a
    /// refusal so that `sesame explain` finds it.
    pub request_id: Option<String>,
    /// The MessageId, when Sesame's own mail must have one that repeats
    /// (forwarded feedback: a repeated event forwards nothing twice).
    pub message_id: Option<String>,
}

/// Mail Sesame sends itself: verification emails. Its From is Sesame's own
/// address (for custom verification, one checked when the template was
/// made), so no identity is checked, and the sandbox does not apply to its
/// one recipient. Otherwise it goes the way of all mail: composed,
/// accepted under the quota rules, queued, signed and delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemMail {
    /// Custom verification emails count against the account's quotas;
    /// SES's own verification emails do not.
    pub counts_against_quota: bool,
}

impl Outgoing {
    pub fn new(operation: &'static str, content: Content) -> Self {
        Self {
            operation,
            source: None,
            to: vec![],
            cc: vec![],
            bcc: vec![],
            destinations: vec![],
            reply_to: vec![],
            return_path: None,
            tags: vec![],
            configuration_set: None,
            content,
            system: None,
            source_ip: None,
            request_id: None,
            message_id: None,
        }
    }
}

pub struct SendService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    accounts: Arc<AccountService>,
    /// Where tracked links and pixels point by default (Sesame's public
    /// URL); `None` turns tracking off.
    tracking_base: Option<String>,
    /// Taken once, from the recorder installed when the service is made.
    accepted_total: metrics::Counter,
}

fn parse_all(list: &[String]) -> Result<Vec<Mailbox>, Error> {
    list.iter().map(|s| Mailbox::parse(s)).collect()
}

/// SES's message-tag rules, in SES's order and words.
pub fn validate_tags(tags: &[(String, String)]) -> Result<(), Error> {
    for (name, value) in tags {
        if name.is_empty() {
            return Err(Error::invalid("The tag name must be specified."));
        }
        if name.chars().count() > 255 {
            return Err(Error::invalid("Tag name cannot exceed 255 characters."));
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let body = name.strip_prefix("ses:").unwrap_or(name);
        if !body.chars().all(name_ok) {
            return Err(Error::invalid(format!(
                "Invalid tag name <{name}>: only alphanumeric ASCII characters, '_',  '-' are allowed."
            )));
        }
        if value.is_empty() {
            return Err(Error::invalid("The tag value must be specified."));
        }
        if value.chars().count() > 255 {
            return Err(Error::invalid("Tag value cannot exceed 255 characters."));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c))
        {
            return Err(Error::invalid(format!(
                "Invalid tag value <{value}>: only alphanumeric ASCII characters, '_',  '-' , '.', '@' are allowed."
            )));
        }
    }
    Ok(())
}

/// A MessageId in SES's shape: 16 hex digits (the time in milliseconds), a
/// UUID, `-000000`. MessageIds are identifiers, not secrets, so the UUID
/// comes from a fast thread-local generator rather than a system call.
pub fn message_id(now: sesame_model::Millis) -> String {
    format!("{:016x}-{}-000000", now, uuid::Uuid::new_v4())
}

/// The MessageId of the mail forwarding an event's feedback: in SES's
/// shape, and the same for the same event.
fn feedback_message_id(e: &Event) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [e.message_id.as_str(), e.kind.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(e.at.to_be_bytes());
    for r in &e.recipients {
        h.update(r.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("{:016x}-{}-000000", e.at, uuid::Uuid::from_bytes(bytes))
}

/// The verified identities among those that could cover `mailboxes`, by
/// name: the addresses themselves, and their domains and parent domains.
pub(crate) async fn verified_among(
    store: &dyn Store,
    scope: &Scope,
    mailboxes: &[&Mailbox],
) -> Result<HashMap<String, Arc<Identity>>, Error> {
    let mut names: Vec<String> = mailboxes
        .iter()
        .flat_map(|m| m.covering_identities())
        .collect();
    names.sort();
    names.dedup();
    let found = store
        .get_identities(scope, &names)
        .await
        .map_err(internal)?;
    Ok(found
        .into_iter()
        .filter(|i| i.is_verified())
        .map(|i| (i.name.to_string(), i))
        .collect())
}

impl SendService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        accounts: Arc<AccountService>,
    ) -> Self {
        Self {
            store,
            clock,
            accounts,
            tracking_base: None,
            accepted_total: metrics::counter!("sesame_accepted_total"),
        }
    }

    /// Turns on open and click tracking, pointing at `public_url` unless a
    /// configuration set names its own redirect domain.
    pub fn with_tracking(mut self, public_url: &str) -> Self {
        self.tracking_base = Some(public_url.to_owned());
        self
    }

    /// The configuration set a send names: it must exist, and sending
    /// through it must be enabled.
    async fn configuration_set(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<sesame_model::ConfigurationSet, Error> {
        let set = self
            .store
            .get_configuration_set(scope, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| sesame_model::configuration_set::does_not_exist(name))?;
        if !set.sending_enabled {
            return Err(sesame_model::configuration_set::sending_paused(name));
        }
        Ok(set)
    }

    /// Whether a send may go through configuration set `cs`; a refusal is
    /// recorded with its rule.
    async fn send_through(
        &self,
        scope: &Scope,
        op: (&str, Option<&str>),
        cs: &str,
    ) -> Result<sesame_model::ConfigurationSet, Error> {
        match self.configuration_set(scope, cs).await {
            Ok(set) => Ok(set),
            Err(e) => {
                let rule = match e.kind {
                    ErrorKind::ConfigurationSetSendingPaused => "configuration-set-sending-paused",
                    ErrorKind::ConfigurationSetDoesNotExist => "configuration-set-does-not-exist",
                    _ => return Err(e),
                };
                Err(self.reject(scope, op, rule, e, vec![cs.to_owned()]).await)
            }
        }
    }

    async fn reject(
        &self,
        scope: &Scope,
        op: (&str, Option<&str>),
        rule: &str,
        err: Error,
        identities: Vec<String>,
    ) -> Error {
        self.reject_senders(scope, op, rule, err, identities, vec![])
            .await
    }

    /// [`Self::reject`], naming the senders refused as senders.
    async fn reject_senders(
        &self,
        scope: &Scope,
        (op, request_id): (&str, Option<&str>),
        rule: &str,
        err: Error,
        identities: Vec<String>,
        senders: Vec<String>,
    ) -> Error {
        let r = Rejection {
            created_at: self.clock.now_ms(),
            request_id: request_id.map(str::to_owned),
            operation: op.to_owned(),
            rule: rule.to_owned(),
            message: err.message.clone(),
            identities,
            senders,
        };
        tracing::info!(account = %scope.account, region = %scope.region, rule, message = %err.message, "send refused");
        if let Err(e) = self.store.record_rejection(scope, &r).await {
            tracing::error!(error = %e, "could not record a rejection");
        }
        err
    }

    /// The parts of a template reference; a named one must exist.
    async fn template_parts(&self, scope: &Scope, t: &TemplateRef) -> Result<TemplateParts, Error> {
        match t {
            TemplateRef::Inline(p) => {
                p.validate()?;
                Ok(p.clone())
            }
            TemplateRef::Named(name) => self
                .store
                .get_template(scope, name)
                .await
                .map_err(internal)?
                .map(|t| t.parts)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::TemplateDoesNotExist,
                        format!("Template {name} does not exist."),
                    )
                }),
        }
    }

    /// Sends to up to 50 destinations with one template, each with its own
    /// data merged over the default. Errors that concern the whole call
    /// (template, account, configuration set) fail it; the rest are
    /// reported per destination, in order.
    pub async fn send_bulk(
        &self,
        scope: &Scope,
        common: Outgoing,
        destinations: Vec<BulkDestination>,
    ) -> Result<Vec<Result<String, Error>>, Error> {
        let Content::Template {
            template,
            data,
            headers,
            attachments,
        } = &common.content
        else {
            return Err(Error::invalid("A bulk send needs template content."));
        };
        if destinations.is_empty() {
            return Err(Error::missing("Destinations"));
        }
        if destinations.len() > MAX_BULK_DESTINATIONS {
            return Err(Error::invalid(format!(
                "Too many destinations: at most {MAX_BULK_DESTINATIONS} per call."
            )));
        }
        let parts = self.template_parts(scope, template).await?;
        let defaults = templates::parse_data(data)?;
        let account = self.accounts.get(scope).await?;
        if !account.sending_enabled {
            return Err(Error::new(
                ErrorKind::SendingPaused,
                "Sending is paused for this account.",
            ));
        }
        if let Some(cs) = &common.configuration_set {
            self.configuration_set(scope, cs).await?;
        }
        let mut results = Vec::with_capacity(destinations.len());
        for d in destinations {
            let merged = match d
                .replacement_data
                .as_deref()
                .filter(|s| !s.trim().is_empty())
            {
                None => Ok(defaults.clone()),
                Some(r) => templates::parse_data(r).map(|r| templates::merge_data(&defaults, &r)),
            };
            let merged = match merged {
                Ok(m) => m,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let mut one = common.clone();
            one.content = Content::Template {
                template: TemplateRef::Inline(parts.clone()),
                data: merged.to_string(),
                headers: headers.clone(),
                attachments: attachments.clone(),
            };
            (one.to, one.cc, one.bcc) = (d.to, d.cc, d.bcc);
            for (k, v) in d.replacement_tags {
                match one.tags.iter_mut().find(|(n, _)| *n == k) {
                    Some(t) => t.1 = v,
                    None => one.tags.push((k, v)),
                }
            }
            results.push(self.send(scope, one).await);
        }
        Ok(results)
    }

    /// Sends one message; returns its MessageId.
    pub async fn send(&self, scope: &Scope, out: Outgoing) -> Result<String, Error> {
        let request_id = out.request_id.clone();
        let op = (out.operation, request_id.as_deref());
        validate_tags(&out.tags)?;
        let now = self.clock.now_ms();
        let id = out.message_id.clone().unwrap_or_else(|| message_id(now));
        let template_name = match &out.content {
            Content::Template {
                template: TemplateRef::Named(n),
                ..
            } => Some(n.clone()),
            Content::Template { .. } => Some(String::new()),
            _ => None,
        };
        let template = match &out.content {
            Content::Template { template, data, .. } => {
                let parts = self.template_parts(scope, template).await?;
                Some((parts, templates::parse_data(data)?))
            }
            _ => None,
        };

        // Addresses: the sending identities and the recipients, as sent.
        let (senders, recipients, raw_headers) = match &out.content {
            Content::Raw(raw) => {
                let h = compose::read_raw_off_runtime(raw).await?;
                let source = match &out.source {
                    Some(s) => s.clone(),
                    None => h
                        .from
                        .first()
                        .cloned()
                        .ok_or_else(|| Error::invalid("Missing required header 'From'."))?,
                };
                let mut senders = vec![source];
                senders.extend(h.from.iter().cloned());
                senders.extend(h.sender.iter().cloned());
                senders.extend(h.return_path.iter().cloned());
                let recipients = if out.destinations.is_empty() {
                    h.recipients.clone()
                } else {
                    out.destinations.clone()
                };
                (senders, recipients, Some(h))
            }
            Content::Simple { .. } | Content::Template { .. } => {
                let source = out.source.clone().ok_or_else(|| Error::missing("Source"))?;
                let mut recipients = out.to.clone();
                recipients.extend(out.cc.iter().cloned());
                recipients.extend(out.bcc.iter().cloned());
                (vec![source], recipients, None)
            }
        };
        let mut senders_all = senders.clone();
        senders_all.extend(out.return_path.iter().cloned());
        let sender_boxes = parse_all(&senders_all)?;
        let recipient_boxes = parse_all(&recipients)?;
        let reply_to = parse_all(&out.reply_to)?;
        if recipient_boxes.is_empty() {
            return Err(Error::invalid("Missing required header 'To'."));
        }
        if recipient_boxes.len() > MAX_RECIPIENTS {
            return Err(Error::invalid("Recipient count exceeds 50."));
        }

        let account = self.accounts.get(scope).await?;
        let system = out.system;
        if system.is_none() && !account.sending_enabled {
            let e = Error::new(
                ErrorKind::SendingPaused,
                "Sending is paused for this account.",
            );
            return Err(self
                .reject(scope, op, "account-sending-paused", e, vec![])
                .await);
        }
        let mut through = match &out.configuration_set {
            Some(cs) => Some(self.send_through(scope, op, cs).await?),
            None => None,
        };

        // Identity checks: senders always, recipients in the sandbox; none
        // for Sesame's own mail.
        let sandbox = !account.production_access && system.is_none();
        let mut to_check: Vec<&Mailbox> = if system.is_some() {
            vec![]
        } else {
            sender_boxes.iter().collect()
        };
        if sandbox {
            to_check.extend(recipient_boxes.iter().filter(|m| !m.is_simulator()));
        }
        let verified_identities = verified_among(&*self.store, scope, &to_check).await?;
        let verified: HashSet<String> = verified_identities.keys().cloned().collect();
        let mut failed: Vec<String> = vec![];
        let mut rule = "sender-not-verified";
        for m in sender_boxes.iter().filter(|_| system.is_none()) {
            if !m.is_covered_by(&verified) && !failed.contains(&m.raw) {
                failed.push(m.raw.clone());
            }
        }
        let senders_failed = failed.len();
        if sandbox {
            let before = failed.len();
            for m in recipient_boxes.iter().filter(|m| !m.is_simulator()) {
                if !m.is_covered_by(&verified) && !failed.contains(&m.raw) {
                    failed.push(m.raw.clone());
                }
            }
            if before == 0 && failed.len() > before {
                rule = "sandbox-recipient-not-verified";
            }
        }
        if !failed.is_empty() {
            let e = Error::new(
                ErrorKind::MessageRejected,
                format!(
                    "Email address is not verified. The following identities failed the check in region {}: {}",
                    scope.region.upper(),
                    failed.join(", ")
                ),
            );
            let senders = failed[..senders_failed].to_vec();
            return Err(self
                .reject_senders(scope, op, rule, e, failed, senders)
                .await);
        }

        // The sender's settings come from its most specific verified
        // identity: a custom MAIL FROM that is not verified refuses the
        // send when its behaviour on MX failure says so.
        let covering = sender_boxes[0].covering_identities();
        let settings = sesame_model::identity::most_specific_verified(
            covering.iter().filter_map(|n| verified_identities.get(n)),
        );
        // A send that names no configuration set goes through its sender's
        // default one, the most specific verified identity's, as in SES.
        if through.is_none()
            && let Some(cs) = settings.and_then(|i| i.configuration_set.as_deref())
        {
            through = Some(self.send_through(scope, op, cs).await?);
        }
        // The suppression list, by the reasons in force for this send (its
        // configuration set's, else the account's): suppressed recipients
        // are accepted and bounce without a delivery attempt.
        let suppress_for: Vec<Reason> = through
            .as_ref()
            .and_then(|c| c.suppressed_reasons.clone())
            .or_else(|| account.suppressed_reasons.clone())
            .unwrap_or_else(|| DEFAULT_REASONS.to_vec());
        let suppressed = match system {
            Some(_) => vec![],
            None => {
                let addresses: Vec<String> = recipient_boxes
                    .iter()
                    .filter(|m| !m.is_simulator())
                    .map(|m| m.address.clone())
                    .collect();
                self.store
                    .suppressed_among(scope, &addresses, &suppress_for)
                    .await
                    .map_err(internal)?
            }
        };
        let mail = |subject: Option<String>, raw_to: &[String]| MailInfo {
            source: sender_boxes[0].address.clone(),
            destinations: recipient_boxes.iter().map(|m| m.address.clone()).collect(),
            subject,
            sent_at: now,
            operation: op.0.to_owned(),
            headers: None,
            meta: MessageMeta {
                configuration_set: through.as_ref().map(|c| c.name.clone()),
                tags: out
                    .tags
                    .iter()
                    .map(|(k, v)| sesame_model::Tag {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                from: vec![sender_boxes[0].raw.clone()],
                to: raw_to.to_vec(),
                suppressed: suppressed.clone(),
                suppress_for: Some(suppress_for.clone()),
                require_tls: through.as_ref().is_some_and(|c| c.tls_required),
                max_delivery_ms: through
                    .as_ref()
                    .and_then(|c| c.max_delivery_seconds)
                    .map(|s| i64::from(s) * 1000),
                tracked: None,
                source_ip: out.source_ip.clone(),
            },
        };
        // Events about the message go where its configuration set sends them.
        let event = |mail: MailInfo, kind: EventKind, detail: EventDetail| Event {
            kind,
            scope: scope.clone(),
            message_id: id.clone(),
            at: now,
            recipients: mail.destinations.clone(),
            mail,
            detail,
        };
        if let Some(i) = settings.filter(|i| i.mail_from.rejects_sending()) {
            let d = i.mail_from.domain.clone().unwrap_or_default();
            let e = Error::new(
                ErrorKind::MailFromDomainNotVerified,
                format!(
                    "Could not read the MX record required to use the MAIL FROM domain {d} of identity {}.",
                    i.name
                ),
            );
            return Err(self
                .reject_senders(
                    scope,
                    op,
                    "mail-from-domain-not-verified",
                    e,
                    vec![d],
                    vec![i.name.to_string()],
                )
                .await);
        }

        // A template renders now; SES accepts a send whose data does not
        // fit and reports the failure afterwards, so the caller still gets
        // a MessageId and the failure is recorded.
        let content = match (out.content, template) {
            (
                Content::Template {
                    headers,
                    attachments,
                    ..
                },
                Some((parts, data)),
            ) => match templates::render_off_runtime(parts, data).await {
                Ok(r) => Content::Simple {
                    subject: r.subject,
                    text: r.text,
                    html: r.html,
                    headers,
                    attachments,
                },
                Err(e) => {
                    let mut e = e;
                    if through.is_some() {
                        let failure = event(
                            mail(None, &out.to),
                            EventKind::RenderingFailure,
                            EventDetail::RenderingFailure {
                                template_name: template_name.clone().unwrap_or_default(),
                                error_message: e.message.clone(),
                            },
                        );
                        self.store
                            .finish_deliveries(vec![], vec![failure])
                            .await
                            .map_err(internal)?;
                    }
                    e.message = format!("Rendering failure: {}", e.message);
                    let _ = self
                        .reject(scope, op, "rendering-failure", e, vec![id.clone()])
                        .await;
                    return Ok(id);
                }
            },
            (c, _) => c,
        };

        // Tracking, when the set's destinations publish opens or clicks.
        let tracking = match (&through, &self.tracking_base) {
            (Some(set), Some(base)) if system.is_none() => {
                let (opens, clicks) = set.tracking();
                let base = match &set.redirect_domain {
                    Some(d) if set.redirect_https => format!("https://{d}"),
                    Some(d) => format!("http://{d}"),
                    None => base.clone(),
                };
                (opens || clicks).then(|| {
                    (
                        crate::tracking::TrackingUrls { base },
                        sesame_model::Tracked {
                            opens,
                            clicks,
                            links: vec![],
                        },
                    )
                })
            }
            _ => None,
        };
        let mut tracked = None;

        // The message as a receiver gets it.
        let from = &sender_boxes[0];
        let mut raw_to: Option<Vec<String>> = None;
        let message_id_header = format!("{id}@{}", from.domain());
        let (raw, subject) = match content {
            Content::Simple {
                subject,
                text,
                html,
                headers,
                attachments,
            } => {
                // Open and click tracking rewrite the HTML before it is
                // composed, so before anything signs it.
                let html = match (html, &tracking) {
                    (Some(h), Some((urls, t))) => {
                        let (h, links) =
                            crate::tracking::instrument(&h, urls, &id, t.opens, t.clicks);
                        tracked = Some(sesame_model::Tracked { links, ..t.clone() });
                        Some(h)
                    }
                    (h, _) => h,
                };
                let to = parse_all(&out.to)?;
                let cc = parse_all(&out.cc)?;
                let raw = compose::build(&Compose {
                    from,
                    to: &to,
                    cc: &cc,
                    reply_to: &reply_to,
                    subject: &subject,
                    text: text.as_deref(),
                    html: html.as_deref(),
                    headers: &headers,
                    attachments: &attachments,
                    message_id: &message_id_header,
                    date: now,
                })?;
                (raw, Some(subject))
            }
            Content::Raw(mut raw) => {
                // Tracking rewrites the raw message's HTML parts, before
                // anything signs it.
                if let Some((urls, t)) = &tracking
                    && let Some((rewritten, links)) =
                        crate::tracking::instrument_raw(&raw, urls, &id, t.opens, t.clicks)
                {
                    raw = rewritten;
                    tracked = Some(sesame_model::Tracked { links, ..t.clone() });
                }
                let h = raw_headers.unwrap_or_default();
                raw_to = Some(h.to.clone());
                let mut prefix = String::new();
                if !h.has_message_id {
                    prefix.push_str(&format!("Message-ID: <{message_id_header}>\r\n"));
                }
                if !h.has_date {
                    prefix.push_str(&format!("Date: {}\r\n", compose::rfc2822(now)));
                }
                let mut full = prefix.into_bytes();
                full.extend_from_slice(&compose::strip_bcc(&raw));
                (full, h.subject)
            }
            Content::Template { .. } => {
                return Err(Error::internal("a template reached composition unrendered"));
            }
        };

        let envelope_from = out
            .return_path
            .as_deref()
            .and_then(|r| Mailbox::parse(r).ok())
            .map(|m| m.address)
            .unwrap_or_else(|| from.address.clone());
        let simulator = recipient_boxes.iter().filter(|m| m.is_simulator()).count() as u32;
        let total = recipient_boxes.len() as u32;
        let raw_to = match &raw_to {
            Some(h) => h.clone(),
            None => out.to.clone(),
        };
        let mut info = mail(subject.clone(), &raw_to);
        info.meta.tracked = tracked;
        let events = match through.is_some() {
            true => vec![event(info.clone(), EventKind::Send, EventDetail::Send)],
            false => vec![],
        };
        let message = NewMessage {
            id: id.clone(),
            operation: op.0.to_owned(),
            source: envelope_from,
            destinations: info.destinations,
            subject,
            created_at: now,
            raw,
            meta: info.meta,
            events,
        };
        let quota = match system {
            Some(SystemMail {
                counts_against_quota: false,
            }) => QuotaCheck {
                now,
                max_24h: -1.0,
                max_rate: f64::MAX,
                daily_recipients: 0,
                rate_recipients: 0,
            },
            _ => QuotaCheck {
                now,
                max_24h: account.max_24h_send,
                max_rate: account.max_send_rate,
                daily_recipients: total - simulator,
                rate_recipients: total,
            },
        };
        match self
            .store
            .accept_message(scope, &message, &quota)
            .await
            .map_err(internal)?
        {
            Acceptance::Accepted => {
                self.accepted_total.increment(1);
                Ok(id)
            }
            refused => {
                let rule = match refused {
                    Acceptance::DailyQuotaExceeded => "daily-quota-exceeded",
                    _ => "maximum-send-rate-exceeded",
                };
                let e = quota_refusal(refused)
                    .unwrap_or_else(|| Error::internal("a refused acceptance"));
                Err(self.reject(scope, op, rule, e, vec![]).await)
            }
        }
    }
}

/// How long after a message arrives SendBounce may bounce it.
pub const BOUNCE_WINDOW_MS: sesame_model::Millis = 24 * 3600 * 1000;

/// A SendBounce request: which message, from whom, and each bounced
/// recipient's DSN fields (from its bounce reason or given in full).
#[derive(Debug, Clone)]
pub struct BounceRequest {
    pub original_message_id: String,
    /// The bounce's From address: an identity verified for sending.
    pub sender: String,
    pub explanation: Option<String>,
    pub reporting_mta: Option<String>,
    pub arrival: Option<sesame_model::Millis>,
    pub extensions: Vec<(String, String)>,
    pub recipients: Vec<compose::DsnRecipient>,
}

impl SendService {
    /// SendBounce: an RFC 3464 delivery status notification about a
    /// message this account and region received, from `sender` to that
    /// message's sender, within 24 hours of its arrival. It is sent as
    /// any raw message is (`send`): the sender must be verified, the
    /// sandbox and the quotas apply, and it is queued, signed and delivered
    /// by the engine. Until Sesame receives mail itself, the messages it
    /// holds are those it accepted for the account (in `--dev`, the local
    /// mailbox's).
    pub async fn send_bounce(&self, scope: &Scope, b: BounceRequest) -> Result<String, Error> {
        let op = ("SendBounce", None);
        let id = &b.original_message_id;
        let not_found = || {
            Error::new(
                ErrorKind::MessageRejected,
                format!("Could not find the message {id} to bounce in this account and region."),
            )
        };
        let original = self
            .store
            .get_message(id)
            .await
            .map_err(internal)?
            .filter(|m| &m.scope == scope)
            .ok_or_else(not_found)?
            .message;
        let now = self.clock.now_ms();
        if now - original.created_at > BOUNCE_WINDOW_MS {
            let e = Error::new(
                ErrorKind::MessageRejected,
                format!(
                    "The message {id} arrived more than 24 hours ago: a message can be bounced only within 24 hours of its arrival."
                ),
            );
            return Err(self
                .reject(scope, op, "bounce-too-late", e, vec![id.clone()])
                .await);
        }
        let from = Mailbox::parse(&b.sender)?;
        let to = Mailbox::parse(&original.source)?;
        let reporting_mta = b.reporting_mta.unwrap_or_else(|| from.domain());
        let raw = compose::dsn(&compose::Dsn {
            from: &from,
            to: &to,
            explanation: b.explanation.as_deref(),
            reporting_mta: &reporting_mta,
            arrival: b.arrival.unwrap_or(original.created_at),
            extensions: &b.extensions,
            recipients: &b.recipients,
            original: &original.raw,
            date: now,
        })?;
        let mut out = Outgoing::new(op.0, Content::Raw(raw));
        out.source = Some(b.sender);
        out.destinations = vec![original.source];
        self.send(scope, out).await
    }
}

/// The operations whose bounces and complaints are forwarded by email
/// (a caller's sends; never Sesame's own mail, nor a forwarded one).
pub const FORWARDED_OPERATIONS: &[&str] = &[
    "SendEmail",
    "SendRawEmail",
    "SendSmtpEmail",
    "SendTemplatedEmail",
    "SendBulkTemplatedEmail",
    "SendBulkEmail",
];

impl SendService {
    /// Feedback forwarding, as SES does it when an identity has forwarding
    /// on and no topic for the kind: a bounce goes back to the message's
    /// return path as an RFC 3464 DSN from `from`, a complaint as a notice.
    /// System mail: outside the identity checks, the sandbox and the quotas.
    pub async fn forward_feedback(&self, e: &Event, from: &str) -> Result<(), Error> {
        // The forwarded message's id comes from the event, so that an event
        // published again (after a crash) finds it sent and sends nothing.
        let forwarded_id = feedback_message_id(e);
        if self
            .store
            .get_message(&forwarded_id)
            .await
            .map_err(internal)?
            .is_some()
        {
            return Ok(());
        }
        let Some(original) = self
            .store
            .get_message(&e.message_id)
            .await
            .map_err(internal)?
        else {
            return Ok(());
        };
        let from_box = Mailbox::parse(from)?;
        let to = Mailbox::parse(&e.mail.source)?;
        let content = match &e.detail {
            EventDetail::Bounce {
                bounced,
                reporting_mta,
                ..
            } => {
                let recipients: Vec<compose::DsnRecipient> = bounced
                    .iter()
                    .map(|b| compose::DsnRecipient {
                        final_recipient: b.address.clone(),
                        action: "failed".into(),
                        status: b.status.clone(),
                        remote_mta: None,
                        diagnostic_code: Some(b.diagnostic_code.clone()),
                        last_attempt: Some(e.at),
                        extensions: vec![],
                    })
                    .collect();
                let reporting = reporting_mta
                    .strip_prefix("dsn; ")
                    .unwrap_or(reporting_mta)
                    .to_owned();
                Content::Raw(compose::dsn(&compose::Dsn {
                    from: &from_box,
                    to: &to,
                    explanation: None,
                    reporting_mta: &reporting,
                    arrival: original.message.created_at,
                    extensions: &[],
                    recipients: &recipients,
                    original: &original.message.raw,
                    date: e.at,
                })?)
            }
            EventDetail::Complaint {
                feedback_type,
                user_agent,
                ..
            } => Content::Raw(compose::arf(&compose::Arf {
                from: &from_box,
                to: &to,
                feedback_type,
                user_agent,
                mail_from: &original.message.source,
                recipients: &e.recipients,
                arrival: original.message.created_at,
                original: &original.message.raw,
                date: e.at,
            })?),
            _ => return Ok(()),
        };
        let mut out = Outgoing::new("FeedbackForwarding", content);
        out.message_id = Some(forwarded_id);
        out.source = Some(from.to_owned());
        out.to = vec![e.mail.source.clone()];
        out.destinations = vec![e.mail.source.clone()];
        out.system = Some(SystemMail {
            counts_against_quota: false,
        });
        self.send(&e.scope, out).await.map(drop)
    }

    /// GetMessageInsights: the events recorded for a message of this scope,
    /// oldest first.
    pub async fn message_events(
        &self,
        scope: &Scope,
        message_id: &str,
    ) -> Result<Vec<Event>, Error> {
        let mut events = self
            .store
            .list_events(&sesame_model::EventFilter {
                scope: Some(scope.clone()),
                message_id: Some(message_id.to_owned()),
                kind: None,
                limit: 1000,
            })
            .await
            .map_err(internal)?;
        if events.is_empty() {
            return Err(Error::not_found(format!(
                "No events were found for the message {message_id}."
            )));
        }
        events.reverse();
        Ok(events)
    }
}

/// SES's error for a message the quotas refused; `None` when accepted.
pub fn quota_refusal(a: Acceptance) -> Option<Error> {
    match a {
        Acceptance::Accepted => None,
        Acceptance::DailyQuotaExceeded => Some(Error::new(
            ErrorKind::DailyQuotaExceeded,
            "Daily message quota exceeded",
        )),
        Acceptance::RateExceeded => Some(Error::new(
            ErrorKind::RateExceeded,
            "Maximum sending rate exceeded",
        )),
    }
}

/// Whether an address is at the mailbox simulator (for callers that only have a string).
pub fn is_simulator_address(s: &str) -> bool {
    s.rsplit_once('@')
        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(SIMULATOR_DOMAIN))
}

#[cfg(test)]
mod tests;
