//! The console's pages and forms. Each handler finds the session (or sends
//! the visitor to sign in), checks the CSRF token of a form, calls a use
//! case in the session's account and region, and renders a template.

use super::{Console, MAIL_CSP, Session, cleared_cookie, secure};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Serialize;
use sesame_core::accounts::DetailsRequest;
use sesame_core::identities::CreateIdentity;
use sesame_model::identity::{IdentityKind, VerificationStatus};
use sesame_model::{AccountId, Error, EventFilter, EventKind, Region, Scope};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

type C = State<Arc<Console>>;
type F = Form<HashMap<String, String>>;

pub fn routes<S: Clone + Send + Sync + 'static>(c: Arc<Console>) -> Router<S> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/", get(dashboard))
        .route("/console/signin", get(signin_form).post(signin))
        .route("/console/signout", post(signout))
        .route("/console/region", post(region))
        .route("/console/production-access", post(production_access))
        .route("/console/identities", get(identities).post(create_identity))
        .route("/console/identities/{name}", get(identity))
        .route("/console/identities/{name}/records.csv", get(records_csv))
        .route("/console/identities/{name}/check", post(check_identity))
        .route("/console/identities/{name}/resend", post(resend))
        .route("/console/identities/{name}/delete", post(delete_identity))
        .route(
            "/console/identities/{name}/settings",
            post(identity_settings),
        )
        .route("/console/mail", get(mail))
        .route("/console/mail/{id}", get(message))
        .route("/console/mail/{id}/html", get(message_html))
        .route("/console/mail/{id}/raw", get(message_raw))
        .route("/console/rejections", get(rejections))
        .route("/console/lists", get(lists))
        .route("/console/templates", post(create_template))
        .route("/console/templates/{name}", get(template))
        .route("/console/templates/{name}/update", post(update_template))
        .route("/console/templates/{name}/delete", post(delete_template))
        .route("/console/configuration-sets", post(create_set))
        .route(
            "/console/configuration-sets/{name}/sending",
            post(set_sending),
        )
        .route(
            "/console/configuration-sets/{name}/delete",
            post(delete_set),
        )
        .route("/console/configuration-sets/{name}", get(configuration_set))
        .route(
            "/console/configuration-sets/{name}/options",
            post(set_options),
        )
        .route(
            "/console/configuration-sets/{name}/destinations",
            post(add_destination),
        )
        .route(
            "/console/configuration-sets/{name}/destinations/{dest}/delete",
            post(delete_destination),
        )
        .route("/console/topic", get(topic))
        .route("/console/topics/subscribe", post(subscribe))
        .route("/console/topics/unsubscribe", post(unsubscribe))
        .route("/console/custom-verification/{name}", get(cv_template))
        .route(
            "/console/custom-verification/{name}/preview",
            get(cv_preview),
        )
        .route(
            "/console/custom-verification/{name}/update",
            post(update_cv),
        )
        .route("/console/suppression", post(suppress))
        .route("/console/suppression/delete", post(unsuppress))
        .route("/console/topics", post(create_topic))
        .route("/console/topics/delete", post(delete_topic))
        .route("/console/custom-verification", post(create_cv))
        .route(
            "/console/custom-verification/{name}/delete",
            post(delete_cv),
        )
        .route("/console/operator", get(operator))
        .route(
            "/console/operator/{account}/{region}/{decision}",
            post(decide),
        )
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .with_state(c)
}

// ------------------------------------------------------------ plumbing

/// A signed-in visitor's session, as an extractor: a visitor without one
/// is sent to sign in.
pub struct SignedIn(pub Session);

impl axum::extract::FromRequestParts<Arc<Console>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        c: &Arc<Console>,
    ) -> Result<Self, Response> {
        signed_in(c, &parts.headers)
            .map(|(_, s)| SignedIn(s))
            .map_err(|r| *r)
    }
}

/// The session, or a redirect to sign in.
fn signed_in(c: &Console, headers: &HeaderMap) -> Gate {
    c.session(headers)
        .ok_or_else(|| Box::new(Redirect::to("/console/signin").into_response()))
}

/// The session (and its token), or the response that replaces the page.
type Gate = Result<(String, Session), Box<Response>>;

/// The session of a form post whose CSRF token is the session's.
fn posted(c: &Console, headers: &HeaderMap, form: &HashMap<String, String>) -> Gate {
    let (token, s) = signed_in(c, headers)?;
    let given = form.get("csrf").map(String::as_bytes).unwrap_or(b"");
    if bool::from(given.ct_eq(s.csrf.as_bytes())) {
        Ok((token, s))
    } else {
        tracing::info!("console form refused: its CSRF token is missing or wrong");
        Err(Box::new(error_page(
            c,
            Some(&s),
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this console. Go back, reload the page and try again.",
        )))
    }
}

fn error_page(c: &Console, s: Option<&Session>, status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct E<'a> {
        message: &'a str,
    }
    let mut r = c.page(s, "Error", "error", &E { message });
    *r.status_mut() = status;
    r
}

/// A use case's refusal, shown on a page with SES's message.
fn failed(c: &Console, s: &Session, e: Error) -> Response {
    let status = match e.kind {
        sesame_model::ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error_page(c, Some(s), status, &e.message)
}

fn time(ms: i64) -> String {
    sesame_model::iso8601(ms)
}

fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A path segment as it goes into a link.
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------ sign-in

async fn signin_form(State(c): C, headers: HeaderMap) -> Response {
    if c.session(&headers).is_some() {
        return back("/console");
    }
    // --dev: no credentials; the visitor is the dev account, an operator.
    if let Some(account) = c.dev.clone() {
        let region = default_region(&c);
        let token = c.start(account, region, true);
        return with_cookie(back("/console"), &super::session_cookie(&token));
    }
    signin_page(&c, None, StatusCode::OK)
}

/// The sign-in form, with a fresh pre-session CSRF token in the form and
/// in a cookie (double submit), so that no other site can sign a visitor
/// in to an account of its choosing.
fn signin_page(c: &Console, error: Option<&str>, status: StatusCode) -> Response {
    #[derive(Serialize)]
    struct P<'a> {
        operator: bool,
        error: Option<&'a str>,
        csrf: &'a str,
    }
    let token = sesame_core::random::string_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
    let mut r = c.page(
        None,
        "Sign in",
        "signin",
        &P {
            operator: c.operator_token.is_some(),
            error,
            csrf: &token,
        },
    );
    *r.status_mut() = status;
    with_cookie(r, &super::pre_session_cookie(&token))
}

