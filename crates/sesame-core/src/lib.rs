//! Sesame's use cases: what each operation does, in domain terms. Talks to
//! storage only through `sesame_store::Store`; never names SQL, HTTP, XML,
//! JSON or SMTP.
//!
//! # Layout
//! - [`identities`]: creating, verifying, listing, deleting identities, DKIM
//!   settings and tags.
//! - [`credentials`]: access keys, and how a request's key resolves to an
//!   account (including `--dev`'s acceptance of any well-formed key).
//! - [`custom_verification`]: custom verification email templates, the HTML
//!   SES allows in them, and SendCustomVerificationEmail.
//! - [`dkim_keys`]: RSA key pairs for Easy DKIM and BYODKIM validation.
//! - [`accounts`]: sandbox, quotas, production-access requests and their review.
//! - [`sending`]: the send rules (validation, identity checks, quotas).
//! - [`templates`]: email templates and Handlebars rendering.
//! - [`compose`]: MIME messages built for Simple content, and raw ones read.
//! - [`delivery`]: the delivery engine: queue, DKIM signing, transports, the
//!   mailbox simulator, events.
//! - [`sns`]: Sesame's SNS: topics, subscriptions and their handshake,
//!   Publish, and the key notifications are signed with.
//! - [`suppression`]: the account-level suppression list: its operations
//!   and what bounces and complaints add to it.
//! - [`tracking`]: open and click tracking: the HTML rewritten before
//!   composition, and the Open and Click events.
//! - [`feedback`]: events to their destinations (the publisher, reading
//!   the events table as an outbox) and topic messages to subscribers
//!   (the notifier: signed HTTP POSTs, email).
//! - [`verifier`]: the DNS verifier of domain identities (schedule, on
//!   demand, SES's statuses, diagnoses), behind the `DnsLookup` trait.
//! - [`rate`]: SES's API call rate per account and region, and the pacing
//!   of verification emails to each address.
//! - [`cpu`]: CPU-bound work (rendering, MIME on large messages) on the
//!   blocking pool, a job a core at a time.
//! - [`budget`]: memory budgets for requests in hand and attempts in flight.
//! - [`clock`]: the injected time source.
//! - [`random`]: tokens and IDs from the OS's CSPRNG.

pub mod accounts;
pub mod audit;
pub mod budget;
pub mod clock;
pub mod compose;
pub mod configuration_sets;
pub mod cpu;
pub mod credentials;
pub mod custom_verification;
pub mod delivery;
pub mod dkim_keys;
pub mod explain;
pub mod feedback;
pub mod identities;
mod paging;
pub mod random;
pub mod rate;
pub mod retention;
pub mod sending;
pub mod sns;
pub mod suppression;
pub mod templates;
pub mod tracking;
pub mod verifier;

pub use accounts::AccountService;
pub use clock::{Clock, SystemClock};
pub use configuration_sets::ConfigurationSetService;
pub use credentials::{Credentials, Resolution};
pub use custom_verification::CustomVerificationService;
pub use identities::IdentityService;
pub use sending::SendService;
pub use sns::SnsService;
pub use suppression::SuppressionService;
pub use templates::TemplateService;
pub use verifier::{DnsLookup, Verifier, VerifierSettings};

use sesame_model::Error;
use sesame_store::StoreError;

/// A store failure becomes `InternalFailure` for the client and a log line
/// with the cause for the operator.
pub(crate) fn internal(e: StoreError) -> Error {
    tracing::error!(error = %e, "store failure");
    Error::internal("An internal error occurred in Sesame's store; see the server log.")
}
