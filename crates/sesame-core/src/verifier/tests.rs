//! The verifier against an in-memory zone (the loopback DNS server is
//! exercised by the interop suite) and a real SQLite store.

use super::*;
use crate::IdentityService;
use crate::clock::ManualClock;
use crate::identities::{CreateIdentity, DkimRequest};
use sesame_model::verification::{DiagnosisKind, VerificationError};
use sesame_model::{AccountId, Region};
use sesame_store::SqliteStore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const H: Millis = 3600 * 1000;

/// A zone the tests edit, counting queries and the most in flight at once.
#[derive(Default)]
struct Zone {
    records: Mutex<HashMap<(String, RecordType), Vec<String>>>,
    queries: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    broken: Mutex<bool>,
}

impl Zone {
    fn set(&self, name: &str, kind: RecordType, values: &[&str]) {
        self.records.lock().unwrap().insert(
            (name.to_owned(), kind),
            values.iter().map(|v| v.to_string()).collect(),
        );
    }
    fn remove(&self, name: &str, kind: RecordType) {
        self.records
            .lock()
            .unwrap()
            .remove(&(name.to_owned(), kind));
    }
}

#[async_trait::async_trait]
impl DnsLookup for Zone {
    async fn query(&self, name: &str, kind: RecordType) -> Answer {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if *self.broken.lock().unwrap() {
            return Answer::Error("SERVFAIL".into());
        }
        let r = self.records.lock().unwrap();
        match r.get(&(name.to_owned(), kind)) {
            Some(v) => Answer::Records(v.clone()),
            None if r.keys().any(|(n, _)| n == name) => Answer::NoData,
            None => Answer::NxDomain,
        }
    }
}

struct Fixture {
    ids: IdentityService,
    store: Arc<dyn Store>,
    verifier: Arc<Verifier>,
    zone: Arc<Zone>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture(cname_zone: Option<&str>, max_in_flight: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let zone = Arc::new(Zone::default());
    let verifier = Arc::new(Verifier::new(
        store.clone(),
        clock.clone(),
        zone.clone(),
        VerifierSettings {
            publishing: DnsPublishing {
                cname_zone: cname_zone.map(str::to_owned),
                mail_from_mx: "feedback.sesame.test".into(),
            },
            interval: Duration::from_secs(60),
            max_in_flight,
        },
    ));
    Fixture {
        ids: IdentityService::new(store.clone(), clock.clone(), false),
        store,
        verifier,
        zone,
        clock,
        _dir: dir,
    }
}

fn scope() -> Scope {
    Scope::new(
        AccountId::parse("123456789012").unwrap(),
        Region::parse("us-east-1").unwrap(),
    )
}

fn create(name: &str, dkim: Option<DkimRequest>) -> CreateIdentity {
    CreateIdentity {
        name: name.into(),
        tags: vec![],
        configuration_set: None,
        dkim,
    }
}

#[tokio::test]
async fn legacy_txt_verifies_then_lapses_then_fails() {
    let f = fixture(None, 8).await;
    let s = scope();
    let token = f.ids.verify_domain(&s, "example.com").await.unwrap();
    f.zone.set(
        "example.com",
        RecordType::Soa,
        &["ns1.example.com. admin.example.com. 7"],
    );

    let r = f.verifier.pass().await.unwrap();
    assert_eq!((r.checked, r.changed), (1, 0));
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Pending);
    assert_eq!(i.dns.error, Some(VerificationError::HostNotFound));
    assert_eq!(i.dns.diagnoses[0].kind, DiagnosisKind::NotFound);
    assert_eq!(i.dns.soa.as_ref().unwrap().serial_number, 7);
    assert!(i.dns.last_checked_at.is_some());