fn default_region(c: &Console) -> Region {
    c.app
        .regions
        .iter()
        .find(|r| r.as_str() == "us-east-1")
        .or(c.app.regions.first())
        .cloned()
        .unwrap_or_else(|| Region::parse("us-east-1").expect("a region"))
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn signin(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let pre = super::cookie(&headers, super::PRE_COOKIE).unwrap_or_default();
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if pre.is_empty() || !bool::from(pre.as_bytes().ct_eq(given.as_bytes())) {
        tracing::info!("console sign-in refused: its CSRF token is missing or wrong");
        return signin_page(
            &c,
            Some("This sign-in form has expired. Try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let key = form
        .get("access_key_id")
        .map(String::as_str)
        .unwrap_or("")
        .trim();
    let secret = form
        .get("secret_access_key")
        .map(String::as_str)
        .unwrap_or("");
    let refused = |c: &Console| {
        signin_page(
            c,
            Some("The access key ID or secret access key is wrong."),
            StatusCode::UNAUTHORIZED,
        )
    };
    if key.is_empty() || key.len() > 128 || secret.len() > 128 {
        return refused(&c);
    }
    let account = match c.app.credentials.resolve(key).await {
        Ok(sesame_core::Resolution::Verify { secret: s, account }) => {
            if !bool::from(s.as_bytes().ct_eq(secret.as_bytes())) {
                tracing::info!("console sign-in refused: wrong secret");
                return refused(&c);
            }
            account
        }
        Ok(sesame_core::Resolution::AcceptUnverified { account }) => account,
        _ => {
            tracing::info!("console sign-in refused: unknown access key");
            return refused(&c);
        }
    };
    let operator = match (&c.operator_token, form.get("operator_token")) {
        (Some(want), Some(given)) if !given.is_empty() => {
            if !bool::from(want.as_bytes().ct_eq(given.as_bytes())) {
                return refused(&c);
            }
            true
        }
        _ => false,
    };
    let token = c.start(account, default_region(&c), operator);
    with_cookie(back("/console"), &super::session_cookie(&token))
}

async fn signout(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let (token, _) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    c.end(&token);
    with_cookie(back("/console/signin"), &cleared_cookie())
}

async fn region(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let (token, s) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match form
        .get("region")
        .and_then(|r| Region::parse(r).ok())
        .filter(|r| c.app.regions.contains(r))
    {
        Some(r) => {
            c.set_region(&token, r);
            back(
                form.get("next")
                    .filter(|n| n.starts_with("/console") && !n.starts_with("//"))
                    .map(String::as_str)
                    .unwrap_or("/console"),
            )
        }
        None => error_page(
            &c,
            Some(&s),
            StatusCode::BAD_REQUEST,
            "That region is not served here.",
        ),
    }
}

// ------------------------------------------------------------ dashboard

#[derive(Serialize)]
struct Dashboard {
    production: bool,
    sending_enabled: bool,
    max_24h: String,
    max_rate: String,
    sent_24h: u64,
    review: Option<ReviewView>,
    chart: Chart,
    totals: Vec<(String, u64)>,
    csrf: String,
}

#[derive(Serialize)]
struct ReviewView {
    status: String,
    case_id: String,
    requested_at: String,
    pending: bool,
}

/// The last 24 hours as an SVG bar chart: an hour a group, one bar a series.
#[derive(Serialize)]
struct Chart {
    bars: Vec<Bar>,
    series: Vec<Series>,
}

#[derive(Serialize)]
struct Bar {
    x: u32,
    y: u32,
    height: u32,
    class: &'static str,
    label: String,
}

#[derive(Serialize)]
struct Series {
    name: &'static str,
    class: &'static str,
}

const SERIES: [(&str, &str); 5] = [
    ("Sends", "s-send"),
    ("Deliveries", "s-delivery"),
    ("Bounces", "s-bounce"),
    ("Complaints", "s-complaint"),
    ("Rejections", "s-reject"),
];

async fn dashboard(State(c): C, SignedIn(s): SignedIn) -> Response {
    let scope = s.scope();
    let q = match c.app.ses.accounts.quota(&scope).await {
        Ok(q) => q,
        Err(e) => return failed(&c, &s, e),
    };
    let now = sesame_core::Clock::now_ms(&sesame_core::SystemClock);
    let since = now - 24 * 3600 * 1000;
    let hour = |t: i64| (((t - since).max(0)) / (3600 * 1000)).min(23) as usize;
    let mut counts = [[0u64; 5]; 24];
    if let Ok(points) = c.store.send_statistics(&scope, since).await {
        for p in points.iter().filter(|p| p.start >= since) {
            let h = hour(p.start);
            counts[h][0] += p.delivery_attempts;
            counts[h][2] += p.bounces;
            counts[h][3] += p.complaints;
        }
    }
    if let Ok(events) = c
        .store
        .list_events(&EventFilter {
            scope: Some(scope.clone()),
            message_id: None,
            kind: Some(EventKind::Delivery),
            limit: 10_000,
        })
        .await
    {
        for e in events.iter().filter(|e| e.at >= since) {
            counts[hour(e.at)][1] += e.recipients.len() as u64;
        }
    }
    if let Ok(refused) = c.store.list_rejections(&scope, 10_000).await {
        for r in refused.iter().filter(|r| r.created_at >= since) {
            counts[hour(r.created_at)][4] += 1;
        }
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let mut bars = vec![];
    for (h, row) in counts.iter().enumerate() {
        for (i, n) in row.iter().enumerate() {
            let height = (*n * 100 / max) as u32;
            bars.push(Bar {
                x: h as u32 * 30 + i as u32 * 5 + 2,
                y: 110 - height,
                height,
                class: SERIES[i].1,
                label: format!("{} {} in hour {}", n, SERIES[i].0.to_lowercase(), h + 1),
            });
        }
    }
    let totals = SERIES
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.to_string(), counts.iter().map(|r| r[i]).sum()))
        .collect();
    let a = &q.account;
    let review = a
        .details
        .as_ref()
        .and_then(|d| d.review.as_ref())
        .map(|r| ReviewView {
            status: r.status.as_str().to_owned(),
            case_id: r.case_id.clone(),
            requested_at: time(r.requested_at),
            pending: a.review_pending(),
        });
    let d = Dashboard {
        production: a.production_access,
        sending_enabled: a.sending_enabled,
        max_24h: if a.max_24h_send < 0.0 {
            "unlimited".into()
        } else {
            format!("{}", a.max_24h_send)
        },
        max_rate: format!("{}", a.max_send_rate),
        sent_24h: q.sent_last_24h,
        review,
        chart: Chart {
            bars,
            series: SERIES
                .iter()
                .map(|(name, class)| Series { name, class })
                .collect(),
        },
        totals,
        csrf: s.csrf.clone(),
    };
    c.page(Some(&s), "Account dashboard", "dashboard", &d)
}

async fn production_access(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let (_, s) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let req = DetailsRequest {
        mail_type: field("mail_type"),
        website_url: field("website_url"),
        contact_language: Some("EN".into()),
        use_case_description: field("use_case"),
        additional_contact_email_addresses: None,
        production_access_enabled: Some(true),
    };
    match c.app.ses.accounts.put_details(&s.scope(), req).await {
        Ok(_) => back("/console"),
        Err(e) => failed(&c, &s, e),
    }
}

// ------------------------------------------------------------ identities

#[derive(Serialize)]
struct IdentityRow {
    name: String,
    link: String,
    kind: &'static str,
    status: String,
    verified: bool,
}

async fn identities(State(c): C, SignedIn(s): SignedIn) -> Response {
    let page = match c
        .app
        .ses
        .identities
        .list(&s.scope(), &Default::default(), None, 1000)
        .await
    {
        Ok(p) => p,
        Err(e) => return failed(&c, &s, e),
    };
    #[derive(Serialize)]
    struct P {
        rows: Vec<IdentityRow>,
        csrf: String,
        more: bool,
    }
    let rows = page
        .identities
        .iter()
        .map(|i| IdentityRow {
            name: i.name.to_string(),
            link: format!("/console/identities/{}", seg(i.name.as_str())),
            kind: match i.name.kind() {
                IdentityKind::Domain => "Domain",
                IdentityKind::EmailAddress => "Email address",
            },
            status: i.verification_status.as_str().to_owned(),
            verified: i.verification_status == VerificationStatus::Success,
        })
        .collect();
    c.page(
        Some(&s),
        "Identities",
        "identities",
        &P {
            rows,
            csrf: s.csrf.clone(),
            more: page.next_token.is_some(),
        },
    )
}

async fn create_identity(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let (_, s) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let name = form
        .get("name")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let req = CreateIdentity {
        name: name.clone(),
        tags: vec![],
        configuration_set: None,
        dkim: None,
    };
    match c.app.ses.identities.create(&s.scope(), req).await {
        Ok(i) => back(&format!("/console/identities/{}", seg(i.name.as_str()))),
        Err(e) => failed(&c, &s, e),
    }
}

#[derive(Serialize)]
struct RecordView {
    kind: &'static str,
    name: String,
    value: String,
}

/// A notification type's topic select: its label, its form field, and the
/// region's topics with whether each is the one set.
type TopicChoice = (&'static str, &'static str, Vec<(String, bool)>);

async fn identity(State(c): C, SignedIn(s): SignedIn, Path(name): Path<String>) -> Response {
    let i = match c.app.ses.identities.get(&s.scope(), &name).await {
        Ok(i) => i,
        Err(e) => return failed(&c, &s, e),
    };
    #[derive(Serialize)]
    struct P {
        name: String,
        base: String,
        domain: bool,
        status: String,
        verified: bool,
        records: Vec<RecordView>,
        last_checked: Option<String>,
        error: Option<String>,
        diagnoses: Vec<String>,
        can_check: bool,
        dkim_status: String,
        dkim_signing: bool,
        dkim_origin: &'static str,
        mail_from: Option<String>,
        mail_from_status: String,
        configuration_set: Option<String>,
        forwarding: bool,
        topics: Vec<(String, String)>,
        tags: Vec<(String, String)>,
        created: String,
        csrf: String,
        /// The choices of the settings form: the region's configuration
        /// sets and topics, each with whether it is the one set.
        sets: Vec<(String, bool)>,
        topic_choices: Vec<TopicChoice>,
        rejects_on_mx_failure: bool,
    }
    let api = &c.app.ses;
    let set_names: Vec<String> = api
        .configuration_sets
        .list(&s.scope(), None, 1000)
        .await
        .map(|(v, _)| v.into_iter().map(|cs| cs.name).collect())
        .unwrap_or_default();
    let topic_arns: Vec<String> = api
        .sns
        .list_topics(&s.scope(), None)
        .await
        .map(|(v, _)| v.into_iter().map(|t| t.arn).collect())
        .unwrap_or_default();
    let choose = |current: &Option<String>| -> Vec<(String, bool)> {
        topic_arns
            .iter()
            .map(|a| (a.clone(), current.as_deref() == Some(a.as_str())))
            .collect()
    };
    let topic_choices = vec![
        (
            "Bounce",
            "bounce_topic",
            choose(&i.notifications.bounce_topic),
        ),
        (
            "Complaint",
            "complaint_topic",
            choose(&i.notifications.complaint_topic),
        ),
        (
            "Delivery",
            "delivery_topic",
            choose(&i.notifications.delivery_topic),
        ),
    ];
    let sets = set_names
        .into_iter()
        .map(|n| {
            let on = i.configuration_set.as_deref() == Some(n.as_str());
            (n, on)
        })
        .collect();
    let records = i
        .dns_records(&c.publishing)
        .into_iter()
        .map(|r| RecordView {
            kind: r.kind,
            name: r.name,
            value: r.value,
        })
        .collect();
    let topic = |t: &Option<String>| t.clone().unwrap_or_else(|| "none".into());
    let p = P {
        base: format!("/console/identities/{}", seg(i.name.as_str())),
        domain: i.name.kind() == IdentityKind::Domain,
        status: i.verification_status.as_str().to_owned(),
        verified: i.verification_status == VerificationStatus::Success,
        records,
        last_checked: i.dns.last_checked_at.map(time),
        error: i.dns.error.map(|e| format!("{e:?}")),
        diagnoses: i.dns.diagnoses.iter().map(|d| d.message.clone()).collect(),
        can_check: c.verifier.is_some() && i.name.kind() == IdentityKind::Domain,
        dkim_status: i.dkim.status.as_str().to_owned(),
        dkim_signing: i.dkim.signing_enabled,
        dkim_origin: match i.dkim.origin {
            sesame_model::identity::DkimOrigin::AwsSes => "Easy DKIM",
            _ => "BYODKIM",
        },
        mail_from: i.mail_from.domain.clone(),
        mail_from_status: i
            .mail_from
            .status
            .map(|s| s.as_str())
            .unwrap_or("NotStarted")
            .to_owned(),
        configuration_set: i.configuration_set.clone(),
        forwarding: i.feedback_forwarding,
        topics: vec![
            ("Bounce".into(), topic(&i.notifications.bounce_topic)),
            ("Complaint".into(), topic(&i.notifications.complaint_topic)),
            ("Delivery".into(), topic(&i.notifications.delivery_topic)),
        ],
        tags: i
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        created: time(i.created_at),
        csrf: s.csrf.clone(),
        sets,
        topic_choices,
        rejects_on_mx_failure: i.mail_from.reject_on_mx_failure,
        name: i.name.to_string(),
    };
    c.page(Some(&s), &p.name.clone(), "identity", &p)
}

async fn records_csv(State(c): C, SignedIn(s): SignedIn, Path(name): Path<String>) -> Response {
    let i = match c.app.ses.identities.get(&s.scope(), &name).await {
        Ok(i) => i,
        Err(e) => return failed(&c, &s, e),
    };
    let csv = sesame_model::identity::records_csv(&i.dns_records(&c.publishing));
    let file: String = i
        .name
        .as_str()
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                ch
            } else {
                '_'
            }
        })
        .collect();
    let mut r = (StatusCode::OK, csv).into_response();
    let h = r.headers_mut();
    secure(h, super::CSP);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}-records.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn check_identity(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let (_, s) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(v) = &c.verifier else {
        return error_page(
            &c,
            Some(&s),
            StatusCode::SERVICE_UNAVAILABLE,
            "No DNS resolver is configured (--dns-server), so domains cannot be checked.",
        );
    };
    match v.check(&s.scope(), &name).await {
        Ok(i) => back(&format!("/console/identities/{}", seg(i.name.as_str()))),
        Err(e) => failed(&c, &s, e),
    }
}

