//! Errors on the wire. A [`WireError`] carries the code, HTTP status and
//! message one protocol sends; [`WireError::from_domain`] decides them for a
//! domain error; the HTTP layer builds one from a refused signature.

use crate::xml::XmlOut;
use crate::{Protocol, WireResponse};
use sesame_model::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: String,
    pub status: u16,
    pub message: String,
}

impl WireError {
    pub fn new(code: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            status,
            message: message.into(),
        }
    }

    /// The code and status each protocol uses for a domain error.
    pub fn from_domain(p: Protocol, e: &Error) -> Self {
        let (code, status) = match (p, e.kind) {
            (Protocol::Query, ErrorKind::InvalidParameter) => ("InvalidParameterValue", 400),
            (Protocol::Query, ErrorKind::Validation) => ("ValidationError", 400),
            (Protocol::Query, ErrorKind::AlreadyExists) => ("AlreadyExists", 400),
            (Protocol::Query, ErrorKind::NotFound) => ("InvalidParameterValue", 400),
            (Protocol::Query, ErrorKind::LimitExceeded) => ("LimitExceeded", 400),
            (Protocol::Query, ErrorKind::MessageRejected) => ("MessageRejected", 400),
            (Protocol::Query, ErrorKind::SendingPaused) => ("AccountSendingPausedException", 400),
            (Protocol::Query, ErrorKind::MailFromDomainNotVerified) => {
                ("MailFromDomainNotVerifiedException", 400)
            }
            (Protocol::Query, ErrorKind::DailyQuotaExceeded | ErrorKind::RateExceeded) => {
                ("Throttling", 400)
            }
            (Protocol::Query, ErrorKind::Conflict) => ("InvalidParameterValue", 400),
            (Protocol::Query, ErrorKind::ConfigurationSetDoesNotExist) => {
                ("ConfigurationSetDoesNotExist", 400)
            }
            (Protocol::Query, ErrorKind::TemplateDoesNotExist) => ("TemplateDoesNotExist", 400),
            (Protocol::Query, ErrorKind::ConfigurationSetAlreadyExists) => {
                ("ConfigurationSetAlreadyExists", 400)
            }
            (Protocol::Query, ErrorKind::InvalidConfigurationSet) => {
                ("InvalidConfigurationSet", 400)
            }
            (Protocol::Query, ErrorKind::ConfigurationSetSendingPaused) => {
                ("ConfigurationSetSendingPausedException", 400)
            }
            (Protocol::Query, ErrorKind::MissingRenderingAttribute) => {
                ("MissingRenderingAttribute", 400)
            }
            (Protocol::Query, ErrorKind::InvalidRenderingParameter) => {
                ("InvalidRenderingParameter", 400)
            }
            (Protocol::Query, ErrorKind::InvalidTemplate) => ("InvalidTemplate", 400),
            (Protocol::Query, ErrorKind::CustomVerificationTemplateAlreadyExists) => {
                ("CustomVerificationEmailTemplateAlreadyExists", 400)
            }
            (Protocol::Query, ErrorKind::CustomVerificationTemplateDoesNotExist) => {
                ("CustomVerificationEmailTemplateDoesNotExist", 400)
            }
            (Protocol::Query, ErrorKind::CustomVerificationInvalidContent) => {
                ("CustomVerificationEmailInvalidContent", 400)
            }
            (Protocol::Query, ErrorKind::FromEmailAddressNotVerified) => {
                ("FromEmailAddressNotVerified", 400)
            }
            (Protocol::Query, ErrorKind::ProductionAccessNotGranted) => {
                ("ProductionAccessNotGranted", 400)
            }
            (Protocol::Query, ErrorKind::ConcurrentModification) => ("InternalFailure", 500),
            (Protocol::Query, ErrorKind::Internal) => ("InternalFailure", 500),
            (Protocol::RestJson, ErrorKind::InvalidParameter | ErrorKind::Validation) => {
                ("BadRequestException", 400)
            }
            (Protocol::RestJson, ErrorKind::AlreadyExists) => ("AlreadyExistsException", 400),
            (Protocol::RestJson, ErrorKind::NotFound) => ("NotFoundException", 404),
            (Protocol::RestJson, ErrorKind::LimitExceeded) => ("LimitExceededException", 400),
            (Protocol::RestJson, ErrorKind::MessageRejected) => ("MessageRejected", 400),
            (Protocol::RestJson, ErrorKind::SendingPaused) => ("SendingPausedException", 400),
            (Protocol::RestJson, ErrorKind::MailFromDomainNotVerified) => {
                ("MailFromDomainNotVerifiedException", 400)
            }
            (Protocol::RestJson, ErrorKind::DailyQuotaExceeded) => ("LimitExceededException", 400),
            (Protocol::RestJson, ErrorKind::RateExceeded) => ("TooManyRequestsException", 429),
            (Protocol::RestJson, ErrorKind::Conflict) => ("ConflictException", 409),
            (
                Protocol::RestJson,
                ErrorKind::ConfigurationSetDoesNotExist | ErrorKind::TemplateDoesNotExist,
            ) => ("NotFoundException", 404),
            (
                Protocol::RestJson,
                ErrorKind::MissingRenderingAttribute
                | ErrorKind::InvalidRenderingParameter
                | ErrorKind::InvalidTemplate,
            ) => ("BadRequestException", 400),
            (
                Protocol::RestJson,
                ErrorKind::CustomVerificationTemplateAlreadyExists
                | ErrorKind::ConfigurationSetAlreadyExists,
            ) => ("AlreadyExistsException", 400),
            (Protocol::RestJson, ErrorKind::InvalidConfigurationSet) => {
                ("BadRequestException", 400)
            }
            (Protocol::RestJson, ErrorKind::ConfigurationSetSendingPaused) => {
                ("SendingPausedException", 400)
            }
            // SESv2 has no exceptions of its own for these: a missing template
            // or an unverified From address is NotFound, bad content and the
            // sandbox are BadRequest.
            (
                Protocol::RestJson,
                ErrorKind::CustomVerificationTemplateDoesNotExist
                | ErrorKind::FromEmailAddressNotVerified,
            ) => ("NotFoundException", 404),
            (
                Protocol::RestJson,
                ErrorKind::CustomVerificationInvalidContent | ErrorKind::ProductionAccessNotGranted,
            ) => ("BadRequestException", 400),
            (Protocol::RestJson, ErrorKind::ConcurrentModification) => {
                ("ConcurrentModificationException", 500)
            }
            (Protocol::RestJson, ErrorKind::Internal) => ("InternalServiceErrorException", 500),
            (Protocol::Query, ErrorKind::EventDestinationAlreadyExists) => {
                ("EventDestinationAlreadyExists", 400)
            }
            (Protocol::Query, ErrorKind::EventDestinationDoesNotExist) => {
                ("EventDestinationDoesNotExist", 400)
            }
            (Protocol::Query, ErrorKind::InvalidSnsDestination) => ("InvalidSNSDestination", 400),
            (Protocol::RestJson, ErrorKind::EventDestinationAlreadyExists) => {
                ("AlreadyExistsException", 400)
            }
            (Protocol::RestJson, ErrorKind::EventDestinationDoesNotExist) => {
                ("NotFoundException", 404)
            }
            (Protocol::RestJson, ErrorKind::InvalidSnsDestination) => ("BadRequestException", 400),
            // SNS's own codes; a kind SNS never meets is a parameter error.
            (_, ErrorKind::NotImplemented) => ("NotImplemented", 501),
            (Protocol::SnsQuery, ErrorKind::SnsNotFound | ErrorKind::NotFound) => ("NotFound", 404),
            (Protocol::SnsQuery, ErrorKind::SnsAuthorization) => ("AuthorizationError", 403),
            (Protocol::SnsQuery, ErrorKind::LimitExceeded) => {
                if e.message.starts_with("Topic") {
                    ("TopicLimitExceeded", 403)
                } else {
                    ("SubscriptionLimitExceeded", 403)
                }
            }
            (Protocol::SnsQuery, ErrorKind::RateExceeded) => ("Throttled", 400),
            (Protocol::SnsQuery, ErrorKind::Internal | ErrorKind::ConcurrentModification) => {
                ("InternalError", 500)
            }
            (Protocol::SnsQuery, _) => ("InvalidParameter", 400),
            (
                Protocol::Query | Protocol::RestJson,
                ErrorKind::SnsNotFound
                | ErrorKind::SnsInvalidParameter
                | ErrorKind::SnsAuthorization,
            ) => ("InvalidParameterValue", 400),
        };
        Self::new(code, status, e.message.clone())
    }
}

