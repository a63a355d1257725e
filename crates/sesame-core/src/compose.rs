//! MIME composition: the RFC 5322 message a receiver gets for Simple and
//! templated content (multipart/alternative for text plus HTML, encoded
//! headers for non-ASCII text, Message-ID and Date), and the delivery
//! status notification SendBounce sends (RFC 3464), built with
//! mail-builder; and the header fields read back from raw messages with
//! mail-parser.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;
use mail_parser::{HeaderName, MessageParser};
use sesame_model::{Error, Mailbox, Millis};

/// A file attached to a Simple message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub inline_content_id: Option<String>,
    pub data: Vec<u8>,
}

/// Everything a composed message needs.
pub struct Compose<'a> {
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub reply_to: &'a [Mailbox],
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub attachments: &'a [Attachment],
    /// Without angle brackets.
    pub message_id: &'a str,
    pub date: Millis,
}

fn address(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.display.as_deref(), m.address.as_str())
}

fn list(ms: &[Mailbox]) -> Address<'_> {
    Address::new_list(ms.iter().map(address).collect())
}

pub fn build(c: &Compose<'_>) -> Result<Vec<u8>, Error> {
    let mut b = MessageBuilder::new()
        .from(address(c.from))
        .subject(c.subject)
        .message_id(c.message_id)
        .date(c.date / 1000);
    if !c.to.is_empty() {
        b = b.to(list(c.to));
    }
    if !c.cc.is_empty() {
        b = b.cc(list(c.cc));
    }
    if !c.reply_to.is_empty() {
        b = b.reply_to(list(c.reply_to));
    }
    for (name, value) in c.headers {
        b = b.header(name.as_str(), Text::new(value.as_str()));
    }
    if let Some(t) = c.text {
        b = b.text_body(t);
    }
    if let Some(h) = c.html {
        b = b.html_body(h);
    }
    if c.text.is_none() && c.html.is_none() {
        b = b.text_body("");
    }
    for a in c.attachments {
        b = match &a.inline_content_id {
            Some(cid) => b.inline(a.content_type.as_str(), cid.as_str(), a.data.as_slice()),
            None => b.attachment(
                a.content_type.as_str(),
                a.file_name.as_str(),
                a.data.as_slice(),
            ),
        };
    }
    b.write_to_vec()
        .map_err(|e| Error::internal(format!("cannot compose the message: {e}")))
}

/// Why a recipient bounced, as SendBounce names it; each has the DSN
/// action and status code it is reported with when no DSN fields are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceReason {
    DoesNotExist,
    MessageTooLarge,
    ExceededQuota,
    ContentRejected,
    Undefined,
    TemporaryFailure,
}

impl BounceReason {
    /// The DSN `Action` and `Status` (RFC 3464 2.3.3, RFC 3463 codes).
    pub fn action_and_status(self) -> (&'static str, &'static str) {
        match self {
            Self::DoesNotExist => ("failed", "5.1.1"),
            Self::MessageTooLarge => ("failed", "5.3.4"),
            Self::ExceededQuota => ("failed", "5.2.2"),
            Self::ContentRejected => ("failed", "5.6.1"),
            Self::Undefined => ("failed", "5.0.0"),
            Self::TemporaryFailure => ("delayed", "4.0.0"),
        }
    }
}

/// One recipient's fields in a DSN (RFC 3464 2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient: rfc822; …`.
    pub final_recipient: String,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: String,
    /// `Status`: `class.subject.detail`, e.g. `5.1.1`.
    pub status: String,
    pub remote_mta: Option<String>,
    pub diagnostic_code: Option<String>,
    pub last_attempt: Option<Millis>,
    pub extensions: Vec<(String, String)>,
}

