//! Server-side verification of AWS Signature Version 4, header form and
//! presigned query form.
//!
//! The verifier rebuilds the canonical request from exactly the headers the
//! client listed in `SignedHeaders` (botocore, the AWS CLI and the JS SDK v3
//! each sign a different set), so no client's choice is second-guessed.
//!
//! Use: [`parse`] the request's authentication parameters, look the access
//! key up (the caller owns the credential store), then [`SigningKeys::verify`] with the
//! secret. Parsing never needs the secret; verification never does I/O.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use time::{OffsetDateTime, PrimitiveDateTime, macros::format_description};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's, either way.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Why a request was refused, with the AWS code each maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header and no presigned query.
    MissingAuthenticationToken,
    /// The Authorization header or query is malformed; the message says how.
    IncompleteSignature(String),
    /// The access key is not known.
    InvalidClientTokenId,
    /// The signature (or the scope) does not match; the message says which.
    SignatureDoesNotMatch(String),
    /// The request's time is outside the allowed window.
    RequestExpired(String),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
            Self::RequestExpired(_) => "RequestExpired",
        }
    }
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingAuthenticationToken
            | Self::InvalidClientTokenId
            | Self::SignatureDoesNotMatch(_) => 403,
            Self::IncompleteSignature(_) | Self::RequestExpired(_) => 400,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Self::MissingAuthenticationToken => "Request is missing Authentication Token".into(),
            Self::InvalidClientTokenId => {
                "The security token included in the request is invalid.".into()
            }
            Self::IncompleteSignature(m)
            | Self::SignatureDoesNotMatch(m)
            | Self::RequestExpired(m) => m.clone(),
        }
    }
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as sent, without `?`.
    pub raw_query: &'a str,
    /// Header names (any case) and values, in arrival order; repeats allowed.
    pub headers: &'a [(String, String)],
    /// SHA-256 of the body, lower-case hex.
    pub body_sha256: &'a str,
}

impl Request<'_> {
    fn header_values<'b>(&'b self, name: &'b str) -> impl Iterator<Item = &'b str> + 'b {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The authentication parameters of a request, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub access_key_id: String,
    /// `YYYYMMDD` from the credential scope.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// Presigned requests carry their lifetime in seconds.
    pub presigned_expires: Option<i64>,
}

impl Auth {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.region, self.service
        )
    }
}

/// Extracts the authentication parameters from the Authorization header or,
/// failing that, from a presigned query string.
pub fn parse(req: &Request<'_>) -> Result<Auth, AuthError> {
    if let Some(h) = req.header("authorization") {
        return parse_header(req, h);
    }
    let query = decode_query(req.raw_query);
    if query
        .iter()
        .any(|(k, _)| k == "X-Amz-Algorithm" || k == "X-Amz-Signature")
    {
        return parse_presigned(&query);
    }
    Err(AuthError::MissingAuthenticationToken)
}

fn parse_header(req: &Request<'_>, h: &str) -> Result<Auth, AuthError> {
    let h = h.trim();
    let Some(rest) = h.strip_prefix(ALGORITHM) else {
        let alg = h.split_whitespace().next().unwrap_or("");
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{alg}'. Only {ALGORITHM} is supported."
        )));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    }
    let amz_date = req.header("x-amz-date").map(str::to_owned);
    let mut missing = vec![];
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if amz_date.is_none() && req.header("date").is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Authorization={ALGORITHM}",
            missing.join(" ")
        )));
    }
    let amz_date = match amz_date {
        Some(d) => d,
        None => http_date_to_amz(req.header("date").unwrap_or_default())?,
    };
    build(
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default(),
        amz_date,
        None,
    )
}

fn parse_presigned(query: &[(String, String)]) -> Result<Auth, AuthError> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut missing = vec![];
    for k in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if get(k).is_none() {
            missing.push(format!("AWS query-string parameters must include '{k}'."));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    }
    let alg = get("X-Amz-Algorithm").unwrap_or_default();
    if alg != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{alg}'. Only {ALGORITHM} is supported."
        )));
    }
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=7 * 24 * 3600).contains(&n) => Some(n),
            _ => {
                return Err(AuthError::IncompleteSignature(format!(
                    "X-Amz-Expires must be an integer from 1 to 604800 seconds, not '{v}'."
                )));
            }
        },
    };
    build(
        get("X-Amz-Credential").unwrap_or_default(),
        get("X-Amz-SignedHeaders").unwrap_or_default(),
        get("X-Amz-Signature").unwrap_or_default(),
        get("X-Amz-Date").unwrap_or_default().to_owned(),
        Some(expires.unwrap_or(MAX_SKEW_SECS)),
    )
}

