//! DNS verification of domain identities, without the DNS: what each check
//! expects to find, how an answer is judged, SES's statuses and timings, and
//! the diagnoses of the usual publishing mistakes.
//!
//! The verifier in `sesame-core` asks the questions this module lists and
//! hands the answers back; everything decided from them is decided here.

use crate::Millis;
use serde::{Deserialize, Serialize};

use crate::identity::VerificationStatus;

/// SES gives a pending identity 72 hours to show its records before it is
/// `Failed`, and a verified one whose records vanished 72 hours in
/// `TemporaryFailure` before it is `Failed`.
pub const VERIFY_WINDOW_MS: Millis = 72 * 3600 * 1000;

/// The record types the verifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordType {
    Txt,
    Cname,
    Mx,
    Soa,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Txt => "TXT",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Soa => "SOA",
        }
    }
}

/// One DNS answer, its records in text form: a TXT record's strings joined,
/// a CNAME's or MX's target host (lower case, no trailing dot), an SOA as
/// `mname rname serial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Records(Vec<String>),
    /// The name exists but has no record of the type asked.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The server failed, refused or did not answer in time.
    Error(String),
}

/// SES's `VerificationError` (v2 `VerificationInfo.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationError {
    ServiceError,
    DnsServerError,
    HostNotFound,
    TypeNotFound,
    InvalidValue,
}

impl VerificationError {
    /// The domain's name for the error.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceError => "service error",
            Self::DnsServerError => "DNS server error",
            Self::HostNotFound => "host not found",
            Self::TypeNotFound => "record type not found",
            Self::InvalidValue => "invalid value",
        }
    }
}

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Found,
    /// The DNS answered, without the record.
    Missing(VerificationError),
    /// The DNS did not answer: nothing can be concluded.
    Unknown,
}

impl Finding {
    /// The error to report, if any.
    pub fn error(self) -> Option<VerificationError> {
        match self {
            Self::Found => None,
            Self::Missing(e) => Some(e),
            Self::Unknown => Some(VerificationError::DnsServerError),
        }
    }
}

/// The record a check looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Fully qualified, without the trailing dot.
    pub name: String,
    pub kind: RecordType,
    pub value: ExpectedValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedValue {
    /// The value itself: a TXT token, a CNAME or MX target.
    Exact(String),
    /// A DKIM key record (`v=DKIM1; k=rsa; p=…`) whose `p=` is this key.
    DkimKey(String),
}

/// The DKIM key record publishing `public_key` (base64 SubjectPublicKeyInfo).
pub fn dkim_key_record(public_key: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_key}")
}

impl ExpectedValue {
    /// The value as it is published.
    pub fn shown(&self) -> String {
        match self {
            Self::Exact(v) => v.clone(),
            Self::DkimKey(k) => dkim_key_record(k),
        }
    }
}

impl Expected {
    /// Whether one record's value is what is expected.
    pub fn matches(&self, record: &str) -> bool {
        match &self.value {
            ExpectedValue::Exact(v) => match self.kind {
                RecordType::Txt => record.trim() == v,
                _ => host(record) == host(v),
            },
            ExpectedValue::DkimKey(k) => dkim_p(record).is_some_and(|p| p == *k),
        }
    }

    /// The finding for an answer to this check's own question.
    pub fn judge(&self, answer: &Answer) -> Finding {
        match answer {
            Answer::Records(rs) if rs.iter().any(|r| self.matches(r)) => Finding::Found,
            Answer::Records(_) => Finding::Missing(VerificationError::InvalidValue),
            Answer::NoData => Finding::Missing(VerificationError::TypeNotFound),
            Answer::NxDomain => Finding::Missing(VerificationError::HostNotFound),
            Answer::Error(_) => Finding::Unknown,
        }
    }

    /// The name relative to `domain` (`_amazonses` for `_amazonses.example.com`).
    fn relative(&self, domain: &str) -> String {
        self.name
            .strip_suffix(domain)
            .and_then(|n| n.strip_suffix('.'))
            .unwrap_or(&self.name)
            .to_owned()
    }
}

