use super::queue::{DROP_MESSAGE, RETRY_MESSAGE};
use super::*;

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    crate::conformance::run(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn cached_reads_see_writes_from_another_process() {
    use crate::conformance::{identity, scope};
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(dir.path()).await.unwrap();
    let operator = SqliteStore::open(dir.path()).await.unwrap();
    let s = scope("191919191919", "us-east-1");
    // The server caches "absent" for both...
    assert_eq!(server.get_account(&s).await.unwrap(), None);
    assert!(
        server
            .get_identities(&s, &["x.com".into()])
            .await
            .unwrap()
            .is_empty()
    );
    // ...another store on the same directory writes...
    operator
        .save_account(&s, &Account::new(true))
        .await
        .unwrap();
    operator
        .insert_identity(&s, &identity("x.com"), 10)
        .await
        .unwrap();
    // ...and the server's next reads see it.
    assert!(
        server
            .get_account(&s)
            .await
            .unwrap()
            .unwrap()
            .production_access
    );
    let mut found = server.get_identities(&s, &["x.com".into()]).await.unwrap();
    assert_eq!(found.len(), 1);
    let mut verified = Arc::unwrap_or_clone(found.remove(0));
    verified.verification_status = sesame_model::VerificationStatus::Success;
    assert!(operator.update_identity(&s, &verified).await.unwrap());
    assert!(server.get_identities(&s, &["x.com".into()]).await.unwrap()[0].is_verified());
    operator.delete_identity(&s, "x.com").await.unwrap();
    assert!(
        server
            .get_identities(&s, &["x.com".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_daily_quota_survives_a_restart() {
    use crate::conformance::{message, scope};
    let dir = tempfile::tempdir().unwrap();
    let s = scope("202020202020", "us-east-1");
    let q = |now: i64| QuotaCheck {
        now,
        max_24h: 2.0,
        max_rate: 100.0,
        daily_recipients: 1,
        rate_recipients: 1,
    };
    let t = 1_700_000_000_000;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    for i in 0..2 {
        let r = store
            .accept_message(&s, &message(&format!("a{i}"), &["x@y.z"]), &q(t + i))
            .await;
        assert_eq!(r.unwrap(), Acceptance::Accepted);
    }
    store.close().await;
    let again = SqliteStore::open(dir.path()).await.unwrap();
    let r = again
        .accept_message(&s, &message("a2", &["x@y.z"]), &q(t + 5))
        .await;
    assert_eq!(r.unwrap(), Acceptance::DailyQuotaExceeded);
    // A day later the window has rolled past them.
    let r = again
        .accept_message(
            &s,
            &message("a3", &["x@y.z"]),
            &q(t + 24 * 3600 * 1000 + 60_000),
        )
        .await;
    assert_eq!(r.unwrap(), Acceptance::Accepted);
}

/// A message to several domains is one delivery a domain, and they
/// share one copy of its bytes, whether claimed from the queue or
/// born claimed.
#[tokio::test]
async fn a_messages_deliveries_share_its_bytes() {
    use crate::conformance::{message, quota, scope};
    let dir = tempfile::tempdir().unwrap();
    let s = scope("212121212121", "us-east-1");
    let t = 1_700_000_000_000;
    let q = quota(t, -1.0, 1000.0, 3);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let to = ["a@x.com", "b@y.com", "c@z.com"];
    for (id, now) in [("queued", t), ("born", t + 10)] {
        store
            .accept_message(&s, &message(id, &to), &q)
            .await
            .unwrap();
        let queued = store.queue_summary().await.unwrap().queued;
        assert_eq!(queued, if id == "queued" { 3 } else { 0 }, "{id}");
        let got = store.claim_deliveries(now, now + 60_000, 10).await.unwrap();
        assert_eq!(got.len(), 3, "{id}");
        assert!(got.iter().all(|d| d.raw == message(id, &[]).raw), "{id}");
        assert!(
            got.iter().all(|d| d.raw.as_ptr() == got[0].raw.as_ptr()),
            "{id}: one copy for the three domains"
        );
    }
    let sum = store.queue_summary().await.unwrap();
    assert_eq!(sum.sending, 6, "both claims took all three domains");
}

/// The hand-off holds at most 64 MiB of messages, each counted once
/// however many domains it goes to: a message that would take more is
/// queued instead, and room comes back as the engine takes what waits
/// there.
#[tokio::test]
async fn the_hand_off_holds_a_bounded_number_of_bytes() {
    use crate::conformance::{message, quota, scope};
    let dir = tempfile::tempdir().unwrap();
    let s = scope("212121212121", "us-east-1");
    let t = 1_700_000_000_000;
    let q = quota(t, -1.0, 1000.0, 1);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    // The engine's first claim opens the hand-off.
    assert!(
        store
            .claim_deliveries(t, t + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let large = |id: &str| NewMessage {
        raw: vec![b'x'; 15 << 20],
        ..message(id, &["a@x.com"])
    };
    for n in 0..5 {
        store
            .accept_message(&s, &large(&format!("l{n}")), &q)
            .await
            .unwrap();
    }
    let sum = store.queue_summary().await.unwrap();
    assert_eq!(
        (sum.sending, sum.queued),
        (4, 1),
        "60 MiB born, the fifth queued"
    );
    let got = store.claim_deliveries(t + 1, t + 60_000, 10).await.unwrap();
    assert_eq!(got.len(), 5, "the four handed off and the queued one");
    store.accept_message(&s, &large("l5"), &q).await.unwrap();
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.sending, sum.queued), (6, 0), "room again once taken");
    // A message to three domains counts once: 30 MiB wait, not 60.
    let three = NewMessage {
        destinations: vec!["a@x.com".into(), "b@y.com".into(), "c@z.com".into()],
        ..large("l6")
    };
    store
        .accept_message(&s, &three, &quota(t, -1.0, 1000.0, 3))
        .await
        .unwrap();
    for id in ["l7", "l8"] {
        store.accept_message(&s, &large(id), &q).await.unwrap();
    }
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.sending, sum.queued), (11, 0), "60 MiB in the hand-off");
    store.accept_message(&s, &large("l9"), &q).await.unwrap();
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.sending, sum.queued), (11, 1), "75 would not fit");
}

/// Once the engine has claimed, new deliveries are born claimed and
/// handed to its next claim: each exactly once, `sending` in the
/// database all along, requeued after a restart, claimable from the
/// queue again when their lease runs out, and never starving what the
/// queue itself holds.
#[tokio::test]
async fn deliveries_born_claimed_are_handed_off_once_and_survive_a_restart() {
    use crate::conformance::{message, quota, scope};
    use sesame_model::DeliveryUpdate;
    let dir = tempfile::tempdir().unwrap();
    let s = scope("212121212121", "us-east-1");
    let t = 1_700_000_000_000;
    let lease = 60_000;
    let q = quota(t, -1.0, 1000.0, 1);
    let at = |id: &str, to: &[&str], created_at: i64| NewMessage {
        created_at,
        ..message(id, to)
    };
    let store = SqliteStore::open(dir.path()).await.unwrap();
    // Before any claim, deliveries are queued, and when the queue is
    // next due is not known without reading it.
    store
        .accept_message(&s, &at("h0", &["a@x.com"], t), &q)
        .await
        .unwrap();
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending), (1, 0));
    assert_eq!(store.next_delivery_due_hint(), None);
    assert_eq!(
        store
            .claim_deliveries(t, t + lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The claim's search told: nothing else is queued.
    assert_eq!(store.next_delivery_due_hint(), Some(None));

    // Now they are born claimed, and the next claim takes them.
    store
        .accept_message(&s, &at("h1", &["a@x.com", "b@y.com"], t + 1), &q)
        .await
        .unwrap();
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending), (0, 3), "born claimed");
    let got = store
        .claim_deliveries(t + 2, t + 2 + lease, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let x = got.iter().find(|d| d.domain == "x.com").unwrap();
    assert_eq!(x.message_id, "h1");
    assert_eq!(x.recipients, vec!["a@x.com"]);
    assert_eq!(x.destinations.len(), 2);
    assert_eq!(x.scope, s);
    assert_eq!(x.raw, message("h1", &[]).raw);
    assert_eq!(x.accepted_at, t + 1);
    assert!(
        store
            .claim_deliveries(t + 3, t + 3 + lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "handed off once"
    );

    // A retry in the queue is found even while the hand-off is busy.
    store
        .finish_deliveries(
            vec![DeliveryUpdate::Retry {
                id: x.id,
                recipients: x.recipients.clone(),
                at: t + 10,
                error: "451".into(),
            }],
            vec![],
        )
        .await
        .unwrap();
    // The retry is known due without reading the queue.
    assert_eq!(store.next_delivery_due_hint(), Some(Some(t + 10)));
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(t + 10));
    store
        .accept_message(&s, &at("h2", &["c@z.com"], t + 11), &q)
        .await
        .unwrap();
    let got = store
        .claim_deliveries(t + 200, t + 200 + lease, 10)
        .await
        .unwrap();
    let mut ids: Vec<_> = got.iter().map(|d| d.message_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["h1", "h2"]);
    assert_eq!(store.next_delivery_due_hint(), Some(None));

    // A delivery left in the hand-off past its lease is claimed from
    // the queue instead, once.
    store
        .accept_message(&s, &at("h3", &["d@w.com"], t + 300), &q)
        .await
        .unwrap();
    let late = t + 300 + lease + 1;
    let got = store
        .claim_deliveries(late, late + lease, 10)
        .await
        .unwrap();
    let h3: Vec<_> = got.iter().filter(|d| d.message_id == "h3").collect();
    assert_eq!(h3.len(), 1, "{got:?}");

    // Handed off but never claimed when the process ends: the next
    // start requeues it.
    store
        .accept_message(&s, &at("h4", &["e@v.com"], late + 1), &q)
        .await
        .unwrap();
    store.close().await;
    let again = SqliteStore::open(dir.path()).await.unwrap();
    assert!(again.requeue_in_flight(late + 2).await.unwrap() >= 1);
    assert_eq!(again.next_delivery_due_hint(), None, "a new process reads");
    assert_eq!(again.next_delivery_due().await.unwrap(), Some(late + 2));
    let got = again
        .claim_deliveries(late + 2, late + 2 + lease, 10)
        .await
        .unwrap();
    assert!(got.iter().any(|d| d.message_id == "h4"), "{got:?}");
}

