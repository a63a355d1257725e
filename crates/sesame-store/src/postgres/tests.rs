//! The PostgreSQL backend's tests, against a real server: the one
//! `SESAME_TEST_POSTGRES` names (a URL whose user may create databases;
//! `scripts/test.sh` starts a throwaway cluster and sets it). Each test
//! makes its own database.

use super::*;

use crate::conformance::postgres_database as fresh_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let url = fresh_database().await;
    let store = Arc::new(PgStore::open(&url, "node-a").await.unwrap());
    crate::conformance::run(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_quotas_leases_and_the_queue() {
    let url = fresh_database().await;
    let a = Arc::new(PgStore::open(&url, "node-a").await.unwrap());
    let b = Arc::new(PgStore::open(&url, "node-b").await.unwrap());
    crate::conformance::run_nodes(a.clone(), b.clone()).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let url = fresh_database().await;
    let store = PgStore::open(&url, "node-a").await.unwrap();
    crate::conformance::seed_one(&store).await;
    store.close().await;
    let again = PgStore::open(&url, "node-a").await.unwrap();
    crate::conformance::check_seeded(&again).await;
    again.close().await;
}

/// Events are numbered in the order they were committed, so a reader that
/// follows their numbers (event publishing) never passes one committed
/// late: while one transaction holds events uncommitted, no later event
/// becomes visible ahead of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_numbered_in_commit_order() {
    use crate::conformance::{message, scope};
    let url = fresh_database().await;
    let store = Arc::new(PgStore::open(&url, "node-a").await.unwrap());
    let s = scope("949494949494", "us-east-1");
    let t = 1_700_000_000_000;
    let m = message("m", &["a@x.com"]);
    let event = |id: &str| Event {
        kind: sesame_model::EventKind::Complaint,
        scope: s.clone(),
        message_id: id.to_owned(),
        at: t,
        recipients: vec!["a@x.com".into()],
        mail: sesame_model::MailInfo::of(&m),
        detail: sesame_model::EventDetail::Complaint {
            feedback_type: "abuse".into(),
            user_agent: "ISP".into(),
            feedback_id: id.into(),
        },
    };
    // A slow writer: holds its event uncommitted for a while.
    let mut slow = store.pool.begin().await.unwrap();
    queue::insert_events(&mut slow, &[event("first")])
        .await
        .unwrap();
    let later = {
        let store = store.clone();
        let e = event("second");
        tokio::spawn(async move { store.record_events(&[e]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The later write waits for the slow one; nothing is visible yet.
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    slow.commit().await.unwrap();
    later.await.unwrap().unwrap();
    let seen: Vec<String> = store
        .events_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.message_id)
        .collect();
    assert_eq!(seen, ["first", "second"]);
    store.close().await;
}

/// A node name a running node holds is refused to another process; once
/// that node stops, the name is free at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_nodes_name_is_refused_to_another() {
    let url = fresh_database().await;
    let a = PgStore::open(&url, "twin").await.unwrap();
    a.hold_node_within(Duration::from_secs(1)).await.unwrap();
    let b = PgStore::open(&url, "twin").await.unwrap();
    let e = b
        .hold_node_within(Duration::from_millis(800))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("another node named twin"), "{e}");
    // Another name is fine meanwhile.
    let c = PgStore::open(&url, "other").await.unwrap();
    c.hold_node_within(Duration::from_secs(1)).await.unwrap();
    a.close().await;
    b.hold_node_within(Duration::from_millis(100))
        .await
        .unwrap();
    b.close().await;
    c.close().await;
}
