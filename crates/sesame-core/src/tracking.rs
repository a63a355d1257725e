//! Open and click tracking, as SES does it for configuration sets whose
//! event destinations ask for OPEN or CLICK events: before the message is
//! composed (so before it is DKIM-signed, which tracking must not break),
//! its HTML part's links become links to Sesame that redirect to them, and
//! a one-pixel image is added; a raw message's HTML body parts are
//! rewritten in place ([`instrument_raw`]). Opening and clicking record Open and Click
//! events, which publishing then sends where the set says.

use crate::{Clock, internal};
use regex::Regex;
use sesame_model::{Error, Event, EventDetail, EventKind, MailInfo};
use sesame_store::Store;
use std::sync::{Arc, LazyLock};

/// Where tracked links and the pixel point: `{base}/_sesame/t/…`.
#[derive(Debug, Clone)]
pub struct TrackingUrls {
    pub base: String,
}

impl TrackingUrls {
    pub fn open(&self, message_id: &str) -> String {
        format!(
            "{}/_sesame/t/o/{message_id}",
            self.base.trim_end_matches('/')
        )
    }
    pub fn click(&self, message_id: &str, n: usize) -> String {
        format!(
            "{}/_sesame/t/c/{message_id}/{n}",
            self.base.trim_end_matches('/')
        )
    }
}

/// `<a … href="http(s)://…" …>`: the tag's start, the quote and the link.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    // Case folded by hand: the workspace's regex has no Unicode case tables.
    Regex::new(
        r#"(?s)(<[aA]\b[^>]*?\b[hH][rR][eE][fF]\s*=\s*)(["'])([hH][tT][tT][pP][sS]?://[^"'<>\s]+)(["'])([^>]*>)"#,
    )
        .expect("the link pattern is valid")
});
static BODY_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"</[bB][oO][dD][yY]\s*>").expect("the body pattern is valid"));

/// The HTML as sent, and the original links in the order their tracked
/// links number them. A link whose tag carries `ses:no-track` is left
/// alone, as SES leaves it.
pub fn instrument(
    html: &str,
    urls: &TrackingUrls,
    message_id: &str,
    opens: bool,
    clicks: bool,
) -> (String, Vec<String>) {
    let mut links = vec![];
    let out = instrument_into(html, urls, message_id, (opens, clicks), &mut links);
    (out, links)
}

/// [`instrument`], numbering the tracked links after those in `links`.
fn instrument_into(
    html: &str,
    urls: &TrackingUrls,
    message_id: &str,
    (opens, clicks): (bool, bool),
    links: &mut Vec<String>,
) -> String {
    let mut out = if clicks {
        LINK.replace_all(html, |c: &regex::Captures<'_>| {
            let tag = format!("{}{}", &c[1], &c[5]);
            if tag.to_ascii_lowercase().contains("ses:no-track") || c[2] != c[4] {
                return c[0].to_owned();
            }
            links.push(c[3].replace("&amp;", "&"));
            format!(
                "{}{}{}{}{}",
                &c[1],
                &c[2],
                urls.click(message_id, links.len() - 1),
                &c[4],
                &c[5]
            )
        })
        .into_owned()
    } else {
        html.to_owned()
    };
    if opens {
        let pixel = format!(
            r#"<img alt="" src="{}" style="display:none;width:1px;height:1px;" width="1" height="1"/>"#,
            urls.open(message_id)
        );
        match BODY_END.find(&out) {
            Some(m) => out.insert_str(m.start(), &pixel),
            None => out.push_str(&pixel),
        }
    }
    out
}

