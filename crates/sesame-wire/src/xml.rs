//! The v1 Query response: `<XResponse xmlns=…>`, the `<XResult>` wrapper as
//! the model dictates (absent, empty, or with members), and
//! `<ResponseMetadata><RequestId>`.

use crate::generated::V1Output;
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

pub const NAMESPACE: &str = "http://ses.amazonaws.com/doc/2010-12-01/";

/// A small element writer over quick-xml; text is always escaped.
pub struct XmlOut {
    w: Writer<Vec<u8>>,
}

impl Default for XmlOut {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlOut {
    pub fn new() -> Self {
        Self {
            w: Writer::new(Vec::with_capacity(512)),
        }
    }
    // Writing into a Vec cannot fail; the results are ignored on purpose.
    pub fn open(&mut self, name: &str) {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
    }
    pub fn open_ns(&mut self, name: &str) {
        self.open_with_namespace(name, NAMESPACE);
    }
    pub fn open_with_namespace(&mut self, name: &str, namespace: &str) {
        let mut e = BytesStart::new(name);
        e.push_attribute(("xmlns", namespace));
        let _ = self.w.write_event(Event::Start(e));
    }
    pub fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }
    pub fn empty(&mut self, name: &str) {
        let _ = self.w.write_event(Event::Empty(BytesStart::new(name)));
    }
    pub fn text(&mut self, name: &str, value: &str) {
        self.open(name);
        let _ = self.w.write_event(Event::Text(BytesText::new(value)));
        self.close(name);
    }
    pub fn bool(&mut self, name: &str, value: bool) {
        self.text(name, if value { "true" } else { "false" });
    }
    /// `<name><member>a</member>…</name>`.
    pub fn list<'a>(&mut self, name: &str, items: impl IntoIterator<Item = &'a str>) {
        self.open(name);
        for i in items {
            self.text("member", i);
        }
        self.close(name);
    }
    /// `<entry><key>k</key><value>…</value></entry>` for one map entry.
    pub fn entry(&mut self, key: &str, value: impl FnOnce(&mut Self)) {
        self.open("entry");
        self.text("key", key);
        self.open("value");
        value(self);
        self.close("value");
        self.close("entry");
    }
    /// Appends XML already written by another [`XmlOut`].
    pub fn raw(&mut self, xml: &[u8]) {
        self.w.get_mut().extend_from_slice(xml);
    }
    pub fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

/// A Query API's success body: `<XResponse xmlns=…>`, the `<XResult>`
/// wrapper as the model dictates (absent, empty, or around `members`), and
/// `<ResponseMetadata><RequestId>`.
pub fn envelope(
    name: &str,
    namespace: &str,
    output: V1Output,
    request_id: &str,
    members: &[u8],
) -> Vec<u8> {
    let mut x = XmlOut::new();
    let root = format!("{name}Response");
    let wrapper = format!("{name}Result");
    x.open_with_namespace(&root, namespace);
    match output {
        V1Output::None => {}
        V1Output::Empty => x.empty(&wrapper),
        V1Output::Members => {
            x.open(&wrapper);
            x.raw(members);
            x.close(&wrapper);
        }
    }
    x.open("ResponseMetadata");
    x.text("RequestId", request_id);
    x.close("ResponseMetadata");
    x.close(&root);
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::V1Action;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    /// The success body for an SES v1 `action` whose result `result` writes.
    fn response(action: V1Action, request_id: &str, result: impl FnOnce(&mut XmlOut)) -> Vec<u8> {
        let mut members = XmlOut::new();
        if action.output() == V1Output::Members {
            result(&mut members);
        }
        let members = members.finish();
        envelope(
            action.name(),
            NAMESPACE,
            action.output(),
            request_id,
            &members,
        )
    }

    #[test]
    fn empty_result_wrapper_is_emitted() {
        assert_eq!(
            s(response(V1Action::VerifyEmailIdentity, "r", |_| {})),
            "<VerifyEmailIdentityResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><VerifyEmailIdentityResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></VerifyEmailIdentityResponse>"
        );
    }

    #[test]
    fn no_result_when_model_has_no_output() {
        let body = s(response(V1Action::VerifyEmailAddress, "r", |_| {
            panic!("not called")
        }));
        assert!(!body.contains("Result"));
    }

    #[test]
    fn maps_and_lists() {
        let body = s(response(
            V1Action::GetIdentityVerificationAttributes,
            "r",
            |x| {
                x.open("VerificationAttributes");
                x.entry("a&b.com", |x| x.text("VerificationStatus", "Pending"));
                x.close("VerificationAttributes");
                x.list("L", ["1", "2"]);
            },
        ));
        assert!(body.contains("<entry><key>a&amp;b.com</key><value><VerificationStatus>Pending</VerificationStatus></value></entry>"));
        assert!(body.contains("<L><member>1</member><member>2</member></L>"));
    }
}
