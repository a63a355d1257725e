//! Configuration sets: named JSON documents under a per-scope limit, as
//! templates are.

use super::*;

impl SqliteStore {
    pub(super) async fn insert_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
        limit: u32,
    ) -> Result<Created> {
        let data = to_json(set)?;
        named_insert(
            &self.pool,
            Scoped::ConfigurationSets,
            scope,
            &set.name,
            set.created_at,
            &data,
            limit,
        )
        .await
    }

    pub(super) async fn get_configuration_set(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ConfigurationSet>> {
        named_get(&self.pool, Scoped::ConfigurationSets, scope, name)
            .await?
            .map(|d| from_json(&d))
            .transpose()
    }

    pub(super) async fn update_configuration_set(
        &self,
        scope: &Scope,
        set: &ConfigurationSet,
    ) -> Result<bool> {
        let data = to_json(set)?;
        named_update(
            &self.pool,
            Scoped::ConfigurationSets,
            scope,
            &set.name,
            &data,
        )
        .await
    }

    pub(super) async fn delete_configuration_set(&self, scope: &Scope, name: &str) -> Result<bool> {
        named_delete(&self.pool, Scoped::ConfigurationSets, scope, name).await
    }

    pub(super) async fn list_configuration_sets(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ConfigurationSet)>> {
        named_list(&self.pool, Scoped::ConfigurationSets, scope, after, limit).await
    }
}
