use super::transport::{CAPTURED, MAILBOX_HOST};
use super::*;
use crate::clock::ManualClock;
use crate::dkim_keys;
use sesame_model::{Acceptance, KeyLength, NewMessage, QuotaCheck};
use sesame_store::SqliteStore;
use sesame_store::conformance::{identity, scope};

/// Remembers what it was handed and answers with a fixed outcome.
/// (MAIL FROM, recipients, message) of each envelope.
type Seen = (String, Vec<String>, Vec<u8>);

struct Recorder {
    seen: Mutex<Vec<Seen>>,
    outcome: RecipientOutcome,
}

#[async_trait]
impl Transport for Recorder {
    async fn deliver(&self, e: &Envelope<'_>) -> AttemptReport {
        self.seen
            .lock()
            .unwrap()
            .push((e.mail_from.to_owned(), e.recipients.to_vec(), e.to_vec()));
        AttemptReport {
            local: Some(std::net::Ipv4Addr::new(192, 0, 2, 25).into()),
            ..AttemptReport::all("mx.test", e.recipients, self.outcome.clone())
        }
    }
    fn mode(&self) -> &'static str {
        "test"
    }
}

/// A fresh store, and a clock at a fixed time.
async fn store_and_clock() -> (tempfile::TempDir, Arc<dyn Store>, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    (dir, store, Arc::new(ManualClock::new(1_700_000_000_000)))
}

async fn setup(
    outcome: RecipientOutcome,
    retry: RetryPolicy,
) -> (
    tempfile::TempDir,
    Arc<dyn Store>,
    Arc<ManualClock>,
    Arc<Recorder>,
    Arc<DeliveryEngine>,
) {
    let (dir, store, clock) = store_and_clock().await;
    let t = Arc::new(Recorder {
        seen: Mutex::new(vec![]),
        outcome,
    });
    let engine = Arc::new(DeliveryEngine::new(
        store.clone(),
        clock.clone(),
        t.clone(),
        DeliverySettings {
            retry,
            bounce_domain: "bounces.sesame.test".into(),
            poll: Duration::from_millis(20),
            ..Default::default()
        },
    ));
    (dir, store, clock, t, engine)
}

async fn accept(store: &dyn Store, id: &str, from: &str, to: &[&str], now: Millis) {
    let m = NewMessage {
        id: id.into(),
        operation: "SendEmail".into(),
        source: from.into(),
        destinations: to.iter().map(|s| s.to_string()).collect(),
        subject: Some("Hi".into()),
        created_at: now,
        raw: b"From: a@mail.example.com\r\nTo: x@dest.test\r\nSubject: Hi\r\n\r\nbody\r\n".to_vec(),
        meta: Default::default(),
        events: vec![],
    };
    let q = QuotaCheck {
        now,
        max_24h: -1.0,
        max_rate: 1000.0,
        daily_recipients: 1,
        rate_recipients: 1,
    };
    let s = scope("121212121212", "us-east-1");
    assert_eq!(
        store.accept_message(&s, &m, &q).await.unwrap(),
        Acceptance::Accepted
    );
}