/// A delivery status notification about a message that was received.
#[derive(Debug, Clone)]
pub struct Dsn<'a> {
    pub from: &'a Mailbox,
    pub to: &'a Mailbox,
    /// The human-readable part; a default one names the recipients.
    pub explanation: Option<&'a str>,
    /// `Reporting-MTA: dns; …`.
    pub reporting_mta: &'a str,
    pub arrival: Millis,
    pub extensions: &'a [(String, String)],
    pub recipients: &'a [DsnRecipient],
    /// The bounced message, whose header block is returned
    /// (`text/rfc822-headers`) and whose Message-ID is replied to.
    pub original: &'a [u8],
    pub date: Millis,
}

/// A DSN field's text: printable ASCII on one line, as RFC 3464 fields
/// are; anything else could forge other fields.
fn dsn_text<'v>(field: &str, value: &'v str) -> Result<&'v str, Error> {
    if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid(format!(
            "The DSN field {field} must be printable ASCII on one line: '{}'.",
            value.escape_debug()
        )));
    }
    Ok(value)
}

/// An extension field's name: an RFC 5322 field name.
fn dsn_field_name(name: &str) -> Result<&str, Error> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(Error::invalid(format!(
            "The DSN extension field name '{}' is not a header field name.",
            name.escape_debug()
        )));
    }
    Ok(name)
}

/// `class.subject.detail` (RFC 3463): 2, 4 or 5, then up to three digits
/// twice.
fn dsn_status(status: &str) -> Result<&str, Error> {
    let parts: Vec<&str> = status.split('.').collect();
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && digits(parts[1], 3)
        && digits(parts[2], 3)
    {
        Ok(status)
    } else {
        Err(Error::invalid(format!(
            "The DSN status '{}' is not a status code such as 5.1.1 (RFC 3463).",
            status.escape_debug()
        )))
    }
}

/// The header block of a message: everything before the first empty line.
fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// The DSN as RFC 3464 lays it out: `multipart/report;
/// report-type=delivery-status` with the explanation, the
/// `message/delivery-status` fields, and the original's header block.
pub fn dsn(d: &Dsn<'_>) -> Result<Vec<u8>, Error> {
    if d.recipients.is_empty() {
        return Err(Error::invalid(
            "A bounce must name at least one bounced recipient.",
        ));
    }
    let mut status = format!(
        "Reporting-MTA: dns; {}\r\nArrival-Date: {}\r\n",
        dsn_text("ReportingMta", d.reporting_mta)?,
        rfc2822(d.arrival)
    );
    for (name, value) in d.extensions {
        status.push_str(&format!(
            "{}: {}\r\n",
            dsn_field_name(name)?,
            dsn_text(name, value)?
        ));
    }
    for r in d.recipients {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            dsn_text("FinalRecipient", &r.final_recipient)?,
            dsn_text("Action", &r.action)?,
            dsn_status(&r.status)?
        ));
        if let Some(m) = &r.remote_mta {
            status.push_str(&format!(
                "Remote-MTA: dns; {}\r\n",
                dsn_text("RemoteMta", m)?
            ));
        }
        if let Some(c) = &r.diagnostic_code {
            status.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                dsn_text("DiagnosticCode", c)?
            ));
        }
        if let Some(t) = r.last_attempt {
            status.push_str(&format!("Last-Attempt-Date: {}\r\n", rfc2822(t)));
        }
        for (name, value) in &r.extensions {
            status.push_str(&format!(
                "{}: {}\r\n",
                dsn_field_name(name)?,
                dsn_text(name, value)?
            ));
        }
    }
    let explanation = match d.explanation {
        Some(e) => e.to_owned(),
        None => {
            let listed: Vec<&str> = d
                .recipients
                .iter()
                .map(|r| r.final_recipient.as_str())
                .collect();
            format!(
                "The message you sent could not be delivered to the following recipients:\r\n\r\n{}\r\n",
                listed.join("\r\n")
            )
        }
    };
    let failed = d.recipients.iter().any(|r| r.action == "failed");
    let parts = vec![
        MimePart::new("text/plain", explanation),
        MimePart::new("message/delivery-status", status).transfer_encoding("7bit"),
        MimePart::new("text/rfc822-headers", header_block(d.original).to_vec())
            .transfer_encoding("8bit"),
    ];
    let report = ContentType::new("multipart/report").attribute("report-type", "delivery-status");
    let mut b = MessageBuilder::new()
        .from(address(d.from))
        .to(address(d.to))
        .subject(if failed {
            "Delivery Status Notification (Failure)"
        } else {
            "Delivery Status Notification (Delay)"
        })
        .header("Auto-Submitted", Text::new("auto-replied"))
        .date(d.date / 1000)
        .body(MimePart::new(report, parts));
    if let Some(id) = MessageParser::default()
        .parse_headers(d.original)
        .and_then(|m| m.message_id().map(str::to_owned))
    {
        b = b.in_reply_to(id.clone()).references(id);
    }
    b.write_to_vec()
        .map_err(|e| Error::internal(format!("cannot compose the bounce: {e}")))
}

