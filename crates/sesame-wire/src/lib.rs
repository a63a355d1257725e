//! The wire protocols: SES v1 and SNS Query (form-encoded in, XML out) and
//! SESv2 REST-JSON. Only this crate knows XML and JSON shapes, Query keys,
//! wire error codes and HTTP statuses; it knows nothing of storage or of
//! how an operation is carried out.
//!
//! # Layout
//! - [`generated`]: every operation of the three APIs, the v2 route table,
//!   and per API (`generated::ses_v1`, `sesv2`, `sns`) its input and output
//!   types, their decoders (checking the model's constraints) and encoders,
//!   its trait and its dispatcher; generated from AWS's models by
//!   `tools/gen_wire_ops.py`, never edited by hand.
//! - [`codec`]: what the generated code calls: reading one value, each
//!   constraint in AWS's wording, [`codec::Violations`], [`codec::Path`].
//! - [`serve`]: a request to its operation, then served in its protocol.
//! - [`query`]: the v1 form, decoded strictly (`X.member.N` lists).
//! - [`xml`]: the Query response envelope and XML writer.
//! - [`router`]: v2 method + path to operation, with decoded path labels.
//! - [`error`]: domain and authentication errors encoded for each protocol.
//! - [`events`]: delivery, bounce and complaint events in SES's JSON.
//! - [`local`]: the JSON of Sesame's own `/_sesame` endpoints.

pub mod codec;
pub mod error;
pub mod events;
#[rustfmt::skip]
pub mod generated;
pub mod local;
pub mod query;
pub mod router;
pub mod serve;
pub mod xml;

pub use error::{WireError, encode_error};
pub use generated::{V1Action, V1Output, V2Operation};

/// Which of the two APIs a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// v1: `POST /` with a form body carrying `Action=`; XML responses.
    Query,
    /// SESv2: paths under `/v2/email/` (and the legacy `/v1/email/`); JSON.
    RestJson,
    /// SNS's Query API: the v1 form, signed for `sns`; known only once the
    /// caller's credential scope is (`of_path` never answers it).
    SnsQuery,
}

impl Protocol {
    /// Tells the protocol from the request path alone, before anything else is read.
    pub fn of_path(path: &str) -> Self {
        if path.starts_with("/v2/") || path.starts_with("/v1/") {
            Self::RestJson
        } else {
            Self::Query
        }
    }
    /// SES's request-size limits: 10 MB on v1, 40 MB on v2 (after base64).
    pub fn body_limit(self) -> usize {
        match self {
            Self::Query | Self::SnsQuery => 10 * 1024 * 1024,
            Self::RestJson => 40 * 1024 * 1024,
        }
    }
}

/// A response ready for the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Epoch seconds with millisecond precision, as REST-JSON timestamps are sent.
pub fn epoch_seconds(ms: sesame_model::Millis) -> serde_json::Value {
    serde_json::json!(ms as f64 / 1000.0)
}

/// ISO-8601 with milliseconds, as the Query protocol sends timestamps.
pub use sesame_model::iso8601;

/// Whether an operation counts against SES's API call rate: every one but
/// the sends, whose own limit is the account's sending rate.
pub fn counts_against_api_rate(operation: &str) -> bool {
    !matches!(
        operation,
        "SendEmail"
            | "SendRawEmail"
            | "SendTemplatedEmail"
            | "SendBulkTemplatedEmail"
            | "SendBulkEmail"
    )
}
