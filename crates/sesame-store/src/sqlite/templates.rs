//! Email templates and custom verification templates: named JSON documents under a per-scope limit.

use super::*;

/// Tables whose rows count toward a per-scope limit.
#[derive(Clone, Copy)]
pub(super) enum Scoped {
    Identities,
    Templates,
    CvTemplates,
    ConfigurationSets,
}

impl Scoped {
    /// The table; only these fixed names are ever interpolated into SQL.
    fn table(self) -> &'static str {
        match self {
            Self::Identities => "identities",
            Self::Templates => "templates",
            Self::CvTemplates => "cv_templates",
            Self::ConfigurationSets => "configuration_sets",
        }
    }
}

/// Inserts a named JSON document (a template of either kind) unless one of
/// that name exists or the scope holds `limit`, in one transaction.
pub(super) async fn named_insert(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
    created_at: Millis,
    data: &str,
    limit: u32,
) -> Result<Created> {
    let t = table.table();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT seq FROM {t} WHERE account_id = ? AND region = ? AND name = ?"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_some() {
        return Ok(Created::Exists);
    }
    if scope_is_full(&mut tx, table, scope, limit).await? {
        return Ok(Created::LimitReached);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {t} (account_id, region, name, created_at, data) VALUES (?, ?, ?, ?, ?)"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .bind(created_at)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Created::Created)
}

/// `WHERE account_id = ? AND region = ? AND name = ?` on a named table.
pub(super) fn by_name<'q>(
    sql: String,
    scope: &'q Scope,
    name: &'q str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .bind(name)
}

pub(super) async fn named_get(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
) -> Result<Option<String>> {
    let sql = format!(
        "SELECT data FROM {} WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    );
    match by_name(sql, scope, name).fetch_optional(pool).await? {
        Some(row) => Ok(Some(row.try_get("data")?)),
        None => Ok(None),
    }
}

pub(super) async fn named_update(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
    data: &str,
) -> Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET data = ? WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    )))
    .bind(data)
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn named_delete(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    name: &str,
) -> Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE account_id = ? AND region = ? AND name = ?",
        table.table()
    );
    Ok(by_name(sql, scope, name)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Documents after position `after`, decoded, in position order.
pub(super) async fn named_list<T: serde::de::DeserializeOwned>(
    pool: &SqlitePool,
    table: Scoped,
    scope: &Scope,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, T)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT seq, data FROM {} WHERE account_id = ? AND region = ? AND seq > ?
         ORDER BY seq LIMIT ?",
        table.table()
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(seq, d)| Ok((seq, from_json(&d)?)))
        .collect()
}

/// Whether `scope` already holds `limit` rows of `table`.
pub(super) async fn scope_is_full(
    conn: &mut sqlx::SqliteConnection,
    table: Scoped,
    scope: &Scope,
    limit: u32,
) -> Result<bool> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE account_id = ? AND region = ?",
        table.table()
    );
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(scope.account.as_str())
        .bind(scope.region.as_str())
        .fetch_one(conn)
        .await?;
    Ok(count >= i64::from(limit))
}

impl SqliteStore {
    pub(super) async fn insert_template(
        &self,
        scope: &Scope,
        t: &Template,
        limit: u32,
    ) -> Result<Created> {
        let data = to_json(t)?;
        named_insert(
            &self.pool,
            Scoped::Templates,
            scope,
            &t.name,
            t.created_at,
            &data,
            limit,
        )
        .await
    }

    pub(super) async fn get_template(&self, scope: &Scope, name: &str) -> Result<Option<Template>> {
        named_get(&self.pool, Scoped::Templates, scope, name)
            .await?
            .map(|d| from_json(&d))
            .transpose()
    }

    pub(super) async fn update_template(&self, scope: &Scope, t: &Template) -> Result<bool> {
        named_update(&self.pool, Scoped::Templates, scope, &t.name, &to_json(t)?).await
    }

    pub(super) async fn delete_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named_delete(&self.pool, Scoped::Templates, scope, name).await
    }

    pub(super) async fn list_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Template)>> {
        named_list(&self.pool, Scoped::Templates, scope, after, limit).await
    }

    pub(super) async fn insert_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
        limit: u32,
    ) -> Result<Created> {
        let data = to_json(t)?;
        named_insert(
            &self.pool,
            Scoped::CvTemplates,
            scope,
            &t.name,
            t.created_at,
            &data,
            limit,
        )
        .await
    }

    pub(super) async fn get_cv_template(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<CustomVerificationTemplate>> {
        named_get(&self.pool, Scoped::CvTemplates, scope, name)
            .await?
            .map(|d| from_json(&d))
            .transpose()
    }

    pub(super) async fn update_cv_template(
        &self,
        scope: &Scope,
        t: &CustomVerificationTemplate,
    ) -> Result<bool> {
        named_update(
            &self.pool,
            Scoped::CvTemplates,
            scope,
            &t.name,
            &to_json(t)?,
        )
        .await
    }

    pub(super) async fn delete_cv_template(&self, scope: &Scope, name: &str) -> Result<bool> {
        named_delete(&self.pool, Scoped::CvTemplates, scope, name).await
    }

    pub(super) async fn list_cv_templates(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, CustomVerificationTemplate)>> {
        named_list(&self.pool, Scoped::CvTemplates, scope, after, limit).await
    }
}
