//! What each fuzz target does with its input. Shared by the cargo-fuzz
//! targets (`fuzz_targets/`) and by the regression test that replays the
//! corpus and every crash ever found (`crates/sesame/tests/fuzz_corpus.rs`),
//! so a crash found once is checked by `scripts/test.sh` for ever.
//!
//! Every function must return whatever the input: no panic, no overflow,
//! no unbounded time or memory. Results are checked against the rules they
//! promise where a rule is cheap to state.
#![allow(dead_code)]

use sesame_model::verification::{Answer, Expected, ExpectedValue, RecordType};
use sesame_wire::query::{MAX_LIST_MEMBERS, QueryParams};

/// The names of the targets, as in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: &[&str] = &[
    "v1_form",
    "v2_request",
    "sigv4",
    "mime",
    "template",
    "dns_records",
];

/// Runs `target` on `data`.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "v1_form" => v1_form(data),
        "v2_request" => v2_request(data),
        "sigv4" => sigv4(data),
        "mime" => mime(data),
        "template" => template(data),
        "dns_records" => dns_records(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// Splits at the first `sep`: (before, after), or (all, empty).
fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A service that serves nothing: every operation answers NotImplemented,
/// so a dispatch decodes (and checks) its input and stops there.
struct Nothing;

impl sesame_wire::generated::ses_v1::SesV1 for Nothing {
    type Caller = ();
}
impl sesame_wire::generated::sesv2::SesV2 for Nothing {
    type Caller = ();
}
impl sesame_wire::generated::sns::Sns for Nothing {
    type Caller = ();
}

/// Polls a future once: the default trait methods are ready at once.
fn ready<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// The v1 form decoder, and the generated decoders of the action it names
/// (or of one chosen by the input's length), for SES and for SNS.
pub fn v1_form(data: &[u8]) {
    let Ok(p) = QueryParams::parse(data) else {
        return;
    };
    let _ = p.action();
    for (k, _) in p.iter().take(64) {
        if let Some((list, _)) = k.split_once(".member.") {
            let items = p.list(list).unwrap_or_default();
            assert!(
                items.len() <= MAX_LIST_MEMBERS,
                "{list} has {} members",
                items.len()
            );
            let _ = p.indexes(list);
        }
        let _ = p.bool(k);
        let _ = p.int(k);
    }
    use sesame_wire::generated::{SnsAction, V1Action, ses_v1, sns};
    let ses = p
        .action()
        .and_then(V1Action::from_name)
        .unwrap_or(V1Action::ALL[data.len() % V1Action::ALL.len()]);
    let answer = ready(ses_v1::dispatch(&Nothing, &(), ses, &p)).expect("ready at once");
    assert!(answer.is_err(), "Nothing serves nothing");
    let topic = p
        .action()
        .and_then(SnsAction::from_name)
        .unwrap_or(SnsAction::ALL[data.len() % SnsAction::ALL.len()]);
    let answer = ready(sns::dispatch(&Nothing, &(), topic, &p)).expect("ready at once");
    assert!(answer.is_err(), "Nothing serves nothing");
}

/// A v2 request: `METHOD PATH[?QUERY]\n` then the JSON body, routed and
/// decoded by the generated decoders.
pub fn v2_request(data: &[u8]) {
    let (line, body) = split(data, b'\n');
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let (method, target) = line.split_once(' ').unwrap_or((line, "/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Ok(q) = sesame_wire::router::query_pairs(query) else {
        return;
    };
    if let Ok(m) = sesame_wire::router::route(method, path) {
        let dispatch = sesame_wire::generated::sesv2::dispatch(&Nothing, &(), &m, &q, body);
        let answer = ready(dispatch).expect("ready at once");
        assert!(answer.is_err(), "Nothing serves nothing");
    }
}

/// SigV4: the Authorization header or presigned query parsed, and a
/// signature checked against a secret.
pub fn sigv4(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (auth, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let (query, date) = rest.split_once('\n').unwrap_or((rest, "20150830T123600Z"));
    let headers = [
        ("Authorization".to_owned(), auth.to_owned()),
        (
            "Host".to_owned(),
            "email.us-east-1.amazonaws.com".to_owned(),
        ),
        ("X-Amz-Date".to_owned(), date.to_owned()),
    ];
    let body_sha = sesame_sigv4::sha256_hex(b"");
    for headers in [&headers[..], &headers[1..]] {
        let req = sesame_sigv4::Request {
            method: "POST",
            raw_path: "/",
            raw_query: query,
            headers,
            body_sha256: &body_sha,
        };
        if let Ok(a) = sesame_sigv4::parse(&req) {
            let keys = sesame_sigv4::SigningKeys::default();
            let now = time_now();
            let _ = keys.verify(&req, &a, "secret", "ses", now);
        }
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
}

/// SendRawEmail's MIME: the header fields the send rules read, and the
/// Bcc stripped.
pub fn mime(data: &[u8]) {
    let _ = sesame_core::compose::read_raw(data);
    let stripped = sesame_core::compose::strip_bcc(data);
    assert!(
        stripped.len() <= data.len(),
        "stripping Bcc never grows a message"
    );
}

/// A template (before the first NUL) rendered with data (after it): the
/// nesting bound must keep Handlebars from overflowing its stack.
pub fn template(data: &[u8]) {
    let (text, json) = split(data, 0);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let parts = sesame_model::TemplateParts {
        subject: Some("s".into()),
        text: Some(text.to_owned()),
        html: None,
    };
    let Ok(shape) = parts.validate() else {
        return;
    };
    assert!(shape.depth <= sesame_model::template::MAX_NESTING);
    let parse = sesame_core::templates::parse_data;
    let Ok(data) = std::str::from_utf8(json)
        .map_err(|_| ())
        .and_then(|j| parse(j).map_err(|_| ()))
        .or_else(|_| parse(r#"{"a": [1, 2], "b": "x"}"#))
    else {
        return;
    };
    if let Ok(r) = sesame_core::templates::render(&parts, &data) {
        let size = r.subject.len() + r.text.map_or(0, |t| t.len());
        assert!(size <= sesame_core::templates::MAX_RENDERED_BYTES);
    }
}

/// DNS answers judged against each kind of expected record, diagnosed,
/// and read as SOA.
pub fn dns_records(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let records: Vec<String> = text.split('\n').take(32).map(str::to_owned).collect();
    let domain = "example.com";
    let expectations = [
        Expected {
            name: "_amazonses.example.com".into(),
            kind: RecordType::Txt,
            value: ExpectedValue::Exact("token".into()),
        },
        Expected {
            name: "t._domainkey.example.com".into(),
            kind: RecordType::Cname,
            value: ExpectedValue::Exact("t.dkim.example.net".into()),
        },
        Expected {
            name: "t._domainkey.example.com".into(),
            kind: RecordType::Txt,
            value: ExpectedValue::DkimKey("MIGfMA0".into()),
        },
        Expected {
            name: "mail.example.com".into(),
            kind: RecordType::Mx,
            value: ExpectedValue::Exact("feedback-smtp.example.net".into()),
        },
    ];
    let answer = Answer::Records(records.clone());
    for e in &expectations {
        let _ = e.judge(&answer);
        let probes = sesame_model::verification::probes(e, domain);
        let answered: Vec<_> = probes.into_iter().map(|p| (p, answer.clone())).collect();
        let d = sesame_model::verification::diagnose(e, domain, &answer, &answered);
        assert!(!d.is_empty(), "always at least one diagnosis");
    }
    for r in &records {
        let _ = sesame_model::verification::SoaRecord::parse(r);
    }
}
