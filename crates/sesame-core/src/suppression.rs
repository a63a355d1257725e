//! The account-level suppression list: its operations, and what feeds it
//! (hard bounces and complaints, by the reasons in force for the message
//! that drew them). The send path reads it (`sending.rs`) and the delivery
//! engine bounces suppressed recipients without an attempt.

use crate::{Clock, internal, paging};
use sesame_model::delivery::{BounceSubType, BounceType};
use sesame_model::suppression::{
    self, DEFAULT_REASONS, Reason, SuppressedDestination, SuppressionQuery,
};
use sesame_model::{Error, Event, EventDetail, EventKind, Scope};
use sesame_store::Store;
use std::sync::Arc;

pub struct SuppressionService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl SuppressionService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// PutSuppressedDestination.
    pub async fn put(&self, scope: &Scope, address: &str, reason: Reason) -> Result<(), Error> {
        let address = suppression::check_address(address)?;
        self.store
            .put_suppressed(
                scope,
                &SuppressedDestination {
                    address,
                    reason,
                    last_update: self.clock.now_ms(),
                    message_id: None,
                    feedback_id: None,
                },
            )
            .await
            .map_err(internal)
    }

    pub async fn get(&self, scope: &Scope, address: &str) -> Result<SuppressedDestination, Error> {
        let key = suppression::check_address(address)?;
        self.store
            .get_suppressed(scope, &key)
            .await
            .map_err(internal)?
            .ok_or_else(|| suppression::not_on_list(address))
    }

    pub async fn delete(&self, scope: &Scope, address: &str) -> Result<(), Error> {
        let key = suppression::check_address(address)?;
        if self
            .store
            .delete_suppressed(scope, &key)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(suppression::not_on_list(address))
        }
    }

    pub async fn list(
        &self,
        scope: &Scope,
        q: &SuppressionQuery,
        next_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<SuppressedDestination>, Option<String>), Error> {
        paging::list(next_token, max, |after, limit| {
            self.store.list_suppressed(scope, q, after, limit)
        })
        .await
    }
}

/// The addresses an event puts on the suppression list, and why: a
/// permanent bounce's recipients, or a complaint's, when the message's
/// reasons include it. The mailbox simulator's addresses never go on it,
/// nor do bounces that came from the list itself.
pub fn additions(e: &Event) -> Vec<SuppressedDestination> {
    let reasons = e
        .mail
        .meta
        .suppress_for
        .clone()
        .unwrap_or_else(|| DEFAULT_REASONS.to_vec());
    let (reason, addresses, feedback) = match &e.detail {
        EventDetail::Bounce {
            bounce_type: BounceType::Permanent,
            sub_type,
            bounced,
            feedback_id,
            ..
        } if !matches!(
            sub_type,
            BounceSubType::OnAccountSuppressionList | BounceSubType::Suppressed
        ) =>
        {
            (
                Reason::Bounce,
                bounced
                    .iter()
                    .map(|b| b.address.clone())
                    .collect::<Vec<_>>(),
                feedback_id,
            )
        }
        EventDetail::Complaint { feedback_id, .. } if e.kind == EventKind::Complaint => {
            (Reason::Complaint, e.recipients.clone(), feedback_id)
        }
        _ => return vec![],
    };
    if !reasons.contains(&reason) {
        return vec![];
    }
    addresses
        .iter()
        .filter(|a| {
            !a.to_ascii_lowercase()
                .ends_with(&format!("@{}", sesame_model::address::SIMULATOR_DOMAIN))
        })
        .map(|a| SuppressedDestination {
            address: suppression::key(a),
            reason,
            last_update: e.at,
            message_id: Some(e.message_id.clone()),
            feedback_id: Some(feedback.clone()),
        })
        .collect()
}