/// A raw message (SendRawEmail) with its HTML body parts instrumented as
/// [`instrument`] does, each re-encoded with its own transfer encoding,
/// and the original links. `None` leaves the message as it is: it has no
/// HTML body, a part's charset is not UTF-8 or ASCII (re-encoding it
/// could change its text), or it is already DKIM-signed (rewriting would
/// break the sender's own signature).
pub fn instrument_raw(
    raw: &[u8],
    urls: &TrackingUrls,
    message_id: &str,
    opens: bool,
    clicks: bool,
) -> Option<(Vec<u8>, Vec<String>)> {
    use mail_builder::encoders::{base64::Base64Encoder, quoted_printable::QuotedPrintableEncoder};
    use mail_parser::{Encoding, MimeHeaders, PartType};
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    if msg.header("DKIM-Signature").is_some() {
        tracing::info!(message = %message_id, "not tracked: the raw message is already DKIM-signed, and rewriting it would break that signature");
        return None;
    }
    let mut spans = vec![];
    let mut links = vec![];
    for &i in &msg.html_body {
        let Some(part) = msg.parts.get(i as usize) else {
            continue;
        };
        let PartType::Html(html) = &part.body else {
            continue;
        };
        let charset = part
            .content_type()
            .and_then(|c| c.attribute("charset"))
            .unwrap_or("us-ascii")
            .to_ascii_lowercase();
        if !matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
            tracing::info!(message = %message_id, %charset, "not tracked: the HTML part's charset is not UTF-8 or ASCII");
            return None;
        }
        let html = instrument_into(html, urls, message_id, (opens, clicks), &mut links);
        let body = match part.encoding {
            Encoding::Base64 => Base64Encoder::new().wrap_lines().encode(html.as_bytes()),
            Encoding::QuotedPrintable => QuotedPrintableEncoder::new()
                .preserve_line_breaks()
                .encode(html.as_bytes()),
            Encoding::None => Ok(html.into_bytes()),
        }
        .ok()?;
        spans.push((part.offset_body as usize, part.offset_end as usize, body));
    }
    if spans.is_empty() {
        return None;
    }
    // Spliced back to front, so that earlier offsets stay true.
    spans.sort_by_key(|(start, ..)| std::cmp::Reverse(*start));
    let mut out = raw.to_vec();
    for (start, end, body) in spans {
        if start > end || end > out.len() {
            return None;
        }
        out.splice(start..end, body);
    }
    Some((out, links))
}

/// The 1×1 transparent GIF the pixel serves.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

