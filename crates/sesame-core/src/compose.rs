//! MIME composition: the RFC 5322 message a receiver gets for Simple and
//! templated content (multipart/alternative for text plus HTML, encoded
//! headers for non-ASCII text, Message-ID and Date), built with
//! mail-builder; and the header fields read back from raw messages with
//! mail-parser.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;
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

/// What the send rules need from a raw message's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawHeaders {
    pub from: Vec<String>,
    pub sender: Option<String>,
    pub return_path: Option<String>,
    pub recipients: Vec<String>,
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
    let mut recipients = addrs(HeaderName::To);
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
}
