use super::*;
use crate::clock::ManualClock;
use crate::identities::IdentityService;
use sesame_model::{AccountId, MessageFilter, Region};
use sesame_store::SqliteStore;

struct Fixture {
    svc: SendService,
    ids: IdentityService,
    accounts: Arc<AccountService>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let accounts = Arc::new(AccountService::new(store.clone(), clock.clone(), false));
    Fixture {
        svc: SendService::new(store.clone(), clock.clone(), accounts.clone()),
        ids: IdentityService::new(store.clone(), clock.clone(), false),
        accounts,
        store,
        clock,
        _dir: dir,
    }
}

impl Fixture {
    /// Sends a second after the previous send, clear of the sandbox's rate.
    async fn send(&self, s: &Scope, o: Outgoing) -> Result<String, Error> {
        self.clock.advance(1000);
        self.svc.send(s, o).await
    }
}

fn scope(region: &str) -> Scope {
    Scope::new(
        AccountId::parse("123456789012").unwrap(),
        Region::parse(region).unwrap(),
    )
}

fn simple(from: &str, to: &[&str]) -> Outgoing {
    let mut o = Outgoing::new(
        "SendEmail",
        Content::Simple {
            subject: "Hi".into(),
            text: Some("hello".into()),
            html: None,
            headers: vec![],
            attachments: vec![],
        },
    );
    o.source = Some(from.into());
    o.to = to.iter().map(|s| s.to_string()).collect();
    o
}

async fn verify(f: &Fixture, s: &Scope, name: &str) {
    if name.contains('@') {
        f.ids.verify_email(s, name).await.unwrap();
    } else {
        f.ids.verify_domain(s, name).await.unwrap();
    }
    f.ids.mark_verified(s, name).await.unwrap();
}

