//! SES's operations, served: each family module turns a generated wire
//! input into a use case call and its result into the generated wire
//! output. The traits (`SesV1`, `SesV2`, `Sns`) and their dispatchers are
//! generated from AWS's models in `sesame-wire`; an operation not listed
//! here keeps the trait's default, which answers `NotImplemented` naming it.
//!
//! Adding an operation: write `pub async fn v1_<operation>` (or `v2_`,
//! `sns_`) in its family's module and run `tools/gen_wire_ops.py`, which
//! writes the trait method that calls it into `served.rs`.

pub mod account;
pub mod configuration_sets;
pub mod custom_verification;
pub mod identities;
pub mod sending;
pub mod topics;
#[rustfmt::skip]
mod served;
mod spell;
pub mod suppression;
pub mod templates;

use sesame_core::{
    AccountService, ConfigurationSetService, CustomVerificationService, IdentityService,
    SendService, SnsService, SuppressionService, TemplateService,
};
use sesame_model::{Error, Scope, Tag};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2, sns};
use std::sync::Arc;

type R<T> = Result<T, Error>;

/// Where the request being served came from, as the listener saw it. The
/// server runs each operation inside [`Origin::serve`]; the sends read it
/// for SES's automatic `ses:source-ip` tag, and record the request's id
/// with a refusal.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: Option<std::net::IpAddr>,
    /// The request's id as its response gives it (`x-amzn-RequestId`).
    pub request_id: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

impl Origin {
    /// Runs `f` (an operation) as coming from this origin.
    pub async fn serve<F: std::future::Future>(self, f: F) -> F::Output {
        ORIGIN.scope(self, f).await
    }

    /// The origin of the operation running now, if the server gave one.
    fn current() -> Origin {
        ORIGIN.try_with(Origin::clone).unwrap_or_default()
    }
}

/// The use cases the operations call.
pub struct Api {
    pub identities: IdentityService,
    pub accounts: Arc<AccountService>,
    pub sending: Arc<SendService>,
    pub templates: TemplateService,
    pub custom_verification: CustomVerificationService,
    pub configuration_sets: ConfigurationSetService,
    pub sns: Arc<SnsService>,
    pub suppression: SuppressionService,
}

/// v2 tags, whose members the model requires.
fn tags_in(tags: Option<Vec<v2::Tag>>) -> Vec<Tag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

fn tags_out(tags: &[Tag]) -> Vec<v2::Tag> {
    tags.iter()
        .map(|t| v2::Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}
