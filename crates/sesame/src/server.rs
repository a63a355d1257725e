//! The HTTP server: binds the listener, serves the SES APIs and Sesame's own
//! `/_sesame/` endpoints, runs the delivery engine, the DNS verifier and
//! (with `--dns-listen`) the DKIM zone listener, and shuts down gracefully
//! on SIGTERM or SIGINT: requests in flight finish, then the engine drains
//! its attempts in flight while the verifier, the zone listener and the
//! metrics upkeep stop, then the store is closed.

use crate::api::{self, App};
use crate::config::{DeliveryMode, Settings};
use crate::mailbox;
use axum::Router;
use axum::routing::get;
use sesame_core::delivery::{CaptureTransport, DeliveryEngine, DeliverySettings, Transport};
use sesame_core::feedback::notify::{Notifier, NotifySettings};
use sesame_core::feedback::{FeedbackFormat, Publisher};
use sesame_core::identities::{LinkOutcome, LinkSettings};
use sesame_core::sns::SnsUrls;
use sesame_core::sns::signing::Signer;
use sesame_core::{
    AccountService, Credentials, CustomVerificationService, IdentityService, SendService,
    SnsService, SystemClock, TemplateService, Verifier, VerifierSettings,
};
use sesame_model::AccountId;
use sesame_smtp::{DirectSettings, DirectTransport, RelayTransport};
use sesame_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(settings: Settings) -> Result<(), String> {
    // First: the services below take their metrics from this recorder.
    let metrics = crate::metrics::install();
    let store = settings.store.open().await?;
    // Before anything is claimed: this node's name is its own.
    store
        .hold_node()
        .await
        .map_err(|e| format!("cannot start node {}: {e}", settings.store.node_name))?;
    let clock = Arc::new(SystemClock);
    agree_on_settings(&*store, &settings).await;
    let dyn_store: Arc<dyn Store> = store.clone();
    let credentials = Credentials::new(
        dyn_store.clone(),
        clock.clone(),
        settings.dev.then(|| settings.dev_account_id.clone()),
    );
    seed_root_key(&credentials, &settings).await?;
    let accounts = Arc::new(AccountService::new(
        dyn_store.clone(),
        clock.clone(),
        settings.no_sandbox,
    ));
    // Operator tools that create accounts (`sesame accounts …`) start them
    // as this deployment does.
    accounts
        .record_default()
        .await
        .map_err(|e| format!("cannot record the deployment's settings: {}", e.message))?;
    let guard = &settings.guard;
    let pacer = Arc::new(sesame_core::rate::Pacer::new(
        guard
            .verification_email_interval
            .map(|d| d.as_millis() as i64),
        clock.clone(),
    ));
    // One send path for all mail: the API's sends and Sesame's own
    // verification emails.
    let sending = Arc::new(
        SendService::new(dyn_store.clone(), clock.clone(), accounts.clone())
            .with_tracking(&settings.public_url),
    );
    // Sesame's SNS and the key its notifications are signed with (made
    // once, kept in the store).
    let sns = Arc::new(SnsService::new(dyn_store.clone(), clock.clone()));
    let signer = Arc::new(
        Signer::load(&*dyn_store, sesame_core::Clock::now_ms(&*clock))
            .await
            .map_err(|e| format!("cannot load the SNS signing key: {}", e.message))?,
    );
    declare_topics(&sns, &settings.topics).await?;
    let requeued = dyn_store
        .requeue_topic_deliveries(sesame_core::Clock::now_ms(&*clock))
        .await
        .map_err(|e| format!("cannot requeue notifications: {e}"))?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            "notifications in flight at the last stop are queued again"
        );
    }
    let format: Arc<dyn FeedbackFormat> = Arc::new(crate::feedback::WireFormat);
    let targets = Arc::new(sesame_core::feedback::ExternalTargets {
        eventbridge: settings.feedback.eventbridge.clone(),
        firehose: settings.feedback.firehose.clone(),
    });
    let publisher = Arc::new(
        Publisher::new(
            dyn_store.clone(),
            clock.clone(),
            format.clone(),
            targets.clone(),
        )
        .with_forwarding(sesame_core::feedback::Forwarding {
            sending: sending.clone(),
            from: format!("MAILER-DAEMON@{}", settings.delivery.hostname),
        }),
    );
    let notifier = Arc::new(Notifier::new(
        dyn_store.clone(),
        clock.clone(),
        signer.clone(),
        SnsUrls {
            public_url: settings.public_url.clone(),
        },
        format,
        Arc::new(crate::feedback::HttpWebhook::new(
            settings.delivery.allow_private,
        )?),
        sending.clone(),
        NotifySettings {
            email_from: settings.verification_from.clone(),
            ..Default::default()
        },
    ));
    // The DNS verifier; its passes start with the other tasks below.
    let dns_verifier = match sesame_dns::HickoryLookup::new(
        &settings.verify.dns_servers,
        settings.verify.max_in_flight,
    ) {
        Ok(lookup) => Some(Arc::new(Verifier::new(
            dyn_store.clone(),
            Arc::new(SystemClock),
            Arc::new(lookup),
            VerifierSettings {
                publishing: settings.verify.publishing.clone(),
                interval: settings.verify.interval,
                max_in_flight: settings.verify.max_in_flight,
            },
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "no DNS resolver: domain identities will not be verified (set --dns-server)");
            None
        }
    };
    let record_publishing = crate::publishing(&settings.verify, dns_verifier.clone())?;
    let app = Arc::new(App {
        ses: sesame_api::Api {
            identities: IdentityService::new(
                dyn_store.clone(),
                clock.clone(),
                settings.auto_verify,
            )
            .with_links(
                LinkSettings {
                    public_url: settings.public_url.clone(),
                    from: settings.verification_from.clone(),
                },
                sending.clone(),
            )
            .with_pacer(pacer)
            .with_publishing_if(record_publishing),
            sending,
            sns: sns.clone(),
            suppression: sesame_core::SuppressionService::new(dyn_store.clone(), clock.clone()),
            templates: TemplateService::new(dyn_store.clone(), clock.clone()),
            custom_verification: CustomVerificationService::new(
                dyn_store.clone(),
                clock.clone(),
                accounts.clone(),
            ),
            configuration_sets: sesame_core::ConfigurationSetService::new(
                dyn_store.clone(),
                clock.clone(),
            )
            .with_targets(targets.clone()),
            accounts,
        },
        credentials,
        signing_keys: sesame_sigv4::SigningKeys::default(),
        bodies: crate::api::BodyBudget::new(settings.request_memory),
        body_timeout: guard.body_timeout,
        api_rate: sesame_core::rate::ApiRate::new(guard.api_rate, clock.clone()),
        regions: guard.regions.clone(),
    });
    let engine = Arc::new(DeliveryEngine::new(
        dyn_store.clone(),
        Arc::new(SystemClock),
        transport(&settings)?,
        DeliverySettings {
            retry: settings.delivery.retry,
            bounce_domain: settings.delivery.bounce_domain.clone(),
            reporting_mta: settings.delivery.hostname.clone(),
            concurrency: settings.delivery.concurrency,
            memory: settings.delivery.memory,
            lease: settings.delivery.lease,
            ..Default::default()
        },
    ));
    let (stop_tasks, stop) = tokio::sync::watch::channel(false);
    let zone = match (
        settings.verify.listen,
        &settings.verify.publishing.cname_zone,
    ) {
        (Some(addr), Some(name)) => {
            let udp = tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for DNS on {addr} (UDP): {e}"))?;
            let tcp = tokio::net::TcpListener::bind(udp.local_addr().map_err(|e| e.to_string())?)
                .await
                .map_err(|e| format!("cannot listen for DNS on {addr} (TCP): {e}"))?;
            let zone = Arc::new(sesame_dns::zone::DkimZone::new(
                dyn_store.clone(),
                name,
                &settings.verify.hostname,
            )?);
            Some(tokio::spawn(zone.serve(udp, tcp, stop.clone())))
        }
        _ => None,
    };
    let console_verifier = dns_verifier.clone();
    let verifier = dns_verifier.map(|v| tokio::spawn(v.run(stop.clone())));
    let upkeep = metrics
        .clone()
        .map(|h| tokio::spawn(crate::metrics::upkeep(h, stop.clone())));
    let delivery = tokio::spawn(engine.run(stop.clone()));
    let publishing = tokio::spawn(publisher.run(stop.clone()));
    let notifying = tokio::spawn(notifier.run(stop.clone()));
    let auditing = tokio::spawn(
        Arc::new(sesame_core::audit::AuditService::new(
            dyn_store.clone(),
            clock.clone(),
            settings.no_sandbox,
        ))
        .watch(guard.audit_interval, stop.clone()),
    );
    // Retention: one node at a time removes what is past its keeping.
    let retention = guard.retention.map(|keep| {
        tokio::spawn(
            Arc::new(sesame_core::retention::RetentionService::new(
                dyn_store.clone(),
                clock.clone(),
                keep,
            ))
            .run(Duration::from_secs(3600), stop.clone()),
        )
    });
    // SMTP submission (587 with STARTTLS, 465 with implicit TLS), when set.
    let mut smtp_tasks = vec![];
    if settings.smtp.listen.is_some()
        || settings.smtp.listen_tls.is_some()
        || settings.smtp.inbound.is_some()
    {
        let tls = crate::submission::tls_config(
            settings.smtp.cert.as_ref(),
            &settings.delivery.hostname,
        )?;
        let region = settings
            .smtp
            .region
            .clone()
            .unwrap_or_else(|| sesame_model::Region::parse("us-east-1").expect("a region"));
        let mut sub = crate::submission::Submission::new(
            app.clone(),
            region.clone(),
            settings.delivery.hostname.clone(),
            tls,
        );
        sub.inbound = Some(Arc::new(
            sesame_core::feedback::inbound::InboundFeedback::new(
                dyn_store.clone(),
                clock.clone(),
                &settings.delivery.bounce_domain,
                &settings.delivery.hostname,
            ),
        ));
        let sub = Arc::new(sub);
        use crate::submission::Mode;
        for (addr, mode) in [
            (settings.smtp.listen, Mode::StartTls),
            (settings.smtp.listen_tls, Mode::ImplicitTls),
            (settings.smtp.inbound, Mode::Inbound),
        ] {
            let Some(addr) = addr else { continue };
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for SMTP on {addr}: {e}"))?;
            tracing::info!(%addr, ?mode, region = %region, "SMTP listening");
            smtp_tasks.push(tokio::spawn(crate::submission::serve(
                l,
                mode,
                sub.clone(),
                stop.clone(),
            )));
        }
    }
    let conns =
        crate::listener::Connections::new(guard.max_connections, guard.max_connections_per_peer);
    let metrics_listener = match guard.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let mut router = Router::new()
        .route(
            "/_sesame/health",
            get(health).with_state((app.clone(), conns.clone())),
        )
        .route(
            "/_sesame/verify/{token}",
            get(open_link).with_state(app.clone()),
        )
        .merge(crate::feedback::routes(crate::feedback::SnsPublic {
            sns: sns.clone(),
            signer: signer.clone(),
        }))
        .merge(crate::feedback::tracking_routes(Arc::new(
            sesame_core::tracking::TrackingService::new(dyn_store.clone(), clock.clone()),
        )));
    // Metrics are on the API listener only in --dev or behind a token;
    // with --metrics-listen they are served there instead.
    let metrics_task = match metrics_listener {
        Some(listener) => {
            let routes: Router = crate::metrics::routes(
                metrics.clone(),
                dyn_store.clone(),
                guard.metrics_token.clone(),
            );
            let mut stop = stop.clone();
            Some(tokio::spawn(async move {
                let conns = crate::listener::Connections::new(64, 16);
                let shutdown = async move {
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                };
                crate::listener::serve(listener, routes, conns, Duration::from_secs(10), shutdown)
                    .await
            }))
        }
        None => {
            if settings.dev || guard.metrics_token.is_some() {
                router = router.merge(crate::metrics::routes(
                    metrics.clone(),
                    dyn_store.clone(),
                    guard.metrics_token.clone(),
                ));
            } else {
                router = router.route("/_sesame/metrics", get(metrics_not_here));
            }
            None
        }
    };
    let console = crate::console::Console::new(
        app.clone(),
        dyn_store.clone(),
        console_verifier,
        settings.verify.publishing.clone(),
        settings.dev.then(|| settings.dev_account_id.clone()),
        guard.console_operator_token.clone(),
    )?;
    router = router.merge(crate::console::routes(Arc::new(console)));
    if settings.dev {
        router = router.merge(mailbox::routes(dyn_store));
    }
    let router = router
        .route("/_sesame/{*rest}", axum::routing::any(unknown_sesame_route))
        .fallback(api::handle)
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        store = %settings.store.describe(),
        dev = settings.dev,
        auto_verify = settings.auto_verify,
        no_sandbox = settings.no_sandbox,
        delivery = ?settings.delivery.mode,
        dkim_zone = ?settings.verify.publishing.cname_zone,
        dns_listen = ?settings.verify.listen,
        api_rate = ?guard.api_rate,
        max_connections = guard.max_connections,
        max_connections_per_peer = guard.max_connections_per_peer,
        metrics_listen = ?guard.metrics_listen,
        "sesame is listening"
    );
    crate::listener::serve(
        listener,
        router,
        conns,
        guard.header_timeout,
        shutdown_signal(),
    )
    .await;
    let _ = stop_tasks.send(true);
    if let Err(e) = delivery.await {
        tracing::error!(error = %e, "the delivery engine failed");
    }
    for (name, task) in [
        ("the DNS verifier", verifier),
        ("the DKIM zone listener", zone),
        ("the metrics upkeep", upkeep),
        ("the metrics listener", metrics_task),
        ("event publishing", Some(publishing)),
        ("the SNS notifier", Some(notifying)),
        ("the audit", Some(auditing)),
        ("retention", retention),
    ]
    .into_iter()
    .chain(smtp_tasks.into_iter().map(|t| ("SMTP submission", Some(t))))
    {
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "{name} failed");
        }
    }
    store.close().await;
    tracing::info!("sesame stopped");
    Ok(())
}