async fn resend(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let to = format!("/console/identities/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.identities.verify_email(&scope, &name).await
    })
    .await
}

/// An identity's settings, as the API sets them: its default
/// configuration set, notification topics, feedback forwarding (SES's rule:
/// off only with bounce and complaint topics) and custom MAIL FROM domain.
async fn identity_settings(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let to = format!("/console/identities/{}", seg(&name));
    let api = &c.app.ses;
    let set = field(&form, "configuration_set");
    let topics: Vec<(EventKind, Option<String>)> = [
        (EventKind::Bounce, "bounce_topic"),
        (EventKind::Complaint, "complaint_topic"),
        (EventKind::Delivery, "delivery_topic"),
    ]
    .into_iter()
    .map(|(k, f)| (k, field(&form, f)))
    .collect();
    let forwarding = form.get("forwarding").is_some_and(|v| v == "on");
    let mail_from = field(&form, "mail_from");
    let reject = form.get("mail_from_behavior").map(String::as_str) == Some("reject");
    edit(&c, &headers, &form, &to, |scope| async move {
        let ids = &api.identities;
        // Every check before any write: a refused form changes nothing.
        let new_topics = sesame_model::identity::Notifications {
            bounce_topic: topics[0].1.clone(),
            complaint_topic: topics[1].1.clone(),
            ..Default::default()
        };
        new_topics.check_forwarding(&name, forwarding)?;
        // The free-text field first (the others are chosen from lists), so
        // that its refusal leaves everything as it was.
        let current = ids.get(&scope, &name).await?;
        if current.mail_from.domain != mail_from || current.mail_from.reject_on_mx_failure != reject
        {
            ids.set_mail_from(&scope, &name, mail_from.as_deref(), reject)
                .await?;
        }
        ids.set_configuration_set(&scope, &name, set).await?;
        // Forwarding on goes first (topics may then be removed); forwarding
        // off goes last (it needs the topics set).
        let missing = || sesame_core::identities::not_found(&name);
        if forwarding {
            ids.set_feedback_forwarding(&scope, &name, true, missing)
                .await?;
        }
        for (kind, topic) in topics {
            ids.set_notification_topic(&scope, &name, kind, topic)
                .await?;
        }
        if !forwarding {
            ids.set_feedback_forwarding(&scope, &name, false, missing)
                .await?;
        }
        Ok(())
    })
    .await
}