    f.zone
        .set("_amazonses.example.com", RecordType::Txt, &[&token]);
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.changed, 1);
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Success);
    assert_eq!(i.dns.error, None);
    assert!(i.dns.diagnoses.is_empty());
    assert_eq!(i.dns.identity.last_success_at, Some(f.clock.now_ms()));

    // Removed: TemporaryFailure, then Failed after 72 hours.
    f.zone.remove("_amazonses.example.com", RecordType::Txt);
    f.clock.advance(H);
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::TemporaryFailure);
    assert!(
        i.is_verified(),
        "still allowed to send during the grace period"
    );
    // A DNS outage changes nothing.
    *f.zone.broken.lock().unwrap() = true;
    f.clock.advance(71 * H);
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::TemporaryFailure);
    assert_eq!(i.dns.error, Some(VerificationError::DnsServerError));
    *f.zone.broken.lock().unwrap() = false;
    f.clock.advance(H);
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Failed);
    assert!(!i.is_verified());
    // A failed identity is no longer asked about.
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.checked, 0);
    // Verifying it again (v1) restarts: Pending for another 72 hours.
    assert_eq!(f.ids.verify_domain(&s, "example.com").await.unwrap(), token);
    let i = f.ids.get(&s, "example.com").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Pending);
}

#[tokio::test]
async fn statuses_no_check_saw_are_left_alone() {
    let f = fixture(None, 8).await;
    let s = scope();
    f.ids.verify_domain(&s, "operator.example").await.unwrap();
    f.ids.mark_verified(&s, "operator.example").await.unwrap();
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.checked, 0, "nothing DNS could change");
    assert_eq!(f.zone.queries.load(Ordering::SeqCst), 0);
    // Asked explicitly, it is checked, and its Success stands.
    let i = f.verifier.check(&s, "operator.example").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Success);
    assert!(i.dns.last_checked_at.is_some());
}

#[tokio::test]
async fn pending_fails_after_72_hours() {
    let f = fixture(None, 8).await;
    let s = scope();
    f.ids.verify_domain(&s, "slow.example").await.unwrap();
    f.clock.advance(71 * H);
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "slow.example").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Pending);
    f.clock.advance(H);
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.changed, 1);
    let i = f.ids.get(&s, "slow.example").await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Failed);
}

#[tokio::test]
async fn easy_dkim_cnames_verify_the_domain() {
    let f = fixture(Some("dkim.sesame.test"), 8).await;
    let s = scope();
    let i = f
        .ids
        .create(&s, create("mail.example.org", None))
        .await
        .unwrap();
    let tokens = i.dkim.tokens.clone();
    // Two of three published, the third as TXT where the CNAME belongs.
    for t in &tokens[..2] {
        f.zone.set(
            &format!("{t}._domainkey.mail.example.org"),
            RecordType::Cname,
            &[&format!("{t}.dkim.sesame.test")],
        );
    }
    let third = format!("{}._domainkey.mail.example.org", tokens[2]);
    f.zone.set(
        &third,
        RecordType::Txt,
        &[&format!("{}.dkim.sesame.test", tokens[2])],
    );
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "mail.example.org").await.unwrap();
    assert_eq!(i.dkim.status, VerificationStatus::Pending);
    assert_eq!(i.verification_status, VerificationStatus::Pending);
    let kinds: Vec<_> = i.dns.diagnoses.iter().map(|d| d.kind).collect();
    assert!(kinds.contains(&DiagnosisKind::TxtForCname), "{kinds:?}");
    assert_eq!(i.dns.diagnoses[0].record, third);

    f.zone.remove(&third, RecordType::Txt);
    f.zone.set(
        &third,
        RecordType::Cname,
        &[&format!("{}.DKIM.sesame.test.", tokens[2])],
    );
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "mail.example.org").await.unwrap();
    assert_eq!(i.dkim.status, VerificationStatus::Success);
    assert_eq!(i.verification_status, VerificationStatus::Success);
    assert!(i.dns.diagnoses.is_empty(), "{:?}", i.dns.diagnoses);
}

