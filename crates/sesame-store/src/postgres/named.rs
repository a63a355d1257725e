//! Email templates, custom verification templates and configuration
//! sets: named JSON documents under a per-scope limit.

use super::*;

/// Tables of named documents.
#[derive(Clone, Copy)]
pub(super) enum Table {
    Templates,
    CvTemplates,
    ConfigurationSets,
}

impl Table {
    /// The table; only these fixed names are ever interpolated into SQL.
    fn name(self) -> &'static str {
        match self {
            Self::Templates => "templates",
            Self::CvTemplates => "cv_templates",
            Self::ConfigurationSets => "configuration_sets",
        }
    }
}

/// Whether `scope` already holds `limit` rows of `table` (a fixed name).
pub(super) async fn scope_is_full(
    conn: &mut sqlx::PgConnection,
    table: &'static str,
    scope: &Scope,
    limit: u32,
) -> Result<bool> {
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE account_id = $1 AND region = $2"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .fetch_one(conn)
    .await?;
    Ok(count >= i64::from(limit))
}

/// Inserts a named document unless one of that name exists or the scope
/// holds `limit`, in one transaction that holds the scope's lock.
pub(super) async fn insert(
    pool: &PgPool,
    table: Table,
    scope: &Scope,
    name: &str,
    created_at: Millis,
    data: &str,
    limit: u32,
) -> Result<Created> {
    let t = table.name();
    let mut tx = pool.begin().await?;
    identities::lock_scope(&mut tx, t, scope).await?;
    let exists: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT seq FROM {t} WHERE account_id = $1 AND region = $2 AND name = $3"
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_some() {
        return Ok(Created::Exists);
    }
    if scope_is_full(&mut tx, t, scope, limit).await? {
        return Ok(Created::LimitReached);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {t} (account_id, region, name, created_at, data) VALUES ($1, $2, $3, $4, $5)"
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

pub(super) async fn get<T: serde::de::DeserializeOwned>(
    pool: &PgPool,
    table: Table,
    scope: &Scope,
    name: &str,
) -> Result<Option<T>> {
    let data: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT data FROM {} WHERE account_id = $1 AND region = $2 AND name = $3",
        table.name()
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .fetch_optional(pool)
    .await?;
    data.map(|d| from_json(&d)).transpose()
}

pub(super) async fn update(
    pool: &PgPool,
    table: Table,
    scope: &Scope,
    name: &str,
    data: &str,
) -> Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {} SET data = $1 WHERE account_id = $2 AND region = $3 AND name = $4",
        table.name()
    )))
    .bind(data)
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn delete(pool: &PgPool, table: Table, scope: &Scope, name: &str) -> Result<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE account_id = $1 AND region = $2 AND name = $3",
        table.name()
    )))
    .bind(scope.account.as_str())
    .bind(scope.region.as_str())
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Documents after position `after`, decoded, in position order.
pub(super) async fn list<T: serde::de::DeserializeOwned>(
    pool: &PgPool,
    table: Table,
    scope: &Scope,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, T)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT seq, data FROM {} WHERE account_id = $1 AND region = $2 AND seq > $3
         ORDER BY seq LIMIT $4",
        table.name()
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
