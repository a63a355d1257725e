//! The behaviour every [`Store`] backend must show. Each backend's tests
//! call [`run`]; a new backend (PostgreSQL) passes it before it is used.

use crate::{Created, IdentityQuery, Insert, Store};
use sesame_model::{
    Acceptance, AccessKey, Account, AccountId, DkimState, Identity, IdentityKind, IdentityName,
    KeyLength, MessageFilter, NewMessage, QuotaCheck, Region, Rejection, Scope, Template,
    TemplateParts, VerificationStatus,
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
        email_link: None,
        mail_from: Default::default(),
        dns: Default::default(),
        notifications: Default::default(),
        published: vec![],
        version: 0,
    }
}

/// A new, empty database on the PostgreSQL server `SESAME_TEST_POSTGRES`
/// names (a URL whose user may create databases; `scripts/test.sh` starts a
/// throwaway cluster and sets it), and its URL: for the tests of the
/// PostgreSQL backend and of what runs on several nodes.
pub async fn postgres_database() -> String {
    use sqlx::{AssertSqlSafe, Executor};
    let Ok(admin) = std::env::var("SESAME_TEST_POSTGRES") else {
        panic!(
            "SESAME_TEST_POSTGRES is not set: these tests need a PostgreSQL server \
             (scripts/test.sh starts one)"
        );
    };
    let name = format!(
        "sesame_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("the test server");
    pool.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("a test database");
    pool.close().await;
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    format!("{base}/{name}{query}")
}

pub async fn run(store: Arc<dyn Store>) {
    access_keys(&*store).await;
    insert_get_delete(&*store).await;
    scopes_are_isolated(&*store).await;
    limit_is_atomic(store.clone()).await;
    optimistic_updates(&*store).await;
    listing_and_filters(&*store).await;
    accounts(&*store).await;
    quotas(&*store).await;
    quotas_hold_under_concurrency(store.clone()).await;
    mailbox(&*store).await;
    rejections(&*store).await;
    templates(&*store).await;
    email_links(&*store).await;
    delivery_queue(&*store).await;
    verifier_reads_and_writes(&*store).await;
    custom_verification_templates(&*store).await;
    configuration_sets(&*store).await;
    sns_topics_and_deliveries(&*store).await;
    suppression_list(&*store).await;
    leases(&*store).await;
    retention(&*store).await;
}

/// A complaint about message `id`, recorded at `at`.
pub fn complaint(s: &Scope, id: &str, at: i64) -> sesame_model::Event {
    sesame_model::Event {
        kind: sesame_model::EventKind::Complaint,
        scope: s.clone(),
        message_id: id.into(),
        at,
        recipients: vec!["a@x.com".into()],
        mail: sesame_model::MailInfo::of(&message(id, &["a@x.com"])),
        detail: sesame_model::EventDetail::Complaint {
            feedback_type: "abuse".into(),
            user_agent: "ISP".into(),
            feedback_id: id.into(),
        },
    }
}

/// A retention pass removes what is old and finished, and keeps what is
/// still needed: unfinished deliveries and their messages, and events not
/// yet published.
async fn retention(store: &dyn Store) {
    use sesame_model::DeliveryUpdate;
    store.clear_messages().await.unwrap();
    // Everything before this test, out of the way: nothing is unfinished.
    while store.purge(i64::MAX / 2, 1000).await.unwrap().total() > 0 {}
    let s = scope("959595959595", "us-east-1");
    let t = 1_600_000_000_000;
    for id in ["old-done", "old-queued", "new-done"] {
        let at = if id.starts_with("new") {
            t + 600_000
        } else {
            t
        };
        let mut m = message(id, &["a@ret.example"]);
        m.created_at = at;
        store
            .accept_message(&s, &m, &quota(at, -1.0, 1e6, 1))
            .await
            .unwrap();
    }
    let claimed = store
        .claim_deliveries(t + 700_000, t + 800_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let done: Vec<DeliveryUpdate> = claimed
        .iter()
        .filter(|d| d.message_id != "old-queued")
        .map(|d| DeliveryUpdate::Finished {
            id: d.id,
            failed: false,
            at: if d.message_id == "old-done" {
                t + 1
            } else {
                t + 700_001
            },
        })
        .collect();
    let queued = claimed
        .iter()
        .find(|d| d.message_id == "old-queued")
        .unwrap();
    let mut updates = done;
    updates.push(DeliveryUpdate::Retry {
        id: queued.id,
        recipients: queued.recipients.clone(),
        at: t + 3_600_000,
        error: "try later".into(),
    });
    store.finish_deliveries(updates, vec![]).await.unwrap();
    store
        .record_rejection(
            &s,
            &Rejection {
                created_at: t,
                request_id: None,
                operation: "SendEmail".into(),
                rule: "sandbox-recipient-not-verified".into(),
                message: "Email address is not verified.".into(),
                identities: vec![],
                senders: vec![],
            },
        )
        .await
        .unwrap();
    // Two old events; publishing has passed the first only.
    store
        .record_events(&[complaint(&s, "old-done", t), complaint(&s, "old-queued", t)])
        .await
        .unwrap();
    let seqs: Vec<i64> = store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.scope == s)
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs.len(), 2);
    store
        .publish_messages(&[], Some(("event-publishing", seqs[0])), t)
        .await
        .unwrap();
    // Two minutes later: the old messages' minute of the ledger is past.
    let before = t + 120_000;
    let mut purged = crate::Purged::default();
    loop {
        let p = store.purge(before, 1).await.unwrap();
        if p.total() == 0 {
            break;
        }
        purged.deliveries += p.deliveries;
        purged.messages += p.messages;
        purged.rejections += p.rejections;
        purged.ledger += p.ledger;
        purged.events += p.events;
    }
    assert_eq!(purged.events, 1, "only the event publishing has passed");
    let left: Vec<i64> = store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.scope == s)
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(left, [seqs[1]]);
    assert_eq!(purged.deliveries, 1, "only the old finished delivery");
    assert_eq!(
        purged.messages, 1,
        "only the old message with nothing left to deliver"
    );
    assert_eq!(purged.rejections, 1);
    assert_eq!(purged.ledger, 1, "the old minute of the ledger");
    assert!(store.get_message("old-done").await.unwrap().is_none());
    assert!(store.get_message("old-queued").await.unwrap().is_some());
    assert!(store.get_message("new-done").await.unwrap().is_some());
    assert_eq!(store.queue_summary().await.unwrap().queued, 1);
}