async fn delete_identity(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let api = &c.app.ses;
    edit(
        &c,
        &headers,
        &form,
        "/console/identities",
        |scope| async move { api.identities.delete(&scope, &name).await },
    )
    .await
}

// ------------------------------------------------------------ mail

async fn mail(State(c): C, SignedIn(s): SignedIn) -> Response {
    let messages = match c
        .store
        .list_messages(&sesame_model::MessageFilter {
            account: Some(s.account.as_str().to_owned()),
            limit: 200,
            ..Default::default()
        })
        .await
    {
        Ok(m) => m,
        Err(e) => return failed(&c, &s, Error::internal(e.to_string())),
    };
    #[derive(Serialize)]
    struct Row {
        link: String,
        at: String,
        region: String,
        from: String,
        to: String,
        subject: String,
    }
    #[derive(Serialize)]
    struct P {
        rows: Vec<Row>,
    }
    let rows = messages
        .iter()
        .filter(|m| m.scope.region == s.region)
        .map(|m| Row {
            link: format!("/console/mail/{}", seg(&m.message.id)),
            at: time(m.message.created_at),
            region: m.scope.region.as_str().to_owned(),
            from: m.message.source.clone(),
            to: m.message.destinations.join(", "),
            subject: m.message.subject.clone().unwrap_or_default(),
        })
        .collect();
    c.page(Some(&s), "Mail", "mail", &P { rows })
}

