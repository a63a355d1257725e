//! The web console at `/console`: server-rendered pages (Handlebars
//! templates compiled into the binary, HTML-escaped by default) over the
//! same use cases the API calls. No front-end build: one stylesheet and one
//! small script (the copy buttons), both served from here.
//!
//! Security: a session is made only by signing in with an access key (in
//! `--dev`, the dev account's session is made on the first visit); its
//! cookie is HttpOnly and SameSite=Strict and names a random token kept in
//! memory (bounded, expiring). Every state-changing form carries the
//! session's CSRF token. Every page is sent with a Content-Security-Policy
//! that allows only this origin's script and style; captured HTML is shown
//! in a sandboxed frame whose own policy forbids scripts and remote loads.
//! Operator pages need the operator token (`--console-operator-token`),
//! except in `--dev`.

mod pages;

use crate::api::App;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use sesame_core::Verifier;
use sesame_model::verification::DnsPublishing;
use sesame_model::{AccountId, Region, Scope};
use sesame_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sessions kept at most; past it, the oldest goes.
const MAX_SESSIONS: usize = 10_000;
/// How long a session lasts without use.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
const COOKIE: &str = "sesame_console";
/// The sign-in form's CSRF token, before there is a session.
const PRE_COOKIE: &str = "sesame_console_signin";

/// Every console page's policy: this origin's script and style only, no
/// plugins, no framing by others, forms posting here only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// A captured message's HTML: no scripts, no remote loads, no forms, shown
/// only inside the console's own sandboxed frame.
const MAIL_CSP: &str =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

/// A signed-in user: the account, the region shown, and the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: AccountId,
    pub region: Region,
    pub csrf: String,
    pub operator: bool,
    used: Instant,
}

impl Session {
    pub fn scope(&self) -> Scope {
        Scope::new(self.account.clone(), self.region.clone())
    }
}

pub struct Console {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    pub verifier: Option<Arc<Verifier>>,
    pub publishing: DnsPublishing,
    /// `--dev`: the account a visitor is, without signing in.
    pub dev: Option<AccountId>,
    pub operator_token: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
    hb: Handlebars<'static>,
}

macro_rules! templates {
    ($($name:literal),*) => {
        [$(($name, include_str!(concat!("templates/", $name, ".hbs")))),*]
    };
}

impl Console {
    pub fn new(
        app: Arc<App>,
        store: Arc<dyn Store>,
        verifier: Option<Arc<Verifier>>,
        publishing: DnsPublishing,
        dev: Option<AccountId>,
        operator_token: Option<String>,
    ) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        for (name, text) in templates!(
            "layout",
            "signin",
            "dashboard",
            "identities",
            "identity",
            "mail",
            "message",
            "rejections",
            "lists",
            "template",
            "configuration_set",
            "topic",
            "cv_template",
            "operator",
            "error"
        ) {
            hb.register_template_string(name, text)
                .map_err(|e| format!("console template {name}: {e}"))?;
        }
        Ok(Self {
            app,
            store,
            verifier,
            publishing,
            dev,
            operator_token,
            sessions: Mutex::new(HashMap::new()),
            hb,
        })
    }

    /// The session the request's cookie names, if it is live; its use is
    /// noted.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let token = cookie(headers, COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.get_mut(&token)?;
        if s.used.elapsed() > SESSION_IDLE {
            sessions.remove(&token);
            return None;
        }
        s.used = Instant::now();
        Some((token, s.clone()))
    }

    /// Starts a session; its token for the cookie.
    pub fn start(&self, account: AccountId, region: Region, operator: bool) -> String {
        let token = sesame_core::random::string_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 40);
        let session = Session {
            account,
            region,
            csrf: sesame_core::random::string_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 32),
            operator,
            used: Instant::now(),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.used.elapsed() <= SESSION_IDLE);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), session);
        token
    }

    pub fn end(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    pub fn set_region(&self, token: &str, region: Region) {
        if let Some(s) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(token)
        {
            s.region = region;
        }
    }

    /// A page inside the layout.
    pub fn page<T: serde::Serialize>(
        &self,
        session: Option<&Session>,
        title: &str,
        name: &str,
        data: &T,
    ) -> Response {
        let body = match self.hb.render(name, data) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(template = name, error = %e, "console page failed to render");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page failed to render",
                )
                    .into_response();
            }
        };
        let regions: Vec<Choice> = self
            .app
            .regions
            .iter()
            .map(|r| Choice {
                value: r.as_str().to_owned(),
                selected: session.is_some_and(|s| s.region == *r),
            })
            .collect();
        let layout = Layout {
            title,
            body: &body,
            signed_in: session.is_some(),
            account: session.map(|s| s.account.as_str()).unwrap_or(""),
            region: session.map(|s| s.region.as_str()).unwrap_or(""),
            csrf: session.map(|s| s.csrf.as_str()).unwrap_or(""),
            operator: session.is_some_and(|s| s.operator),
            dev: self.dev.is_some(),
            regions,
        };
        match self.hb.render("layout", &layout) {
            Ok(html) => html_response(StatusCode::OK, html),
            Err(e) => {
                tracing::error!(error = %e, "console layout failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page failed to render",
                )
                    .into_response()
            }
        }
    }
}

#[derive(serde::Serialize)]
struct Layout<'a> {
    title: &'a str,
    body: &'a str,
    signed_in: bool,
    account: &'a str,
    region: &'a str,
    csrf: &'a str,
    operator: bool,
    dev: bool,
    regions: Vec<Choice>,
}

#[derive(serde::Serialize)]
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// An HTML response with the console's security headers.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut r = (status, axum::response::Html(html)).into_response();
    secure(r.headers_mut(), CSP);
    r
}

/// The console's headers: its policy, no sniffing, no referrer, no cache.
pub fn secure(h: &mut HeaderMap, csp: &'static str) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session cookie: HttpOnly, SameSite=Strict, for the console only.
fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict")
}

/// The sign-in form's token cookie.
fn pre_session_cookie(token: &str) -> String {
    format!("{PRE_COOKIE}={token}; Path=/console/signin; HttpOnly; SameSite=Strict")
}

/// Clears the session cookie.
fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn routes<S: Clone + Send + Sync + 'static>(console: Arc<Console>) -> Router<S> {
    pages::routes(console)
}
