//! One API request's path: the caller is identified from its headers (the
//! access key must be known and the region served) before anything else is
//! spent on it; then its body is read within the size limit, the memory
//! budget and a deadline; then the signature is checked over the body
//! received; then the v1 or v2 dispatcher runs, after SES's API call rate.
//! Errors at every step are encoded in the request's own protocol, and
//! every response carries a request ID.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use sesame_core::budget::MemoryBudget;
use sesame_core::{Credentials, Resolution};
use sesame_model::{Error, Region, Scope};
use sesame_sigv4 as sigv4;
use sesame_wire::{Protocol, WireError, WireResponse, encode_error, serve};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// What the API needs: the operations, and the guards in front of them.
pub struct App {
    /// SES's operations (and SNS's), behind the generated traits.
    pub ses: sesame_api::Api,
    pub credentials: Credentials,
    /// SigV4 signing keys already derived, per access key and scope.
    pub signing_keys: sigv4::SigningKeys,
    /// What request bodies in hand may take at once.
    pub bodies: BodyBudget,
    /// The time a client has to send a whole body.
    pub body_timeout: Duration,
    /// SES's API call rate per account and region (sends are not counted).
    pub api_rate: sesame_core::rate::ApiRate,
    /// The regions the API answers in.
    pub regions: Vec<Region>,
}

/// How long a request whose body fits waits for room in the budget before
/// it is answered `ServiceUnavailable`.
const BUDGET_WAIT: Duration = Duration::from_secs(30);

/// Bounds the memory that requests in hand take together. A request is
/// counted at three times its body (the body, its decoded message and the
/// copies made on the way to the store: about what a large SendRawEmail
/// takes) from before its body is read until its response is made. One
/// that does not fit waits, unread, for others to finish, so that many
/// large requests at once (v2 allows 40 MB each) cannot take all memory;
/// one larger than the whole budget goes alone.
pub struct BodyBudget(MemoryBudget);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self(MemoryBudget::new(bytes))
    }

    /// What a body of `declared` bytes, or of up to `limit` when its
    /// length is not declared (chunked), is counted at.
    fn counted(declared: Option<u64>, limit: usize) -> u64 {
        3 * declared.unwrap_or(limit as u64).min(limit as u64)
    }

    #[cfg(test)]
    fn cost(&self, declared: Option<u64>, limit: usize) -> u32 {
        self.0.cost(Self::counted(declared, limit))
    }

    async fn admit(&self, declared: Option<u64>, limit: usize) -> OwnedSemaphorePermit {
        self.0.admit(Self::counted(declared, limit)).await
    }

    /// Whether a small request would find room now.
    pub fn has_room(&self) -> bool {
        self.0.available_kib() > 0
    }
}

/// Who is calling, once the signature checks out.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub access_key_id: String,
    /// Signed for SNS (credential scope `…/sns/aws4_request`) rather than SES.
    pub sns: bool,
}

pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let protocol = Protocol::of_path(parts.uri.path());
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();

    // The caller, once its signature checks out, is logged with the
    // request however the request ends.
    let mut caller = None;
    let outcome = async {
        let declared = declared_length(&parts.headers, protocol)?;
        let known = identify(&app, &parts, protocol).await?;
        let (body, _room) = read_body(&app, declared, body, protocol).await?;
        let who = caller.insert(known.verify(&app, &parts, &body)?);
        dispatch(&app, who, protocol, &parts, &body, &request_id).await
    }
    .await;

    // An SNS caller's errors come in SNS's envelope.
    let reply_in = match &caller {
        Some(c) if c.sns => Protocol::SnsQuery,
        _ => protocol,
    };
    let (op, response) = match outcome {
        Ok((op, r)) => (op, r),
        Err((op, e)) => (op, encode_error(reply_in, &e, &request_id)),
    };
    tracing::info!(
        request_id = %request_id,
        %method,
        %path,
        op = op.unwrap_or("-"),
        status = response.status,
        account = caller.as_ref().map(|c| c.scope.account.as_str()).unwrap_or("-"),
        region = caller.as_ref().map(|c| c.scope.region.as_str()).unwrap_or("-"),
        access_key_id = caller.as_ref().map(|c| c.access_key_id.as_str()).unwrap_or("-"),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    into_response(response)
}