/// The store's record of the settings nodes must agree on, and of the
/// node that wrote it.
const SHARED_SETTINGS: &str = "node-settings";

/// Compares this node's shared settings (`Settings::shared`) with those the
/// last node to start recorded, warns of each that differs, naming it and
/// that node, then records this node's. Nodes that disagree answer the same
/// request differently; a rolling change of the settings passes through
/// such a state, so it is a warning, not a refusal. (With one server on
/// SQLite, the node is always the same.)
async fn agree_on_settings(store: &dyn Store, settings: &Settings) {
    let mine = settings.shared();
    let node = &settings.store.node_name;
    let recorded = match store.get_setting(SHARED_SETTINGS).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the settings other nodes recorded");
            return;
        }
    };
    if let Some(text) = recorded
        && let theirs = parse_settings(&text)
        && let Some(other) = theirs.get("node").filter(|n| *n != node)
    {
        let differing: Vec<&str> = mine
            .iter()
            .filter(|(k, v)| theirs.get(**k) != Some(*v))
            .map(|(k, _)| *k)
            .collect();
        if !differing.is_empty() {
            tracing::warn!(
                node = %node,
                other_node = %other,
                settings = %differing.join(", "),
                "this node's settings differ from those node {other} started with: \
                 nodes sharing a database must agree on them (docs/deployment.md)"
            );
        }
    }
    // One `name<TAB>value` line each; no value holds a tab or a newline.
    let text: String = std::iter::once(("node", node.as_str()))
        .chain(mine.iter().map(|(k, v)| (*k, v.as_str())))
        .map(|(k, v)| format!("{k}\t{}\n", v.replace(['\t', '\n'], " ")))
        .collect();
    let now = sesame_core::Clock::now_ms(&SystemClock);
    if let Err(e) = store.put_setting(SHARED_SETTINGS, &text, now).await {
        tracing::warn!(error = %e, "cannot record this node's settings");
    }
}