/// A lease is the node's until it runs out, renewable by its holder, and
/// free again once given up.
async fn leases(store: &dyn Store) {
    let t = 1_700_000_000_000;
    assert!(store.take_lease("work", t, t + 1000).await.unwrap());
    // Renewed by its holder before and after it ran out.
    assert!(store.take_lease("work", t + 500, t + 1500).await.unwrap());
    assert!(store.take_lease("work", t + 5000, t + 6000).await.unwrap());
    // Leases are independent of each other.
    assert!(store.take_lease("other", t, t + 1000).await.unwrap());
    store.release_lease("work").await.unwrap();
    store.release_lease("work").await.unwrap();
    assert!(store.take_lease("work", t, t + 1000).await.unwrap());
}

/// What several nodes sharing one database must see: each is a store
/// opened on the same database under its own node name. (SQLite has one
/// node, so only the PostgreSQL backend runs these.)
pub async fn run_nodes(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    // First, on an empty queue.
    claims_are_exclusive_across_nodes(&*a, &*b).await;
    leases_are_exclusive(&*a, &*b).await;
    quotas_hold_across_nodes(a.clone(), b.clone()).await;
}

async fn leases_are_exclusive(a: &dyn Store, b: &dyn Store) {
    let t = 1_700_000_000_000;
    assert!(a.take_lease("pass", t, t + 1000).await.unwrap());
    assert!(!b.take_lease("pass", t + 10, t + 1010).await.unwrap());
    // b may not give up a's lease.
    b.release_lease("pass").await.unwrap();
    assert!(!b.take_lease("pass", t + 20, t + 1020).await.unwrap());
    // Once it runs out, it is anyone's; then a no longer holds it.
    assert!(b.take_lease("pass", t + 1001, t + 2000).await.unwrap());
    assert!(!a.take_lease("pass", t + 1002, t + 2002).await.unwrap());
    b.release_lease("pass").await.unwrap();
    assert!(a.take_lease("pass", t + 1003, t + 2003).await.unwrap());
}

/// 16 concurrent senders spread over two nodes get exactly the daily
/// quota.
async fn quotas_hold_across_nodes(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let s = scope("929292929292", "us-east-1");
    let mut tasks = tokio::task::JoinSet::new();
    for sender in 0..16 {
        let store = if sender % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let s = s.clone();
        tasks.spawn(async move {
            let mut accepted = 0;
            for i in 0..10 {
                let r = store
                    .accept_message(
                        &s,
                        &message(&format!("n{sender}-{i}"), &["a@x.com"]),
                        &quota(1_700_000_000_000 + i, 50.0, 1e6, 1),
                    )
                    .await
                    .unwrap();
                accepted += usize::from(r == Acceptance::Accepted);
            }
            accepted
        });
    }
    let accepted: usize = tasks.join_all().await.into_iter().sum();
    assert_eq!(accepted, 50);
    assert_eq!(a.sent_last_24h(&s, 1_700_000_000_100).await.unwrap(), 50);
    assert_eq!(b.sent_last_24h(&s, 1_700_000_000_100).await.unwrap(), 50);
}

