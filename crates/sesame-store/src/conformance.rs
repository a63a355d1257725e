//! The behaviour every [`Store`] backend must show. Each backend's tests
//! call [`run`]; a new backend (PostgreSQL) passes it before it is used.

use crate::{IdentityQuery, Insert, Store};
use sesame_model::{
    AccessKey, AccountId, DkimState, Identity, IdentityKind, IdentityName, KeyLength, Region,
    Scope, VerificationStatus,
};
use std::sync::Arc;

pub fn scope(account: &str, region: &str) -> Scope {
    Scope::new(
        AccountId::parse(account).unwrap(),
        Region::parse(region).unwrap(),
    )
}

pub fn identity(name: &str) -> Identity {
    let name = IdentityName::parse(name).unwrap();
    Identity {
        verification_token: matches!(name, IdentityName::Domain(_)).then(|| "tok".to_owned()),
        name,
        created_at: 1_700_000_000_000,
        verification_status: VerificationStatus::Pending,
        dkim: DkimState::not_started(KeyLength::Rsa2048),
        feedback_forwarding: true,
        configuration_set: None,
        tags: vec![],
        version: 0,
    }
}

pub async fn run(store: Arc<dyn Store>) {
    access_keys(&*store).await;
    insert_get_delete(&*store).await;
    scopes_are_isolated(&*store).await;
    limit_is_atomic(store.clone()).await;
    optimistic_updates(&*store).await;
    listing_and_filters(&*store).await;
}

async fn access_keys(store: &dyn Store) {
    let key = AccessKey {
        id: "AKIATEST".into(),
        secret: "s3cret".into(),
        account: AccountId::parse("111122223333").unwrap(),
        created_at: 5,
    };
    store.put_access_key(&key).await.unwrap();
    assert_eq!(store.get_access_key("AKIATEST").await.unwrap(), Some(key));
    assert_eq!(store.get_access_key("nope").await.unwrap(), None);
}

async fn insert_get_delete(store: &dyn Store) {
    let s = scope("111111111111", "us-east-1");
    let id = identity("example.com");
    assert_eq!(
        store.insert_identity(&s, &id, 10).await.unwrap(),
        Insert::Inserted
    );
    let got = store
        .get_identity(&s, "example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.name, id.name);
    assert_eq!(got.version, 1);
    match store.insert_identity(&s, &id, 10).await.unwrap() {
        Insert::Exists(e) => assert_eq!(e.name, id.name),
        other => panic!("expected Exists, got {other:?}"),
    }
    // Email addresses are case-sensitive: a different case is another identity.
    store
        .insert_identity(&s, &identity("A@x.com"), 10)
        .await
        .unwrap();
    assert_eq!(store.get_identity(&s, "a@x.com").await.unwrap(), None);
    let many = store
        .get_identities(
            &s,
            &["A@x.com".into(), "missing.com".into(), "example.com".into()],
        )
        .await
        .unwrap();
    let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["A@x.com", "example.com"]);
    assert!(store.delete_identity(&s, "example.com").await.unwrap());
    assert!(!store.delete_identity(&s, "example.com").await.unwrap());
    assert_eq!(store.get_identity(&s, "example.com").await.unwrap(), None);
}

async fn scopes_are_isolated(store: &dyn Store) {
    let a = scope("222222222222", "us-east-1");
    let b = scope("222222222222", "eu-west-1");
    let c = scope("333333333333", "us-east-1");
    store
        .insert_identity(&a, &identity("iso.com"), 10)
        .await
        .unwrap();
    assert!(store.get_identity(&b, "iso.com").await.unwrap().is_none());
    assert!(store.get_identity(&c, "iso.com").await.unwrap().is_none());
    assert_eq!(
        store
            .insert_identity(&b, &identity("iso.com"), 10)
            .await
            .unwrap(),
        Insert::Inserted
    );
}

async fn limit_is_atomic(store: Arc<dyn Store>) {
    let s = scope("444444444444", "us-east-1");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let id = identity(&format!("d{i}.com"));
        let (s, store) = (s.clone(), store.clone());
        tasks.spawn(async move { store.insert_identity(&s, &id, 5).await.unwrap() });
    }
    let results = tasks.join_all().await;
    let inserted = results.iter().filter(|r| **r == Insert::Inserted).count();
    assert_eq!(inserted, 5, "exactly the limit is inserted: {results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Insert::LimitReached)
            .count(),
        7
    );
}

async fn optimistic_updates(store: &dyn Store) {
    let s = scope("555555555555", "us-east-1");
    store
        .insert_identity(&s, &identity("v.com"), 10)
        .await
        .unwrap();
    let mut first = store.get_identity(&s, "v.com").await.unwrap().unwrap();
    let mut second = first.clone();
    first.verification_status = VerificationStatus::Success;
    assert!(store.update_identity(&s, &first).await.unwrap());
    second.feedback_forwarding = false;
    assert!(
        !store.update_identity(&s, &second).await.unwrap(),
        "a stale version must not overwrite"
    );
    let now = store.get_identity(&s, "v.com").await.unwrap().unwrap();
    assert_eq!(now.verification_status, VerificationStatus::Success);
    assert!(now.feedback_forwarding);
    assert_eq!(now.version, 2);
    let mut gone = now.clone();
    store.delete_identity(&s, "v.com").await.unwrap();
    gone.feedback_forwarding = false;
    assert!(!store.update_identity(&s, &gone).await.unwrap());
}

async fn listing_and_filters(store: &dyn Store) {
    let s = scope("666666666666", "us-east-1");
    for n in ["a.com", "b@a.com", "c.org", "d@c.org"] {
        store.insert_identity(&s, &identity(n), 100).await.unwrap();
    }
    let mut c = store.get_identity(&s, "c.org").await.unwrap().unwrap();
    c.verification_status = VerificationStatus::Success;
    store.update_identity(&s, &c).await.unwrap();

    let all = store
        .list_identities(&s, &IdentityQuery::default(), 0, 100)
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.identity.name.as_str()).collect();
    assert_eq!(names, vec!["a.com", "b@a.com", "c.org", "d@c.org"]);
    let page = store
        .list_identities(&s, &IdentityQuery::default(), all[1].seq, 1)
        .await
        .unwrap();
    assert_eq!(page[0].identity.name.as_str(), "c.org");
    let domains = store
        .list_identities(
            &s,
            &IdentityQuery {
                kind: Some(IdentityKind::Domain),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(domains.len(), 2);
    let contains = store
        .list_identities(
            &s,
            &IdentityQuery {
                name_contains: Some("c.o".into()),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(contains.len(), 2);
    let verified = store
        .list_identities(
            &s,
            &IdentityQuery {
                status: Some(VerificationStatus::Success),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(verified.len(), 1);
}

/// Stores one known identity and key, for restart checks.
pub async fn seed_one(store: &dyn Store) {
    let s = scope("777777777777", "ap-south-1");
    store
        .insert_identity(&s, &identity("persist.example"), 10)
        .await
        .unwrap();
}

pub async fn check_seeded(store: &dyn Store) {
    let s = scope("777777777777", "ap-south-1");
    let got = store.get_identity(&s, "persist.example").await.unwrap();
    assert_eq!(got.map(|i| i.verification_token), Some(Some("tok".into())));
}
