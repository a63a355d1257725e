//! Feedback's outside: the wire's renderings handed to the domain, the
//! HTTP client that POSTs notifications to subscribers, and the public
//! SNS endpoints (`SubscribeURL`, `UnsubscribeURL`, `SigningCertURL`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sesame_core::SnsService;
use sesame_core::feedback::FeedbackFormat;
use sesame_core::feedback::notify::Webhook;
use sesame_core::sns::signing::Signer;
use sesame_model::Event;
use sesame_model::sns::Envelope;
use sesame_wire::{Protocol, WireError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// SES's event JSON and SNS's envelope, as `sesame-wire` writes them.
pub struct WireFormat;

impl FeedbackFormat for WireFormat {
    fn event(&self, event: &Event) -> String {
        sesame_wire::events::event_message(event)
    }
    fn notification(&self, event: &Event, headers: bool) -> String {
        sesame_wire::events::notification_json(event, headers).to_string()
    }
    fn eventbridge(&self, event: &Event, resources: &[String]) -> String {
        sesame_wire::events::eventbridge_json(event, resources).to_string()
    }
    fn envelope(&self, envelope: &Envelope) -> String {
        sesame_wire::events::envelope_json(envelope)
    }
}

/// POSTs to HTTP(S) subscribers with reqwest (rustls), following no
/// redirects. Unless `--delivery-allow-private`, a subscriber's endpoint
/// that is or resolves to a loopback, private or otherwise non-public
/// address is refused, so that a caller cannot make Sesame reach its own
/// network; the operator's own targets (the config file's) are trusted.
pub struct HttpWebhook {
    subscribers: reqwest::Client,
    operators: reqwest::Client,
    allow_private: bool,
}

/// Resolves names for the client, keeping only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| sesame_smtp::direct::is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl HttpWebhook {
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(15))
                .user_agent("Amazon Simple Notification Service Agent")
        };
        let mut subscribers = builder();
        if !allow_private {
            subscribers = subscribers.dns_resolver(Arc::new(PublicOnly));
        }
        let fail = |e: reqwest::Error| format!("cannot build the HTTP client: {e}");
        Ok(Self {
            subscribers: subscribers.build().map_err(fail)?,
            operators: builder().build().map_err(fail)?,
            allow_private,
        })
    }
}

#[async_trait::async_trait]
impl Webhook for HttpWebhook {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: String,
        trusted: bool,
    ) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad endpoint: {e}"))?;
        if !trusted && !self.allow_private {
            let literal = parsed
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .and_then(|h| h.parse::<IpAddr>().ok());
            if literal.is_some_and(|ip| !sesame_smtp::direct::is_public(ip)) {
                return Err(
                    "the endpoint's address is not public (see --delivery-allow-private)".into(),
                );
            }
        }
        let client = if trusted {
            &self.operators
        } else {
            &self.subscribers
        };
        let mut req = client.post(parsed).body(body);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("content-type", "text/plain; charset=UTF-8");
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {}", resp.status()))
        }
    }

    async fn append(&self, path: &str, line: &str) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        f.write_all(&bytes)
            .await
            .map_err(|e| format!("cannot append to {path}: {e}"))
    }
}

#[derive(Clone)]
pub struct SnsPublic {
    pub sns: Arc<SnsService>,
    pub signer: Arc<Signer>,
}

/// `/_sesame/sns/…`: the links in SNS messages, which need no credentials.
pub fn routes<S: Clone + Send + Sync + 'static>(state: SnsPublic) -> Router<S> {
    Router::new()
        .route("/_sesame/sns/confirm", get(confirm))
        .route("/_sesame/sns/unsubscribe", get(unsubscribe))
        .route("/_sesame/sns/{file}", get(certificate))
        .with_state(state)
}

fn wire(r: sesame_wire::WireResponse) -> Response {
    let mut resp = (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        r.body,
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(r.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn error(e: sesame_model::Error, request_id: &str) -> Response {
    let w = WireError::from_domain(Protocol::SnsQuery, &e);
    wire(sesame_wire::encode_error(
        Protocol::SnsQuery,
        &w,
        request_id,
    ))
}

async fn confirm(State(s): State<SnsPublic>, Query(q): Query<HashMap<String, String>>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (Some(topic), Some(token)) = (q.get("TopicArn"), q.get("Token")) else {
        return error(
            sesame_model::sns::invalid_parameter("Invalid parameter: TopicArn or Token"),
            &request_id,
        );
    };
    match s.sns.confirm(topic, token).await {
        Ok(arn) => wire(sesame_wire::serve::sns_confirmed(&arn, &request_id)),
        Err(e) => error(e, &request_id),
    }
}

async fn unsubscribe(
    State(s): State<SnsPublic>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let Some(arn) = q.get("SubscriptionArn") else {
        return error(
            sesame_model::sns::invalid_parameter("Invalid parameter: SubscriptionArn"),
            &request_id,
        );
    };
    match s.sns.unsubscribe(None, arn).await {
        Ok(()) => wire(sesame_wire::serve::sns_unsubscribed(&request_id)),
        Err(e) => error(e, &request_id),
    }
}

/// The signing certificate, under the name `SigningCertURL` gives.
async fn certificate(State(s): State<SnsPublic>, Path(file): Path<String>) -> Response {
    if file != s.signer.cert_name() {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/x-x509-ca-cert")],
        s.signer.certificate_pem().to_owned(),
    )
        .into_response()
}

/// `/_sesame/t/…`: tracked opens (the pixel) and clicks (a redirect to the
/// link the message held), for anyone who has the message.
pub fn tracking_routes<S: Clone + Send + Sync + 'static>(
    tracking: Arc<sesame_core::tracking::TrackingService>,
) -> Router<S> {
    Router::new()
        .route("/_sesame/t/o/{message}", get(opened))
        .route("/_sesame/t/c/{message}/{n}", get(clicked))
        .with_state(tracking)
}

fn visitor_of(
    peer: Option<&axum::extract::ConnectInfo<SocketAddr>>,
    headers: &axum::http::HeaderMap,
) -> (String, String) {
    let ip = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect();
    (ip, ua)
}

async fn opened(
    State(t): State<Arc<sesame_core::tracking::TrackingService>>,
    Path(message): Path<String>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let (ip, user_agent) = visitor_of(peer.as_ref().map(|p| &p.0), &headers);
    let v = sesame_core::tracking::Visitor {
        ip: &ip,
        user_agent: &user_agent,
    };
    match t.open(&message, v).await {
        Ok(()) => (
            [
                (header::CONTENT_TYPE, "image/gif"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            sesame_core::tracking::PIXEL_GIF,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn clicked(
    State(t): State<Arc<sesame_core::tracking::TrackingService>>,
    Path((message, n)): Path<(String, usize)>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let (ip, user_agent) = visitor_of(peer.as_ref().map(|p| &p.0), &headers);
    let v = sesame_core::tracking::Visitor {
        ip: &ip,
        user_agent: &user_agent,
    };
    match t.click(&message, n, v).await {
        Ok(link) => match header::HeaderValue::from_str(&link) {
            Ok(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        },
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