/// The session's own message, or nothing: no one sees another account's.
async fn own_message(c: &Console, s: &Session, id: &str) -> Option<sesame_model::StoredMessage> {
    c.store
        .get_message(id)
        .await
        .ok()
        .flatten()
        .filter(|m| m.scope.account == s.account)
}

async fn message(State(c): C, SignedIn(s): SignedIn, Path(id): Path<String>) -> Response {
    let Some(m) = own_message(&c, &s, &id).await else {
        return error_page(
            &c,
            Some(&s),
            StatusCode::NOT_FOUND,
            "No such message in this account.",
        );
    };
    let r = sesame_core::compose::readable(&m.message.raw);
    let events = c
        .store
        .list_events(&EventFilter {
            scope: Some(m.scope.clone()),
            message_id: Some(m.message.id.clone()),
            kind: None,
            limit: 1000,
        })
        .await
        .unwrap_or_default();
    #[derive(Serialize)]
    struct P {
        id: String,
        base: String,
        subject: String,
        from: String,
        to: String,
        at: String,
        has_html: bool,
        text: Option<String>,
        headers: Vec<(String, String)>,
        links: Vec<String>,
        events: Vec<(String, String, String)>,
    }
    let p = P {
        base: format!("/console/mail/{}", seg(&m.message.id)),
        subject: m.message.subject.clone().unwrap_or_default(),
        from: m.message.source.clone(),
        to: m.message.destinations.join(", "),
        at: time(m.message.created_at),
        has_html: r.html.is_some(),
        text: r.text,
        headers: r.headers,
        links: r.links,
        events: events
            .iter()
            .map(|e| {
                (
                    time(e.at),
                    e.kind.as_str().to_owned(),
                    e.recipients.join(", "),
                )
            })
            .collect(),
        id: m.message.id.clone(),
    };
    c.page(Some(&s), &format!("Message {}", p.subject), "message", &p)
}

/// The message's HTML, for the sandboxed frame only.
async fn message_html(State(c): C, SignedIn(s): SignedIn, Path(id): Path<String>) -> Response {
    let Some(m) = own_message(&c, &s, &id).await else {
        return (StatusCode::NOT_FOUND, "no such message").into_response();
    };
    let html = sesame_core::compose::readable(&m.message.raw)
        .html
        .unwrap_or_default();
    let mut r = (StatusCode::OK, axum::response::Html(html)).into_response();
    secure(r.headers_mut(), MAIL_CSP);
    r
}

async fn message_raw(State(c): C, SignedIn(s): SignedIn, Path(id): Path<String>) -> Response {
    let Some(m) = own_message(&c, &s, &id).await else {
        return (StatusCode::NOT_FOUND, "no such message").into_response();
    };
    let mut r = (StatusCode::OK, m.message.raw).into_response();
    let h = r.headers_mut();
    secure(h, super::CSP);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.eml\"", seg(&id))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn rejections(State(c): C, SignedIn(s): SignedIn) -> Response {
    let list = c
        .store
        .list_rejections(&s.scope(), 200)
        .await
        .unwrap_or_default();
    #[derive(Serialize)]
    struct Row {
        at: String,
        operation: String,
        rule: String,
        message: String,
        request: String,
    }
    #[derive(Serialize)]
    struct P {
        rows: Vec<Row>,
    }
    let rows = list
        .into_iter()
        .map(|r| Row {
            at: time(r.created_at),
            operation: r.operation,
            rule: r.rule,
            message: r.message,
            request: r.request_id.unwrap_or_default(),
        })
        .collect();
    c.page(Some(&s), "Rejections", "rejections", &P { rows })
}

// ------------------------------------------------------------ lists

async fn lists(State(c): C, SignedIn(s): SignedIn) -> Response {
    match list_all(&c, &s).await {
        Ok(page) => page,
        Err(e) => failed(&c, &s, e),
    }
}

/// The lists page, or the first listing that failed.
async fn list_all(c: &Console, s: &Session) -> Result<Response, Error> {
    let scope = s.scope();
    let api = &c.app.ses;
    let templates = api.templates.list(&scope, None, 100).await?.0;
    let cv = api.custom_verification.list(&scope, None, 50).await?.0;
    let sets = api.configuration_sets.list(&scope, None, 100).await?.0;
    let suppressed = api
        .suppression
        .list(&scope, &Default::default(), None, 100)
        .await?
        .0;
    let topics = api.sns.list_topics(&scope, None).await?.0;
    #[derive(Serialize)]
    struct P {
        templates: Vec<(String, String)>,
        cv_templates: Vec<(String, String, String, String)>,
        sets: Vec<(String, bool, usize, String)>,
        suppressed: Vec<(String, String, String)>,
        topics: Vec<(String, String)>,
        csrf: String,
    }
    let p = P {
        csrf: s.csrf.clone(),
        templates: templates
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    format!("/console/templates/{}", seg(&t.name)),
                )
            })
            .collect(),
        cv_templates: cv
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.from_email_address.clone(),
                    t.subject.clone(),
                    format!("/console/custom-verification/{}/delete", seg(&t.name)),
                )
            })
            .collect(),
        sets: sets
            .iter()
            .map(|cs| {
                (
                    cs.name.clone(),
                    cs.sending_enabled,
                    cs.event_destinations.len(),
                    format!("/console/configuration-sets/{}", seg(&cs.name)),
                )
            })
            .collect(),
        suppressed: suppressed
            .iter()
            .map(|d| {
                (
                    d.address.clone(),
                    d.reason.as_str().to_owned(),
                    time(d.last_update),
                )
            })
            .collect(),
        topics: topics
            .iter()
            .map(|t| (t.name.clone(), t.arn.clone()))
            .collect(),
    };
    Ok(c.page(
        Some(s),
        "Templates, configuration sets, suppression and topics",
        "lists",
        &p,
    ))
}