/// The record `agree_on_settings` writes, read back.
fn parse_settings(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Makes the topics the config file declares, with their subscriptions.
async fn declare_topics(
    sns: &SnsService,
    topics: &[crate::config::TopicFile],
) -> Result<(), String> {
    for t in topics {
        let where_ = format!("[[sns.topics]] {} in {}/{}", t.name, t.account, t.region);
        let scope = sesame_model::Scope::new(
            AccountId::parse(&t.account).map_err(|e| format!("{where_}: {}", e.message))?,
            sesame_model::Region::parse(&t.region)
                .map_err(|e| format!("{where_}: {}", e.message))?,
        );
        let mut attributes = vec![];
        if let Some(v) = t.signature_version {
            attributes.push(("SignatureVersion".to_owned(), v.to_string()));
        }
        if let Some(d) = &t.display_name {
            attributes.push(("DisplayName".to_owned(), d.clone()));
        }
        let subs: Vec<(String, String, bool)> = t
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.protocol.clone(),
                    s.endpoint.clone(),
                    s.raw_message_delivery,
                )
            })
            .collect();
        let arn = sns
            .declare(&scope, &t.name, &attributes, &subs)
            .await
            .map_err(|e| format!("{where_}: {}", e.message))?;
        tracing::info!(topic = %arn, subscriptions = subs.len(), "topic declared in the config file");
    }
    Ok(())
}