/// Two nodes claiming at once never take the same delivery; a node's
/// restart puts back its own claims only.
async fn claims_are_exclusive_across_nodes(a: &dyn Store, b: &dyn Store) {
    let s = scope("939393939393", "us-east-1");
    let t = 1_700_000_000_000;
    for i in 0..40 {
        a.accept_message(
            &s,
            &message(&format!("q{i}"), &["a@claims.example"]),
            &quota(t, -1.0, 1e6, 1),
        )
        .await
        .unwrap();
    }
    let now = t + 1;
    let (x, y) = tokio::join!(
        a.claim_deliveries(now, now + 60_000, 30),
        b.claim_deliveries(now, now + 60_000, 30)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut ids: Vec<i64> = x.iter().chain(&y).map(|d| d.id).collect();
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "a delivery was claimed twice");
    assert_eq!(claimed, 40);
    // The queue says whose claim each delivery in flight is.
    let listed = a
        .list_queue(Some(sesame_model::DeliveryState::Sending), 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 40);
    let node_of = |d: &sesame_model::QueuedDelivery| {
        listed
            .iter()
            .find(|e| e.id == d.id)
            .and_then(|e| e.claimed_by.clone())
    };
    let a_nodes: std::collections::HashSet<_> = x.iter().map(node_of).collect();
    let b_nodes: std::collections::HashSet<_> = y.iter().map(node_of).collect();
    assert_eq!(a_nodes.len(), 1, "{a_nodes:?}");
    assert_eq!(b_nodes.len(), 1, "{b_nodes:?}");
    assert!(a_nodes.is_disjoint(&b_nodes) && !a_nodes.contains(&None));
    // b starts again: only b's claims come back.
    assert_eq!(b.requeue_in_flight(now + 2).await.unwrap(), y.len() as u64);
    let again = a
        .claim_deliveries(now + 3, now + 60_000, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), y.len());
    // a dies: its leases run out, and b takes its deliveries over.
    let taken = b
        .claim_deliveries(now + 60_001, now + 120_000, 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), 40);
}