/// Who opened or clicked, as the request showed it.
pub struct Visitor<'a> {
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub struct TrackingService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl TrackingService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    fn not_found() -> Error {
        Error::not_found("No such tracked message or link.")
    }

    /// The tracked message, if tracking is on for it.
    async fn message(&self, message_id: &str) -> Result<sesame_model::StoredMessage, Error> {
        let m = self
            .store
            .get_message(message_id)
            .await
            .map_err(internal)?
            .ok_or_else(Self::not_found)?;
        if m.message.meta.tracked.is_none() {
            return Err(Self::not_found());
        }
        Ok(m)
    }

    async fn record(
        &self,
        m: &sesame_model::StoredMessage,
        kind: EventKind,
        detail: EventDetail,
    ) -> Result<(), Error> {
        let event = Event {
            kind,
            scope: m.scope.clone(),
            message_id: m.message.id.clone(),
            at: self.clock.now_ms(),
            recipients: m.message.destinations.clone(),
            mail: MailInfo::of(&m.message),
            detail,
        };
        self.store
            .finish_deliveries(vec![], vec![event])
            .await
            .map_err(internal)
    }

    /// The pixel was fetched: an Open event.
    pub async fn open(&self, message_id: &str, v: Visitor<'_>) -> Result<(), Error> {
        let m = self.message(message_id).await?;
        if !m.message.meta.tracked.as_ref().is_some_and(|t| t.opens) {
            return Err(Self::not_found());
        }
        self.record(
            &m,
            EventKind::Open,
            EventDetail::Open {
                ip_address: v.ip.to_owned(),
                user_agent: v.user_agent.to_owned(),
            },
        )
        .await
    }

    /// A tracked link was followed: a Click event, and where to send the
    /// visitor (only ever the link the message held).
    pub async fn click(&self, message_id: &str, n: usize, v: Visitor<'_>) -> Result<String, Error> {
        let m = self.message(message_id).await?;
        let link = m
            .message
            .meta
            .tracked
            .as_ref()
            .and_then(|t| t.links.get(n))
            .cloned()
            .ok_or_else(Self::not_found)?;
        self.record(
            &m,
            EventKind::Click,
            EventDetail::Click {
                ip_address: v.ip.to_owned(),
                user_agent: v.user_agent.to_owned(),
                link: link.clone(),
            },
        )
        .await?;
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_the_pixel() {
        let urls = TrackingUrls {
            base: "http://s".into(),
        };
        let html = r#"<html><body><a href="https://example.com/a?x=1&amp;y=2">A</a> <A HREF='http://b.test/'>B</A> <a ses:no-track href="https://c.test">C</a> <a href="mailto:x@y">M</a></body></html>"#;
        let (out, links) = instrument(html, &urls, "m1", true, true);
        assert_eq!(
            links,
            vec!["https://example.com/a?x=1&y=2", "http://b.test/"]
        );
        assert!(out.contains(r#"<a href="http://s/_sesame/t/c/m1/0">A</a>"#));
        assert!(out.contains("HREF='http://s/_sesame/t/c/m1/1'"));
        assert!(out.contains(r#"href="https://c.test""#));
        assert!(out.contains("mailto:x@y"));
        assert!(out.contains(r#"src="http://s/_sesame/t/o/m1""#));
        assert!(out.ends_with("</body></html>"));
        let (plain, none) = instrument(html, &urls, "m1", false, false);
        assert_eq!((plain.as_str(), none.len()), (html, 0));
    }

    fn html_of(raw: &[u8]) -> String {
        let m = mail_parser::MessageParser::default().parse(raw).unwrap();
        m.body_html(0).unwrap().into_owned()
    }

    /// Raw messages: each HTML body part is rewritten in its own transfer
    /// encoding, the rest of the message is left byte for byte, and links
    /// are numbered across parts.
    #[test]
    fn raw_messages_keep_their_structure() {
        let urls = TrackingUrls {
            base: "http://s".into(),
        };
        let long = "x".repeat(200);
        for encoding in ["quoted-printable", "base64", "7bit"] {
            let html = format!(
                r#"<html><body><p>{long} caf=C3=A9</p><a href="https://a.test/1">1</a></body></html>"#
            );
            let (html_body, expect_text) = match encoding {
                "base64" => {
                    let plain = html.replace("=C3=A9", "é");
                    let b = mail_builder::encoders::base64::Base64Encoder::new()
                        .wrap_lines()
                        .encode(plain.as_bytes())
                        .unwrap();
                    (String::from_utf8(b).unwrap(), plain)
                }
                "7bit" => (
                    html.replace(" caf=C3=A9", ""),
                    html.replace(" caf=C3=A9", ""),
                ),
                _ => (
                    html.replace(&long, &format!("{}=\r\n{}", &long[..70], &long[70..])),
                    html.replace("=C3=A9", "é"),
                ),
            };
            let raw = format!(
                "From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/alternative; boundary=\"B\"\r\n\r\n\
                 --B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain https://a.test/0\r\n\
                 --B\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{html_body}\r\n\
                 --B--\r\n"
            );
            let (out, links) =
                instrument_raw(raw.as_bytes(), &urls, "m1", true, true).expect(encoding);
            assert_eq!(links, vec!["https://a.test/1"], "{encoding}");
            let got = html_of(&out);
            let want = instrument(&expect_text, &urls, "m1", true, true).0;
            assert_eq!(got.trim_end(), want.trim_end(), "{encoding}");
            let text = mail_parser::MessageParser::default()
                .parse(&out[..])
                .unwrap();
            assert_eq!(
                text.body_text(0).unwrap().trim_end(),
                "plain https://a.test/0"
            );
            let head = raw.split("--B\r\nContent-Type: text/html").next().unwrap();
            assert!(
                out.starts_with(head.as_bytes()),
                "{encoding}: the rest is kept"
            );
            assert!(String::from_utf8_lossy(&out).ends_with("--B--\r\n"));
        }
        // Signed, or in another charset: left alone.
        let signed = "DKIM-Signature: v=1; d=example.com\r\nContent-Type: text/html\r\n\r\n<a href=\"https://a.test\">a</a>\r\n";
        assert!(instrument_raw(signed.as_bytes(), &urls, "m1", true, true).is_none());
        let latin = "Content-Type: text/html; charset=iso-8859-1\r\n\r\n<a href=\"https://a.test\">a</a>\r\n";
        assert!(instrument_raw(latin.as_bytes(), &urls, "m1", true, true).is_none());
        let text_only = "Content-Type: text/plain\r\n\r\nhttps://a.test\r\n";
        assert!(instrument_raw(text_only.as_bytes(), &urls, "m1", true, true).is_none());
    }
}