#[derive(serde::Deserialize)]
struct Preview {
    data: Option<String>,
}

async fn template(
    State(c): C,
    SignedIn(s): SignedIn,
    Path(name): Path<String>,
    Query(q): Query<Preview>,
) -> Response {
    let t = match c.app.ses.templates.get(&s.scope(), &name).await {
        Ok(t) => t,
        Err(e) => return failed(&c, &s, e),
    };
    let data = q.data.unwrap_or_else(|| "{}".into());
    let (rendered, error) = match c
        .app
        .ses
        .templates
        .test_render(&s.scope(), &name, &data)
        .await
    {
        Ok(raw) => (Some(sesame_core::compose::readable(raw.as_bytes())), None),
        Err(e) => (None, Some(e.message)),
    };
    #[derive(Serialize)]
    struct P {
        name: String,
        subject: String,
        text: Option<String>,
        html: Option<String>,
        data: String,
        rendered_subject: Option<String>,
        rendered_text: Option<String>,
        rendered_html: Option<String>,
        error: Option<String>,
        base: String,
        csrf: String,
    }
    let subject_of = |r: &sesame_core::compose::Readable| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
            .map(|(_, v)| v.clone())
    };
    let p = P {
        name: t.name.clone(),
        subject: t.parts.subject.clone().unwrap_or_default(),
        text: t.parts.text.clone(),
        html: t.parts.html.clone(),
        data,
        rendered_subject: rendered.as_ref().and_then(subject_of),
        rendered_text: rendered.as_ref().and_then(|r| r.text.clone()),
        rendered_html: rendered.as_ref().and_then(|r| r.html.clone()),
        error,
        base: format!("/console/templates/{}", seg(&t.name)),
        csrf: s.csrf.clone(),
    };
    c.page(Some(&s), &format!("Template {}", t.name), "template", &p)
}

// ------------------------------------------------------------ list edits

/// A form field, trimmed; `None` when empty.
fn field(form: &HashMap<String, String>, k: &str) -> Option<String> {
    form.get(k)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Runs a list edit for a posted form, then goes back to `to` (or shows
/// SES's refusal).
async fn edit<Fut>(
    c: &Console,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    to: &str,
    run: impl FnOnce(Scope) -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let (_, s) = match posted(c, headers, form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match run(s.scope()).await {
        Ok(()) => back(to),
        Err(e) => failed(c, &s, e),
    }
}

fn parts_of(form: &HashMap<String, String>) -> sesame_model::template::TemplateParts {
    sesame_model::template::TemplateParts {
        subject: field(form, "subject"),
        text: field(form, "text"),
        html: field(form, "html"),
    }
}

async fn create_template(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let name = field(&form, "name").unwrap_or_default();
    let parts = parts_of(&form);
    let to = format!("/console/templates/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.templates.create(&scope, &name, parts, vec![]).await
    })
    .await
}

async fn update_template(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let parts = parts_of(&form);
    let to = format!("/console/templates/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.templates.update(&scope, &name, parts).await
    })
    .await
}

async fn delete_template(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.templates.delete(&scope, &name).await.map(drop)
    })
    .await
}

async fn create_set(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let name = field(&form, "name").unwrap_or_default();
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.configuration_sets
            .create(&scope, &name, vec![], Default::default())
            .await
    })
    .await
}

async fn set_sending(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let enabled = form.get("enabled").map(String::as_str) == Some("true");
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        let o = sesame_core::configuration_sets::SetOptions {
            sending_enabled: Some(enabled),
            ..Default::default()
        };
        api.configuration_sets.configure(&scope, &name, o).await
    })
    .await
}

async fn delete_set(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.configuration_sets.delete(&scope, &name).await
    })
    .await
}

async fn suppress(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let address = field(&form, "address").unwrap_or_default();
    let reason = form
        .get("reason")
        .and_then(|r| sesame_model::suppression::Reason::parse(r));
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        let reason =
            reason.ok_or_else(|| Error::invalid("The reason must be BOUNCE or COMPLAINT."))?;
        api.suppression.put(&scope, &address, reason).await
    })
    .await
}

async fn unsuppress(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let address = field(&form, "address").unwrap_or_default();
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.suppression.delete(&scope, &address).await
    })
    .await
}

async fn create_topic(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let name = field(&form, "name").unwrap_or_default();
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.sns
            .create_topic(&scope, &name, &[], vec![])
            .await
            .map(drop)
    })
    .await
}

async fn delete_topic(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let arn = field(&form, "arn").unwrap_or_default();
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.sns.delete_topic(&scope, &arn).await
    })
    .await
}

/// A custom verification template's fields as the console's form names them.
fn cv_input(form: &HashMap<String, String>) -> sesame_core::custom_verification::CvTemplateInput {
    sesame_core::custom_verification::CvTemplateInput {
        from_email_address: field(form, "from"),
        subject: field(form, "subject"),
        content: field(form, "content"),
        success_redirection_url: field(form, "success_url"),
        failure_redirection_url: field(form, "failure_url"),
        tags: vec![],
    }
}

async fn create_cv(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let name = field(&form, "name").unwrap_or_default();
    let input = cv_input(&form);
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.custom_verification
            .create(&api.identities, &scope, &name, input)
            .await
    })
    .await
}

async fn delete_cv(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let api = &c.app.ses;
    edit(&c, &headers, &form, "/console/lists", |scope| async move {
        api.custom_verification
            .delete(&scope, &name)
            .await
            .map(drop)
    })
    .await
}

// ------------------------------------------------- views and their edits