/// Encodes an error in the request's protocol.
pub fn encode_error(p: Protocol, e: &WireError, request_id: &str) -> WireResponse {
    match p {
        Protocol::Query | Protocol::SnsQuery => {
            let mut x = XmlOut::new();
            if p == Protocol::SnsQuery {
                x.open_with_namespace("ErrorResponse", crate::serve::SNS_NAMESPACE);
            } else {
                x.open_ns("ErrorResponse");
            }
            x.open("Error");
            x.text(
                "Type",
                if e.status >= 500 {
                    "Receiver"
                } else {
                    "Sender"
                },
            );
            x.text("Code", &e.code);
            x.text("Message", &e.message);
            x.close("Error");
            x.text("RequestId", request_id);
            x.close("ErrorResponse");
            WireResponse {
                status: e.status,
                content_type: "text/xml",
                headers: vec![("x-amzn-requestid", request_id.to_owned())],
                body: x.finish(),
            }
        }
        Protocol::RestJson => WireResponse {
            status: e.status,
            content_type: "application/json",
            headers: vec![
                ("x-amzn-requestid", request_id.to_owned()),
                ("x-amzn-errortype", e.code.clone()),
            ],
            body: serde_json::to_vec(&serde_json::json!({
                "__type": e.code,
                "message": e.message,
            }))
            .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_error_envelope() {
        let e = WireError::from_domain(
            Protocol::Query,
            &Error::new(ErrorKind::AlreadyExists, "x <y> & z"),
        );
        let r = encode_error(Protocol::Query, &e, "rid");
        assert_eq!(r.status, 400);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><Error><Type>Sender</Type><Code>AlreadyExists</Code><Message>x &lt;y&gt; &amp; z</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn v2_error_statuses() {
        let nf = WireError::from_domain(Protocol::RestJson, &Error::not_found("gone"));
        assert_eq!((nf.code.as_str(), nf.status), ("NotFoundException", 404));
        let r = encode_error(Protocol::RestJson, &nf, "rid");
        assert!(
            r.headers
                .contains(&("x-amzn-errortype", "NotFoundException".into()))
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["message"], "gone");
        let internal = WireError::from_domain(Protocol::Query, &Error::internal("x"));
        let r = encode_error(Protocol::Query, &internal, "rid");
        assert!(
            String::from_utf8(r.body)
                .unwrap()
                .contains("<Type>Receiver</Type>")
        );
    }
}