/// A part of a write round that fails (here a second message with the
/// same id) fails alone, whether it shares its round with others or
/// not: it writes and counts nothing, the others stand, and the writer
/// goes on.
#[tokio::test]
async fn a_failing_write_fails_alone() {
    use crate::conformance::{message, quota, scope};
    use sesame_model::{DeliveryUpdate, EventFilter};
    let dir = tempfile::tempdir().unwrap();
    let s = scope("232323232323", "us-east-1");
    let t = 1_700_000_000_000;
    let q = quota(t, -1.0, 1000.0, 1);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store
        .accept_message(&s, &message("p1", &["a@x.com"]), &q)
        .await
        .unwrap();
    let d = store.claim_deliveries(t, t + 60_000, 10).await.unwrap();
    let to = ["a@x.com".to_owned()];
    let event = |id: &str| delivery_event(&s, &message(id, &["a@x.com"]), &to);
    for round in 0..20 {
        let id = format!("f{round}");
        let again = message("p1", &["a@x.com"]);
        let (dup, fin) = tokio::join!(
            store.accept_message(&s, &again, &q),
            store.finish_deliveries(
                vec![DeliveryUpdate::Finished {
                    id: d[0].id,
                    failed: false,
                    at: t + 1,
                }],
                vec![event(&id)],
            ),
        );
        assert!(dup.is_err(), "a second message p1 is refused");
        fin.unwrap();
        let got = store
            .list_events(&EventFilter {
                message_id: Some(id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "the outcome beside it stands");
    }
    assert_eq!(
        store.sent_last_24h(&s, t).await.unwrap(),
        1,
        "refused ones are not counted"
    );
    let ok = store
        .accept_message(&s, &message("p2", &["a@x.com"]), &q)
        .await
        .unwrap();
    assert_eq!(ok, Acceptance::Accepted);
    assert_eq!(store.sent_last_24h(&s, t).await.unwrap(), 2);
}

/// A refused write takes back what its decision counted in the writer's
/// quota state: its recipients against the 24-hour quota and its tokens
/// from the rate bucket. Without that, each refused message would use up
/// quota that nothing was sent with.
#[tokio::test]
async fn a_refused_write_takes_back_what_it_counted() {
    use crate::conformance::{message, quota, scope};
    let dir = tempfile::tempdir().unwrap();
    let s = scope("242424242424", "us-east-1");
    let t = 1_700_000_000_000;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    // Two recipients a day, one a second.
    let at = |ms: i64| quota(t + ms, 2.0, 1.0, 1);
    let first = store
        .accept_message(&s, &message("q1", &["a@x.com"]), &at(0))
        .await
        .unwrap();
    assert_eq!(first, Acceptance::Accepted);
    for i in 1..=3 {
        let again = message("q1", &["a@x.com"]);
        assert!(
            store
                .accept_message(&s, &again, &at(i * 1000))
                .await
                .is_err(),
            "a second message q1 is refused"
        );
    }
    let second = store
        .accept_message(&s, &message("q2", &["a@x.com"]), &at(3000))
        .await
        .unwrap();
    assert_eq!(
        second,
        Acceptance::Accepted,
        "neither the day's quota nor this second's token went to the refused writes"
    );
    let third = store
        .accept_message(&s, &message("q3", &["a@x.com"]), &at(5000))
        .await
        .unwrap();
    assert_eq!(third, Acceptance::DailyQuotaExceeded);
    assert_eq!(store.sent_last_24h(&s, t + 5000).await.unwrap(), 2);
}

/// A Delivery event of `m` to `recipients`, at its acceptance.
fn delivery_event(scope: &Scope, m: &NewMessage, recipients: &[String]) -> Event {
    Event {
        kind: sesame_model::EventKind::Delivery,
        scope: scope.clone(),
        message_id: m.id.clone(),
        at: m.created_at,
        recipients: recipients.to_vec(),
        mail: sesame_model::MailInfo::of(m),
        detail: sesame_model::EventDetail::Delivery {
            smtp_response: "250 ok".into(),
            remote_mta: "mailbox".into(),
            reporting_mta: "test".into(),
            processing_time_ms: 0,
            outgoing_ip: None,
        },
    }
}

/// Delivers the domains it names at acceptance, and counts what it is
/// told was recorded.
struct DeliversTo {
    domains: Vec<&'static str>,
    recorded: Mutex<Vec<String>>,
}

impl AcceptanceDelivery for DeliversTo {
    fn delivered(
        &self,
        scope: &Scope,
        m: &NewMessage,
        domain: &str,
        recipients: &[String],
    ) -> Option<Event> {
        self.domains
            .contains(&domain)
            .then(|| delivery_event(scope, m, recipients))
    }

    fn recorded(&self, events: &[Event]) {
        let mut r = self.recorded.lock().unwrap();
        r.extend(events.iter().map(|e| e.message_id.clone()));
    }
}

/// With a hook, an acceptance records the deliveries it makes (finished,
/// with their events, in its own transaction) and queues the rest; a
/// refused message records nothing.
#[tokio::test]
async fn an_acceptance_records_the_deliveries_it_makes() {
    use crate::conformance::{message, quota, scope};
    use sesame_model::EventFilter;
    let dir = tempfile::tempdir().unwrap();
    let s = scope("242424242424", "us-east-1");
    let t = 1_700_000_000_000;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let hook = Arc::new(DeliversTo {
        domains: vec!["x.com"],
        recorded: Mutex::new(vec![]),
    });
    store.deliver_on_acceptance(hook.clone());
    let q = quota(t, -1.0, 1.0, 1);
    let got = store
        .accept_message(&s, &message("c1", &["a@x.com", "b@y.com", "c@X.com"]), &q)
        .await
        .unwrap();
    assert_eq!(got, Acceptance::Accepted);
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending, sum.delivered), (1, 0, 1));
    let events = store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message_id, "c1");
    assert_eq!(events[0].recipients, ["a@x.com", "c@X.com"]);
    assert_eq!(*hook.recorded.lock().unwrap(), ["c1"]);
    // What is left to the engine is y.com's delivery alone.
    let claimed = store.claim_deliveries(t, t + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].domain, "y.com");
    assert_eq!(claimed[0].recipients, ["b@y.com"]);
    // Over the rate: refused, and nothing is delivered or recorded.
    let refused = store
        .accept_message(&s, &message("c2", &["d@x.com"]), &q)
        .await
        .unwrap();
    assert_eq!(refused, Acceptance::RateExceeded);
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending, sum.delivered), (0, 1, 1));
    assert_eq!(*hook.recorded.lock().unwrap(), ["c1"]);
    let c2 = store
        .list_events(&EventFilter {
            message_id: Some("c2".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(c2.is_empty());
    // A delivery made at acceptance is finished: a restart has nothing
    // of it to requeue.
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.requeue_in_flight(t + 1).await.unwrap(), 1);
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.delivered), (1, 1));
}