async fn configuration_set(
    State(c): C,
    SignedIn(s): SignedIn,
    Path(name): Path<String>,
) -> Response {
    let api = &c.app.ses;
    let set = match api.configuration_sets.get(&s.scope(), &name).await {
        Ok(set) => set,
        Err(e) => return failed(&c, &s, e),
    };
    let topics = api
        .sns
        .list_topics(&s.scope(), None)
        .await
        .map(|(t, _)| t)
        .unwrap_or_default();
    #[derive(Serialize)]
    struct Dest {
        name: String,
        enabled: bool,
        types: String,
        target: String,
        delete: String,
    }
    #[derive(Serialize)]
    struct P {
        name: String,
        base: String,
        sending_enabled: bool,
        tls_required: bool,
        max_delivery_seconds: Option<u32>,
        reputation: bool,
        engagement: bool,
        own_reasons: bool,
        suppress_bounce: bool,
        suppress_complaint: bool,
        redirect_domain: String,
        destinations: Vec<Dest>,
        topics: Vec<String>,
        kinds: Vec<(&'static str, String)>,
        csrf: String,
    }
    use sesame_model::configuration_set::DestinationTarget;
    use sesame_model::suppression::Reason;
    let base = format!("/console/configuration-sets/{}", seg(&set.name));
    let reasons = set.suppressed_reasons.clone();
    let p = P {
        destinations: set
            .event_destinations
            .iter()
            .map(|d| Dest {
                name: d.name.clone(),
                enabled: d.enabled,
                types: d
                    .matching
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                target: match &d.target {
                    DestinationTarget::Sns { topic_arn } => format!("SNS {topic_arn}"),
                    DestinationTarget::CloudWatch { .. } => "CloudWatch (Prometheus series)".into(),
                    DestinationTarget::EventBridge { bus_arn } => format!("EventBridge {bus_arn}"),
                    DestinationTarget::Firehose { stream_arn, .. } => {
                        format!("Firehose {stream_arn}")
                    }
                },
                delete: format!("{base}/destinations/{}/delete", seg(&d.name)),
            })
            .collect(),
        base,
        name: set.name.clone(),
        sending_enabled: set.sending_enabled,
        tls_required: set.tls_required,
        max_delivery_seconds: set.max_delivery_seconds,
        reputation: set.reputation_metrics,
        engagement: set.engagement_metrics == Some(true),
        own_reasons: reasons.is_some(),
        suppress_bounce: reasons
            .as_ref()
            .is_some_and(|r| r.contains(&Reason::Bounce)),
        suppress_complaint: reasons
            .as_ref()
            .is_some_and(|r| r.contains(&Reason::Complaint)),
        redirect_domain: set.redirect_domain.clone().unwrap_or_default(),
        topics: topics.into_iter().map(|t| t.arn).collect(),
        kinds: EventKind::ALL
            .iter()
            .map(|k| (k.as_str(), format!("{k:?}")))
            .collect(),
        csrf: s.csrf.clone(),
    };
    c.page(
        Some(&s),
        &format!("Configuration set {name}"),
        "configuration_set",
        &p,
    )
}

async fn set_options(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    use sesame_model::suppression::Reason;
    let on = |k: &str| form.get(k).is_some_and(|v| v == "on");
    let max = field(&form, "max_delivery_seconds");
    let reasons = (form.get("suppression").map(String::as_str) == Some("set")).then(|| {
        let mut r = vec![];
        if on("suppress_bounce") {
            r.push(Reason::Bounce);
        }
        if on("suppress_complaint") {
            r.push(Reason::Complaint);
        }
        r
    });
    let options = sesame_core::configuration_sets::SetOptions {
        sending_enabled: None,
        suppressed_reasons: Some(reasons),
        tracking: Some((field(&form, "redirect_domain"), false)),
        tls_required: Some(on("tls_required")),
        max_delivery_seconds: None,
        reputation_metrics: Some(on("reputation")),
        engagement_metrics: Some(Some(on("engagement"))),
    };
    let to = format!("/console/configuration-sets/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        let max_delivery_seconds = match max.as_deref() {
            None => None,
            Some(m) => match m.parse::<u32>() {
                Ok(n @ 300..=50_400) => Some(n),
                _ => {
                    return Err(Error::invalid(
                        "MaxDeliverySeconds must be a whole number from 300 to 50400.",
                    ));
                }
            },
        };
        let options = sesame_core::configuration_sets::SetOptions {
            max_delivery_seconds: Some(max_delivery_seconds),
            ..options
        };
        api.configuration_sets
            .configure(&scope, &name, options)
            .await
    })
    .await
}

async fn add_destination(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    use sesame_model::configuration_set::{DestinationTarget, EventDestination};
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    let kinds: Vec<EventKind> = pairs
        .iter()
        .filter(|(k, _)| k == "types")
        .filter_map(|(_, v)| EventKind::ALL.into_iter().find(|k| format!("{k:?}") == *v))
        .collect();
    let dest = field(&form, "destination").unwrap_or_default();
    let target = match form.get("target").map(String::as_str) {
        Some("cloudwatch") => Some(DestinationTarget::CloudWatch { dimensions: vec![] }),
        _ => field(&form, "topic_arn").map(|topic_arn| DestinationTarget::Sns { topic_arn }),
    };
    let to = format!("/console/configuration-sets/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        let target = target.ok_or_else(|| Error::invalid("Choose an SNS topic or CloudWatch."))?;
        let d = EventDestination {
            name: dest,
            enabled: true,
            matching: kinds,
            target,
        };
        api.configuration_sets
            .put_destination(&scope, &name, d, true)
            .await
    })
    .await
}

async fn delete_destination(
    State(c): C,
    headers: HeaderMap,
    Path((name, dest)): Path<(String, String)>,
    Form(form): F,
) -> Response {
    let to = format!("/console/configuration-sets/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.configuration_sets
            .delete_destination(&scope, &name, &dest)
            .await
    })
    .await
}

#[derive(serde::Deserialize)]
struct TopicQuery {
    arn: String,
}

async fn topic(State(c): C, SignedIn(s): SignedIn, Query(q): Query<TopicQuery>) -> Response {
    let api = &c.app.ses;
    let t = match api.sns.topic(&s.scope(), &q.arn).await {
        Ok(t) => t,
        Err(e) => return failed(&c, &s, e),
    };
    let subs = api
        .sns
        .list_subscriptions(&s.scope(), Some(&q.arn), None)
        .await
        .map(|(subs, _)| subs)
        .unwrap_or_default();
    #[derive(Serialize)]
    struct Sub {
        arn: String,
        protocol: &'static str,
        endpoint: String,
        confirmed: bool,
    }
    #[derive(Serialize)]
    struct P {
        name: String,
        arn: String,
        display_name: String,
        signature_version: u8,
        subscriptions: Vec<Sub>,
        csrf: String,
    }
    let p = P {
        name: t.name.clone(),
        arn: t.arn.clone(),
        display_name: t.display_name.clone(),
        signature_version: t.signature_version,
        subscriptions: subs
            .into_iter()
            .map(|sub| Sub {
                protocol: sub.protocol.as_str(),
                arn: sub.arn,
                endpoint: sub.endpoint,
                confirmed: sub.confirmed,
            })
            .collect(),
        csrf: s.csrf.clone(),
    };
    c.page(Some(&s), &format!("Topic {}", t.name), "topic", &p)
}

