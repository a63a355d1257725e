//! v2 routing: an HTTP method and raw path become a [`V2Operation`] and its
//! decoded path labels. Labels are percent-decoded; `+` stays `+`.

use crate::generated::{V2_ROUTES, V2Operation};
use percent_encoding::percent_decode_str;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub op: V2Operation,
    /// `(label name, decoded value)` in path order.
    pub labels: Vec<(&'static str, String)>,
}

impl Matched {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No route has this path.
    UnknownOperation,
    /// A label is not valid UTF-8 once decoded.
    BadPath(String),
}

enum Seg {
    Lit(&'static str),
    Label(&'static str),
}

struct Compiled {
    op: V2Operation,
    method: &'static str,
    segs: Vec<Seg>,
    literals: usize,
}

static TABLE: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    V2_ROUTES
        .iter()
        .map(|r| {
            let segs: Vec<Seg> = r
                .path
                .split('/')
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(l) => Seg::Label(l.trim_end_matches('+')),
                        None => Seg::Lit(s),
                    },
                )
                .collect();
            let literals = segs.iter().filter(|s| matches!(s, Seg::Lit(_))).count();
            Compiled {
                op: r.op,
                method: r.method,
                segs,
                literals,
            }
        })
        .collect()
});

/// Finds the operation for `method` and `raw_path` (the path as sent,
/// without the query). Where two templates match, the one with more literal
/// segments wins, so `/tenants/get` beats `/tenants/{x}`.
pub fn route(method: &str, raw_path: &str) -> Result<Matched, RouteError> {
    let parts: Vec<&str> = raw_path.split('/').collect();
    let mut best: Option<(&Compiled, usize)> = None;
    for c in TABLE.iter() {
        if c.method != method || c.segs.len() != parts.len() {
            continue;
        }
        let fits = c.segs.iter().zip(&parts).all(|(s, p)| match s {
            Seg::Lit(l) => l == p,
            Seg::Label(_) => !p.is_empty(),
        });
        if fits && best.is_none_or(|(_, n)| c.literals > n) {
            best = Some((c, c.literals));
        }
    }
    let Some((c, _)) = best else {
        return Err(RouteError::UnknownOperation);
    };
    let mut labels = vec![];
    for (s, p) in c.segs.iter().zip(&parts) {
        if let Seg::Label(name) = s {
            let v = percent_decode_str(p).decode_utf8().map_err(|_| {
                RouteError::BadPath(format!("Path label {name} is not valid UTF-8."))
            })?;
            labels.push((*name, v.into_owned()));
        }
    }
    Ok(Matched { op: c.op, labels })
}

/// A v2 query string's pairs, percent-decoded (`+` stays `+`, as SigV4
/// clients send a space as `%20`). A key or value that is not UTF-8 once
/// decoded is refused, never replaced.
pub fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, RouteError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let text = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| {
                        RouteError::BadPath(format!(
                            "Query parameter {} is not valid UTF-8 once decoded.",
                            k.chars().take(64).collect::<String>()
                        ))
                    })
            };
            Ok((text(k)?, text(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use V2Operation as Op;

    #[test]
    fn query_pairs_are_strict_utf8() {
        assert_eq!(
            query_pairs("A=a%2Bb+c&B").unwrap(),
            vec![("A".into(), "a+b+c".into()), ("B".into(), String::new())]
        );
        assert!(query_pairs("NextToken=%FF").is_err());
    }

    #[test]
    fn routes_from_the_model() {
        let cases = [
            ("POST", "/v2/email/identities", Op::CreateEmailIdentity),
            ("GET", "/v2/email/identities", Op::ListEmailIdentities),
            ("POST", "/v2/email/list-identities", Op::ListEmailIdentities),
            (
                "GET",
                "/v2/email/identities/example.com",
                Op::GetEmailIdentity,
            ),
            (
                "DELETE",
                "/v2/email/identities/example.com",
                Op::DeleteEmailIdentity,
            ),
            (
                "PUT",
                "/v2/email/identities/example.com/dkim",
                Op::PutEmailIdentityDkimAttributes,
            ),
            (
                "PUT",
                "/v2/email/identities/example.com/dkim/signing",
                Op::PutEmailIdentityDkimSigningAttributes,
            ),
            (
                "PUT",
                "/v1/email/identities/example.com/dkim/signing",
                Op::PutEmailIdentityDkimSigningAttributes,
            ),
            ("POST", "/v2/email/tags", Op::TagResource),
            ("GET", "/v2/email/tags", Op::ListTagsForResource),
            ("DELETE", "/v2/email/tags", Op::UntagResource),
            ("POST", "/v2/email/tenants/get", Op::GetTenant),
            ("POST", "/v2/email/tenants", Op::CreateTenant),
            ("GET", "/v2/email/insights/abc/", Op::GetMessageInsights),
            (
                "POST",
                "/v2/email/email-address-insights/",
                Op::GetEmailAddressInsights,
            ),
            ("POST", "/v2/email/import-jobs/list", Op::ListImportJobs),
            ("GET", "/v2/email/import-jobs/j1", Op::GetImportJob),
            ("POST", "/v2/email/outbound-emails", Op::SendEmail),
            ("GET", "/v2/email/account", Op::GetAccount),
        ];
        for (m, p, op) in cases {
            assert_eq!(route(m, p).map(|r| r.op), Ok(op), "{m} {p}");
        }
    }

    #[test]
    fn labels_are_percent_decoded_and_plus_kept() {
        let r = route("GET", "/v2/email/identities/user%2Blabel%40example.com").unwrap();
        assert_eq!(r.label("EmailIdentity"), Some("user+label@example.com"));
        let r = route("GET", "/v2/email/identities/a+b@example.com").unwrap();
        assert_eq!(r.label("EmailIdentity"), Some("a+b@example.com"));
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(
            route("GET", "/v2/email/nothing"),
            Err(RouteError::UnknownOperation)
        );
        assert_eq!(
            route("PATCH", "/v2/email/identities/x"),
            Err(RouteError::UnknownOperation)
        );
        assert_eq!(
            route("GET", "/v2/email/identities/"),
            Err(RouteError::UnknownOperation)
        );
        assert!(matches!(
            route("GET", "/v2/email/identities/%ff"),
            Err(RouteError::BadPath(_))
        ));
    }
}