/// An error on the way, and the operation name if it was known by then.
pub type Failure = (Option<&'static str>, WireError);

/// Finds the operation, counts it against SES's API call rate (every
/// operation but the sends), and runs it.
async fn dispatch(
    app: &App,
    caller: &Caller,
    protocol: Protocol,
    parts: &axum::http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Result<(Option<&'static str>, WireResponse), Failure> {
    let url_query = parts.uri.query().unwrap_or("");
    let origin = sesame_api::Origin {
        source_ip: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_canonical()),
        request_id: Some(request_id.to_owned()),
    };
    let protocol = match protocol {
        Protocol::Query if caller.sns => Protocol::SnsQuery,
        p => p,
    };
    let admit = |op: &'static str| -> Result<(), Failure> {
        if sesame_wire::counts_against_api_rate(op) {
            app.api_rate
                .admit(&caller.scope)
                .map_err(|e| (Some(op), WireError::from_domain(protocol, &e)))?;
        }
        Ok(())
    };
    match protocol {
        Protocol::Query | Protocol::SnsQuery => {
            let call = serve::route_query(body, url_query, caller.sns).map_err(|e| (None, e))?;
            let op = call.name();
            admit(op)?;
            let r = origin
                .serve(serve::serve_query(
                    &app.ses,
                    &caller.scope,
                    call,
                    request_id,
                ))
                .await;
            r.map(|r| (Some(op), r)).map_err(|e| (Some(op), e))
        }
        Protocol::RestJson => {
            let call = serve::route_rest(parts.method.as_str(), parts.uri.path(), url_query)?;
            let op = call.matched.op.name();
            admit(op)?;
            let r = origin
                .serve(serve::serve_rest(
                    &app.ses,
                    &caller.scope,
                    &call,
                    body,
                    request_id,
                ))
                .await;
            r.map(|r| (Some(op), r)).map_err(|e| (Some(op), e))
        }
    }
}

/// The error for a body over the API's limit.
fn too_large(limit: usize) -> Failure {
    (
        None,
        WireError::new(
            "RequestEntityTooLarge",
            413,
            format!("The request body is larger than the {limit}-byte limit of this API."),
        ),
    )
}

/// The body's declared length; one over the API's limit is refused before
/// anything else, signed or not.
fn declared_length(
    headers: &axum::http::HeaderMap,
    protocol: Protocol,
) -> Result<Option<u64>, Failure> {
    let limit = protocol.body_limit();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(declared)
}

/// The body, once it fits in the budget, and its room there, which the
/// request holds until its response is made. The budget is waited for at
/// most [`BUDGET_WAIT`], and the body must arrive within `--body-timeout`.
async fn read_body(
    app: &App,
    declared: Option<u64>,
    body: Body,
    protocol: Protocol,
) -> Result<(Bytes, OwnedSemaphorePermit), Failure> {
    let limit = protocol.body_limit();
    let Ok(room) = tokio::time::timeout(BUDGET_WAIT, app.bodies.admit(declared, limit)).await
    else {
        tracing::warn!(
            waited_s = BUDGET_WAIT.as_secs(),
            "request refused: no room in --request-memory for its body"
        );
        return Err((
            None,
            WireError::new(
                "ServiceUnavailable",
                503,
                "Service is unable to handle request.",
            ),
        ));
    };
    match tokio::time::timeout(app.body_timeout, to_bytes(body, limit)).await {
        Ok(Ok(body)) => Ok((body, room)),
        Ok(Err(_)) => Err(too_large(limit)),
        Err(_) => {
            tracing::info!(
                timeout_s = app.body_timeout.as_secs_f64(),
                "request refused: its body did not arrive within --body-timeout"
            );
            Err((
                None,
                WireError::new(
                    "RequestTimeout",
                    400,
                    "Your socket connection to the server was not read from or written to within the timeout period.",
                ),
            ))
        }
    }
}

/// A caller whose access key is known and whose region is served, before
/// its body is read; its signature is not checked yet.
struct Known {
    headers: Vec<(String, String)>,
    auth: sigv4::Auth,
    /// The secret to check the signature with; `None` in `--dev`, where
    /// any well-formed credentials are accepted.
    secret: Option<String>,
    scope: Scope,
}