#[tokio::test]
async fn sandbox_rejects_unverified_recipients_with_ses_text() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "sender@example.com").await;
    let e = f
        .send(
            &s,
            simple("sender@example.com", &["a@x.com", "Bee <b@y.com>"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MessageRejected);
    assert_eq!(
        e.message,
        "Email address is not verified. The following identities failed the check in region US-EAST-1: a@x.com, Bee <b@y.com>"
    );
    let r = f.store.list_rejections(&s, 5).await.unwrap();
    assert_eq!(r[0].rule, "sandbox-recipient-not-verified");
    assert_eq!(r[0].identities, vec!["a@x.com", "Bee <b@y.com>"]);
    // Verify the recipients and it goes through; the simulator needs nothing.
    verify(&f, &s, "a@x.com").await;
    verify(&f, &s, "y.com").await;
    f.send(
        &s,
        simple("sender@example.com", &["a@x.com", "Bee <b@y.com>"]),
    )
    .await
    .unwrap();
    // Two recipients took two seconds of the sandbox's rate.
    f.clock.advance(1000);
    let id = f
        .send(
            &s,
            simple("sender@example.com", &["success+x@simulator.amazonses.com"]),
        )
        .await;
    assert!(id.is_ok());
}

#[tokio::test]
async fn senders_must_be_verified_everywhere() {
    let f = fixture().await;
    let s = scope("us-east-1");
    f.accounts.approve(&s).await.unwrap();
    let e = f
        .send(&s, simple("Me <me@nowhere.com>", &["a@x.com"]))
        .await
        .unwrap_err();
    assert!(
        e.message.ends_with("region US-EAST-1: Me <me@nowhere.com>"),
        "{}",
        e.message
    );
    // A verified domain covers its addresses and subdomains; +labels are fine.
    verify(&f, &s, "example.com").await;
    f.send(&s, simple("x@mail.example.com", &["anyone@gmail.com"]))
        .await
        .unwrap();
    verify(&f, &s, "user@other.com").await;
    f.send(&s, simple("user+news@other.com", &["anyone@gmail.com"]))
        .await
        .unwrap();
    // Addresses are case-sensitive.
    assert!(
        f.send(&s, simple("User@other.com", &["anyone@gmail.com"]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn verification_is_per_region() {
    let f = fixture().await;
    let east = scope("us-east-1");
    verify(&f, &east, "example.com").await;
    let e = f
        .send(
            &scope("eu-west-1"),
            simple("a@example.com", &["b@example.com"]),
        )
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("in region EU-WEST-1: a@example.com, b@example.com"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn production_access_lifts_the_sandbox_in_one_region() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    assert!(
        f.send(&s, simple("a@example.com", &["x@gmail.com"]))
            .await
            .is_err()
    );
    f.accounts
        .put_details(
            &s,
            crate::accounts::DetailsRequest {
                mail_type: Some("TRANSACTIONAL".into()),
                website_url: Some("https://example.com".into()),
                production_access_enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let a = f.accounts.get(&s).await.unwrap();
    assert!(a.review_pending() && !a.production_access);
    let again = f
        .accounts
        .put_details(
            &s,
            crate::accounts::DetailsRequest {
                mail_type: Some("TRANSACTIONAL".into()),
                website_url: Some("https://example.com".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(again.unwrap_err().kind, ErrorKind::Conflict);
    f.accounts.approve(&s).await.unwrap();
    f.send(&s, simple("a@example.com", &["x@gmail.com"]))
        .await
        .unwrap();
    let west = scope("us-west-2");
    verify(&f, &west, "example.com").await;
    assert!(
        f.send(&west, simple("a@example.com", &["x@gmail.com"]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn quotas_count_recipients_and_skip_the_simulator() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    f.accounts
        .set_quota(&s, Some(3.0), Some(100.0))
        .await
        .unwrap();
    f.send(
        &s,
        simple("a@example.com", &["b@example.com", "c@example.com"]),
    )
    .await
    .unwrap();
    f.send(
        &s,
        simple("a@example.com", &["success@simulator.amazonses.com"]),
    )
    .await
    .unwrap();
    let e = f
        .send(
            &s,
            simple("a@example.com", &["d@example.com", "e@example.com"]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::DailyQuotaExceeded,
            "Daily message quota exceeded"
        )
    );
    f.send(&s, simple("a@example.com", &["d@example.com"]))
        .await
        .unwrap();
    assert_eq!(f.accounts.quota(&s).await.unwrap().sent_last_24h, 3);
    // The sandbox's one message per second.
    let g = fixture().await;
    verify(&g, &s, "example.com").await;
    g.svc
        .send(&s, simple("a@example.com", &["b@example.com"]))
        .await
        .unwrap();
    let e = g
        .svc
        .send(&s, simple("a@example.com", &["b@example.com"]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::RateExceeded, "Maximum sending rate exceeded")
    );
    g.clock.advance(1000);
    g.svc
        .send(&s, simple("a@example.com", &["b@example.com"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn other_checks() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    let many: Vec<String> = (0..51).map(|i| format!("r{i}@example.com")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = f
        .send(&s, simple("a@example.com", &refs))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Recipient count exceeds 50.");
    let e = f
        .send(&s, simple("a@example.com", &["nope"]))
        .await
        .unwrap_err();
    assert_eq!(e.message, "Missing final '@domain'");
    let mut tagged = simple("a@example.com", &["b@example.com"]);
    tagged.tags = vec![("bad name".into(), "v".into())];
    assert!(
        f.send(&s, tagged)
            .await
            .unwrap_err()
            .message
            .starts_with("Invalid tag name <bad name>")
    );
    let mut cs = simple("a@example.com", &["b@example.com"]);
    cs.configuration_set = Some("missing".into());
    assert_eq!(
        f.send(&s, cs).await.unwrap_err().kind,
        ErrorKind::ConfigurationSetDoesNotExist
    );
    f.accounts.set_sending_enabled(&s, false).await.unwrap();
    let e = f
        .send(&s, simple("a@example.com", &["b@example.com"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::SendingPaused);
}

#[tokio::test]
async fn a_send_through_a_paused_configuration_set_is_refused_and_recorded() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    let sets = crate::ConfigurationSetService::new(f.store.clone(), f.clock.clone());
    sets.create(&s, "cs", vec![], Default::default())
        .await
        .unwrap();
    let through = |cs: &str| {
        let mut o = simple("a@example.com", &["b@example.com"]);
        o.configuration_set = Some(cs.into());
        o
    };
    verify(&f, &s, "b@example.com").await;
    f.send(&s, through("cs")).await.unwrap();
    let pause = crate::configuration_sets::SetOptions {
        sending_enabled: Some(false),
        ..Default::default()
    };
    sets.configure(&s, "cs", pause).await.unwrap();
    let e = f.send(&s, through("cs")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ConfigurationSetSendingPaused);
    assert_eq!(
        e.message,
        "Sending is paused for the configuration set <cs>."
    );
    let recorded = f.store.list_rejections(&s, 10).await.unwrap();
    assert_eq!(recorded[0].rule, "configuration-set-sending-paused");
    assert_eq!(
        sets.create(&s, "cs", vec![], Default::default())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ConfigurationSetAlreadyExists
    );
    sets.delete(&s, "cs").await.unwrap();
    assert_eq!(
        f.send(&s, through("cs")).await.unwrap_err().kind,
        ErrorKind::ConfigurationSetDoesNotExist
    );
}

#[tokio::test]
async fn raw_messages_take_envelope_from_headers_and_drop_bcc() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    let raw = b"From: Sender <a@example.com>\r\nTo: b@example.com\r\nBcc: c@example.com\r\nSubject: raw\r\n\r\nhi\r\n".to_vec();
    let id = f
        .send(&s, Outgoing::new("SendRawEmail", Content::Raw(raw)))
        .await
        .unwrap();
    let m = f.store.get_message(&id).await.unwrap().unwrap().message;
    assert_eq!(m.destinations, vec!["b@example.com", "c@example.com"]);
    assert_eq!(m.source, "a@example.com");
    let text = String::from_utf8(m.raw).unwrap();
    assert!(text.starts_with("Message-ID: <"));
    assert!(!text.contains("c@example.com"));
    let listed = f
        .store
        .list_messages(&MessageFilter {
            recipient: Some("c@example.com".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // An unverified From header is refused even with a verified Source.
    let raw = b"From: evil@elsewhere.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nhi\r\n".to_vec();
    let mut o = Outgoing::new("SendRawEmail", Content::Raw(raw));
    o.source = Some("a@example.com".into());
    let e = f.send(&s, o).await.unwrap_err();
    assert!(e.message.ends_with(": evil@elsewhere.com"), "{}", e.message);
}

#[test]
fn message_ids_look_like_ses() {
    let id = message_id(1_700_000_000_000);
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.len(), 7, "{id}");
    assert_eq!(parts[0].len(), 16);
    assert_eq!(parts[6], "000000");
    assert_eq!(
        &parts[1..6].iter().map(|p| p.len()).collect::<Vec<_>>(),
        &[8, 4, 4, 4, 12]
    );
}

fn templated(from: &str, to: &[&str], name: &str, data: &str) -> Outgoing {
    let mut o = Outgoing::new(
        "SendTemplatedEmail",
        Content::Template {
            template: TemplateRef::Named(name.into()),
            data: data.into(),
            headers: vec![],
            attachments: vec![],
        },
    );
    o.source = Some(from.into());
    o.to = to.iter().map(|s| s.to_string()).collect();
    o
}

async fn welcome(f: &Fixture, s: &Scope) {
    let t = crate::TemplateService::new(f.store.clone(), f.clock.clone());
    t.create(
        s,
        "welcome",
        sesame_model::TemplateParts {
            subject: Some("Hi {{name}}".into()),
            text: Some("{{#each items}}{{this}};{{/each}}".into()),
            html: None,
        },
        vec![],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn templated_sends_render_or_fail_afterwards() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    welcome(&f, &s).await;
    let id = f
        .send(
            &s,
            templated(
                "a@example.com",
                &["b@example.com"],
                "welcome",
                r#"{"name":"Ann","items":["x","y"]}"#,
            ),
        )
        .await
        .unwrap();
    let m = f.store.get_message(&id).await.unwrap().unwrap().message;
    assert_eq!(m.subject.as_deref(), Some("Hi Ann"));
    assert!(String::from_utf8(m.raw).unwrap().contains("x;y;"));

    let e = f
        .send(
            &s,
            templated("a@example.com", &["b@example.com"], "nope", "{}"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (
            ErrorKind::TemplateDoesNotExist,
            "Template nope does not exist."
        )
    );

    // Missing data: accepted, nothing stored, the failure recorded.
    let id = f
        .send(
            &s,
            templated(
                "a@example.com",
                &["b@example.com"],
                "welcome",
                r#"{"items":[]}"#,
            ),
        )
        .await
        .unwrap();
    assert!(f.store.get_message(&id).await.unwrap().is_none());
    let r = &f.store.list_rejections(&s, 1).await.unwrap()[0];
    assert_eq!(r.rule, "rendering-failure");
    assert!(
        r.message.contains("Attribute 'name' is not present"),
        "{}",
        r.message
    );
    // The sandbox still applies to templated sends, synchronously.
    let e = f
        .send(
            &s,
            templated("a@example.com", &["x@gmail.com"], "welcome", "{}"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MessageRejected);
}

#[tokio::test]
async fn bulk_reports_per_destination() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    welcome(&f, &s).await;
    f.accounts.set_quota(&s, None, Some(100.0)).await.unwrap();
    let common = templated(
        "a@example.com",
        &[],
        "welcome",
        r#"{"name":"Default","items":[]}"#,
    );
    let dests = vec![
        BulkDestination {
            to: vec!["b@example.com".into()],
            replacement_data: Some(r#"{"name":"Bo"}"#.into()),
            ..Default::default()
        },
        BulkDestination {
            to: vec!["x@gmail.com".into()],
            ..Default::default()
        },
        BulkDestination {
            to: vec!["c@example.com".into()],
            ..Default::default()
        },
    ];
    let results = f.svc.send_bulk(&s, common.clone(), dests).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().kind,
        ErrorKind::MessageRejected
    );
    let m = f
        .store
        .get_message(results[0].as_ref().unwrap())
        .await
        .unwrap()
        .unwrap()
        .message;
    assert_eq!(m.subject.as_deref(), Some("Hi Bo"));
    let m = f
        .store
        .get_message(results[2].as_ref().unwrap())
        .await
        .unwrap()
        .unwrap()
        .message;
    assert_eq!(m.subject.as_deref(), Some("Hi Default"));
    let mut missing = common;
    missing.content = Content::Template {
        template: TemplateRef::Named("nope".into()),
        data: "{}".into(),
        headers: vec![],
        attachments: vec![],
    };
    let e = f
        .svc
        .send_bulk(&s, missing, vec![BulkDestination::default()])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TemplateDoesNotExist);
}

/// A complaint comes back to the sender as an abuse report (ARF), once:
/// the same event forwarded again (publishing repeated after a crash)
/// finds its forwarded message and sends nothing more.
#[tokio::test]
async fn forwarded_feedback_is_an_arf_report_sent_once() {
    let f = fixture().await;
    let s = scope("us-east-1");
    verify(&f, &s, "example.com").await;
    verify(&f, &s, "reader@example.org").await;
    let id = f
        .send(&s, simple("news@example.com", &["reader@example.org"]))
        .await
        .unwrap();
    let stored = f.store.get_message(&id).await.unwrap().unwrap();
    let e = Event {
        kind: EventKind::Complaint,
        scope: s.clone(),
        message_id: id.clone(),
        at: f.clock.now_ms(),
        recipients: vec!["reader@example.org".into()],
        mail: MailInfo::of(&stored.message),
        detail: EventDetail::Complaint {
            feedback_type: "abuse".into(),
            user_agent: "Reader/1.0".into(),
            feedback_id: "f1".into(),
        },
    };
    let to_sender = || MessageFilter {
        recipient: Some("news@example.com".into()),
        limit: 10,
        ..Default::default()
    };
    f.svc
        .forward_feedback(&e, "MAILER-DAEMON@sesame.test")
        .await
        .unwrap();
    f.svc
        .forward_feedback(&e, "MAILER-DAEMON@sesame.test")
        .await
        .unwrap();
    let got = f.store.list_messages(&to_sender()).await.unwrap();
    assert_eq!(got.len(), 1, "forwarded once");
    let raw = String::from_utf8_lossy(&got[0].message.raw);
    assert!(
        raw.contains("report-type=\"feedback-report\"")
            || raw.contains("report-type=feedback-report"),
        "{raw}"
    );
    assert!(raw.contains("Feedback-Type: abuse"), "{raw}");
    assert!(
        raw.contains("Original-Rcpt-To: <reader@example.org>"),
        "{raw}"
    );
    assert!(raw.contains("User-Agent: Reader/1.0"), "{raw}");
}
