//! One request through the wire layer: find the operation (v1 and SNS
//! `Action`, v2 method and path), then decode its input, call the
//! service's trait method and encode the answer in the protocol's envelope.
//! The two halves are apart so that the HTTP layer can count the operation
//! against the API call rate between them.

use crate::generated::{SnsAction, V1Action, ses_v1, sesv2, sns};
use crate::query::QueryParams;
use crate::router::{self, Matched, RouteError};
use crate::xml;
use crate::{Protocol, WireError, WireResponse};
use sesame_model::Error;

const SES_VERSION: &str = "2010-12-01";
const SNS_VERSION: &str = "2010-03-31";
pub const SNS_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// A Query request's action and its parameters.
pub enum QueryCall {
    Ses(V1Action, QueryParams),
    Sns(SnsAction, QueryParams),
}

impl QueryCall {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ses(a, _) => a.name(),
            Self::Sns(a, _) => a.name(),
        }
    }
}

fn query_error(e: Error) -> WireError {
    WireError::from_domain(Protocol::Query, &e)
}

/// Reads a Query request (the form body, and the URL query under it) and
/// finds its action: an SES action, or an SNS one when the request is
/// signed for SNS.
pub fn route_query(body: &[u8], url_query: &str, sns: bool) -> Result<QueryCall, WireError> {
    let mut params = QueryParams::parse(body).map_err(query_error)?;
    params.merge_url_query(url_query).map_err(query_error)?;
    let Some(name) = params.action() else {
        return Err(WireError::new("MissingAction", 400, "Missing Action"));
    };
    let unknown = |version: &str| {
        WireError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {name} for version {version}"),
        )
    };
    if sns {
        let action = SnsAction::from_name(name).ok_or_else(|| unknown(SNS_VERSION))?;
        Ok(QueryCall::Sns(action, params))
    } else {
        let action = V1Action::from_name(name).ok_or_else(|| unknown(SES_VERSION))?;
        Ok(QueryCall::Ses(action, params))
    }
}

/// Runs a Query call and writes its XML response.
pub async fn serve_query<S>(
    svc: &S,
    caller: &<S as ses_v1::SesV1>::Caller,
    call: QueryCall,
    request_id: &str,
) -> Result<WireResponse, WireError>
where
    S: ses_v1::SesV1 + sns::Sns<Caller = <S as ses_v1::SesV1>::Caller>,
{
    let body = match call {
        QueryCall::Ses(action, params) => {
            let members = ses_v1::dispatch(svc, caller, action, &params)
                .await
                .map_err(query_error)?;
            xml::envelope(
                action.name(),
                xml::NAMESPACE,
                action.output(),
                request_id,
                &members,
            )
        }
        QueryCall::Sns(action, params) => {
            let members = sns::dispatch(svc, caller, action, &params)
                .await
                .map_err(|e| WireError::from_domain(Protocol::SnsQuery, &e))?;
            xml::envelope(
                action.name(),
                SNS_NAMESPACE,
                action.output(),
                request_id,
                &members,
            )
        }
    };
    Ok(WireResponse {
        status: 200,
        content_type: "text/xml",
        headers: vec![("x-amzn-requestid", request_id.to_owned())],
        body,
    })
}

/// A v2 request's operation, path labels and query string.
pub struct RestCall {
    pub matched: Matched,
    pub query: Vec<(String, String)>,
}

/// Finds a v2 request's operation from its method and path. The error
/// carries the operation's name when it was found.
pub fn route_rest(
    method: &str,
    path: &str,
    url_query: &str,
) -> Result<RestCall, (Option<&'static str>, WireError)> {
    let matched = match router::route(method, path) {
        Ok(m) => m,
        Err(RouteError::UnknownOperation) => {
            return Err((
                None,
                WireError::new(
                    "UnknownOperationException",
                    404,
                    format!("No SESv2 operation matches {method} {path}."),
                ),
            ));
        }
        Err(RouteError::BadPath(m)) => {
            return Err((None, WireError::new("BadRequestException", 400, m)));
        }
    };
    let op = Some(matched.op.name());
    let query = router::query_pairs(url_query).map_err(|e| match e {
        RouteError::BadPath(m) => (op, WireError::new("BadRequestException", 400, m)),
        RouteError::UnknownOperation => (op, WireError::new("BadRequestException", 400, "")),
    })?;
    Ok(RestCall { matched, query })
}

/// Runs a v2 call and writes its JSON response.
pub async fn serve_rest<S: sesv2::SesV2>(
    svc: &S,
    caller: &S::Caller,
    call: &RestCall,
    body: &[u8],
    request_id: &str,
) -> Result<WireResponse, WireError> {
    let body = sesv2::dispatch(svc, caller, &call.matched, &call.query, body)
        .await
        .map_err(|e| WireError::from_domain(Protocol::RestJson, &e))?;
    Ok(WireResponse {
        status: 200,
        content_type: "application/json",
        headers: vec![("x-amzn-requestid", request_id.to_owned())],
        body,
    })
}

/// The answer to a GET of `SubscribeURL`: SNS's ConfirmSubscription
/// response, as SNS's own endpoint gives it.
pub fn sns_confirmed(subscription_arn: &str, request_id: &str) -> WireResponse {
    let mut x = crate::xml::XmlOut::new();
    sns::ConfirmSubscriptionResponse {
        subscription_arn: Some(subscription_arn.to_owned()),
    }
    .to_xml(&mut x);
    sns_page(SnsAction::ConfirmSubscription, request_id, &x.finish())
}

/// The answer to a GET of `UnsubscribeURL`: SNS's Unsubscribe response.
pub fn sns_unsubscribed(request_id: &str) -> WireResponse {
    sns_page(SnsAction::Unsubscribe, request_id, &[])
}

fn sns_page(action: SnsAction, request_id: &str, members: &[u8]) -> WireResponse {
    WireResponse {
        status: 200,
        content_type: "text/xml",
        headers: vec![("x-amzn-requestid", request_id.to_owned())],
        body: xml::envelope(
            action.name(),
            SNS_NAMESPACE,
            action.output(),
            request_id,
            members,
        ),
    }
}