/// Runs the engine until nothing is in flight or due at the clock's time.
async fn drain(store: &Arc<dyn Store>, clock: &ManualClock, engine: &Arc<DeliveryEngine>) {
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(engine.clone().run(stop));
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let s = store.queue_summary().await.unwrap();
        let due = s.queued > 0 && s.next_attempt.is_some_and(|at| at <= clock.now_ms());
        if s.sending == 0 && !due {
            break;
        }
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

async fn events(store: &Arc<dyn Store>) -> Vec<Event> {
    store
        .list_events(&sesame_model::EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// A verified domain with DKIM enabled and a key (token `tok<bits>`),
/// and a MAIL FROM domain `bounce.<name>`; `status` is both its DKIM
/// and its MAIL FROM status.
async fn signing_identity(name: &str, bits: KeyLength, status: VerificationStatus) -> Identity {
    let mut i = identity(name);
    i.verification_status = VerificationStatus::Success;
    i.dkim.status = status;
    i.dkim.signing_enabled = true;
    i.dkim.tokens = vec![format!("tok{}", bits.bits())];
    i.dkim.key = Some(dkim_keys::generate(bits).await.unwrap());
    i.mail_from = sesame_model::MailFrom {
        domain: Some(format!("bounce.{name}")),
        status: Some(status),
        reject_on_mx_failure: false,
    };
    i
}

/// Capture delivers at acceptance with the event the engine's capture
/// records (a delivery left queued from before is captured by the
/// engine), and leaves the mailbox simulator to the engine.
#[tokio::test]
async fn capture_delivers_at_acceptance_as_the_engine_would() {
    let (_dir, store, clock) = store_and_clock().await;
    let t0 = clock.now_ms();
    // Accepted before any engine: queued.
    accept(&*store, "q1", "a@mail.example.com", &["w@dest.test"], t0).await;
    let engine = Arc::new(DeliveryEngine::new(
        store.clone(),
        clock.clone(),
        Arc::new(CaptureTransport),
        DeliverySettings {
            reporting_mta: "mta.sesame.test".into(),
            poll: Duration::from_millis(20),
            ..Default::default()
        },
    ));
    let to = [
        "x@dest.test",
        "success@simulator.amazonses.com",
        "y@Dest.test",
    ];
    accept(&*store, "c1", "a@mail.example.com", &to, t0 + 5).await;
    // Before the engine runs, c1's dest.test delivery is made; q1's and
    // the simulator's wait for it.
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.delivered), (2, 1));
    let at_acceptance = events(&store).await;
    assert_eq!(at_acceptance.len(), 1);
    let e = &at_acceptance[0];
    assert_eq!((e.message_id.as_str(), e.at), ("c1", t0 + 5));
    assert_eq!(e.recipients, ["x@dest.test", "y@Dest.test"]);
    assert_eq!(e.mail.destinations, to);
    assert_eq!(e.mail.sent_at, t0 + 5);
    clock.advance(40);
    drain(&store, &clock, &engine).await;
    let sum = store.queue_summary().await.unwrap();
    assert_eq!((sum.queued, sum.sending, sum.delivered), (0, 0, 3));
    let all = events(&store).await;
    let by_engine = all.iter().find(|e| e.message_id == "q1").unwrap();
    let captured = |e: &Event| match &e.detail {
        EventDetail::Delivery {
            smtp_response,
            reporting_mta,
            remote_mta,
            processing_time_ms,
            ..
        } => (
            smtp_response.clone(),
            reporting_mta.clone(),
            remote_mta.clone(),
            *processing_time_ms,
        ),
        other => panic!("not a delivery: {other:?}"),
    };
    let (resp, mta, remote, _) = captured(by_engine);
    assert_eq!(captured(e), (resp, mta, remote, 0));
    assert_eq!(captured(e).0, CAPTURED);
    assert_eq!(captured(e).2, MAILBOX_HOST);
    assert_eq!(captured(e).1, "mta.sesame.test");
    let simulated = all
        .iter()
        .find(|e| e.message_id == "c1" && e.recipients == ["success@simulator.amazonses.com"])
        .expect("the simulator's delivery is the engine's");
    assert_eq!(simulated.kind, EventKind::Delivery);
}

#[tokio::test]
async fn signs_with_the_most_specific_verified_identity_and_reports_delivery() {
    let delivered = RecipientOutcome::Delivered {
        response: "250 ok".into(),
    };
    let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
    let s = scope("121212121212", "us-east-1");
    for (name, bits) in [
        ("example.com", KeyLength::Rsa2048),
        ("mail.example.com", KeyLength::Rsa1024),
    ] {
        let i = signing_identity(name, bits, VerificationStatus::Success).await;
        store.insert_identity(&s, &i, 100).await.unwrap();
    }
    let now = clock.now_ms();
    accept(&*store, "m1", "a@mail.example.com", &["x@dest.test"], now).await;
    clock.advance(5);
    drain(&store, &clock, &engine).await;
    let seen = t.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0, "m1@bounce.mail.example.com",
        "VERP return path at the most specific identity's verified MAIL FROM domain"
    );
    let text = String::from_utf8(seen[0].2.clone()).unwrap();
    assert!(text.starts_with("DKIM-Signature:"), "{text}");
    assert!(text.contains("d=mail.example.com"), "{text}");
    assert!(text.contains("s=tok1024"), "{text}");
    let ev = events(&store).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::Delivery);
    match &ev[0].detail {
        EventDetail::Delivery {
            processing_time_ms,
            remote_mta,
            outgoing_ip,
            ..
        } => {
            assert_eq!(*processing_time_ms, 5);
            assert_eq!(remote_mta, "mx.test");
            assert_eq!(outgoing_ip.as_deref(), Some("192.0.2.25"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.queue_summary().await.unwrap().delivered, 1);
}

/// A first attempt at a message with several recipient domains signs
/// once for all of them (the simulator's domain does not sign); a
/// retry signs afresh.
#[tokio::test]
async fn a_message_to_several_domains_is_signed_once() {
    let deferred = RecipientOutcome::Deferred {
        reason: "451 4.3.0 try again".into(),
    };
    let (_dir, store, clock) = store_and_clock().await;
    let t = Arc::new(Recorder {
        seen: Mutex::new(vec![]),
        outcome: deferred,
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let engine = metrics::with_local_recorder(&recorder, || {
        Arc::new(DeliveryEngine::new(
            store.clone(),
            clock.clone(),
            t.clone(),
            DeliverySettings {
                poll: Duration::from_millis(20),
                ..Default::default()
            },
        ))
    });
    let made = || {
        let text = metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix("sesame_dkim_signatures_total "))
            .map(|n| n.trim().parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    let s = scope("121212121212", "us-east-1");
    let i = signing_identity(
        "example.com",
        KeyLength::Rsa2048,
        VerificationStatus::Success,
    )
    .await;
    store.insert_identity(&s, &i, 100).await.unwrap();
    let to = [
        "x@dest-a.test",
        "y@dest-b.test",
        "z@DEST-B.test",
        "success@simulator.amazonses.com",
    ];
    assert_eq!(signing_domains(&to.map(String::from)), 2);
    accept(&*store, "m1", "a@example.com", &to, clock.now_ms()).await;
    drain(&store, &clock, &engine).await;
    let headers = |from: usize| -> Vec<String> {
        t.seen.lock().unwrap()[from..]
            .iter()
            .map(|(_, _, m)| {
                let text = String::from_utf8(m.clone()).unwrap();
                // The accepted message starts here (the signature's
                // h= tag names "From:" too, without the space).
                let end = text.find("From: a@mail.example.com").unwrap();
                assert!(text.starts_with("DKIM-Signature:"), "{text}");
                assert!(text[..end].contains(" b="), "{text}");
                text[..end].to_owned()
            })
            .collect()
    };
    let first = headers(0);
    assert_eq!(first.len(), 2, "one transaction a domain");
    assert_eq!(first[0], first[1], "both domains got the same signature");
    assert_eq!(made(), 1, "signed once for two domains");
    assert_eq!(engine.shared.len(), 0, "both domains took the shared entry");
    // Deferred: each domain's retry signs on its own.
    clock.advance(60_000);
    drain(&store, &clock, &engine).await;
    assert_eq!(headers(2).len(), 2);
    assert_eq!(made(), 3);
    assert_eq!(engine.shared.len(), 0);
}

/// Counts the attempts in its hands at once.
struct Slow {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Transport for Slow {
    async fn deliver(&self, e: &Envelope<'_>) -> AttemptReport {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(n, SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.now.fetch_sub(1, SeqCst);
        self.done.fetch_add(1, SeqCst);
        AttemptReport::all(
            "mx.test",
            e.recipients,
            RecipientOutcome::Delivered {
                response: "250 ok".into(),
            },
        )
    }
    fn mode(&self) -> &'static str {
        "test"
    }
}

/// Large messages wait for room in the memory budget: with room for
/// two attempts at 400 KiB messages (each counted at its message and
/// `ATTEMPT_BUFFER` more, 528 KiB), no more than two are in flight, however
/// many attempts the concurrency allows; one larger than the whole
/// budget still goes, alone.
#[tokio::test]
async fn the_memory_budget_bounds_large_messages_in_flight() {
    use std::sync::atomic::Ordering::SeqCst;
    let (_dir, store, clock) = store_and_clock().await;
    let t = Arc::new(Slow {
        now: 0.into(),
        most: 0.into(),
        done: 0.into(),
    });
    let engine = Arc::new(DeliveryEngine::new(
        store.clone(),
        clock.clone(),
        t.clone(),
        DeliverySettings {
            poll: Duration::from_millis(20),
            memory: 1100 << 10,
            ..Default::default()
        },
    ));
    let s = scope("121212121212", "us-east-1");
    let q = QuotaCheck {
        now: clock.now_ms(),
        max_24h: -1.0,
        max_rate: 1000.0,
        daily_recipients: 1,
        rate_recipients: 1,
    };
    let body = |kib: usize| {
        let mut raw = b"From: a@example.com\r\nSubject: Big\r\n\r\n".to_vec();
        raw.resize(kib << 10, b'x');
        raw
    };
    for (n, kib) in [400, 400, 400, 400, 400, 1500].into_iter().enumerate() {
        let m = NewMessage {
            id: format!("big{n}"),
            operation: "SendEmail".into(),
            source: "a@example.com".into(),
            destinations: vec![format!("x@dest{n}.test")],
            subject: Some("Big".into()),
            created_at: clock.now_ms(),
            raw: body(kib),
            meta: Default::default(),
            events: vec![],
        };
        store.accept_message(&s, &m, &q).await.unwrap();
    }
    drain(&store, &clock, &engine).await;
    assert_eq!(t.done.load(SeqCst), 6, "every message went");
    assert_eq!(
        t.most.load(SeqCst),
        2,
        "two attempts at 400 KiB messages fit in 1100 KiB"
    );
    assert_eq!(store.queue_summary().await.unwrap().delivered, 6);
}

/// The shared entries are bounded, go when every domain took them, and
/// are not used by a different signer.
#[tokio::test]
async fn shared_signatures_are_bounded_and_tied_to_their_signer() {
    let i = signing_identity(
        "example.com",
        KeyLength::Rsa1024,
        VerificationStatus::Success,
    )
    .await;
    let a = Arc::new(build_signer(&i, "example.com", "tok1024").unwrap());
    let b = Arc::new(build_signer(&i, "example.com", "tok1024").unwrap());
    let s = scope("121212121212", "us-east-1");
    let shared = SharedSignatures::new();
    let first = shared.take(&s, "m1", &a, 3).unwrap();
    assert!(
        shared.take(&s, "m1", &b, 3).is_none(),
        "another signer signs afresh"
    );
    let second = shared.take(&s, "m1", &a, 3).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(shared.len(), 1);
    shared.take(&s, "m1", &a, 3).unwrap();
    assert_eq!(shared.len(), 0, "the third domain took the last share");
    for n in 0..SharedSignatures::KEEP + 100 {
        shared.take(&s, &format!("m{n}"), &a, 2).unwrap();
    }
    assert_eq!(shared.len(), SharedSignatures::KEEP);
    let inner = shared.inner.lock().unwrap();
    assert!(inner.order.len() <= 2 * SharedSignatures::KEEP);
    assert!(
        !inner.cells.contains_key(&(s.clone(), "m0".to_owned())),
        "the oldest went first"
    );
}

#[tokio::test]
async fn unverified_or_disabled_dkim_sends_unsigned() {
    let delivered = RecipientOutcome::Delivered {
        response: "250 ok".into(),
    };
    let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
    let s = scope("121212121212", "us-east-1");
    let i = signing_identity(
        "example.com",
        KeyLength::Rsa1024,
        VerificationStatus::Pending,
    )
    .await;
    store.insert_identity(&s, &i, 100).await.unwrap();
    accept(
        &*store,
        "m1",
        "a@example.com",
        &["x@dest.test"],
        clock.now_ms(),
    )
    .await;
    drain(&store, &clock, &engine).await;
    let seen = t.seen.lock().unwrap().clone();
    assert!(!String::from_utf8_lossy(&seen[0].2).contains("DKIM-Signature"));
    assert_eq!(
        seen[0].0, "m1@bounces.sesame.test",
        "an unverified MAIL FROM domain falls back to the default"
    );
}

#[tokio::test]
async fn the_simulator_scripts_outcomes_without_the_transport() {
    let delivered = RecipientOutcome::Delivered {
        response: "250 ok".into(),
    };
    let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
    let to = [
        "success@simulator.amazonses.com",
        "bounce+1@simulator.amazonses.com",
        "ooto@simulator.amazonses.com",
        "complaint@simulator.amazonses.com",
        "suppressionlist@simulator.amazonses.com",
    ];
    accept(&*store, "m1", "a@example.com", &to, clock.now_ms()).await;
    drain(&store, &clock, &engine).await;
    assert!(t.seen.lock().unwrap().is_empty(), "no mail leaves");
    let ev = events(&store).await;
    let kinds = |k| ev.iter().filter(|e| e.kind == k).count();
    assert_eq!(kinds(EventKind::Delivery), 3);
    assert_eq!(kinds(EventKind::Bounce), 3);
    assert_eq!(kinds(EventKind::Complaint), 1);
    let bounce = ev
        .iter()
        .find(|e| e.recipients == ["bounce+1@simulator.amazonses.com"])
        .unwrap();
    match &bounce.detail {
        EventDetail::Bounce {
            bounce_type,
            sub_type,
            bounced,
            ..
        } => {
            assert_eq!(*bounce_type, BounceType::Permanent);
            assert_eq!(*sub_type, BounceSubType::General);
            assert_eq!(bounced[0].diagnostic_code, "smtp; 550 5.1.1 user unknown");
        }
        other => panic!("{other:?}"),
    }
    let s = scope("121212121212", "us-east-1");
    let stats = store.send_statistics(&s, 0).await.unwrap();
    assert_eq!(stats.iter().map(|p| p.complaints).sum::<u64>(), 1);
    assert_eq!(stats.iter().map(|p| p.bounces).sum::<u64>(), 3);
}

#[tokio::test]
async fn deferrals_retry_on_schedule_then_bounce_when_too_old() {
    let deferred = RecipientOutcome::Deferred {
        reason: "451 4.3.0 try again".into(),
    };
    let retry = RetryPolicy {
        initial_ms: 60_000,
        max_interval_ms: 3_600_000,
        max_age_ms: 90_000,
    };
    let (_d, store, clock, t, engine) = setup(deferred, retry).await;
    accept(
        &*store,
        "m1",
        "a@example.com",
        &["x@dest.test"],
        clock.now_ms(),
    )
    .await;
    drain(&store, &clock, &engine).await;
    let q = store.list_queue(None, 10).await.unwrap();
    assert_eq!(q[0].state, sesame_model::DeliveryState::Queued);
    assert_eq!(q[0].attempts, 1);
    assert_eq!(q[0].next_attempt_at, clock.now_ms() + 60_000);
    assert_eq!(q[0].last_error.as_deref(), Some("451 4.3.0 try again"));
    // The second attempt would schedule a third past the max age.
    clock.advance(60_000);
    drain(&store, &clock, &engine).await;
    assert_eq!(t.seen.lock().unwrap().len(), 2);
    let q = store.list_queue(None, 10).await.unwrap();
    assert_eq!(q[0].state, sesame_model::DeliveryState::Failed);
    // The deferral was a DeliveryDelay event; giving up, a bounce.
    let ev = events(&store).await;
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&EventKind::DeliveryDelay) && kinds.contains(&EventKind::Bounce));
    for e in &ev {
        match &e.detail {
            EventDetail::Bounce {
                bounce_type,
                bounced,
                ..
            } => {
                assert_eq!(*bounce_type, BounceType::Transient);
                assert_eq!(bounced[0].diagnostic_code, "smtp; 451 4.3.0 try again");
            }
            EventDetail::DeliveryDelay {
                delay_type,
                delayed,
                ..
            } => {
                assert_eq!(delay_type, "RecipientServerError");
                assert_eq!(delayed[0].status, "4.3.0");
                assert_eq!(delayed[0].diagnostic_code, "smtp; 451 4.3.0 try again");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn permanent_failures_bounce_at_once() {
    let failed = RecipientOutcome::Failed {
        status: "5.1.1".into(),
        diagnostic: "smtp; 550 5.1.1 no such user".into(),
        sub_type: BounceSubType::NoEmail,
    };
    let (_d, store, clock, _t, engine) = setup(failed, RetryPolicy::default()).await;
    accept(
        &*store,
        "m1",
        "a@example.com",
        &["x@dest.test"],
        clock.now_ms(),
    )
    .await;
    drain(&store, &clock, &engine).await;
    let ev = events(&store).await;
    assert_eq!(ev[0].kind, EventKind::Bounce);
    assert_eq!(store.queue_summary().await.unwrap().failed, 1);
}