fn host(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The `p=` tag of a DKIM key record, whitespace removed (RFC 6376 allows
/// folding inside it).
fn dkim_p(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim() == "p").then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// The value with the quoting mistakes undone: literal quotes and
/// backslashes a DNS console kept inside the value.
fn unquoted(record: &str) -> String {
    record
        .chars()
        .filter(|c| *c != '"' && *c != '\\')
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A further question the verifier asks when a record is not found, to
/// tell the user what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub name: String,
    pub kind: RecordType,
    pub why: ProbeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// The name with the domain appended twice.
    ZoneAppended,
    /// The name without its underscores.
    NoUnderscore,
    /// The domain itself (the name field left empty).
    Apex,
    /// A TXT at a name that should hold a CNAME.
    TxtForCname,
}

/// The probes worth asking when `expected` was not found.
pub fn probes(expected: &Expected, domain: &str) -> Vec<Probe> {
    let mut out = vec![Probe {
        name: format!("{}.{domain}", expected.name),
        kind: expected.kind,
        why: ProbeKind::ZoneAppended,
    }];
    let rel = expected.relative(domain);
    if rel.contains('_') {
        out.push(Probe {
            name: format!("{}.{domain}", rel.replace('_', "")),
            kind: expected.kind,
            why: ProbeKind::NoUnderscore,
        });
    }
    if expected.kind == RecordType::Txt && rel.starts_with("_amazonses") {
        out.push(Probe {
            name: domain.to_owned(),
            kind: RecordType::Txt,
            why: ProbeKind::Apex,
        });
    }
    if expected.kind == RecordType::Cname {
        out.push(Probe {
            name: expected.name.clone(),
            kind: RecordType::Txt,
            why: ProbeKind::TxtForCname,
        });
    }
    out
}

/// A mistake the verifier recognised, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The record that was looked for.
    pub record: String,
    pub kind: DiagnosisKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiagnosisKind {
    /// Not published, and no known mistake explains it.
    NotFound,
    /// Published under `name.domain.domain`: the DNS provider appended the zone.
    ZoneAppended,
    /// Published without the leading underscore.
    MissingUnderscore,
    /// Published at the domain itself instead of `_amazonses.domain`.
    AtApex,
    /// Quote characters or backslashes kept inside the value.
    Quoted,
    /// The name typed into the value field.
    WrongField,
    /// A CNAME that points somewhere else.
    CnameElsewhere,
    /// A TXT record where the CNAME belongs.
    TxtForCname,
    /// A record with another value.
    WrongValue,
    /// A CNAME found while no DKIM zone is served.
    NoDkimZone,
    /// The custom MAIL FROM domain has no SPF record.
    SpfMissing,
    /// The DNS server failed.
    DnsError,
}

impl DiagnosisKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::ZoneAppended => "zone-appended",
            Self::MissingUnderscore => "missing-underscore",
            Self::AtApex => "at-apex",
            Self::Quoted => "quoted",
            Self::WrongField => "wrong-field",
            Self::CnameElsewhere => "cname-elsewhere",
            Self::TxtForCname => "txt-for-cname",
            Self::WrongValue => "wrong-value",
            Self::NoDkimZone => "no-dkim-zone",
            Self::SpfMissing => "spf-missing",
            Self::DnsError => "dns-error",
        }
    }
}

