//! Feedback that arrives by mail: DSNs (RFC 3464) a receiver sends to a
//! message's return path after it accepted and then failed it, and abuse
//! reports (ARF, RFC 5965) a mailbox provider's feedback loop sends. Each
//! becomes the events SES would record (Bounce, DeliveryDelay, Complaint),
//! and those have the usual consequences through the events table:
//! statistics, the suppression list, notifications.
//!
//! Only mail for a return path of a message Sesame stored (its VERP local
//! part is the MessageId), or for the feedback-loop address, is taken, so
//! the listener is never a relay and sends no backscatter.

use crate::{Clock, internal};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use sesame_model::delivery::{BounceSubType, BounceType, BouncedRecipient, DelayedRecipient};
use sesame_model::{Error, Event, EventDetail, EventKind, MailInfo, Mailbox, StoredMessage};
use sesame_store::Store;
use std::sync::Arc;

/// The local part of the feedback-loop address (`complaints@<bounce domain>`).
pub const COMPLAINTS: &str = "complaints";

pub struct InboundFeedback {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The domain of the feedback-loop address.
    bounce_domain: String,
    reporting_mta: String,
}

/// What a received report recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub bounces: usize,
    pub delays: usize,
    pub complaints: usize,
}

impl InboundFeedback {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bounce_domain: &str,
        reporting_mta: &str,
    ) -> Self {
        Self {
            store,
            clock,
            bounce_domain: bounce_domain.to_ascii_lowercase(),
            reporting_mta: reporting_mta.to_owned(),
        }
    }

    /// The message a return path names, if Sesame stored it.
    async fn message_of(&self, local: &str) -> Result<Option<StoredMessage>, Error> {
        if local.len() > 200 || local.is_empty() {
            return Ok(None);
        }
        self.store.get_message(local).await.map_err(internal)
    }

    /// Whether mail to `rcpt` is taken: a return path of a stored message,
    /// or the feedback-loop address.
    pub async fn accepts(&self, rcpt: &str) -> Result<bool, Error> {
        let Ok(m) = Mailbox::parse(rcpt) else {
            return Ok(false);
        };
        let Some((local, domain)) = m.address.rsplit_once('@') else {
            return Ok(false);
        };
        if local.eq_ignore_ascii_case(COMPLAINTS)
            && domain.eq_ignore_ascii_case(&self.bounce_domain)
        {
            return Ok(true);
        }
        Ok(self.message_of(local).await?.is_some())
    }

    /// A report received for `rcpts`: its DSN fields or ARF report become
    /// events of the message it is about. A report that is neither, or
    /// about no message Sesame sent, records nothing.
    pub async fn receive(&self, rcpts: &[String], raw: &[u8]) -> Result<Received, Error> {
        let Some(msg) = MessageParser::default().parse(raw) else {
            return Ok(Received::default());
        };
        let report_type = msg
            .content_type()
            .filter(|c| {
                c.ctype().eq_ignore_ascii_case("multipart")
                    && c.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            })
            .and_then(|c| c.attribute("report-type"))
            .map(str::to_ascii_lowercase);
        let mut fields = None;
        let mut original_headers: Option<Vec<u8>> = None;
        for part in &msg.parts {
            let Some(ct) = part.content_type() else {
                continue;
            };
            let kind = format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            );
            match kind.as_str() {
                "message/delivery-status" | "message/feedback-report" => {
                    fields = Some(String::from_utf8_lossy(part.contents()).into_owned());
                }
                "text/rfc822-headers" => original_headers = Some(part.contents().to_vec()),
                "message/rfc822" => {
                    if let PartType::Message(m) = &part.body {
                        original_headers = Some(m.raw_message().to_vec());
                    }
                }
                _ => {}
            }
        }
        let Some(fields) = fields else {
            tracing::info!("inbound mail is neither a DSN nor an ARF report; nothing recorded");
            return Ok(Received::default());
        };
        // The message: through the return path it came to, else the
        // original's Message-ID (`<id@domain>`).
        let mut stored = None;
        for r in rcpts {
            if let Some((local, _)) = r.rsplit_once('@')
                && let Some(m) = self.message_of(local).await?
            {
                stored = Some(m);
                break;
            }
        }
        if stored.is_none()
            && let Some(h) = &original_headers
            && let Some(id) = MessageParser::default()
                .parse_headers(h.as_slice())
                .and_then(|m| m.message_id().map(str::to_owned))
            && let Some((local, _)) = id.split_once('@')
        {
            stored = self.message_of(local).await?;
        }
        let Some(stored) = stored else {
            tracing::info!("inbound report names no message Sesame sent; nothing recorded");
            return Ok(Received::default());
        };
        let now = self.clock.now_ms();
        let groups = field_groups(&fields);
        let events = match report_type.as_deref() {
            Some("feedback-report") => self.complaint(&stored, &groups, now),
            _ => self.dsn(&stored, &groups, now),
        };
        let mut got = Received::default();
        for e in &events {
            match e.kind {
                EventKind::Bounce => got.bounces += e.recipients.len(),
                EventKind::DeliveryDelay => got.delays += e.recipients.len(),
                EventKind::Complaint => got.complaints += e.recipients.len(),
                _ => {}
            }
        }
        self.store.record_events(&events).await.map_err(internal)?;
        tracing::info!(message = %stored.message.id, bounces = got.bounces, delays = got.delays, complaints = got.complaints, "inbound feedback recorded");
        Ok(got)
    }

    fn event(
        &self,
        m: &StoredMessage,
        kind: EventKind,
        rcpts: Vec<String>,
        at: i64,
        detail: EventDetail,
    ) -> Event {
        Event {
            kind,
            scope: m.scope.clone(),
            message_id: m.message.id.clone(),
            at,
            recipients: rcpts,
            mail: MailInfo::of(&m.message),
            detail,
        }
    }

    /// A DSN's per-recipient fields: `failed` → Bounce (Permanent for a
    /// 5.x.x status, with SES's subtype), `delayed` → DeliveryDelay.
    fn dsn(&self, m: &StoredMessage, groups: &[Vec<(String, String)>], now: i64) -> Vec<Event> {
        let message_fields = groups.first().cloned().unwrap_or_default();
        let reporting = field(&message_fields, "reporting-mta")
            .map(|v| {
                v.split_once(';')
                    .map(|(_, h)| h.trim())
                    .unwrap_or(&v)
                    .to_owned()
            })
            .unwrap_or_else(|| self.reporting_mta.clone());
        let (mut failed, mut delayed) = (vec![], vec![]);
        for g in groups.iter().skip(1) {
            let Some(rcpt) = field(g, "final-recipient").or_else(|| field(g, "original-recipient"))
            else {
                continue;
            };
            let address = rcpt
                .split_once(';')
                .map(|(_, a)| a.trim())
                .unwrap_or(&rcpt)
                .trim_matches(['<', '>'])
                .to_owned();
            let action = field(g, "action").unwrap_or_default().to_ascii_lowercase();
            let status = field(g, "status")
                .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
                .unwrap_or_default();
            let diagnostic = field(g, "diagnostic-code").unwrap_or_default();
            match action.as_str() {
                "failed" => failed.push((address, status, diagnostic)),
                "delayed" => delayed.push((address, status, diagnostic)),
                _ => {}
            }
        }
        let mut out = vec![];
        if !failed.is_empty() {
            let permanent = failed.iter().any(|(_, s, _)| s.starts_with('5'));
            let sub_type = failed
                .iter()
                .find(|(_, s, _)| s.starts_with('5'))
                .map(|(_, s, _)| BounceSubType::of_status(s))
                .unwrap_or(BounceSubType::General);
            out.push(
                self.event(
                    m,
                    EventKind::Bounce,
                    failed.iter().map(|(a, _, _)| a.clone()).collect(),
                    now,
                    EventDetail::Bounce {
                        bounce_type: if permanent {
                            BounceType::Permanent
                        } else {
                            BounceType::Transient
                        },
                        sub_type,
                        bounced: failed
                            .into_iter()
                            .map(|(address, status, diagnostic_code)| BouncedRecipient {
                                address,
                                action: "failed".into(),
                                status,
                                diagnostic_code,
                            })
                            .collect(),
                        reporting_mta: format!("dns; {reporting}"),
                        feedback_id: crate::sending::message_id(now),
                    },
                ),
            );
        }
        if !delayed.is_empty() {
            out.push(
                self.event(
                    m,
                    EventKind::DeliveryDelay,
                    delayed.iter().map(|(a, _, _)| a.clone()).collect(),
                    now,
                    EventDetail::DeliveryDelay {
                        delay_type: "General".into(),
                        delayed: delayed
                            .into_iter()
                            .map(|(address, status, diagnostic_code)| DelayedRecipient {
                                address,
                                status,
                                diagnostic_code,
                            })
                            .collect(),
                        expires_at: now,
                        reporting_mta: format!("dns; {reporting}"),
                    },
                ),
            );
        }
        out
    }

    /// An ARF report: a Complaint for its `Original-Rcpt-To` (else the
    /// message's recipients), with its `Feedback-Type` and `User-Agent`.
    fn complaint(
        &self,
        m: &StoredMessage,
        groups: &[Vec<(String, String)>],
        now: i64,
    ) -> Vec<Event> {
        let all: Vec<(String, String)> = groups.iter().flatten().cloned().collect();
        let mut rcpts: Vec<String> = all
            .iter()
            .filter(|(k, _)| k == "original-rcpt-to")
            .map(|(_, v)| v.trim_matches(['<', '>']).to_owned())
            .collect();
        if rcpts.is_empty() {
            rcpts = m.message.destinations.clone();
        }
        let at = field(&all, "arrival-date")
            .and_then(|d| mail_parser::DateTime::parse_rfc822(&d))
            .map(|d| d.to_timestamp() * 1000)
            .unwrap_or(now);
        vec![self.event(
            m,
            EventKind::Complaint,
            rcpts,
            at,
            EventDetail::Complaint {
                feedback_type: field(&all, "feedback-type").unwrap_or_else(|| "abuse".into()),
                user_agent: field(&all, "user-agent").unwrap_or_default(),
                feedback_id: crate::sending::message_id(now),
            },
        )]
    }
}

/// A report's fields in their blank-line-separated groups, names lower-cased,
/// folded lines joined.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = vec![];
    let mut current: Vec<(String, String)> = vec![];
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            current.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn field(group: &[(String, String)], name: &str) -> Option<String> {
    group
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}