/// An abuse report (ARF, RFC 5965) to compose: what SES forwards to the
/// sender when a recipient complains.
pub struct Arf<'a> {
    pub from: &'a Mailbox,
    pub to: &'a Mailbox,
    /// `Feedback-Type`: abuse, fraud, virus, not-spam or other.
    pub feedback_type: &'a str,
    pub user_agent: &'a str,
    /// The envelope sender and the recipients who complained.
    pub mail_from: &'a str,
    pub recipients: &'a [String],
    pub arrival: Millis,
    /// The message complained about, whose header block is returned
    /// (`text/rfc822-headers`) and whose Message-ID is replied to.
    pub original: &'a [u8],
    pub date: Millis,
}

/// The report: `multipart/report; report-type=feedback-report` with a
/// human-readable part, the `message/feedback-report` fields and the
/// original's headers.
pub fn arf(a: &Arf<'_>) -> Result<Vec<u8>, Error> {
    let feedback_type = dsn_text("FeedbackType", a.feedback_type)?;
    if !a
        .feedback_type
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::invalid(format!(
            "The feedback type '{feedback_type}' is not a token (RFC 5965)."
        )));
    }
    let mut report = format!(
        "Feedback-Type: {feedback_type}\r\nUser-Agent: {}\r\nVersion: 1\r\nOriginal-Mail-From: <{}>\r\n",
        dsn_text("UserAgent", a.user_agent)?,
        dsn_text("OriginalMailFrom", a.mail_from)?
    );
    for r in a.recipients {
        report.push_str(&format!(
            "Original-Rcpt-To: <{}>\r\n",
            dsn_text("OriginalRcptTo", r)?
        ));
    }
    report.push_str(&format!("Arrival-Date: {}\r\n", rfc2822(a.arrival)));
    let explanation = format!(
        "This is an email abuse report for an email message received from {} on {}.\r\nThe recipients ({}) marked it as unwanted ({feedback_type}).\r\n",
        a.mail_from,
        rfc2822(a.arrival),
        a.recipients.join(", ")
    );
    let parts = vec![
        MimePart::new("text/plain", explanation),
        MimePart::new("message/feedback-report", report).transfer_encoding("7bit"),
        MimePart::new("text/rfc822-headers", header_block(a.original).to_vec())
            .transfer_encoding("8bit"),
    ];
    let content = ContentType::new("multipart/report").attribute("report-type", "feedback-report");
    let mut b = MessageBuilder::new()
        .from(address(a.from))
        .to(address(a.to))
        .subject("Complaint about your message")
        .header("Auto-Submitted", Text::new("auto-generated"))
        .date(a.date / 1000)
        .body(MimePart::new(content, parts));
    if let Some(id) = MessageParser::default()
        .parse_headers(a.original)
        .and_then(|m| m.message_id().map(str::to_owned))
    {
        b = b.in_reply_to(id.clone()).references(id);
    }
    b.write_to_vec()
        .map_err(|e| Error::internal(format!("cannot compose the abuse report: {e}")))
}

