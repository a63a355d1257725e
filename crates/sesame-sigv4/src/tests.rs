//! AWS's published SigV4 test-suite vectors (example credentials, 2015-08-30
//! 12:36:00 UTC, region us-east-1, service `service`) and the refusals.

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn at(s: &str) -> OffsetDateTime {
    parse_amz_date(s).unwrap()
}

/// Verification with nothing kept from an earlier request.
fn verify(
    req: &Request<'_>,
    auth: &Auth,
    secret: &str,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    SigningKeys::default().verify(req, auth, secret, service, now)
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn authz(signed: &str, sig: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={sig}"
    )
}

fn check(method: &str, path: &str, query: &str, body: &[u8], sig: &str) -> Result<(), AuthError> {
    let headers = h(&[
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", &authz("host;x-amz-date", sig)),
    ]);
    let body_sha = sha256_hex(body);
    let req = Request {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
        body_sha256: &body_sha,
    };
    let auth = parse(&req)?;
    verify(&req, &auth, SECRET, "service", at("20150830T123600Z"))
}

#[test]
fn get_vanilla() {
    check(
        "GET",
        "/",
        "",
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    )
    .unwrap();
}

#[test]
fn get_vanilla_string_to_sign() {
    let headers = h(&[
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
    ]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let auth = build(
        &format!("{AKID}/20150830/us-east-1/service/aws4_request"),
        "host;x-amz-date",
        &"0".repeat(64),
        "20150830T123600Z".into(),
        None,
    )
    .unwrap();
    let creq = canonical_request(&req, &auth, EMPTY_SHA256);
    assert_eq!(
        creq,
        format!(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
        )
    );
    assert_eq!(
        string_to_sign("20150830T123600Z", &auth.scope(), &creq),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
}

#[test]
fn get_vanilla_query_order_key_case() {
    check(
        "GET",
        "/",
        "Param2=value2&Param1=value1",
        b"",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    )
    .unwrap();
}

#[test]
fn post_vanilla() {
    check(
        "POST",
        "/",
        "",
        b"",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    )
    .unwrap();
}

#[test]
fn double_encodes_the_path() {
    let headers = h(&[("host", "h"), ("x-amz-date", "20150830T123600Z")]);
    let req = Request {
        method: "GET",
        raw_path: "/v2/email/identities/user%2Blabel%40example.com",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let auth = build(
        &format!("{AKID}/20150830/us-east-1/ses/aws4_request"),
        "host;x-amz-date",
        &"0".repeat(64),
        "20150830T123600Z".into(),
        None,
    )
    .unwrap();
    let creq = canonical_request(&req, &auth, EMPTY_SHA256);
    assert!(creq.starts_with("GET\n/v2/email/identities/user%252Blabel%2540example.com\n"));
}

#[test]
fn repeated_headers_join_and_spaces_fold() {
    let headers = h(&[
        ("host", "h"),
        ("x-amz-date", "20150830T123600Z"),
        ("my-header", "  a   b "),
        ("My-Header", "c"),
    ]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let auth = build(
        &format!("{AKID}/20150830/us-east-1/ses/aws4_request"),
        "host;my-header;x-amz-date",
        &"0".repeat(64),
        "20150830T123600Z".into(),
        None,
    )
    .unwrap();
    assert!(canonical_request(&req, &auth, EMPTY_SHA256).contains("\nmy-header:a b,c\n"));
}

#[test]
fn tampered_signature_is_refused() {
    let e = check(
        "GET",
        "/",
        "",
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30",
    )
    .unwrap_err();
    assert_eq!(e.code(), "SignatureDoesNotMatch");
    assert_eq!(e.status(), 403);
    assert!(
        e.message()
            .starts_with("The request signature we calculated does not match")
    );
}

#[test]
fn tampered_body_is_refused() {
    let e = check(
        "POST",
        "/",
        "",
        b"Action=x",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    )
    .unwrap_err();
    assert_eq!(e.code(), "SignatureDoesNotMatch");
}

#[test]
fn missing_authentication() {
    let headers = h(&[("host", "h")]);
    let req = Request {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let e = parse(&req).unwrap_err();
    assert_eq!(e, AuthError::MissingAuthenticationToken);
    assert_eq!(e.status(), 403);
}

#[test]
fn incomplete_signature() {
    for a in [
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
        "AWS3 Credential=x",
    ] {
        let headers = h(&[
            ("host", "h"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", a),
        ]);
        let req = Request {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body_sha256: EMPTY_SHA256,
        };
        let e = parse(&req).unwrap_err();
        assert_eq!(e.code(), "IncompleteSignature", "{a}: {e:?}");
        assert_eq!(e.status(), 400);
    }
    // No date at all.
    let headers = h(&[
        ("host", "h"),
        ("authorization", &authz("host", &"a".repeat(64))),
    ]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let e = parse(&req).unwrap_err();
    assert!(e.message().contains("'X-Amz-Date' or a 'Date' header"));
}

#[test]
fn request_expired_both_ways() {
    let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let headers = h(&[
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", &authz("host;x-amz-date", sig)),
    ]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let auth = parse(&req).unwrap();
    // 15 minutes either way is still fine.
    verify(&req, &auth, SECRET, "service", at("20150830T125100Z")).unwrap();
    verify(&req, &auth, SECRET, "service", at("20150830T122100Z")).unwrap();
    let late = verify(&req, &auth, SECRET, "service", at("20150830T125101Z")).unwrap_err();
    assert_eq!(late.code(), "RequestExpired");
    assert_eq!(
        late.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)"
    );
    let early = verify(&req, &auth, SECRET, "service", at("20150830T122059Z")).unwrap_err();
    assert_eq!(early.code(), "RequestExpired");
}

#[test]
fn wrong_service_and_scope_date() {
    let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let headers = h(&[
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", &authz("host;x-amz-date", sig)),
    ]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let auth = parse(&req).unwrap();
    let e = verify(&req, &auth, SECRET, "ses", at("20150830T123600Z")).unwrap_err();
    assert_eq!(e.code(), "SignatureDoesNotMatch");
    assert!(e.message().contains("scoped to correct service: 'ses'"));
    let mut other = auth.clone();
    other.scope_date = "20150829".into();
    let e = verify(&req, &other, SECRET, "service", at("20150830T123600Z")).unwrap_err();
    assert!(
        e.message()
            .starts_with("Date in Credential scope does not match")
    );
}

#[test]
fn presigned_query() {
    // Sign get-vanilla as a presigned URL with our own canonicalisation and
    // check verification, expiry and that the signature itself is excluded.
    let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host";
    let headers = h(&[("Host", "example.amazonaws.com")]);
    let mut req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: q,
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let unsigned = parse_presigned(&{
        let mut d = decode_query(q);
        d.push(("X-Amz-Signature".into(), "0".repeat(64)));
        d
    })
    .unwrap();
    let sig = signature(&req, &unsigned, SECRET, "UNSIGNED-PAYLOAD");
    let full = format!("{q}&X-Amz-Signature={sig}");
    req.raw_query = &full;
    let auth = parse(&req).unwrap();
    assert_eq!(auth.presigned_expires, Some(60));
    let keys = SigningKeys::default();
    keys.verify(&req, &auth, SECRET, "service", at("20150830T123700Z"))
        .unwrap();
    assert_eq!(keys.len(), 1, "the derived key is kept");
    let e = keys
        .verify(&req, &auth, SECRET, "service", at("20150830T123701Z"))
        .unwrap_err();
    assert_eq!(e.code(), "RequestExpired");
    // The kept key was derived from SECRET: it does not serve another
    // secret for the same access key and scope.
    let e = keys
        .verify(&req, &auth, "other", "service", at("20150830T123600Z"))
        .unwrap_err();
    assert_eq!(e.code(), "SignatureDoesNotMatch");
    keys.verify(&req, &auth, SECRET, "service", at("20150830T123600Z"))
        .unwrap();
}

#[test]
fn normalizes_dot_segments() {
    assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
    assert_eq!(normalize_path("/a/b/"), "/a/b/");
    assert_eq!(normalize_path("/.."), "/");
}

#[test]
fn kept_signing_keys_are_bounded() {
    let keys = SigningKeys::default();
    for i in 0..MAX_SIGNING_KEYS + 10 {
        let auth = Auth {
            access_key_id: format!("AKID{i}"),
            scope_date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            signed_headers: vec![],
            signature: String::new(),
            amz_date: "20150830T123600Z".into(),
            presigned_expires: None,
        };
        keys.key(SECRET, &auth);
        assert!(keys.len() <= MAX_SIGNING_KEYS);
    }
    assert_eq!(keys.len(), 10, "emptied once full, then filled again");
}

/// The signature binds the body: the canonical request always holds the
/// hash of the bytes received, whatever X-Amz-Content-SHA256 says.
#[test]
fn the_signature_binds_the_body() {
    let signed_body = b"Action=ListIdentities&Version=2010-12-01";
    let other_body = b"Action=SendEmail&Version=2010-12-01&Source=a%40b.c";
    let signed_sha = sha256_hex(signed_body);
    let date = "20150830T123600Z";
    let sign = |headers: &[(String, String)], body_sha: &str, payload: &str| {
        let req = Request {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers,
            body_sha256: body_sha,
        };
        let mut auth = Auth {
            access_key_id: "AKIDEXAMPLE".into(),
            scope_date: "20150830".into(),
            region: "us-east-1".into(),
            service: "ses".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: String::new(),
            amz_date: date.into(),
            presigned_expires: None,
        };
        auth.signature = signature(&req, &auth, SECRET, payload);
        auth
    };
    let plain = h(&[
        ("Host", "email.us-east-1.amazonaws.com"),
        ("X-Amz-Date", date),
    ]);
    let auth = sign(&plain, &signed_sha, &signed_sha);
    let check = |headers: &[(String, String)], body: &[u8]| {
        let sha = sha256_hex(body);
        let req = Request {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers,
            body_sha256: &sha,
        };
        verify(&req, &auth, SECRET, "ses", at(date))
    };
    check(&plain, signed_body).unwrap();
    assert_eq!(
        check(&plain, other_body).unwrap_err().code(),
        "SignatureDoesNotMatch"
    );
    // The original body's hash in the header does not make another body pass.
    let claimed = h(&[
        ("Host", "email.us-east-1.amazonaws.com"),
        ("X-Amz-Date", date),
        ("X-Amz-Content-SHA256", &signed_sha),
    ]);
    let e = check(&claimed, other_body).unwrap_err();
    assert!(
        e.message().contains("x-amz-content-sha256"),
        "{}",
        e.message()
    );
    check(&claimed, signed_body).unwrap();
    // UNSIGNED-PAYLOAD is refused, with a body or without.
    let unsigned = h(&[
        ("Host", "email.us-east-1.amazonaws.com"),
        ("X-Amz-Date", date),
        ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"),
    ]);
    let auth_unsigned = sign(&unsigned, EMPTY_SHA256, "UNSIGNED-PAYLOAD");
    for body in [&b""[..], other_body] {
        let sha = sha256_hex(body);
        let req = Request {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &unsigned,
            body_sha256: &sha,
        };
        let e = verify(&req, &auth_unsigned, SECRET, "ses", at(date)).unwrap_err();
        assert!(e.message().contains("UNSIGNED-PAYLOAD"));
    }
}

/// SES's SMTP password, version 4: the value AWS's script in the SES guide
/// (its `calculate_key`, run in Python) gives for the example secret in
/// us-east-1.
#[test]
fn smtp_password_v4() {
    let p = smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1");
    assert_eq!(p, "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9");
    assert!(smtp_password_matches(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "us-east-1",
        &p
    ));
    assert!(!smtp_password_matches(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "eu-west-1",
        &p
    ));
}
