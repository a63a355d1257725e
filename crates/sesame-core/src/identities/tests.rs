use super::*;
use crate::clock::ManualClock;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::EncodeRsaPrivateKey;
use sesame_model::{AccountId, Region};
use sesame_store::SqliteStore;

struct Fixture {
    svc: IdentityService,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture(auto_verify: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    Fixture {
        svc: IdentityService::new(store, clock.clone(), auto_verify),
        clock,
        _dir: dir,
    }
}

fn scope(region: &str) -> Scope {
    Scope::new(
        AccountId::parse("123456789012").unwrap(),
        Region::parse(region).unwrap(),
    )
}

fn create(name: &str) -> CreateIdentity {
    CreateIdentity {
        name: name.into(),
        tags: vec![],
        configuration_set: None,
        dkim: None,
    }
}

#[tokio::test]
async fn v1_verify_is_idempotent_and_validates() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    f.svc.verify_email(&s, "me@example.com").await.unwrap();
    f.svc.verify_email(&s, "me@example.com").await.unwrap();
    let e = f.svc.verify_email(&s, "<STUB>").await.unwrap_err();
    assert_eq!(e.message, "Invalid email address<STUB>.");
    let t1 = f.svc.verify_domain(&s, "Example.com").await.unwrap();
    let t2 = f.svc.verify_domain(&s, "example.COM").await.unwrap();
    assert_eq!(
        t1, t2,
        "a repeated VerifyDomainIdentity returns the same token"
    );
    assert_eq!(t1.len(), 44);
    let got = f.svc.get(&s, "EXAMPLE.com").await.unwrap();
    assert_eq!(got.verification_status, VerificationStatus::Pending);
    assert_eq!(got.dkim.status, VerificationStatus::NotStarted);
}

#[tokio::test]
async fn verify_domain_dkim_sets_up_easy_dkim_once() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    f.svc.verify_domain(&s, "a.com").await.unwrap();
    let tokens = f.svc.verify_domain_dkim(&s, "a.com").await.unwrap();
    assert_eq!(tokens.len(), 3);
    assert_eq!(f.svc.verify_domain_dkim(&s, "a.com").await.unwrap(), tokens);
    let i = f.svc.get(&s, "a.com").await.unwrap();
    assert_eq!(i.dkim.status, VerificationStatus::Pending);
    assert_eq!(i.dkim.key.as_ref().unwrap().bits, 2048);
    // VerifyDomainDkim alone creates the domain.
    assert_eq!(
        f.svc.verify_domain_dkim(&s, "b.com").await.unwrap().len(),
        3
    );
    assert!(f.svc.get(&s, "b.com").await.is_ok());
}

#[tokio::test]
async fn v2_create_rules() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    let i = f.svc.create(&s, create("Example.org")).await.unwrap();
    assert_eq!(i.name.as_str(), "example.org");
    assert!(i.dkim.signing_enabled);
    assert_eq!(i.dkim.tokens.len(), 3);
    let e = f.svc.create(&s, create("example.org")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert_eq!(e.message, "Email identity example.org already exist.");

    let mut with_cs = create("cs.org");
    with_cs.configuration_set = Some("nope".into());
    assert_eq!(
        f.svc.create(&s, with_cs).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        f.svc.get(&s, "cs.org").await.unwrap_err().kind,
        ErrorKind::NotFound,
        "nothing created"
    );

    let mut too_many = create("tags.org");
    too_many.tags = (0..51)
        .map(|i| Tag {
            key: format!("k{i}"),
            value: "v".into(),
        })
        .collect();
    assert_eq!(
        f.svc.create(&s, too_many).await.unwrap_err().kind,
        ErrorKind::InvalidParameter
    );

    let mut short = create("short.org");
    short.dkim = Some(DkimRequest::Easy(Some(KeyLength::Rsa1024)));
    let i = f.svc.create(&s, short).await.unwrap();
    assert_eq!(i.dkim.current_key_length, Some(KeyLength::Rsa1024));

    let mut email_dkim = create("x@short.org");
    email_dkim.dkim = Some(DkimRequest::Easy(None));
    assert_eq!(
        f.svc.create(&s, email_dkim).await.unwrap_err().kind,
        ErrorKind::InvalidParameter
    );
}