/// Why `expected` was not found, from the answer to it (`primary`) and to
/// its [`probes`]. Always at least one diagnosis.
pub fn diagnose(
    expected: &Expected,
    domain: &str,
    primary: &Answer,
    probes: &[(Probe, Answer)],
) -> Vec<Diagnosis> {
    let name = &expected.name;
    let want = expected.value.shown();
    let kind = expected.kind.as_str();
    let mut out = vec![];
    let mut say = |k: DiagnosisKind, message: String| {
        out.push(Diagnosis {
            record: name.clone(),
            kind: k,
            message,
        })
    };
    for (probe, answer) in probes {
        let Answer::Records(rs) = answer else {
            continue;
        };
        let holds = rs.iter().any(|r| expected.matches(r));
        match probe.why {
            ProbeKind::ZoneAppended if holds => say(
                DiagnosisKind::ZoneAppended,
                format!(
                    "The {kind} record is published as {}: your DNS provider appends the domain to the name you enter. Enter the name as {} (or as {name}. with a trailing dot).",
                    probe.name,
                    expected.relative(domain)
                ),
            ),
            ProbeKind::NoUnderscore => say(
                DiagnosisKind::MissingUnderscore,
                format!(
                    "A {kind} record exists at {}, without the underscore; the record belongs at {name}.",
                    probe.name
                ),
            ),
            ProbeKind::Apex if rs.iter().any(|r| unquoted(r) == unquoted(&want)) => say(
                DiagnosisKind::AtApex,
                format!(
                    "The verification token is published at {domain} itself (the name field was left empty); it belongs at {name}."
                ),
            ),
            ProbeKind::TxtForCname if rs.iter().any(|r| host(&unquoted(r)) == host(&want)) => say(
                DiagnosisKind::TxtForCname,
                format!(
                    "{name} has a TXT record holding {want}; it must be a CNAME record pointing there."
                ),
            ),
            _ => {}
        }
    }
    if let Answer::Records(rs) = primary {
        let rel = expected.relative(domain);
        for r in rs {
            let value = r.trim();
            let is_name = |v: &str| {
                let v = host(&unquoted(v));
                v == host(name) || v == rel.to_ascii_lowercase()
            };
            if is_name(value) {
                say(
                    DiagnosisKind::WrongField,
                    format!(
                        "The record at {name} holds its own name ({value}) as its value: the name was typed into the value field. Its value must be {want}."
                    ),
                );
            } else if value.contains(['"', '\\']) && expected.matches(&unquoted(value)) {
                say(
                    DiagnosisKind::Quoted,
                    format!(
                        "The {kind} record at {name} keeps quote characters inside its value ({value}). Enter the value without them; the DNS console adds the quoting itself."
                    ),
                );
            } else if expected.kind == RecordType::Cname {
                say(
                    DiagnosisKind::CnameElsewhere,
                    format!("{name} is a CNAME to {value}; it must point to {want}."),
                );
            } else {
                say(
                    DiagnosisKind::WrongValue,
                    format!("The {kind} record at {name} holds {value}; expected {want}."),
                );
            }
        }
    }
    if let Answer::Error(e) = primary {
        say(
            DiagnosisKind::DnsError,
            format!("The DNS query for {name} ({kind}) failed: {e}. Sesame will check again."),
        );
    }
    if out.is_empty() {
        let what = match primary {
            Answer::NxDomain => "the name does not exist",
            _ => "the name has no such record",
        };
        out.push(Diagnosis {
            record: name.clone(),
            kind: DiagnosisKind::NotFound,
            message: format!("No {kind} record at {name} ({what}). Publish {kind} {name} {want}."),
        });
    }
    out
}

/// An SOA record, as v2 `VerificationInfo.SOARecord` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoaRecord {
    pub primary_name_server: String,
    pub admin_email: String,
    pub serial_number: i64,
}

impl SoaRecord {
    /// From an [`Answer`] record `mname rname serial`.
    pub fn parse(record: &str) -> Option<Self> {
        let mut it = record.split_whitespace();
        let mname = host(it.next()?);
        let rname = host(it.next()?);
        let serial = it.next()?.parse().ok()?;
        // The first unescaped dot of RNAME stands for the `@`.
        let admin_email = match rname.split_once('.') {
            Some((user, dom)) => format!("{user}@{dom}"),
            None => rname,
        };
        Some(Self {
            primary_name_server: mname,
            admin_email,
            serial_number: serial,
        })
    }
}

/// The timeline of one verified thing (the domain, its DKIM, its custom
/// MAIL FROM domain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Track {
    /// When the current verification started; `None` means at creation.
    pub started_at: Option<Millis>,
    /// When the records were last found.
    pub last_success_at: Option<Millis>,
    /// When records that had been found went missing.
    pub lost_at: Option<Millis>,
}

impl Track {
    /// A verification that starts now (a new key, a new MAIL FROM domain).
    pub fn restart(now: Millis) -> Self {
        Self {
            started_at: Some(now),
            ..Self::default()
        }
    }

    /// SES's transitions. `Failed` and `NotStarted` are not checked. A
    /// `Success` that no check ever saw (set by `--auto-verify` or an
    /// operator) is not taken back by a missing record.
    pub fn step(
        &mut self,
        status: VerificationStatus,
        finding: Finding,
        now: Millis,
        created_at: Millis,
    ) -> VerificationStatus {
        use VerificationStatus::*;
        match (status, finding) {
            (Failed | NotStarted, _) => status,
            (_, Finding::Found) => {
                self.last_success_at = Some(now);
                self.lost_at = None;
                Success
            }
            (Success, Finding::Missing(_)) if self.last_success_at.is_some() => {
                self.lost_at = Some(now);
                TemporaryFailure
            }
            (Success, _) => Success,
            (TemporaryFailure, _) => {
                if now - self.lost_at.unwrap_or(now) >= VERIFY_WINDOW_MS {
                    Failed
                } else {
                    TemporaryFailure
                }
            }
            (Pending, _) => {
                if now - self.started_at.unwrap_or(created_at) >= VERIFY_WINDOW_MS {
                    Failed
                } else {
                    Pending
                }
            }
        }
    }
}

