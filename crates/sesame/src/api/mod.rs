//! One API request's path: size limit, SigV4 authentication, then the v1 or
//! v2 dispatcher. Errors at every step are encoded in the request's own
//! protocol, and every response carries a request ID.

pub mod v1;
pub mod v2;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use sesame_core::budget::MemoryBudget;
use sesame_core::{
    AccountService, Credentials, IdentityService, Resolution, SendService, TemplateService,
};
use sesame_model::{Error, Region, Scope};
use sesame_sigv4 as sigv4;
use sesame_wire::{Protocol, WireError, WireResponse, encode_error};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;

/// The use cases the API calls into.
pub struct App {
    pub identities: IdentityService,
    pub credentials: Credentials,
    /// SigV4 signing keys already derived, per access key and scope.
    pub signing_keys: sigv4::SigningKeys,
    pub accounts: Arc<AccountService>,
    pub sending: SendService,
    pub templates: TemplateService,
    pub custom_verification: sesame_core::CustomVerificationService,
    /// What request bodies in hand may take at once.
    pub bodies: BodyBudget,
}

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
}

/// Who is calling, once the signature checks out.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub access_key_id: String,
}

pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let protocol = Protocol::of_path(parts.uri.path());
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();

    let outcome = async {
        let (body, _room) = read_body(&app.bodies, &parts.headers, body, protocol).await?;
        let caller = authenticate(&app, &parts, &body, protocol).await?;
        let result = match protocol {
            Protocol::Query => v1::dispatch(&app, &caller, &parts, &body, &request_id).await,
            Protocol::RestJson => v2::dispatch(&app, &caller, &parts, &body, &request_id).await,
        };
        result.map(|(op, r)| (op, r, caller))
    }
    .await;

    let (op, response, caller) = match outcome {
        Ok((op, r, caller)) => (op, r, Some(caller)),
        Err((op, e)) => (op, encode_error(protocol, &e, &request_id), None),
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

/// The body, once it fits in the budget, and its room there, which the
/// request holds until its response is made.
async fn read_body(
    budget: &BodyBudget,
    headers: &axum::http::HeaderMap,
    body: Body,
    protocol: Protocol,
) -> Result<(Bytes, OwnedSemaphorePermit), Failure> {
    let limit = protocol.body_limit();
    let too_large = || {
        (
            None,
            WireError::new(
                "RequestEntityTooLarge",
                413,
                format!("The request body is larger than the {limit}-byte limit of this API."),
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let room = budget.admit(declared, limit).await;
    let body = to_bytes(body, limit).await.map_err(|_| too_large())?;
    Ok((body, room))
}

async fn authenticate(
    app: &App,
    parts: &axum::http::request::Parts,
    body: &[u8],
    protocol: Protocol,
) -> Result<Caller, Failure> {
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
    let body_sha = sigv4::sha256_hex(body);
    let req = sigv4::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256: &body_sha,
    };
    let auth = sigv4::parse(&req).map_err(auth_err)?;
    let region = Region::parse(&auth.region).map_err(|_| {
        auth_err(sigv4::AuthError::IncompleteSignature(format!(
            "Credential scope region '{}' is not a valid region name.",
            auth.region
        )))
    })?;
    let domain_err = |e: Error| (None, WireError::from_domain(protocol, &e));
    let account = match app
        .credentials
        .resolve(&auth.access_key_id)
        .await
        .map_err(domain_err)?
    {
        Resolution::Verify { secret, account } => {
            let now = time::OffsetDateTime::now_utc();
            app.signing_keys
                .verify(&req, &auth, &secret, "ses", now)
                .map_err(auth_err)?;
            account
        }
        Resolution::AcceptUnverified { account } => account,
        Resolution::Unknown => return Err(auth_err(sigv4::AuthError::InvalidClientTokenId)),
    };
    Ok(Caller {
        scope: Scope::new(account, region),
        access_key_id: auth.access_key_id,
    })
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
    use std::time::Duration;
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