pub use sesame_model::rfc2822;

/// SES's limit on the headers an event carries; past it, `headersTruncated`.
pub const MAX_EVENT_HEADERS_BYTES: usize = 10 * 1024;

/// A message's header fields in order, as events' `mail.headers` list them
/// (names as written, values unfolded), up to [`MAX_EVENT_HEADERS_BYTES`];
/// whether some were left out.
/// A message as a person reads it: its text and HTML bodies (decoded),
/// its header fields, and the web links in its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readable {
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
    pub links: Vec<String>,
}

/// At most this many links are listed from a message's text.
const MAX_LINKS: usize = 50;

pub fn readable(raw: &[u8]) -> Readable {
    let (headers, _) = header_list(raw);
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Readable {
            headers,
            ..Default::default()
        };
    };
    let text = msg.body_text(0).map(|t| t.into_owned());
    let html = msg
        .html_body
        .first()
        .and_then(|&i| msg.parts.get(i as usize))
        .and_then(|p| match &p.body {
            mail_parser::PartType::Html(h) => Some(h.to_string()),
            _ => None,
        });
    // Inline images (`cid:`) shown where the HTML refers to them, as
    // `data:` URIs, so that a sandboxed view with no remote loads shows
    // them. At most 10 MB of them.
    let html = html.map(|mut h| {
        use base64::Engine;
        use mail_parser::MimeHeaders;
        let mut budget: usize = 10 << 20;
        for p in &msg.parts {
            let (Some(cid), Some(kind)) = (p.content_id(), p.content_type()) else {
                continue;
            };
            let data = p.contents();
            if kind.ctype() != "image" || data.len() > budget {
                continue;
            }
            budget -= data.len();
            let uri = format!(
                "data:image/{};base64,{}",
                kind.subtype().unwrap_or("png"),
                base64::engine::general_purpose::STANDARD.encode(data)
            );
            h = h.replace(&format!("cid:{}", cid.trim_matches(['<', '>'])), &uri);
        }
        h
    });
    let mut links: Vec<String> = vec![];
    for word in text
        .as_deref()
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')'))
    {
        if (word.starts_with("https://") || word.starts_with("http://"))
            && !links.iter().any(|l| l == word)
            && links.len() < MAX_LINKS
        {
            links.push(word.trim_end_matches(['.', ',', ';']).to_owned());
        }
    }
    Readable {
        text,
        html,
        headers,
        links,
    }
}

pub fn header_list(raw: &[u8]) -> (Vec<(String, String)>, bool) {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return (vec![], false);
    };
    let mut out = vec![];
    let mut size = 0;
    for h in msg.headers() {
        let (start, end) = (h.offset_start as usize, h.offset_end as usize);
        let Some(value) = raw.get(start..end) else {
            continue;
        };
        let value = String::from_utf8_lossy(value)
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let name = h.name.as_str().to_owned();
        size += name.len() + value.len();
        if size > MAX_EVENT_HEADERS_BYTES {
            return (out, true);
        }
        out.push((name, value));
    }
    (out, false)
}

/// What the send rules need from a raw message's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawHeaders {
    pub from: Vec<String>,
    pub sender: Option<String>,
    pub return_path: Option<String>,
    pub recipients: Vec<String>,
    /// The `To` header's mailboxes, for events' `commonHeaders`.
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub has_message_id: bool,
    pub has_date: bool,
}