#[tokio::test]
async fn dkim_verified_later_verifies_a_failed_domain() {
    let f = fixture(Some("dkim.sesame.test"), 8).await;
    let s = scope();
    let i = f
        .ids
        .create(&s, create("late.example", None))
        .await
        .unwrap();
    f.clock.advance(73 * H);
    f.verifier.pass().await.unwrap();
    let i2 = f.ids.get(&s, "late.example").await.unwrap();
    assert_eq!(
        (i2.verification_status, i2.dkim.status),
        (VerificationStatus::Failed, VerificationStatus::Failed)
    );
    // A new key restarts DKIM; once its records are found the domain is
    // verified again.
    f.ids
        .put_dkim_signing(
            &s,
            "late.example",
            DkimRequest::Easy(Some(sesame_model::KeyLength::Rsa1024)),
        )
        .await
        .unwrap();
    for t in &i.dkim.tokens {
        f.zone.set(
            &format!("{t}._domainkey.late.example"),
            RecordType::Cname,
            &[&format!("{t}.dkim.sesame.test")],
        );
    }
    f.verifier.pass().await.unwrap();
    let i3 = f.ids.get(&s, "late.example").await.unwrap();
    assert_eq!(i3.dkim.status, VerificationStatus::Success);
    assert_eq!(i3.verification_status, VerificationStatus::Success);
}

#[tokio::test]
async fn dkim_key_as_txt_without_a_zone_and_byodkim() {
    let f = fixture(None, 8).await;
    let s = scope();
    let i = f.ids.create(&s, create("txt.example", None)).await.unwrap();
    let key = i.dkim.key.clone().unwrap().public_spki_b64;
    for t in &i.dkim.tokens {
        f.zone.set(
            &format!("{t}._domainkey.txt.example"),
            RecordType::Txt,
            &[&format!("v=DKIM1; k=rsa; p={key}")],
        );
    }
    // A CNAME to SES's zone, with no zone served here, is explained.
    let other = f.ids.create(&s, create("aws.example", None)).await.unwrap();
    for t in &other.dkim.tokens {
        f.zone.set(
            &format!("{t}._domainkey.aws.example"),
            RecordType::Cname,
            &[&format!("{t}.dkim.amazonses.com")],
        );
    }
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "txt.example").await.unwrap();
    assert_eq!(i.dkim.status, VerificationStatus::Success);
    let o = f.ids.get(&s, "aws.example").await.unwrap();
    assert_eq!(o.dkim.status, VerificationStatus::Pending);
    assert_eq!(o.dns.error, Some(VerificationError::TypeNotFound));
    assert_eq!(o.dns.diagnoses[0].kind, DiagnosisKind::NoDkimZone);
    assert!(o.dns.diagnoses[0].message.contains("dkim.amazonses.com"));
}

#[tokio::test]
async fn mail_from_mx_and_spf() {
    let f = fixture(None, 8).await;
    let s = scope();
    f.ids.verify_domain(&s, "example.net").await.unwrap();
    f.ids
        .set_mail_from(&s, "example.net", Some("bounce.example.net"), true)
        .await
        .unwrap();
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "example.net").await.unwrap();
    assert_eq!(i.mail_from.status, Some(VerificationStatus::Pending));
    f.zone.set(
        "bounce.example.net",
        RecordType::Mx,
        &["feedback.sesame.test"],
    );
    let checked = f.verifier.check(&s, "example.net").await.unwrap();
    assert_eq!(checked.mail_from.status, Some(VerificationStatus::Success));
    let kinds: Vec<_> = checked.dns.diagnoses.iter().map(|d| d.kind).collect();
    assert!(kinds.contains(&DiagnosisKind::SpfMissing), "{kinds:?}");
    f.zone.set(
        "bounce.example.net",
        RecordType::Txt,
        &["v=spf1 a:feedback.sesame.test ~all"],
    );
    let checked = f.verifier.check(&s, "example.net").await.unwrap();
    assert!(
        !checked
            .dns
            .diagnoses
            .iter()
            .any(|d| d.kind == DiagnosisKind::SpfMissing)
    );
    assert!(f.verifier.check(&s, "me@example.net").await.is_err());
}