/// Accepts `n` messages of `size` bytes each, one after another, from
/// `first` on.
async fn accept_many(store: &SqliteStore, s: &Scope, first: usize, n: usize, size: usize) {
    use crate::conformance::{message, quota};
    for i in first..first + n {
        let mut m = message(&format!("w{i:06}"), &["x@y.z"]);
        m.raw = vec![b'x'; size];
        let r = store
            .accept_message(s, &m, &quota(1_700_000_000_000 + i as i64, -1.0, 1e9, 1))
            .await;
        assert_eq!(r.unwrap(), Acceptance::Accepted);
    }
}

/// The WAL's checkpoint sequence number, which SQLite raises each time
/// it starts the WAL over.
fn wal_restarts(dir: &Path) -> u32 {
    let wal = std::fs::read(dir.join("sesame.db-wal")).unwrap_or_default();
    wal.get(12..16)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()))
}

/// The checkpoint thread copies committed pages into the database
/// while the WAL is far below the writer's own automatic checkpoint.
#[tokio::test]
async fn the_checkpoint_thread_copies_the_wal_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::conformance::scope("222222222222", "us-east-1");
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let db = dir.path().join("sesame.db");
    let before = std::fs::metadata(&db).unwrap().len();
    // About 80 pages of messages: nothing near 16,000.
    accept_many(&store, &s, 0, 40, 8 * 1024).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = before;
    while after < before + 40 * 8 * 1024 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = std::fs::metadata(&db).unwrap().len();
    }
    assert!(
        after >= before + 40 * 8 * 1024,
        "the database file grew from {before} to {after} bytes only"
    );
    store.close().await;
}

