//! Open and click tracking, as SES does it for configuration sets whose
//! event destinations ask for OPEN or CLICK events: before the message is
//! composed (so before it is DKIM-signed, which tracking must not break),
//! its HTML part's links become links to Sesame that redirect to them, and
//! a one-pixel image is added. Opening and clicking record Open and Click
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
    (out, links)
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
}