#[tokio::test]
async fn an_email_identitys_mail_from_domain_is_checked_too() {
    let f = fixture(None, 8).await;
    let s = scope();
    f.ids.verify_email(&s, "me@shop.example").await.unwrap();
    f.ids.mark_verified(&s, "me@shop.example").await.unwrap();
    f.ids
        .set_mail_from(&s, "me@shop.example", Some("mail.shop.example"), true)
        .await
        .unwrap();
    f.verifier.pass().await.unwrap();
    let i = f.ids.get(&s, "me@shop.example").await.unwrap();
    assert_eq!(i.mail_from.status, Some(VerificationStatus::Pending));
    assert_eq!(i.dns.diagnoses[0].record, "mail.shop.example");
    f.zone.set(
        "mail.shop.example",
        RecordType::Mx,
        &["feedback.sesame.test"],
    );
    let r = f.verifier.pass().await.unwrap();
    assert_eq!((r.checked, r.changed), (1, 1));
    let i = f.ids.get(&s, "me@shop.example").await.unwrap();
    assert_eq!(i.mail_from.status, Some(VerificationStatus::Success));
    assert_eq!(
        i.verification_status,
        VerificationStatus::Success,
        "the address itself is untouched"
    );
    // Its records are the MAIL FROM domain's.
    let records = i.dns_records(&f.verifier.settings().publishing);
    assert_eq!(
        records.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec!["MX", "TXT"]
    );
}

#[tokio::test]
async fn queries_in_flight_stay_within_the_limit() {
    let f = fixture(None, 4).await;
    let s = scope();
    for n in 0..60 {
        f.ids
            .verify_domain(&s, &format!("d{n}.example"))
            .await
            .unwrap();
    }
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.checked, 60);
    assert!(f.zone.queries.load(Ordering::SeqCst) >= 60);
    let max = f.zone.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=4).contains(&max), "{max} queries in flight");
}

#[tokio::test]
async fn expired_email_links_are_failed_by_a_pass() {
    let f = fixture(None, 8).await;
    let s = scope();
    let mailer = std::sync::Arc::new(crate::SendService::new(
        f.store.clone(),
        f.clock.clone(),
        std::sync::Arc::new(crate::AccountService::new(
            f.store.clone(),
            f.clock.clone(),
            false,
        )),
    ));
    let ids = f.ids.with_links(
        crate::identities::LinkSettings {
            public_url: "http://127.0.0.1:1".into(),
            from: "no-reply@sesame.test".into(),
        },
        mailer,
    );
    ids.verify_email(&s, "me@example.com").await.unwrap();
    f.clock.advance(25 * H);
    let r = f.verifier.pass().await.unwrap();
    assert_eq!(r.changed, 1);
    let rows = f
        .verifier
        .store
        .list_identities(
            &s,
            &sesame_store::IdentityQuery {
                status: Some(VerificationStatus::Failed),
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

/// Two nodes sharing a PostgreSQL store both run the verifier; the lease
/// gives each pass to one of them, so each domain is checked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_check_each_domain_once_a_pass() {
    let url = sesame_store::conformance::postgres_database().await;
    let a: Arc<dyn Store> = Arc::new(sesame_store::PgStore::open(&url, "a").await.unwrap());
    let b: Arc<dyn Store> = Arc::new(sesame_store::PgStore::open(&url, "b").await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let zone = Arc::new(Zone::default());
    let ids = IdentityService::new(a.clone(), clock.clone(), false);
    for i in 0..5 {
        ids.create(&scope(), create(&format!("d{i}.nodes.test"), None))
            .await
            .unwrap();
    }
    let verifier = |store: &Arc<dyn Store>| {
        Arc::new(Verifier::new(
            store.clone(),
            clock.clone(),
            zone.clone(),
            VerifierSettings {
                publishing: DnsPublishing {
                    cname_zone: None,
                    mail_from_mx: "feedback.sesame.test".into(),
                },
                interval: Duration::from_secs(3600),
                max_in_flight: 4,
            },
        ))
    };
    // What one pass asks, on a third verifier of its own (no lease).
    verifier(&a).pass().await.unwrap();
    let one_pass = zone.queries.swap(0, Ordering::SeqCst);
    assert!(one_pass >= 5, "a pass asks about every domain");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let runs = [
        tokio::spawn(verifier(&a).run(stop.clone())),
        tokio::spawn(verifier(&b).run(stop.clone())),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_tx.send(true).unwrap();
    for r in runs {
        r.await.unwrap();
    }
    assert_eq!(zone.queries.load(Ordering::SeqCst), one_pass);
}