/// The transport `--delivery` names.
fn transport(settings: &Settings) -> Result<Arc<dyn Transport>, String> {
    let d = &settings.delivery;
    Ok(match &d.mode {
        DeliveryMode::Capture => Arc::new(CaptureTransport),
        DeliveryMode::Relay(relay) => Arc::new(
            RelayTransport::new(relay.clone(), &d.hostname, d.concurrency)
                .map_err(|e| format!("cannot set up the relay: {e}"))?,
        ),
        DeliveryMode::Direct => Arc::new(
            DirectTransport::new(DirectSettings {
                port: d.smtp_port,
                dns_servers: d.dns_servers.clone(),
                per_domain: d.per_domain,
                helo: d.hostname.clone(),
                allow_private: d.allow_private,
                ..Default::default()
            })
            .map_err(|e| format!("cannot set up direct delivery: {e}"))?,
        ),
    })
}

/// `SESAME_ROOT_ACCESS_KEY_ID` / `SESAME_ROOT_SECRET_ACCESS_KEY` seed one
/// key at startup (account `SESAME_ROOT_ACCOUNT_ID`, default the dev account).
async fn seed_root_key(credentials: &Credentials, settings: &Settings) -> Result<(), String> {
    let id = std::env::var("SESAME_ROOT_ACCESS_KEY_ID").ok();
    let secret = std::env::var("SESAME_ROOT_SECRET_ACCESS_KEY").ok();
    match (id, secret) {
        (None, None) => Ok(()),
        (Some(id), Some(secret)) => {
            let account = match std::env::var("SESAME_ROOT_ACCOUNT_ID") {
                Ok(a) => AccountId::parse(&a).map_err(|_| {
                    format!(
                        "invalid value '{a}' for setting SESAME_ROOT_ACCOUNT_ID: expected 12 digits"
                    )
                })?,
                Err(_) => settings.dev_account_id.clone(),
            };
            credentials
                .seed(&id, &secret, account.clone())
                .await
                .map_err(|e| e.message)?;
            tracing::info!(access_key_id = %id, %account, "seeded the root access key");
            Ok(())
        }
        _ => Err(
            "SESAME_ROOT_ACCESS_KEY_ID and SESAME_ROOT_SECRET_ACCESS_KEY must be set together"
                .into(),
        ),
    }
}