/// Reads the addressing fields of a raw MIME message. A message that cannot
/// be parsed is refused as SES refuses it.
pub fn read_raw(raw: &[u8]) -> Result<RawHeaders, Error> {
    let msg = MessageParser::default()
        .parse_headers(raw)
        .ok_or_else(|| Error::invalid("Could not parse the raw message."))?;
    let addrs = |h: HeaderName<'_>| -> Vec<String> {
        msg.header(h)
            .and_then(|v| v.as_address())
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        let email = x.address.as_deref()?;
                        Some(match x.name.as_deref() {
                            Some(n) => format!("{n} <{email}>"),
                            None => email.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let to = addrs(HeaderName::To);
    let mut recipients = to.clone();
    recipients.extend(addrs(HeaderName::Cc));
    recipients.extend(addrs(HeaderName::Bcc));
    Ok(RawHeaders {
        from: addrs(HeaderName::From),
        sender: addrs(HeaderName::Sender).into_iter().next(),
        return_path: msg
            .header(HeaderName::ReturnPath)
            .and_then(|v| v.as_text())
            .map(|s| {
                s.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
            .filter(|s| !s.is_empty()),
        recipients,
        to,
        subject: msg.subject().map(str::to_owned),
        has_message_id: msg.header(HeaderName::MessageId).is_some(),
        has_date: msg.header(HeaderName::Date).is_some(),
    })
}

/// A header section longer than this is parsed on the blocking pool.
const LARGE_HEADER: usize = 64 * 1024;

/// [`read_raw`], on the blocking pool when the header section is large
/// (only the header section is copied there).
pub async fn read_raw_off_runtime(raw: &[u8]) -> Result<RawHeaders, Error> {
    let end = header_len(raw);
    if end <= LARGE_HEADER {
        return read_raw(raw);
    }
    let header = raw[..end].to_vec();
    crate::cpu::run(move || read_raw(&header)).await
}

/// The length of the header section, up to and including the blank line
/// that ends it (the whole message when there is none).
fn header_len(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        let line_end = raw[i..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        i = line_end;
    }
    raw.len()
}

/// Removes the Bcc header from a raw message: recipients get the envelope,
/// not the list. Returns the message unchanged when it has none.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(header_end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_alternative_with_encoded_headers() {
        let from = Mailbox::parse("Zoë <zoe@example.com>").unwrap();
        let to = [Mailbox::parse("a@example.com").unwrap()];
        let raw = build(&Compose {
            from: &from,
            to: &to,
            cc: &[],
            reply_to: &[],
            subject: "Grüße",
            text: Some("hello"),
            html: Some("<b>hello</b>"),
            headers: &[("X-Campaign".into(), "spring".into())],
            attachments: &[],
            message_id: "id-1@example.com",
            date: 1_700_000_000_000,
        })
        .unwrap();
        let s = String::from_utf8(raw.clone()).unwrap();
        assert!(s.contains("multipart/alternative"));
        assert!(s.contains("Message-ID: <id-1@example.com>"));
        assert!(s.contains("X-Campaign: spring"));
        assert!(!s.contains("Grüße"), "non-ASCII subject is encoded");
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Grüße"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("hello"));
        let h = read_raw(&raw).unwrap();
        assert_eq!(h.from, vec!["Zoë <zoe@example.com>"]);
        assert_eq!(h.recipients, vec!["a@example.com"]);
    }

    /// A message read for display: its inline images shown where its HTML
    /// refers to them by `cid:`, its links listed from its text.
    #[test]
    fn readable_shows_inline_images_and_lists_links() {
        let from = Mailbox::parse("a@example.com").unwrap();
        let raw = build(&Compose {
            from: &from,
            to: std::slice::from_ref(&from),
            cc: &[],
            reply_to: &[],
            subject: "s",
            text: Some("Open https://x.test/verify/abc. Then (https://y.test)"),
            html: Some("<img src=\"cid:logo@sesame\">"),
            headers: &[],
            attachments: &[Attachment {
                file_name: "logo.png".into(),
                content_type: "image/png".into(),
                inline_content_id: Some("logo@sesame".into()),
                data: vec![0x89, b'P', b'N', b'G'],
            }],
            message_id: "id-2@example.com",
            date: 1_700_000_000_000,
        })
        .unwrap();
        let r = readable(&raw);
        assert_eq!(
            r.html.as_deref(),
            Some("<img src=\"data:image/png;base64,iVBORw==\">")
        );
        assert_eq!(r.links, vec!["https://x.test/verify/abc", "https://y.test"]);
        assert!(r.headers.iter().any(|(k, v)| k == "Subject" && v == "s"));
    }

    #[test]
    fn raw_headers_and_bcc() {
        let raw = b"From: s@example.com\r\nTo: a@x.com, B <b@x.com>\r\nBcc: c@x.com,\r\n d@x.com\r\nSubject: hi\r\n\r\nBcc: in the body stays\r\n";
        let h = read_raw(raw).unwrap();
        assert_eq!(
            h.recipients,
            vec!["a@x.com", "B <b@x.com>", "c@x.com", "d@x.com"]
        );
        assert!(!h.has_message_id);
        let stripped = String::from_utf8(strip_bcc(raw)).unwrap();
        assert!(!stripped.contains("c@x.com") && !stripped.contains("d@x.com"));
        assert!(stripped.contains("Bcc: in the body stays"));
    }

    fn recipient(status: &str) -> DsnRecipient {
        DsnRecipient {
            final_recipient: "gone@example.org".into(),
            action: "failed".into(),
            status: status.into(),
            remote_mta: Some("mx.example.org".into()),
            diagnostic_code: Some("550 5.1.1 No such user".into()),
            last_attempt: Some(1_700_000_000_000),
            extensions: vec![("X-Queue".into(), "q1".into())],
        }
    }

    #[test]
    fn a_dsn_is_a_delivery_status_report() {
        let from = Mailbox::parse("bounces@example.com").unwrap();
        let to = Mailbox::parse("sender@example.net").unwrap();
        let original = b"Message-ID: <orig-1@example.net>\r\nFrom: sender@example.net\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let recipients = [recipient("5.1.1")];
        let d = Dsn {
            from: &from,
            to: &to,
            explanation: None,
            reporting_mta: "mta.example.com",
            arrival: 1_700_000_000_000,
            extensions: &[],
            recipients: &recipients,
            original,
            date: 1_700_000_100_000,
        };
        let raw = dsn(&d).unwrap();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Delivery Status Notification (Failure)")
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status")
        );
        assert!(text.contains("Content-Type: message/delivery-status"));
        assert!(text.contains("Reporting-MTA: dns; mta.example.com\r\n"));
        assert!(text.contains(
            "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"));
        assert!(text.contains("X-Queue: q1\r\n"));
        assert!(text.contains("In-Reply-To: <orig-1@example.net>"));
        assert!(
            text.contains("Subject: hi"),
            "the original's header is returned"
        );
        assert!(!text.contains("secret body"), "its body is not");
        assert!(text.contains("Auto-Submitted: auto-replied"));
    }

    #[test]
    fn dsn_fields_cannot_forge_others() {
        let from = Mailbox::parse("bounces@example.com").unwrap();
        let to = Mailbox::parse("sender@example.net").unwrap();
        let build = |mta: &str, r: DsnRecipient| {
            let recipients = [r];
            dsn(&Dsn {
                from: &from,
                to: &to,
                explanation: Some("no"),
                reporting_mta: mta,
                arrival: 0,
                extensions: &[],
                recipients: &recipients,
                original: b"",
                date: 0,
            })
        };
        assert!(build("a\r\nStatus: 2.0.0", recipient("5.1.1")).is_err());
        assert!(build("mta", recipient("5.1.1\r\nAction: delivered")).is_err());
        assert!(build("mta", recipient("9.9.9")).is_err());
        assert!(build("mta", recipient("5.1")).is_err());
        let mut bad_name = recipient("5.1.1");
        bad_name.extensions = vec![("X: Y".into(), "v".into())];
        assert!(build("mta", bad_name).is_err());
        assert!(build("mta", recipient("4.4.7")).is_ok());
        assert_eq!(
            BounceReason::TemporaryFailure.action_and_status(),
            ("delayed", "4.0.0")
        );
    }
}