/// Everything about the caller that its headers tell: the Authorization
/// header or presigned query parses, the region is one Sesame serves, and
/// the access key is known. Nothing is read from the body and nothing is
/// taken from the budget before this passes.
async fn identify(
    app: &App,
    parts: &axum::http::request::Parts,
    protocol: Protocol,
) -> Result<Known, Failure> {
    let auth_err = |e: sigv4::AuthError| (None, WireError::new(e.code(), e.status(), e.message()));
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let req = sigv4::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256: "",
    };
    let auth = sigv4::parse(&req).map_err(auth_err)?;
    let region = Region::parse(&auth.region)
        .ok()
        .filter(|r| app.regions.contains(r))
        .ok_or_else(|| {
            tracing::info!(
                region = %auth.region.chars().take(64).collect::<String>(),
                "request refused: the credential scope names a region Sesame does not serve (--regions)"
            );
            auth_err(sigv4::AuthError::SignatureDoesNotMatch(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            )))
        })?;
    let domain_err = |e: Error| (None, WireError::from_domain(protocol, &e));
    let (secret, account) = match app
        .credentials
        .resolve(&auth.access_key_id)
        .await
        .map_err(domain_err)?
    {
        Resolution::Verify { secret, account } => (Some(secret), account),
        Resolution::AcceptUnverified { account } => (None, account),
        Resolution::Unknown => return Err(auth_err(sigv4::AuthError::InvalidClientTokenId)),
    };
    Ok(Known {
        headers,
        auth,
        secret,
        scope: Scope::new(account, region),
    })
}

impl Known {
    /// Checks the signature over the body received.
    fn verify(
        self,
        app: &App,
        parts: &axum::http::request::Parts,
        body: &[u8],
    ) -> Result<Caller, Failure> {
        if let Some(secret) = &self.secret {
            let body_sha = sigv4::sha256_hex(body);
            let req = sigv4::Request {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query: parts.uri.query().unwrap_or(""),
                headers: &self.headers,
                body_sha256: &body_sha,
            };
            let now = time::OffsetDateTime::now_utc();
            app.signing_keys
                .verify(&req, &self.auth, secret, self.service(), now)
                .map_err(|e| (None, WireError::new(e.code(), e.status(), e.message())))?;
        }
        Ok(Caller {
            sns: self.service() == "sns",
            scope: self.scope,
            access_key_id: self.auth.access_key_id,
        })
    }

    /// The service the request is signed for: SNS's Query API when the
    /// credential scope names `sns`, SES's otherwise.
    fn service(&self) -> &'static str {
        if self.auth.service == "sns" {
            "sns"
        } else {
            "ses"
        }
    }
}

fn into_response(r: WireResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    for (name, value) in r.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    #[test]
    fn a_body_is_counted_at_three_times_its_length_within_the_budget() {
        let b = BodyBudget::new(3 << 20);
        assert_eq!(b.cost(Some(1024), 10 << 20), 3);
        assert_eq!(b.cost(Some(0), 10 << 20), 1, "at least one KiB");
        assert_eq!(b.cost(None, 512 << 10), 1536, "undeclared: at the limit");
        assert_eq!(b.cost(Some(40 << 20), 40 << 20), 3072, "at most the budget");
    }

    /// A full budget holds the next request back until room is freed; a
    /// request larger than the whole budget waits for all the others and
    /// then goes alone.
    #[tokio::test]
    async fn a_full_budget_holds_requests_back_until_room_is_freed() {
        let b = BodyBudget::new(3 << 20);
        let limit = 40 << 20;
        let first = b.admit(Some(512 << 10), limit).await;
        let second = b.admit(Some(512 << 10), limit).await;
        let waited = timeout(Duration::from_millis(50), b.admit(Some(1), limit)).await;
        assert!(waited.is_err(), "the budget is full");
        drop(first);
        let small = timeout(Duration::from_secs(5), b.admit(Some(1), limit))
            .await
            .expect("room was freed");
        let big = timeout(Duration::from_millis(50), b.admit(Some(30 << 20), limit)).await;
        assert!(big.is_err(), "a large one waits for the others");
        drop((second, small));
        let alone = timeout(Duration::from_secs(5), b.admit(Some(30 << 20), limit))
            .await
            .expect("alone, it goes");
        assert_eq!(alone.num_permits(), 3072, "the whole budget");
    }
}
