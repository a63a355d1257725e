//! Domain types and rules of Sesame: accounts, regions, identities, tags and
//! the errors SES defines for them.
//!
//! # Layout
//! - [`access_key`]: the credentials requests are signed with.
//! - [`account`]: an account's sandbox state, quotas and production-access review.
//! - [`address`]: mailboxes as the send operations take them, SES's address
//!   errors, the mailbox simulator, and which identities cover an address.
//! - [`custom_verification`]: custom verification email templates and
//!   SES's limits on them.
//! - [`delivery`]: the outbound queue's records, per-recipient outcomes,
//!   the retry schedule, the mailbox simulator, and delivery events.
//! - [`message`]: accepted messages, quota checks and rejections.
//! - [`scope`]: account IDs, regions and the (account, region) scope every
//!   resource lives in.
//! - [`identity`]: identity names (email addresses and domains), parsed once at
//!   the edge, and the identity record with its verification and DKIM state.
//! - [`sns`]: Sesame's SNS: topics, subscriptions, SNS's naming rules and
//!   errors, and the string a notification's signature covers.
//! - [`suppression`]: the account-level suppression list and which reasons
//!   it keeps.
//! - [`tags`]: resource tags and SES's rules for them.
//! - [`template`]: email templates and their limits.
//! - [`verification`]: DNS verification without the DNS: the records
//!   checked, SES's statuses and timings, diagnoses of publishing mistakes.
//! - [`error`]: the domain error, which the wire layer turns into each
//!   protocol's code and status.
//!
//! Nothing here performs I/O or knows about SQL, HTTP, XML or JSON.

pub mod access_key;
pub mod account;
pub mod address;
pub mod audit;
pub mod configuration_set;
pub mod custom_verification;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod message;
pub mod quota;
pub mod scope;
pub mod sns;
pub mod suppression;
pub mod tags;
pub mod template;
pub mod verification;

pub use access_key::AccessKey;
pub use account::{Account, AccountDetails, Review, ReviewStatus};
pub use address::Mailbox;
pub use configuration_set::ConfigurationSet;
pub use custom_verification::CustomVerificationTemplate;
pub use delivery::{
    AttemptReport, DeliveryState, DeliveryUpdate, Event, EventDetail, EventFilter, EventKind,
    MailInfo, MessageMeta, QueueEntry, QueueSummary, QueuedDelivery, RecipientOutcome, RetryPolicy,
    SendStatPoint, Tracked,
};
pub use error::{Error, ErrorKind};
pub use identity::{
    DkimOrigin, DkimSigningKey, DkimState, DnsChecks, DnsRecord, EmailLink, Identity, IdentityKind,
    IdentityName, KeyLength, LinkRedirect, MailFrom, Notifications, VerificationStatus,
};
pub use message::{Acceptance, MessageFilter, NewMessage, QuotaCheck, Rejection, StoredMessage};
pub use scope::{AccountId, Region, Scope};
pub use tags::Tag;
pub use template::{Template, TemplateParts};

/// Milliseconds since the Unix epoch; the one time representation stored and
/// passed around. Wire formats convert at the edge.
pub type Millis = i64;

/// ISO 8601 in UTC with milliseconds (`2026-12-05T06:40:00.123Z`): how SES
/// and SNS write times in their XML, events and notifications.
pub fn iso8601(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(fmt).unwrap_or_default()
}

/// A date as RFC 5322 writes one, in UTC: message headers and events'
/// `commonHeaders.date`.
pub fn rfc2822(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}