/// Under writes that never pause, the WAL still starts over (the
/// checkpointer hands the writer the tail) and stays far below the
/// safety net's length.
#[tokio::test]
async fn the_wal_starts_over_under_continuous_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::conformance::scope("232323232323", "us-east-1");
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let frame = 4096 + 24;
    let mut longest = 0;
    let (mut sent, start) = (0, wal_restarts(dir.path()));
    // Each message is about four pages; 4,000 pages is 1,000 of them.
    while wal_restarts(dir.path()) < start + 2 && sent < 20_000 {
        accept_many(&store, &s, sent, 50, 12 * 1024).await;
        sent += 50;
        let len = std::fs::metadata(dir.path().join("sesame.db-wal")).map_or(0, |m| m.len());
        longest = longest.max(len);
    }
    assert!(
        wal_restarts(dir.path()) >= start + 2,
        "the WAL did not start over in {sent} messages"
    );
    assert!(
        longest < writer::WAL_HARD_LIMIT as u64 * frame,
        "the WAL grew to {longest} bytes"
    );
    store.close().await;
}

/// Deliveries are indexed by message only while queued, and an
/// operator's retry or drop of a message searches that index (a drop
/// finds deliveries in flight through `deliveries_sending`).
#[tokio::test]
async fn per_message_queue_operations_search_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let (index,): (String,) =
        sqlx::query_as("SELECT sql FROM sqlite_schema WHERE name = 'deliveries_message'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert!(index.ends_with("WHERE state = 'queued'"), "{index}");
    for sql in [RETRY_MESSAGE, DROP_MESSAGE] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert!(
            plan.iter()
                .any(|(.., d)| d.contains("INDEX deliveries_message (message_id=?)")),
            "{sql}: {plan:?}"
        );
        if sql == DROP_MESSAGE {
            // Deliveries in flight through their own partial index, not
            // a scan of the table.
            assert!(
                plan.iter()
                    .any(|(.., d)| d.contains("USING INDEX deliveries_sending")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|(.., d)| d == "SCAN deliveries"),
                "{sql}: {plan:?}"
            );
        }
    }
    store.close().await;
}

#[tokio::test]
async fn a_claimed_delivery_whose_message_is_gone_ends_failed() {
    use crate::conformance::{message, quota, scope};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let s = scope("212121212121", "us-east-1");
    let t = 1_700_000_000_000;
    for id in ["kept", "gone"] {
        store
            .accept_message(&s, &message(id, &["a@z.com"]), &quota(t, -1.0, 1000.0, 1))
            .await
            .unwrap();
    }
    // Removed behind the store's back (clear_messages takes the
    // deliveries with it), as an operator's sqlite3 might.
    sqlx::query("DELETE FROM messages WHERE id = 'gone'")
        .execute(&store.pool)
        .await
        .unwrap();
    let claimed = store
        .claim_deliveries(t + 60_000, t + 120_000, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["kept"]);
    let states: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT message_id, state, last_error FROM deliveries ORDER BY message_id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [
            (
                "gone".into(),
                "failed".into(),
                Some("the message was deleted before delivery".into())
            ),
            ("kept".into(), "sending".into(), None),
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    crate::conformance::seed_one(&store).await;
    store.close().await;
    let again = SqliteStore::open(dir.path()).await.unwrap();
    crate::conformance::check_seeded(&again).await;
}