#[tokio::test]
async fn regions_and_accounts_are_separate() {
    let f = fixture(false).await;
    f.svc
        .create(&scope("us-east-1"), create("me@x.com"))
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .get(&scope("eu-west-1"), "me@x.com")
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    let other = Scope::new(
        AccountId::parse("999999999999").unwrap(),
        Region::parse("us-east-1").unwrap(),
    );
    assert!(f.svc.get(&other, "me@x.com").await.is_err());
}

#[tokio::test]
async fn auto_verify_and_operator_verify() {
    let f = fixture(true).await;
    let s = scope("us-east-1");
    let i = f.svc.create(&s, create("auto.com")).await.unwrap();
    assert_eq!(i.verification_status, VerificationStatus::Success);
    assert_eq!(i.dkim.status, VerificationStatus::Success);

    let g = fixture(false).await;
    g.svc.create(&s, create("op.com")).await.unwrap();
    let v = g.svc.mark_verified(&s, "op.com").await.unwrap();
    assert_eq!(v.verification_status, VerificationStatus::Success);
    assert_eq!(v.dkim.status, VerificationStatus::Success);
    assert_eq!(
        g.svc.mark_verified(&s, "none.com").await.unwrap_err().kind,
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn dkim_enable_rules() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    let e = f
        .svc
        .set_dkim_enabled(&s, "unknown.com", true)
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "Domain unknown.com is not verified for DKIM signing."
    );
    f.svc.verify_domain(&s, "legacy.com").await.unwrap();
    assert!(
        f.svc
            .set_dkim_enabled(&s, "legacy.com", true)
            .await
            .is_err()
    );
    f.svc.verify_email(&s, "me@legacy.com").await.unwrap();
    assert!(
        f.svc
            .set_dkim_enabled(&s, "me@legacy.com", true)
            .await
            .is_err()
    );
    f.svc.verify_domain_dkim(&s, "legacy.com").await.unwrap();
    f.svc
        .set_dkim_enabled(&s, "me@legacy.com", true)
        .await
        .unwrap();
    f.svc
        .set_dkim_enabled(&s, "legacy.com", false)
        .await
        .unwrap();
    assert!(
        !f.svc
            .get(&s, "legacy.com")
            .await
            .unwrap()
            .dkim
            .signing_enabled
    );
}

#[tokio::test]
async fn key_length_changes_once_a_day() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    f.svc.create(&s, create("k.com")).await.unwrap();
    let same = f
        .svc
        .put_dkim_signing(&s, "k.com", DkimRequest::Easy(Some(KeyLength::Rsa2048)))
        .await;
    assert_eq!(same.unwrap_err().kind, ErrorKind::InvalidParameter);
    let i = f
        .svc
        .put_dkim_signing(&s, "k.com", DkimRequest::Easy(Some(KeyLength::Rsa1024)))
        .await
        .unwrap();
    assert_eq!(i.dkim.current_key_length, Some(KeyLength::Rsa1024));
    assert_eq!(i.dkim.key.as_ref().unwrap().bits, 1024);
    let again = f
        .svc
        .put_dkim_signing(&s, "k.com", DkimRequest::Easy(Some(KeyLength::Rsa2048)))
        .await;
    assert!(again.unwrap_err().message.contains("once every 24 hours"));
    f.clock.advance(DAY_MS + 1);
    let i = f
        .svc
        .put_dkim_signing(&s, "k.com", DkimRequest::Easy(Some(KeyLength::Rsa2048)))
        .await
        .unwrap();
    assert_eq!(i.dkim.next_key_length, KeyLength::Rsa2048);
    assert_eq!(i.dkim.tokens.len(), 3, "rotation keeps the CNAME tokens");
}