/// What the verifier keeps about a domain identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsState {
    pub identity: Track,
    pub dkim: Track,
    pub mail_from: Track,
    pub last_checked_at: Option<Millis>,
    /// Why the domain is not verified, as of the last check.
    pub error: Option<VerificationError>,
    pub soa: Option<SoaRecord>,
    /// What the last check found wrong, most useful first.
    pub diagnoses: Vec<Diagnosis>,
}

/// Where Sesame's DNS records point: its DKIM zone, if it serves one, and
/// the host custom MAIL FROM domains name in their MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPublishing {
    /// Easy DKIM tokens are CNAMEs to `{token}.{cname_zone}`; without a
    /// zone, the key is published as TXT under each token.
    pub cname_zone: Option<String>,
    /// The MX target of custom MAIL FROM domains (the feedback host).
    pub mail_from_mx: String,
}

impl DnsPublishing {
    /// The SPF record to publish at a custom MAIL FROM domain.
    pub fn spf(&self) -> String {
        format!("v=spf1 a:{} ~all", self.mail_from_mx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerificationStatus::*;

    const H: Millis = 3600 * 1000;

    fn txt(name: &str, v: &str) -> Expected {
        Expected {
            name: name.into(),
            kind: RecordType::Txt,
            value: ExpectedValue::Exact(v.into()),
        }
    }

    #[test]
    fn statuses_and_timings() {
        let mut t = Track::default();
        let missing = Finding::Missing(VerificationError::HostNotFound);
        assert_eq!(t.step(Pending, missing, 71 * H, 0), Pending);
        assert_eq!(t.step(Pending, Finding::Unknown, 71 * H, 0), Pending);
        assert_eq!(t.step(Pending, missing, 72 * H, 0), Failed);
        assert_eq!(t.step(Failed, Finding::Found, 73 * H, 0), Failed);
        assert_eq!(t.step(Pending, Finding::Found, 10 * H, 0), Success);
        assert_eq!(t.last_success_at, Some(10 * H));
        // A DNS failure does not take a verified domain back.
        assert_eq!(t.step(Success, Finding::Unknown, 11 * H, 0), Success);
        assert_eq!(t.step(Success, missing, 12 * H, 0), TemporaryFailure);
        assert_eq!(t.lost_at, Some(12 * H));
        assert_eq!(
            t.step(TemporaryFailure, missing, 83 * H, 0),
            TemporaryFailure
        );
        assert_eq!(t.step(TemporaryFailure, Finding::Found, 84 * H, 0), Success);
        assert_eq!(t.lost_at, None);
        assert_eq!(t.step(Success, missing, 85 * H, 0), TemporaryFailure);
        assert_eq!(t.step(TemporaryFailure, missing, 157 * H, 0), Failed);
        // A success no check saw (auto-verify, an operator) stays.
        let mut manual = Track::default();
        assert_eq!(manual.step(Success, missing, 1, 0), Success);
        // A restarted verification counts from its start.
        let mut r = Track::restart(100 * H);
        assert_eq!(r.step(Pending, missing, 150 * H, 0), Pending);
    }

    #[test]
    fn judging_answers() {
        let e = txt("_amazonses.example.com", "tok123");
        assert_eq!(
            e.judge(&Answer::Records(vec!["other".into(), " tok123 ".into()])),
            Finding::Found
        );
        assert_eq!(
            e.judge(&Answer::Records(vec!["other".into()])),
            Finding::Missing(VerificationError::InvalidValue)
        );
        assert_eq!(
            e.judge(&Answer::NoData),
            Finding::Missing(VerificationError::TypeNotFound)
        );
        assert_eq!(
            e.judge(&Answer::NxDomain),
            Finding::Missing(VerificationError::HostNotFound)
        );
        assert_eq!(e.judge(&Answer::Error("timeout".into())), Finding::Unknown);
        let k = Expected {
            name: "s._domainkey.example.com".into(),
            kind: RecordType::Txt,
            value: ExpectedValue::DkimKey("MIIBkey".into()),
        };
        assert!(k.matches("v=DKIM1; k=rsa; p=MII Bkey"));
        assert!(k.matches("p=MIIBkey"));
        assert!(!k.matches("v=DKIM1; k=rsa; p=\"MIIBkey\""));
        let c = Expected {
            name: "t._domainkey.example.com".into(),
            kind: RecordType::Cname,
            value: ExpectedValue::Exact("t.dkim.sesame.test".into()),
        };
        assert!(c.matches("T.dkim.sesame.test."));
    }

    fn kinds(d: &[Diagnosis]) -> Vec<DiagnosisKind> {
        d.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn diagnoses() {
        use DiagnosisKind::*;
        let e = txt("_amazonses.example.com", "tok123");
        let ps = probes(&e, "example.com");
        assert_eq!(
            ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            vec![
                "_amazonses.example.com.example.com",
                "amazonses.example.com",
                "example.com"
            ]
        );
        let rec = |v: &str| Answer::Records(vec![v.into()]);
        let answered = |i: usize, a: Answer| {
            ps.iter()
                .enumerate()
                .map(|(j, p)| (p.clone(), if i == j { a.clone() } else { Answer::NxDomain }))
                .collect::<Vec<_>>()
        };
        let d = diagnose(
            &e,
            "example.com",
            &Answer::NxDomain,
            &answered(0, rec("tok123")),
        );
        assert_eq!(kinds(&d), vec![ZoneAppended]);
        assert!(
            d[0].message.contains("Enter the name as _amazonses"),
            "{}",
            d[0].message
        );
        let d = diagnose(
            &e,
            "example.com",
            &Answer::NxDomain,
            &answered(1, rec("tok123")),
        );
        assert_eq!(kinds(&d), vec![MissingUnderscore]);
        let d = diagnose(
            &e,
            "example.com",
            &Answer::NoData,
            &answered(2, rec("\"tok123\"")),
        );
        assert_eq!(kinds(&d), vec![AtApex]);
        let d = diagnose(
            &e,
            "example.com",
            &rec("\"tok123\""),
            &answered(9, Answer::NoData),
        );
        assert_eq!(kinds(&d), vec![Quoted]);
        let d = diagnose(
            &e,
            "example.com",
            &rec("_amazonses.example.com"),
            &answered(9, Answer::NoData),
        );
        assert_eq!(kinds(&d), vec![WrongField]);
        let d = diagnose(
            &e,
            "example.com",
            &rec("nope"),
            &answered(9, Answer::NoData),
        );
        assert_eq!(kinds(&d), vec![WrongValue]);
        let d = diagnose(
            &e,
            "example.com",
            &Answer::NxDomain,
            &answered(9, Answer::NoData),
        );
        assert_eq!(kinds(&d), vec![NotFound]);

        let c = Expected {
            name: "t1._domainkey.example.com".into(),
            kind: RecordType::Cname,
            value: ExpectedValue::Exact("t1.dkim.sesame.test".into()),
        };
        let ps = probes(&c, "example.com");
        assert_eq!(ps.last().unwrap().why, ProbeKind::TxtForCname);
        let with_txt: Vec<_> = ps
            .iter()
            .map(|p| {
                let a = if p.why == ProbeKind::TxtForCname {
                    rec("t1.dkim.sesame.test")
                } else {
                    Answer::NxDomain
                };
                (p.clone(), a)
            })
            .collect();
        let d = diagnose(&c, "example.com", &Answer::NoData, &with_txt);
        assert_eq!(kinds(&d), vec![TxtForCname]);
        let none: Vec<_> = ps.iter().map(|p| (p.clone(), Answer::NxDomain)).collect();
        let d = diagnose(&c, "example.com", &rec("t1.dkim.amazonses.com"), &none);
        assert_eq!(kinds(&d), vec![CnameElsewhere]);
        assert!(d[0].message.contains("must point to t1.dkim.sesame.test"));
    }

    #[test]
    fn soa_records() {
        let s = SoaRecord::parse("ns1.example.com. hostmaster.example.com. 2024010101").unwrap();
        assert_eq!(s.primary_name_server, "ns1.example.com");
        assert_eq!(s.admin_email, "hostmaster@example.com");
        assert_eq!(s.serial_number, 2024010101);
        assert!(SoaRecord::parse("garbage").is_none());
    }
}
