use std::time::Duration;

use sqlx::{migrate::Migrator, postgres::PgPoolOptions, PgPool};

/// The SQL in the top-level `migrations/`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A pool that connects on first use, so the server starts (and reports not-ready) while
/// Postgres is down, and recovers by itself when it returns.
pub fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(url)
}

/// What `relayer serve` may do in the database, granted to `role` (created with `password` when
/// missing; an existing role's password is left as it is): read everything it reads, insert what
/// it records, update offers, jobs and their transactions. Nothing else: no DDL, no UPDATE or
/// DELETE on the audit log, no access to the migrations' bookkeeping. Run by the schema's owner
/// (`relayer migrate` with `DATABASE_OWNER_URL`, or `--app-role`).
pub async fn grant_app_role(
    pool: &PgPool,
    role: &str,
    password: Option<&crate::config::Secret>,
) -> anyhow::Result<()> {
    let valid = !role.is_empty()
        && role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    anyhow::ensure!(
        valid,
        "--app-role {role:?}: use lowercase letters, digits and _"
    );
    let mut tx = pool.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        // The password goes in as a bound parameter and is quoted by the server, so it is in no
        // statement text that Postgres or sqlx might log.
        let password = password
            .map(|p| String::from_utf8_lossy(p.expose()).into_owned())
            .unwrap_or_default();
        sqlx::query("SELECT set_config('openclaw.app_password', $1, true)")
            .bind(password)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN EXECUTE CASE current_setting('openclaw.app_password') \
               WHEN '' THEN 'CREATE ROLE {role} LOGIN' \
               ELSE format('CREATE ROLE {role} LOGIN PASSWORD %L', \
                           current_setting('openclaw.app_password')) END; END $$"
        )))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create role {role} ({e}): create it as a role with CREATEROLE \
                     (CREATE ROLE {role} LOGIN PASSWORD '…'), then run this again"
            )
        })?;
    }
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await?;
    for statement in [
        format!("GRANT CONNECT ON DATABASE \"{database}\" TO {role}"),
        // Postgres before 15 lets every role create tables in public: not in this database.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".into(),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT UPDATE ON offers, jobs, chain_txs TO {role}"),
        format!("REVOKE ALL ON _sqlx_migrations FROM {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Refuses a database role that could undo the audit log's protection: a superuser, or the owner
/// of the relayer's tables (either can disable the append-only triggers).
pub async fn check_unprivileged(pool: &PgPool) -> anyhow::Result<()> {
    let (superuser, owns): (bool, bool) = sqlx::query_as(
        "SELECT r.rolsuper OR r.rolbypassrls,
                EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public'
                        AND tablename = 'audit_log' AND tableowner = current_user)
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if superuser || owns {
        anyhow::bail!(
            "DATABASE_URL connects as {}, which can disable the audit log's protection: connect \
             as the role `relayer migrate --app-role <ROLE>` grants (migrations run as the \
             owner, with DATABASE_OWNER_URL); DATABASE_ALLOW_PRIVILEGED=true skips this check, \
             for development only",
            if superuser {
                "a superuser"
            } else {
                "the tables' owner"
            }
        );
    }
    Ok(())
}