async fn sns_topics_and_deliveries(store: &dyn Store) {
    use sesame_model::sns::{
        MessageType, Protocol, Subscription, Topic, TopicDeliveryOutcome, TopicMessage,
    };
    let s = scope("616161616161", "us-east-1");
    let t = Topic::new(&s, "events", 1);
    assert_eq!(
        store.insert_topic(&s, &t, 10).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.insert_topic(&s, &t, 10).await.unwrap(),
        Created::Exists
    );
    let t2 = Topic::new(&s, "other", 1);
    assert_eq!(
        store.insert_topic(&s, &t2, 1).await.unwrap(),
        Created::LimitReached
    );
    assert_eq!(store.get_topic(&t.arn).await.unwrap().unwrap().0, s);
    let sub = |n: u32, confirmed: bool| Subscription {
        arn: format!("{}:{n}", t.arn),
        topic_arn: t.arn.clone(),
        owner: "616161616161".into(),
        protocol: Protocol::Http,
        endpoint: format!("http://127.0.0.1/{n}"),
        token: (!confirmed).then(|| format!("token{n}")),
        confirmed,
        raw_message_delivery: false,
        created_at: 2,
    };
    let message = |id: &str, to: Option<String>| TopicMessage {
        id: id.into(),
        kind: if to.is_some() {
            MessageType::SubscriptionConfirmation
        } else {
            MessageType::Notification
        },
        topic_arn: t.arn.clone(),
        subject: None,
        message: "m".into(),
        created_at: 3,
        to,
    };
    // A pending subscription and its confirmation, in one write.
    let pending = sub(1, false);
    let confirm = message("c1", Some(pending.arn.clone()));
    assert_eq!(
        store
            .insert_subscription(&s, &pending, 10, Some(&confirm), 3)
            .await
            .unwrap(),
        Created::Created
    );
    let confirmed = sub(2, true);
    store
        .insert_subscription(&s, &confirmed, 10, None, 3)
        .await
        .unwrap();
    assert_eq!(
        store
            .list_subscriptions(&s, Some(&t.arn), 0, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // A notification goes to confirmed subscriptions only; the cursor moves
    // in the same write.
    let n = store
        .publish_messages(&[message("n1", None)], Some(("test-cursor", 42)), 3)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.cursor("test-cursor").await.unwrap(), Some(42));
    assert_eq!(store.cursor("never").await.unwrap(), None);
    // Publishing's own cursor is set by the migrations.
    assert!(store.cursor("event-publishing").await.unwrap().is_some());
    let claimed = store.claim_topic_deliveries(10, 1_000, 10).await.unwrap();
    let mut ids: Vec<(&str, &str)> = claimed
        .iter()
        .map(|d| {
            (
                d.message.id.as_str(),
                d.subscription.as_ref().unwrap().arn.as_str(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![("c1", pending.arn.as_str()), ("n1", confirmed.arn.as_str())]
    );
    // Leased: not claimable again until the lease runs out.
    assert!(
        store
            .claim_topic_deliveries(10, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retry = claimed.iter().find(|d| d.message.id == "n1").unwrap().id;
    let done = claimed.iter().find(|d| d.message.id == "c1").unwrap().id;
    store
        .finish_topic_deliveries(
            &[
                (done, TopicDeliveryOutcome::Delivered),
                (
                    retry,
                    TopicDeliveryOutcome::Retry {
                        at: 500,
                        error: "503".into(),
                    },
                ),
            ],
            20,
        )
        .await
        .unwrap();
    assert_eq!(store.next_topic_delivery_due().await.unwrap(), Some(500));
    let again = store.claim_topic_deliveries(500, 2_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (retry, 1));
    // A crash leaves it claimed; a start puts it back.
    assert_eq!(store.requeue_topic_deliveries(600).await.unwrap(), 1);
    assert_eq!(
        store
            .claim_topic_deliveries(600, 2_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Deleting the topic takes its subscriptions.
    assert!(store.delete_topic(&t.arn).await.unwrap());
    assert!(
        store
            .get_subscription(&confirmed.arn)
            .await
            .unwrap()
            .is_none()
    );
    // Own keys: the first stored wins.
    assert_eq!(store.get_setting("s").await.unwrap(), None);
    store.put_setting("s", "one", 1).await.unwrap();
    store.put_setting("s", "two", 2).await.unwrap();
    assert_eq!(
        store.get_setting("s").await.unwrap().as_deref(),
        Some("two")
    );
    assert_eq!(store.put_own_key("k", "first", 1).await.unwrap(), "first");
    assert_eq!(store.put_own_key("k", "second", 2).await.unwrap(), "first");
    assert_eq!(
        store.get_own_key("k").await.unwrap().as_deref(),
        Some("first")
    );
}

async fn suppression_list(store: &dyn Store) {
    use sesame_model::suppression::{Reason, SuppressedDestination, SuppressionQuery};
    let s = scope("626262626262", "us-east-1");
    let other = scope("626262626262", "eu-west-1");
    let entry = |a: &str, reason, at| SuppressedDestination {
        address: a.into(),
        reason,
        last_update: at,
        message_id: None,
        feedback_id: None,
    };
    store
        .put_suppressed(&s, &entry("a@x.com", Reason::Bounce, 10))
        .await
        .unwrap();
    store
        .put_suppressed(&s, &entry("b@x.com", Reason::Complaint, 20))
        .await
        .unwrap();
    store
        .put_suppressed(&s, &entry("a@x.com", Reason::Bounce, 30))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_suppressed(&s, "a@x.com")
            .await
            .unwrap()
            .unwrap()
            .last_update,
        30
    );
    assert!(
        store
            .get_suppressed(&other, "a@x.com")
            .await
            .unwrap()
            .is_none()
    );
    let all = store
        .list_suppressed(&s, &SuppressionQuery::default(), 0, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let complaints = SuppressionQuery {
        reasons: vec![Reason::Complaint],
        ..Default::default()
    };
    assert_eq!(
        store
            .list_suppressed(&s, &complaints, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let recent = SuppressionQuery {
        start: Some(25),
        ..Default::default()
    };
    assert_eq!(
        store.list_suppressed(&s, &recent, 0, 10).await.unwrap()[0]
            .1
            .address,
        "a@x.com"
    );
    let among = store
        .suppressed_among(
            &s,
            &["A@x.com".into(), "b@x.com".into(), "c@x.com".into()],
            &[Reason::Bounce],
        )
        .await
        .unwrap();
    assert_eq!(among, vec!["a@x.com".to_string()]);
    assert!(store.delete_suppressed(&s, "a@x.com").await.unwrap());
    assert!(!store.delete_suppressed(&s, "a@x.com").await.unwrap());
}

async fn configuration_sets(store: &dyn Store) {
    let s = scope("525252525252", "us-west-2");
    let other = scope("525252525252", "eu-west-1");
    let set = |name: &str| sesame_model::ConfigurationSet::new(name, 1);
    assert_eq!(
        store
            .insert_configuration_set(&s, &set("a"), 2)
            .await
            .unwrap(),
        Created::Created
    );
    assert_eq!(
        store
            .insert_configuration_set(&s, &set("a"), 2)
            .await
            .unwrap(),
        Created::Exists
    );
    assert_eq!(
        store
            .insert_configuration_set(&s, &set("b"), 2)
            .await
            .unwrap(),
        Created::Created
    );
    assert_eq!(
        store
            .insert_configuration_set(&s, &set("c"), 2)
            .await
            .unwrap(),
        Created::LimitReached
    );
    // Templates of the same name are other things, and regions are apart.
    assert!(store.get_template(&s, "a").await.unwrap().is_none());
    assert!(
        store
            .get_configuration_set(&other, "a")
            .await
            .unwrap()
            .is_none()
    );
    let mut paused = set("a");
    paused.sending_enabled = false;
    assert!(store.update_configuration_set(&s, &paused).await.unwrap());
    assert!(
        !store
            .update_configuration_set(&other, &paused)
            .await
            .unwrap()
    );
    let got = store.get_configuration_set(&s, "a").await.unwrap().unwrap();
    assert!(!got.sending_enabled);
    let listed = store.list_configuration_sets(&s, 0, 10).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|(_, c)| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let after_first = store
        .list_configuration_sets(&s, listed[0].0, 10)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
    assert!(store.delete_configuration_set(&s, "a").await.unwrap());
    assert!(!store.delete_configuration_set(&s, "a").await.unwrap());
}

async fn custom_verification_templates(store: &dyn Store) {
    let s = scope("515151515151", "us-west-2");
    let other = scope("515151515151", "eu-west-1");
    let t = |name: &str| sesame_model::CustomVerificationTemplate {
        name: name.into(),
        from_email_address: "from@example.com".into(),
        subject: "Subject".into(),
        content: "<p>hi</p>".into(),
        success_redirection_url: "https://example.com/ok".into(),
        failure_redirection_url: "https://example.com/no".into(),
        created_at: 1,
        tags: vec![],
    };
    assert_eq!(
        store.insert_cv_template(&s, &t("a"), 2).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.insert_cv_template(&s, &t("a"), 2).await.unwrap(),
        Created::Exists
    );
    assert_eq!(
        store.insert_cv_template(&s, &t("b"), 2).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.insert_cv_template(&s, &t("c"), 2).await.unwrap(),
        Created::LimitReached
    );
    // Email templates and custom verification templates are counted apart.
    assert!(store.get_template(&s, "a").await.unwrap().is_none());
    assert!(store.get_cv_template(&other, "a").await.unwrap().is_none());
    let mut changed = t("a");
    changed.subject = "Changed".into();
    assert!(store.update_cv_template(&s, &changed).await.unwrap());
    assert!(!store.update_cv_template(&other, &changed).await.unwrap());
    assert_eq!(
        store
            .get_cv_template(&s, "a")
            .await
            .unwrap()
            .unwrap()
            .subject,
        "Changed"
    );
    let listed = store.list_cv_templates(&s, 0, 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(_, t)| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let after_first = store.list_cv_templates(&s, listed[0].0, 10).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert!(store.delete_cv_template(&s, "a").await.unwrap());
    assert!(!store.delete_cv_template(&s, "a").await.unwrap());
}

async fn verifier_reads_and_writes(store: &dyn Store) {
    let a = scope("313131313131", "us-east-1");
    let b = scope("414141414141", "eu-west-1");
    let mut d = identity("verify-me.example");
    d.dkim.tokens = vec!["zonetokA".into(), "zonetokB".into(), "zonetokC".into()];
    d.dkim.status = VerificationStatus::Pending;
    d.dkim.key = Some(sesame_model::DkimSigningKey {
        private_pkcs8_b64: "private".into(),
        public_spki_b64: "PUBLIC".into(),
        bits: 2048,
    });
    store.insert_identity(&a, &d, 10).await.unwrap();
    store
        .insert_identity(&b, &identity("other.example"), 10)
        .await
        .unwrap();
    // Every scope, in position order, paged.
    let mut seen = vec![];
    let mut after = 0;
    loop {
        let page = store.list_all_identities(after, 2).await.unwrap();
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = *last;
        seen.extend(page.into_iter().map(|(_, s, i)| (s, i.name.to_string())));
    }
    assert!(seen.contains(&(a.clone(), "verify-me.example".into())));
    assert!(seen.contains(&(b.clone(), "other.example".into())));
    // Tokens find the key; others find nothing.
    for t in ["zonetokA", "zonetokC"] {
        assert_eq!(
            store.dkim_key_by_token(t).await.unwrap().as_deref(),
            Some("PUBLIC")
        );
    }
    assert_eq!(store.dkim_key_by_token("nope").await.unwrap(), None);
    // A batch writes what is current and skips what changed meanwhile.
    let fresh = store
        .get_identity(&a, "verify-me.example")
        .await
        .unwrap()
        .unwrap();
    let mut stale = store
        .get_identity(&b, "other.example")
        .await
        .unwrap()
        .unwrap();
    stale.version -= 1;
    let mut ok = fresh.clone();
    ok.verification_status = VerificationStatus::Success;
    stale.verification_status = VerificationStatus::Success;
    assert_eq!(
        store
            .update_identities(&[(a.clone(), ok), (b.clone(), stale)])
            .await
            .unwrap(),
        vec![true, false]
    );
    let got = store
        .get_identity(&a, "verify-me.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.verification_status, VerificationStatus::Success);
    assert_eq!(got.version, fresh.version + 1);
    let got = store
        .get_identity(&b, "other.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.verification_status, VerificationStatus::Pending);
}

async fn email_links(store: &dyn Store) {
    let s = scope("212121212121", "eu-west-1");
    let mut id = identity("linked@example.com");
    id.email_link = Some(sesame_model::EmailLink {
        token: "tok-abc".into(),
        sent_at: 1,
        redirect: None,
        used_at: None,
    });
    store.insert_identity(&s, &id, 10).await.unwrap();
    let (found_scope, found) = store
        .find_identity_by_link("tok-abc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found_scope, s);
    assert_eq!(found.name.as_str(), "linked@example.com");
    assert!(
        store
            .find_identity_by_link("other")
            .await
            .unwrap()
            .is_none()
    );
    let mut used = found.clone();
    used.email_link = None;
    assert!(store.update_identity(&s, &used).await.unwrap());
    assert!(
        store
            .find_identity_by_link("tok-abc")
            .await
            .unwrap()
            .is_none(),
        "a used link is gone"
    );
}

async fn templates(store: &dyn Store) {
    let s = scope("161616161616", "us-east-1");
    let t = Template {
        name: "welcome".into(),
        parts: TemplateParts {
            subject: Some("Hi {{name}}".into()),
            text: None,
            html: Some("<p>{{name}}</p>".into()),
        },
        created_at: 5,
        tags: vec![],
    };
    assert_eq!(
        store.insert_template(&s, &t, 2).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.insert_template(&s, &t, 2).await.unwrap(),
        Created::Exists
    );
    let mut second = t.clone();
    second.name = "second".into();
    store.insert_template(&s, &second, 2).await.unwrap();
    let mut third = t.clone();
    third.name = "third".into();
    assert_eq!(
        store.insert_template(&s, &third, 2).await.unwrap(),
        Created::LimitReached
    );
    assert_eq!(
        store.get_template(&s, "welcome").await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(
        store
            .get_template(&scope("161616161616", "eu-west-1"), "welcome")
            .await
            .unwrap(),
        None
    );
    let mut changed = t.clone();
    changed.parts.text = Some("text".into());
    assert!(store.update_template(&s, &changed).await.unwrap());
    assert!(!store.update_template(&s, &third).await.unwrap());
    let listed = store.list_templates(&s, 0, 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(_, t)| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["welcome", "second"]
    );
    assert_eq!(
        store
            .list_templates(&s, listed[0].0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.delete_template(&s, "welcome").await.unwrap());
    assert!(!store.delete_template(&s, "welcome").await.unwrap());
}

async fn accounts(store: &dyn Store) {
    let s = scope("888888888888", "us-east-1");
    assert_eq!(store.get_account(&s).await.unwrap(), None);
    let a = Account::new(false);
    assert!(store.save_account(&s, &a).await.unwrap());
    assert!(
        !store.save_account(&s, &a).await.unwrap(),
        "a second first-save loses"
    );
    let mut got = store.get_account(&s).await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    let stale = got.clone();
    got.sending_enabled = false;
    assert!(store.save_account(&s, &got).await.unwrap());
    assert!(!store.save_account(&s, &stale).await.unwrap());
    assert!(
        !store
            .get_account(&s)
            .await
            .unwrap()
            .unwrap()
            .sending_enabled
    );
    assert_eq!(
        store
            .get_account(&scope("888888888888", "eu-west-1"))
            .await
            .unwrap(),
        None
    );
    // Listed by account and region, a page at a time.
    let other = scope("888888888888", "ap-south-1");
    assert!(store.save_account(&other, &a).await.unwrap());
    let all = store.list_accounts(None, 1000).await.unwrap();
    let ours: Vec<&Scope> = all
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.account.as_str() == "888888888888")
        .collect();
    assert_eq!(ours, vec![&other, &s]);
    let first = store.list_accounts(None, 1).await.unwrap();
    let next = store.list_accounts(Some(&first[0].0), 1).await.unwrap();
    assert_eq!(next[0].0, all[1].0);
    assert!(all.iter().all(|(_, acc)| acc.version >= 1));
}

pub fn message(id: &str, to: &[&str]) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        operation: "SendEmail".into(),
        source: "sender@example.com".into(),
        destinations: to.iter().map(|s| s.to_string()).collect(),
        subject: Some("Hi".into()),
        created_at: 1_700_000_000_000,
        raw: b"Subject: Hi\r\n\r\nbody".to_vec(),
        meta: Default::default(),
        events: vec![],
    }
}

/// A quota check counting `n` recipients at `now` (a negative `max_24h`
/// means no daily limit).
pub fn quota(now: i64, max_24h: f64, max_rate: f64, n: u32) -> QuotaCheck {
    QuotaCheck {
        now,
        max_24h,
        max_rate,
        daily_recipients: n,
        rate_recipients: n,
    }
}

async fn quotas(store: &dyn Store) {
    let s = scope("121212121212", "us-east-1");
    let t = 1_700_000_000_000;
    let ok = store
        .accept_message(
            &s,
            &message("q1", &["a@x.com", "b@x.com"]),
            &quota(t, 3.0, 100.0, 2),
        )
        .await
        .unwrap();
    assert_eq!(ok, Acceptance::Accepted);
    let over = store
        .accept_message(
            &s,
            &message("q2", &["c@x.com", "d@x.com"]),
            &quota(t + 1000, 3.0, 100.0, 2),
        )
        .await
        .unwrap();
    assert_eq!(over, Acceptance::DailyQuotaExceeded);
    assert!(
        store.get_message("q2").await.unwrap().is_none(),
        "a refused message is not stored"
    );
    assert_eq!(store.sent_last_24h(&s, t + 1000).await.unwrap(), 2);
    let stats = store.send_statistics(&s, t - 3_600_000).await.unwrap();
    assert_eq!(stats.iter().map(|p| p.delivery_attempts).sum::<u64>(), 2);
    assert_eq!(
        stats[0].start % (15 * 60_000),
        0,
        "intervals start on a quarter hour"
    );
    // The window rolls: a day later the old recipients no longer count.
    assert_eq!(
        store
            .sent_last_24h(&s, t + 24 * 3600 * 1000 + 60_000)
            .await
            .unwrap(),
        0
    );
    // Unlimited (-1) never refuses on the daily count.
    let big = store
        .accept_message(
            &s,
            &message("q3", &["e@x.com"]),
            &quota(t + 2000, -1.0, 100.0, 1),
        )
        .await
        .unwrap();
    assert_eq!(big, Acceptance::Accepted);
    // The rate: two per second, a third in the same second is refused.
    let r = scope("121212121212", "eu-west-1");
    for (i, want) in [
        Acceptance::Accepted,
        Acceptance::Accepted,
        Acceptance::RateExceeded,
    ]
    .into_iter()
    .enumerate()
    {
        let got = store
            .accept_message(
                &r,
                &message(&format!("r{i}"), &["a@x.com"]),
                &quota(t + i as i64, 200.0, 2.0, 1),
            )
            .await
            .unwrap();
        assert_eq!(got, want, "send {i}");
    }
    let next_second = store
        .accept_message(
            &r,
            &message("r3", &["a@x.com"]),
            &quota(t + 1000, 200.0, 2.0, 1),
        )
        .await
        .unwrap();
    assert_eq!(next_second, Acceptance::Accepted);
    // Simulator recipients count toward the rate but not the day.
    let sim = QuotaCheck {
        daily_recipients: 0,
        ..quota(t + 5000, 3.0, 100.0, 1)
    };
    let mut s2 = store
        .accept_message(
            &r,
            &message("r4", &["success@simulator.amazonses.com"]),
            &sim,
        )
        .await
        .unwrap();
    assert_eq!(s2, Acceptance::Accepted);
    s2 = store
        .accept_message(
            &r,
            &message("r5", &["a@x.com"]),
            &quota(t + 6000, 4.0, 100.0, 1),
        )
        .await
        .unwrap();
    assert_eq!(
        s2,
        Acceptance::Accepted,
        "the simulator send did not use the daily quota"
    );
}

async fn quotas_hold_under_concurrency(store: Arc<dyn Store>) {
    let s = scope("131313131313", "us-east-1");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (s, store) = (s.clone(), store.clone());
        tasks.spawn(async move {
            store
                .accept_message(
                    &s,
                    &message(&format!("c{i}"), &["a@x.com"]),
                    &quota(1_700_000_000_000, 7.0, 1000.0, 1),
                )
                .await
                .unwrap()
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Acceptance::Accepted)
            .count(),
        7
    );
}

async fn mailbox(store: &dyn Store) {
    store.clear_messages().await.unwrap();
    let s = scope("141414141414", "us-east-1");
    let q = quota(1_700_000_000_000, -1.0, 1000.0, 1);
    store
        .accept_message(&s, &message("m1", &["Alice@x.com"]), &q)
        .await
        .unwrap();
    store
        .accept_message(&s, &message("m2", &["bob@x.com"]), &q)
        .await
        .unwrap();
    let all = store
        .list_messages(&MessageFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|m| m.message.id.as_str())
            .collect::<Vec<_>>(),
        vec!["m2", "m1"]
    );
    let alice = store
        .list_messages(&MessageFilter {
            recipient: Some("alice@x.com".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].scope, s);
    let m = store.get_message("m1").await.unwrap().unwrap();
    assert_eq!(m.message.raw, message("m1", &[]).raw);
    // Feedback received later is recorded as events of the message.
    let complaint = sesame_model::Event {
        kind: sesame_model::EventKind::Complaint,
        scope: s.clone(),
        message_id: "m1".into(),
        at: 1_700_000_001_000,
        recipients: vec!["alice@x.com".into()],
        mail: sesame_model::MailInfo::of(&m.message),
        detail: sesame_model::EventDetail::Complaint {
            feedback_type: "abuse".into(),
            user_agent: "ISP".into(),
            feedback_id: "f1".into(),
        },
    };
    store
        .record_events(std::slice::from_ref(&complaint))
        .await
        .unwrap();
    let found = store
        .list_events(&sesame_model::EventFilter {
            scope: Some(s.clone()),
            message_id: Some("m1".into()),
            kind: Some(sesame_model::EventKind::Complaint),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(found, vec![complaint]);
    assert_eq!(store.clear_messages().await.unwrap(), 2);
    assert!(store.get_message("m1").await.unwrap().is_none());
}

async fn delivery_queue(store: &dyn Store) {
    use sesame_model::{
        DeliveryState, DeliveryUpdate, Event, EventDetail, EventFilter, EventKind, MailInfo,
    };
    store.clear_messages().await.unwrap();
    let s = scope("151515151515", "us-east-1");
    let t = 1_700_000_000_000;
    let q = quota(t, -1.0, 1000.0, 3);
    store
        .accept_message(&s, &message("d1", &["a@x.com", "b@y.com", "c@X.com"]), &q)
        .await
        .unwrap();
    let over = store
        .accept_message(&s, &message("d2", &["a@x.com"]), &quota(t, 0.0, 1000.0, 1))
        .await
        .unwrap();
    assert_eq!(over, Acceptance::DailyQuotaExceeded);
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending), (2, 0), "one delivery per domain");
    assert_eq!(sum.oldest_unfinished, Some(t));
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(t));

    // Nothing is due before its time; a claim takes each delivery once.
    assert!(
        store
            .claim_deliveries(t - 1, t + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_deliveries(t, t + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let x = claimed.iter().find(|d| d.domain == "x.com").unwrap();
    assert_eq!(x.recipients, vec!["a@x.com", "c@X.com"]);
    assert_eq!(x.message_id, "d1");
    assert_eq!(x.scope, s);
    assert_eq!(x.raw, message("d1", &[]).raw);
    assert_eq!(x.destinations.len(), 3);
    assert!(
        store
            .claim_deliveries(t + 1, t + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // An expired lease makes a delivery claimable again.
    let again = store
        .claim_deliveries(t + 60_001, t + 120_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 2);

    let y = claimed.iter().find(|d| d.domain == "y.com").unwrap();
    let event = Event {
        kind: EventKind::Bounce,
        scope: s.clone(),
        message_id: "d1".into(),
        at: t + 5,
        recipients: vec!["b@y.com".into()],
        mail: MailInfo {
            source: "sender@example.com".into(),
            destinations: vec!["b@y.com".into()],
            subject: None,
            sent_at: t,
            operation: "SendEmail".into(),
            meta: Default::default(),
            headers: None,
        },
        detail: EventDetail::Complaint {
            feedback_type: "abuse".into(),
            user_agent: "test".into(),
            feedback_id: "f".into(),
        },
    };
    store
        .finish_deliveries(
            vec![
                DeliveryUpdate::Finished {
                    id: y.id,
                    failed: true,
                    at: t + 5,
                },
                DeliveryUpdate::Retry {
                    id: x.id,
                    recipients: vec!["c@X.com".into()],
                    at: t + 1_000,
                    error: "451 try later".into(),
                },
            ],
            vec![event.clone()],
        )
        .await
        .unwrap();
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.failed), (1, 1));
    assert_eq!(store.queue_depth().await.unwrap(), (1, 0));
    assert_eq!(sum.next_attempt, Some(t + 1_000));
    let queued = store
        .list_queue(Some(DeliveryState::Queued), 10)
        .await
        .unwrap();
    assert_eq!(queued[0].recipients, vec!["c@X.com"]);
    assert_eq!(queued[0].attempts, 1);
    assert_eq!(queued[0].last_error.as_deref(), Some("451 try later"));
    assert_eq!(store.list_queue(None, 10).await.unwrap().len(), 2);

    // Operator actions.
    assert_eq!(store.retry_message("d1", t + 10).await.unwrap(), 1);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(t + 10));
    let c = store
        .claim_deliveries(t + 10, t + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(store.requeue_in_flight(t + 20).await.unwrap(), 1);
    // A delivery in flight is dropped too.
    let c = store
        .claim_deliveries(t + 30, t + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), (0, 1));
    assert_eq!(store.drop_message("d1", t + 30).await.unwrap(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), (0, 0));
    assert_eq!(store.queue_summary().await.unwrap().queued, 0);
    assert_eq!(store.drop_message("nope", t).await.unwrap(), 0);

    // Events read back as written, and bounces count in the statistics.
    let events = store
        .list_events(&EventFilter {
            message_id: Some("d1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events, vec![event]);
    let stats = store.send_statistics(&s, t - 3_600_000).await.unwrap();
    assert_eq!(stats.iter().map(|p| p.bounces).sum::<u64>(), 1);
    assert_eq!(stats.iter().map(|p| p.delivery_attempts).sum::<u64>(), 3);
    let other = store
        .list_events(&EventFilter {
            scope: Some(scope("151515151515", "eu-west-1")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());

    // A message deleted before delivery ends its delivery.
    store
        .accept_message(&s, &message("d3", &["a@z.com"]), &quota(t, -1.0, 1000.0, 1))
        .await
        .unwrap();
    store.clear_messages().await.unwrap();
    assert!(
        store
            .claim_deliveries(t + 60_000, t + 120_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn rejections(store: &dyn Store) {
    let s = scope("151515151515", "us-east-1");
    let r = Rejection {
        created_at: 1,
        request_id: Some("req-1".into()),
        operation: "SendEmail".into(),
        rule: "sandbox-recipient-not-verified".into(),
        message: "Email address is not verified.".into(),
        identities: vec!["a@x.com".into()],
        senders: vec![],
    };
    store.record_rejection(&s, &r).await.unwrap();
    assert_eq!(
        store.list_rejections(&s, 10).await.unwrap(),
        vec![r.clone()]
    );
    assert_eq!(store.find_rejection("req-1").await.unwrap(), Some((s, r)));
    assert_eq!(store.find_rejection("req-2").await.unwrap(), None);
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