fn topic_page(arn: &str) -> String {
    format!("/console/topic?arn={}", seg(arn))
}

async fn subscribe(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let arn = field(&form, "arn").unwrap_or_default();
    let protocol = field(&form, "protocol").unwrap_or_default();
    let endpoint = field(&form, "endpoint");
    let to = topic_page(&arn);
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.sns
            .subscribe(&scope, &arn, &protocol, endpoint.as_deref(), &[], true)
            .await
            .map(drop)
    })
    .await
}

async fn unsubscribe(State(c): C, headers: HeaderMap, Form(form): F) -> Response {
    let arn = field(&form, "subscription").unwrap_or_default();
    let to = topic_page(&field(&form, "arn").unwrap_or_default());
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.sns.unsubscribe(Some(&scope), &arn).await
    })
    .await
}

async fn cv_template(State(c): C, SignedIn(s): SignedIn, Path(name): Path<String>) -> Response {
    let t = match c.app.ses.custom_verification.get(&s.scope(), &name).await {
        Ok(t) => t,
        Err(e) => return failed(&c, &s, e),
    };
    #[derive(Serialize)]
    struct P {
        name: String,
        base: String,
        from: String,
        subject: String,
        content: String,
        success_url: String,
        failure_url: String,
        csrf: String,
    }
    let p = P {
        base: format!("/console/custom-verification/{}", seg(&t.name)),
        name: t.name,
        from: t.from_email_address,
        subject: t.subject,
        content: t.content,
        success_url: t.success_redirection_url,
        failure_url: t.failure_redirection_url,
        csrf: s.csrf.clone(),
    };
    c.page(
        Some(&s),
        &format!("Custom verification template {}", p.name),
        "cv_template",
        &p,
    )
}

/// A custom verification template's content for the sandboxed preview
/// frame: its embedded `data:` images show (the frame's policy allows
/// `data:` images and nothing remote).
async fn cv_preview(State(c): C, SignedIn(s): SignedIn, Path(name): Path<String>) -> Response {
    match c.app.ses.custom_verification.get(&s.scope(), &name).await {
        Ok(t) => {
            let mut r = (StatusCode::OK, axum::response::Html(t.content)).into_response();
            secure(r.headers_mut(), MAIL_CSP);
            r
        }
        Err(_) => (StatusCode::NOT_FOUND, "no such template").into_response(),
    }
}

async fn update_cv(
    State(c): C,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): F,
) -> Response {
    let input = cv_input(&form);
    let to = format!("/console/custom-verification/{}", seg(&name));
    let api = &c.app.ses;
    edit(&c, &headers, &form, &to, |scope| async move {
        api.custom_verification
            .update(&api.identities, &scope, &name, input)
            .await
    })
    .await
}

// ------------------------------------------------------------ operator

async fn operator(State(c): C, SignedIn(s): SignedIn) -> Response {
    if !s.operator {
        return error_page(
            &c,
            Some(&s),
            StatusCode::FORBIDDEN,
            "Operator pages need the operator token: sign in again with it.",
        );
    }
    let pending = match c.app.ses.accounts.pending_reviews().await {
        Ok(p) => p,
        Err(e) => return failed(&c, &s, e),
    };
    #[derive(Serialize)]
    struct Row {
        account: String,
        region: String,
        case_id: String,
        requested_at: String,
        mail_type: String,
        website: String,
        use_case: String,
        base: String,
    }
    #[derive(Serialize)]
    struct P {
        rows: Vec<Row>,
        csrf: String,
    }
    let rows = pending
        .iter()
        .filter_map(|(scope, a)| {
            let d = a.details.as_ref()?;
            let r = d.review.as_ref()?;
            Some(Row {
                account: scope.account.as_str().to_owned(),
                region: scope.region.as_str().to_owned(),
                case_id: r.case_id.clone(),
                requested_at: time(r.requested_at),
                mail_type: d.mail_type.clone(),
                website: d.website_url.clone(),
                use_case: d.use_case_description.clone().unwrap_or_default(),
                base: format!("/console/operator/{}/{}", scope.account, scope.region),
            })
        })
        .collect();
    c.page(
        Some(&s),
        "Production-access requests",
        "operator",
        &P {
            rows,
            csrf: s.csrf.clone(),
        },
    )
}

async fn decide(
    State(c): C,
    headers: HeaderMap,
    Path((account, region, decision)): Path<(String, String, String)>,
    Form(form): F,
) -> Response {
    let (_, s) = match posted(&c, &headers, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !s.operator {
        return error_page(
            &c,
            Some(&s),
            StatusCode::FORBIDDEN,
            "Operator pages need the operator token.",
        );
    }
    let (Ok(account), Ok(region)) = (AccountId::parse(&account), Region::parse(&region)) else {
        return error_page(
            &c,
            Some(&s),
            StatusCode::BAD_REQUEST,
            "No such account or region.",
        );
    };
    let scope = Scope::new(account, region);
    let done = match decision.as_str() {
        "approve" => c.app.ses.accounts.approve(&scope).await,
        "deny" => c.app.ses.accounts.deny(&scope).await,
        _ => return error_page(&c, Some(&s), StatusCode::NOT_FOUND, "No such decision."),
    };
    match done {
        Ok(_) => {
            tracing::info!(account = %scope.account, region = %scope.region, %decision, "production access decided in the console");
            back("/console/operator")
        }
        Err(e) => failed(&c, &s, e),
    }
}

// ------------------------------------------------------------ static

async fn css() -> Response {
    asset(
        include_str!("static/console.css"),
        "text/css; charset=utf-8",
    )
}

async fn js() -> Response {
    asset(
        include_str!("static/console.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}