fn build(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: String,
    presigned_expires: Option<i64>,
) -> Result<Auth, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts.iter().any(|p| p.is_empty()) {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    }
    if parts[4] != "aws4_request" {
        return Err(AuthError::SignatureDoesNotMatch(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            parts[4]
        )));
    }
    let signed_headers: Vec<String> = signed
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if signed_headers.is_empty() || !signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::IncompleteSignature(
            "The signature must be 64 hexadecimal characters.".into(),
        ));
    }
    Ok(Auth {
        access_key_id: parts[0].to_owned(),
        scope_date: parts[1].to_owned(),
        region: parts[2].to_owned(),
        service: parts[3].to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date,
        presigned_expires,
    })
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|p| p.assume_utc())
}

fn http_date_to_amz(s: &str) -> Result<String, AuthError> {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = PrimitiveDateTime::parse(s, fmt)
        .map_err(|_| {
            AuthError::IncompleteSignature(format!("Date header '{s}' is not a valid HTTP date."))
        })?
        .assume_utc();
    Ok(amz(t))
}

fn amz(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(fmt).unwrap_or_default()
}

fn check_time(auth: &Auth, t: OffsetDateTime, now: OffsetDateTime) -> Result<(), AuthError> {
    let skew = time::Duration::seconds(MAX_SKEW_SECS);
    if t > now + skew {
        return Err(AuthError::RequestExpired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            auth.amz_date,
            amz(now + skew),
            amz(now)
        )));
    }
    match auth.presigned_expires {
        Some(expires) if now > t + time::Duration::seconds(expires) => {
            Err(AuthError::RequestExpired(format!(
                "Request has expired. X-Amz-Date {} plus X-Amz-Expires {expires}s is before the server time {}.",
                auth.amz_date,
                amz(now)
            )))
        }
        None if t < now - skew => Err(AuthError::RequestExpired(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            auth.amz_date,
            amz(now - skew),
            amz(now)
        ))),
        _ => Ok(()),
    }
}

/// The payload hashes a signature may cover. The canonical request always
/// holds the SHA-256 of the bytes received (`Request::body_sha256`), so a
/// signature binds the body:
/// - a present `X-Amz-Content-SHA256` must equal that hash;
/// - `UNSIGNED-PAYLOAD` is refused in the header; a presigned URL may sign
///   it only for a request with no body, so nothing goes unsigned.
fn payload_hashes<'a>(req: &Request<'a>, auth: &Auth) -> Result<Vec<&'a str>, AuthError> {
    let unsigned = "UNSIGNED-PAYLOAD";
    match req.header("x-amz-content-sha256") {
        Some(v) if v.eq_ignore_ascii_case(unsigned) => Err(AuthError::SignatureDoesNotMatch(
            "UNSIGNED-PAYLOAD is not accepted by this service: the signature must cover the SHA-256 of the body.".into(),
        )),
        Some(v) if !v.eq_ignore_ascii_case(req.body_sha256) => Err(
            AuthError::SignatureDoesNotMatch(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ),
        ),
        _ if auth.presigned_expires.is_some() && req.body_sha256 == EMPTY_SHA256 => {
            Ok(vec![req.body_sha256, unsigned])
        }
        _ => Ok(vec![req.body_sha256]),
    }
}

/// The hex signature the client should have sent.
pub fn signature(req: &Request<'_>, auth: &Auth, secret: &str, payload_hash: &str) -> String {
    let key = signing_key(secret, &auth.scope_date, &auth.region, &auth.service);
    signature_with(req, auth, &key, payload_hash)
}

fn signature_with(req: &Request<'_>, auth: &Auth, key: &Key, payload_hash: &str) -> String {
    let creq = canonical_request(req, auth, payload_hash);
    let sts = string_to_sign(&auth.amz_date, &auth.scope(), &creq);
    hex::encode(hmac(key, sts.as_bytes()))
}

/// A derived signing key: an HMAC-SHA256 output.
pub type Key = [u8; 32];

/// How many access keys [`SigningKeys`] holds before it starts over.
const MAX_SIGNING_KEYS: usize = 4096;

/// Signing keys already derived. A key serves one access key's requests for
/// a day in one region and service, and deriving it takes four HMACs, so a
/// verifier keeps, per access key, the one it derived last. A request for
/// another scope (a client alternating regions) derives its key again, as
/// without this. A kept key also serves only the secret it was derived
/// from. Bounded: at `MAX_SIGNING_KEYS` access keys it is emptied.
#[derive(Default)]
pub struct SigningKeys {
    keys: Mutex<HashMap<String, Kept>>,
}

/// One access key's last signing key, with what it was derived from.
struct Kept {
    scope_date: String,
    region: String,
    service: String,
    secret: String,
    key: Key,
}