/// A verification link opened in a browser: a plain page saying what happened.
async fn open_link(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let page = |status, title: &str, body: &str| {
        (
            status,
            axum::response::Html(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
                 <body><h1>{title}</h1><p>{body}</p></body></html>"
            )),
        )
            .into_response()
    };
    // A link sent by SendCustomVerificationEmail sends the user on to the
    // template's SuccessRedirectionURL or FailureRedirectionURL.
    let redirect = |url: &str| {
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, url.to_owned())],
        )
            .into_response()
    };
    match app.ses.identities.open_link(&token).await {
        Ok(LinkOutcome::Verified {
            redirect: Some(url),
            ..
        })
        | Ok(LinkOutcome::Expired {
            redirect: Some(url),
            ..
        })
        | Ok(LinkOutcome::Used {
            redirect: Some(url),
        }) => redirect(&url),
        Ok(LinkOutcome::Verified {
            identity, region, ..
        }) => page(
            axum::http::StatusCode::OK,
            "Email address verified",
            &format!(
                "You have verified {} for sending in region {}.",
                html_escape(&identity),
                html_escape(&region)
            ),
        ),
        Ok(LinkOutcome::Expired { identity, .. }) => page(
            axum::http::StatusCode::GONE,
            "Verification link expired",
            &format!(
                "This link for {} is more than 24 hours old. Request verification again to get a new link.",
                html_escape(&identity)
            ),
        ),
        Ok(LinkOutcome::Unknown) | Ok(LinkOutcome::Used { redirect: None }) => page(
            axum::http::StatusCode::NOT_FOUND,
            "Verification link not valid",
            "This link is not valid, or it was already used.",
        ),
        Err(e) => {
            tracing::error!(error = %e.message, "opening a verification link failed");
            page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Verification failed",
                "Something went wrong; try the link again.",
            )
        }
    }
}