#[tokio::test]
async fn byodkim() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let b64 = STANDARD.encode(key.to_pkcs1_der().unwrap().as_bytes());
    let mut req = create("byo.com");
    req.dkim = Some(DkimRequest::External {
        selector: "sel1".into(),
        private_key: b64.clone(),
    });
    let i = f.svc.create(&s, req).await.unwrap();
    assert_eq!(i.dkim.origin, DkimOrigin::External);
    assert!(i.dkim.tokens.is_empty());
    assert_eq!(i.dkim.selector.as_deref(), Some("sel1"));
    assert_eq!(i.dkim.current_key_length, Some(KeyLength::Rsa1024));

    let bad = f
        .svc
        .put_dkim_signing(
            &s,
            "byo.com",
            DkimRequest::External {
                selector: "-bad".into(),
                private_key: b64.clone(),
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().kind, ErrorKind::InvalidParameter);
    let bad = f
        .svc
        .put_dkim_signing(
            &s,
            "byo.com",
            DkimRequest::External {
                selector: "ok".into(),
                private_key: "bm9wZQ==".into(),
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().kind, ErrorKind::InvalidParameter);
    let unchanged = f.svc.get(&s, "byo.com").await.unwrap();
    assert_eq!(
        unchanged.dkim.selector.as_deref(),
        Some("sel1"),
        "a failed change changes nothing"
    );

    let easy = f
        .svc
        .put_dkim_signing(&s, "byo.com", DkimRequest::Easy(None))
        .await
        .unwrap();
    assert_eq!(easy.dkim.origin, DkimOrigin::AwsSes);
    assert_eq!(easy.dkim.tokens.len(), 3);
}

#[tokio::test]
async fn listing_pages_through_everything() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    for i in 0..7 {
        f.svc
            .verify_email(&s, &format!("u{i}@x.com"))
            .await
            .unwrap();
    }
    f.svc.verify_domain(&s, "x.com").await.unwrap();
    let mut seen = vec![];
    let mut token: Option<String> = None;
    loop {
        let page = f
            .svc
            .list(&s, &IdentityQuery::default(), token.as_deref(), 3)
            .await
            .unwrap();
        seen.extend(page.identities.into_iter().map(|i| i.name.to_string()));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let e = f
        .svc
        .list(&s, &IdentityQuery::default(), Some("garbage"), 3)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
}

#[tokio::test]
async fn get_many_caps_at_100_and_skips_unknown() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    f.svc.verify_domain(&s, "a.com").await.unwrap();
    let got = f
        .svc
        .get_many(&s, &["A.com".into(), "zzz.com".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let names: Vec<String> = (0..101).map(|i| format!("d{i}.com")).collect();
    assert_eq!(
        f.svc.get_many(&s, &names).await.unwrap_err().kind,
        ErrorKind::Validation
    );
}

#[tokio::test]
async fn tags_by_arn() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    f.svc.create(&s, create("t.com")).await.unwrap();
    let arn = "arn:aws:ses:us-east-1:123456789012:identity/t.com";
    f.svc
        .tag(
            &s,
            arn,
            vec![Tag {
                key: "a".into(),
                value: "1".into(),
            }],
        )
        .await
        .unwrap();
    f.svc
        .tag(
            &s,
            arn,
            vec![Tag {
                key: "b".into(),
                value: "2".into(),
            }],
        )
        .await
        .unwrap();
    f.svc.untag(&s, arn, &["a".into()]).await.unwrap();
    assert_eq!(
        f.svc.list_tags(&s, arn).await.unwrap(),
        vec![Tag {
            key: "b".into(),
            value: "2".into()
        }]
    );
    let other_region = "arn:aws:ses:eu-west-1:123456789012:identity/t.com";
    assert_eq!(
        f.svc.list_tags(&s, other_region).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        f.svc.list_tags(&s, "garbage").await.unwrap_err().kind,
        ErrorKind::InvalidParameter
    );
}

#[tokio::test]
async fn ten_thousand_identities_per_region() {
    let f = fixture(false).await;
    let s = scope("us-east-1");
    for i in 0..MAX_IDENTITIES {
        f.svc
            .verify_email(&s, &format!("u{i}@x.com"))
            .await
            .unwrap();
    }
    let e = f.svc.verify_email(&s, "one-more@x.com").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    let e = f.svc.create(&s, create("one-more.com")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    // Re-verifying an existing one is still fine, and another region is a fresh start.
    f.svc.verify_email(&s, "u0@x.com").await.unwrap();
    f.svc
        .verify_email(&scope("eu-west-1"), "one-more@x.com")
        .await
        .unwrap();
}

#[tokio::test]
async fn verification_links() {
    use crate::identities::{LinkOutcome, LinkSettings};
    use sesame_model::MessageFilter;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mailer = std::sync::Arc::new(crate::SendService::new(
        store.clone(),
        clock.clone(),
        std::sync::Arc::new(crate::AccountService::new(
            store.clone(),
            clock.clone(),
            false,
        )),
    ));
    let svc = IdentityService::new(store.clone(), clock.clone(), false).with_links(
        LinkSettings {
            public_url: "http://sesame.test:4579/".into(),
            from: "Sesame <no-reply@sesame.test>".into(),
        },
        mailer,
    );
    let s = scope("us-east-1");
    let link_for = |to: &str| {
        let store = store.clone();
        let to = to.to_owned();
        async move {
            let ms = store
                .list_messages(&MessageFilter {
                    recipient: Some(to),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap();
            let parsed = mail_parser::MessageParser::default()
                .parse(&ms[0].message.raw)
                .unwrap();
            let mime = parsed.body_text(0).unwrap().into_owned();
            let start = mime
                .find("http://sesame.test:4579/_sesame/verify/")
                .unwrap();
            let url: String = mime[start..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            (ms.len(), url.rsplit('/').next().unwrap().to_owned())
        }
    };

    svc.create(&s, create("me@example.com")).await.unwrap();
    let (n, token) = link_for("me@example.com").await;
    assert_eq!(n, 1);
    assert!(token.len() >= 43, "at least 256 bits, URL-safe: {token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        svc.get(&s, "me@example.com")
            .await
            .unwrap()
            .verification_status,
        VerificationStatus::Pending
    );
    assert_eq!(
        svc.open_link(&token).await.unwrap(),
        LinkOutcome::Verified {
            identity: "me@example.com".into(),
            region: "us-east-1".into(),
            redirect: None,
        }
    );
    assert!(svc.get(&s, "me@example.com").await.unwrap().is_verified());
    assert_eq!(
        svc.open_link(&token).await.unwrap(),
        LinkOutcome::Unknown,
        "a link works once"
    );

    // A link opened after 24 hours fails the identity; asking again sends a new one.
    svc.verify_email(&s, "late@example.com").await.unwrap();
    let (_, old) = link_for("late@example.com").await;
    clock.advance(24 * 3600 * 1000 + 1);
    assert_eq!(
        svc.open_link(&old).await.unwrap(),
        LinkOutcome::Expired {
            identity: "late@example.com".into(),
            redirect: None,
        }
    );
    assert_eq!(
        svc.get(&s, "late@example.com")
            .await
            .unwrap()
            .verification_status,
        VerificationStatus::Failed
    );
    svc.verify_email(&s, "late@example.com").await.unwrap();
    let (n, new) = link_for("late@example.com").await;
    assert_eq!(n, 2);
    assert_ne!(new, old);
    assert!(matches!(
        svc.open_link(&new).await.unwrap(),
        LinkOutcome::Verified { .. }
    ));
    // Domains get no link; a token from another scope still only verifies its own identity.
    svc.create(&s, create("example.org")).await.unwrap();
    assert_eq!(
        svc.open_link("made-up").await.unwrap(),
        LinkOutcome::Unknown
    );
}
