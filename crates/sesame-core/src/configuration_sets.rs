//! Configuration sets: create, read, list, delete, and the options Sesame
//! carries out. Today that is whether sending through the set is enabled
//! (a send naming a paused set is refused, as SES refuses it). Options
//! whose effect Sesame cannot produce yet (event destinations, tracking,
//! TLS policy, delivery windows, dedicated pools, suppression options,
//! reputation metrics, VDM, archiving) are refused where they are set,
//! with `NotImplemented` naming them, never stored and ignored.

use crate::{Clock, internal};
use sesame_model::configuration_set::{
    MAX_CONFIGURATION_SETS, already_exists, does_not_exist, validate_name,
};
use sesame_model::{ConfigurationSet, Error, ErrorKind, Scope, Tag, tags};
use sesame_store::{Created, Store};
use std::sync::Arc;

pub struct ConfigurationSetService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// The refusal of an option Sesame does not carry out yet.
pub fn not_yet(option: &str) -> Error {
    Error::new(
        ErrorKind::NotImplemented,
        format!("Sesame does not implement the configuration set option {option} yet."),
    )
}

impl ConfigurationSetService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates a set; `sending_enabled` is true unless the caller says.
    pub async fn create(
        &self,
        scope: &Scope,
        name: &str,
        sending_enabled: Option<bool>,
        new_tags: Vec<Tag>,
    ) -> Result<(), Error> {
        validate_name(name)?;
        let mut set = ConfigurationSet::new(name, self.clock.now_ms());
        set.sending_enabled = sending_enabled.unwrap_or(true);
        tags::merge(&mut set.tags, new_tags)?;
        match self
            .store
            .insert_configuration_set(scope, &set, MAX_CONFIGURATION_SETS)
            .await
            .map_err(internal)?
        {
            Created::Created => Ok(()),
            Created::Exists => Err(already_exists(name)),
            Created::LimitReached => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Maximum number of configuration sets ({MAX_CONFIGURATION_SETS}) reached in region {}.",
                    scope.region
                ),
            )),
        }
    }

    pub async fn get(&self, scope: &Scope, name: &str) -> Result<ConfigurationSet, Error> {
        self.store
            .get_configuration_set(scope, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| does_not_exist(name))
    }

    pub async fn delete(&self, scope: &Scope, name: &str) -> Result<(), Error> {
        if self
            .store
            .delete_configuration_set(scope, name)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(does_not_exist(name))
        }
    }

    pub async fn list(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<ConfigurationSet>, Option<String>), Error> {
        crate::paging::list(next_token, max, |after, limit| {
            self.store.list_configuration_sets(scope, after, limit)
        })
        .await
    }

    /// Enables or pauses sending through the set.
    pub async fn set_sending_enabled(
        &self,
        scope: &Scope,
        name: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        set.sending_enabled = enabled;
        if self
            .store
            .update_configuration_set(scope, &set)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(does_not_exist(name))
        }
    }
}