impl Kept {
    fn serves(&self, secret: &str, auth: &Auth) -> bool {
        self.scope_date == auth.scope_date
            && self.region == auth.region
            && self.service == auth.service
            && self.secret == secret
    }
}

impl SigningKeys {
    /// Checks the request's time and signature against `secret`. `service`
    /// is the signing name the server answers to (`ses`). The signing key
    /// is derived only once the time and scope have passed, and only when
    /// the access key's kept one does not serve this request.
    pub fn verify(
        &self,
        req: &Request<'_>,
        auth: &Auth,
        secret: &str,
        service: &str,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let Some(t) = parse_amz_date(&auth.amz_date) else {
            return Err(AuthError::IncompleteSignature(format!(
                "X-Amz-Date '{}' must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z'.",
                auth.amz_date
            )));
        };
        check_time(auth, t, now)?;
        if auth.service != service {
            return Err(AuthError::SignatureDoesNotMatch(format!(
                "Credential should be scoped to correct service: '{service}'. "
            )));
        }
        if auth.scope_date != auth.amz_date[..8] {
            return Err(AuthError::SignatureDoesNotMatch(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                auth.scope_date,
                &auth.amz_date[..8],
                auth.amz_date
            )));
        }
        for h in &auth.signed_headers {
            if req.header(h).is_none() {
                return Err(AuthError::SignatureDoesNotMatch(format!(
                    "The request signed header '{h}' but did not send it."
                )));
            }
        }
        let payloads = payload_hashes(req, auth)?;
        let key = self.key(secret, auth);
        for payload in payloads {
            let expected = signature_with(req, auth, &key, payload);
            if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
                return Ok(());
            }
        }
        Err(AuthError::SignatureDoesNotMatch(MISMATCH.into()))
    }

    fn key(&self, secret: &str, auth: &Auth) -> Key {
        if let Ok(keys) = self.keys.lock()
            && let Some(kept) = keys.get(auth.access_key_id.as_str())
            && kept.serves(secret, auth)
        {
            return kept.key;
        }
        let key = signing_key(secret, &auth.scope_date, &auth.region, &auth.service);
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= MAX_SIGNING_KEYS && !keys.contains_key(auth.access_key_id.as_str()) {
                keys.clear();
            }
            let kept = Kept {
                scope_date: auth.scope_date.clone(),
                region: auth.region.clone(),
                service: auth.service.clone(),
                secret: secret.to_owned(),
                key,
            };
            keys.insert(auth.access_key_id.clone(), kept);
        }
        key
    }

    /// How many access keys have a key kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.lock().map_or(0, |k| k.len())
    }
}

/// Characters SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// The canonical request, as AWS defines it for every service but S3: the
/// path as sent is URI-encoded once more (so `%40` becomes `%2540`).
pub fn canonical_request(req: &Request<'_>, auth: &Auth, payload_hash: &str) -> String {
    let path = if req.raw_path.is_empty() {
        "/".to_owned()
    } else {
        normalize_path(req.raw_path)
    };
    let uri = utf8_percent_encode(&path, PATH).to_string();
    let mut query: Vec<(String, String)> = decode_query(req.raw_query)
        .into_iter()
        .filter(|(k, _)| !(auth.presigned_expires.is_some() && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, STRICT).to_string(),
                utf8_percent_encode(&v, STRICT).to_string(),
            )
        })
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req.header_values(name).map(canonical_value).collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    format!(
        "{}\n{uri}\n{query}\n{headers}\n{}\n{payload_hash}",
        req.method,
        auth.signed_headers.join(";")
    )
}

/// Removes `.` and `..` segments, as botocore's `normalize_url_path` does.
fn normalize_path(path: &str) -> String {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return path.to_owned();
    }
    let mut out: Vec<&str> = vec![];
    for seg in path.split('/') {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = out.join("/");
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    if (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..")) && !p.ends_with('/') {
        p.push('/');
    }
    p
}

fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes a raw query string into pairs. `+` stays `+` here: SigV4 clients
/// encode a space as `%20`, and a literal `+` must keep its meaning.
pub fn decode_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Key {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// SES's SMTP password (version 4) for an access key's secret in a region:
/// the SigV4 signing key for the fixed date `11111111`, service `ses`,
/// keyed over `SendRawEmail`, after a version byte 4, in base64.
pub fn smtp_password(secret: &str, region: &str) -> String {
    use base64::Engine;
    let key = signing_key(secret, "11111111", region, "ses");
    let mut out = vec![0x04];
    out.extend_from_slice(&hmac(&key, b"SendRawEmail"));
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Whether `given` is the SMTP password of `secret` in `region`, compared
/// in constant time.
pub fn smtp_password_matches(secret: &str, region: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(
        smtp_password(secret, region)
            .as_bytes()
            .ct_eq(given.as_bytes()),
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Key {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests;