fn html_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Whether the API can answer now: 200 `{"status": "ok"}`, else 503 with
/// the reasons. A full connection table or request budget means API calls
/// wait or are refused, and a store that does not answer in 2 s means they
/// fail, so monitoring sees what callers see.
async fn health(
    axum::extract::State((app, conns)): axum::extract::State<(
        Arc<App>,
        crate::listener::Connections,
    )>,
) -> axum::response::Response {
    let mut problems = vec![];
    let (open, full) = conns.load();
    if full {
        problems.push(format!("all {open} connections are taken"));
    }
    if !app.bodies.has_room() {
        problems.push("the request memory budget is full".to_owned());
    }
    if let Some(problem) = store_problem(&app).await {
        problems.push(problem);
    }
    let status = if problems.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    crate::mailbox::json(status, sesame_wire::local::health(&problems, open))
}

/// Why the store cannot serve the API, if it cannot: one read, at most
/// once a second however often health is asked (an unauthenticated caller
/// may ask), the answer kept in between.
async fn store_problem(app: &App) -> Option<String> {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>> =
        std::sync::Mutex::new(None);
    if let Some((at, problem)) = LAST.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && at.elapsed() < Duration::from_secs(1)
    {
        return problem.clone();
    }
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        app.credentials.resolve("AKIASESAMEHEALTHCHECK"),
    )
    .await;
    let problem = match read {
        Ok(Ok(_)) => None,
        Ok(Err(_)) => Some("the store is failing".to_owned()),
        Err(_) => Some("the store did not answer within 2 s".to_owned()),
    };
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((std::time::Instant::now(), problem.clone()));
    problem
}

async fn metrics_not_here() -> (axum::http::StatusCode, &'static str) {
    (
        axum::http::StatusCode::NOT_FOUND,
        "Metrics are not served on the API listener: set --metrics-listen to serve them on their own address, or --metrics-token to serve them here behind a bearer token.\n",
    )
}

async fn unknown_sesame_route() -> axum::response::Response {
    crate::mailbox::json(
        axum::http::StatusCode::NOT_FOUND,
        sesame_wire::local::message("No such Sesame endpoint."),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
