//! Least privilege in Postgres: the schema's owner migrates, `relayer serve` runs as a role that
//! may only do what it needs, and refuses to run as anything more.
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

/// An empty database; returns its name and the owner's URL for it.
async fn empty_database() -> (String, String) {
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let name = format!("relayer_roles_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(&admin_url()).unwrap();
    url.set_path(&name);
    (name, url.to_string())
}

/// The SQLSTATE of what `sql` fails with, run on `pool`.
async fn refused(pool: &PgPool, sql: &str) -> String {
    let e = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .expect_err(sql);
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn migrate_as_the_owner_grants_serve_only_what_it_needs() {
    let (name, owner) = empty_database().await;
    let role = format!("relayer_app_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let password = "s3cret/with@odd:chars";
    let mut app_url = reqwest::Url::parse(&owner).unwrap();
    app_url.set_username(&role).unwrap();
    app_url.set_password(Some(password)).unwrap();
    let app_url = app_url.to_string();
    let env = [
        ("DATABASE_OWNER_URL", owner.as_str()),
        ("DATABASE_URL", app_url.as_str()),
    ];
    let migrate = || relayer_bin(&["migrate"], &env);
    let (ok, out) = migrate().await;
    assert!(ok, "{out}");
    assert!(
        !out.contains(password) && !out.contains("odd%3Achars"),
        "{out}"
    );
    let (ok, out) = migrate().await;
    assert!(ok, "a second run (the next release) grants again: {out}");

    // The role was created with the URL's password, stored hashed (no statement carried it).
    let admin = PgPool::connect(&owner).await.unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&admin)
            .await
            .unwrap();
    let stored = stored.expect("a password");
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    let app = PgPool::connect(&with_user(&owner, &role)).await.unwrap();
    // What serve does works...
    sqlx::query("SELECT count(*) FROM audit_log")
        .execute(&app)
        .await
        .unwrap();
    let job = insert_job(&app, 3).await;
    sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
        .bind(job)
        .execute(&app)
        .await
        .unwrap();
    relayer::audit::append_now(&app, "test_entry", None, serde_json::json!({}))
        .await
        .unwrap();
    // ...and nothing more: 42501 is insufficient_privilege, before any trigger is consulted.
    for sql in [
        "UPDATE audit_log SET payload = '{}'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM tracking_events",
        "UPDATE tracking_events SET status = 'delivered'",
        "DELETE FROM offers",
        "DELETE FROM revoked_tokens",
        "CREATE TABLE sneaky (id int)",
        "SELECT * FROM _sqlx_migrations",
        "DROP TABLE jobs",
    ] {
        assert_eq!(refused(&app, sql).await, "42501", "{sql}");
    }
    app.close().await;

    // serve refuses the owner (and a superuser), naming the fix.
    let serve_as = |url: String| async move {
        relayer_bin(
            &["serve"],
            &[
                ("DATABASE_URL", url.as_str()),
                ("TRACKING_HMAC_SECRET", "roles-test-secret-0123456789"),
                (
                    "ACCESS_JWT_SECRET",
                    "roles-test-jwt-secret-0123456789abcdef",
                ),
                ("BIND_ADDR", "127.0.0.1:0"),
            ],
        )
        .await
    };
    let (ok, out) = serve_as(owner.clone()).await;
    assert!(!ok, "serve ran as the superuser");
    assert!(out.contains("relayer migrate"), "{out}");
    assert!(out.contains("DATABASE_ALLOW_PRIVILEGED"), "{out}");
    let mut tables_owner = reqwest::Url::parse(&owner).unwrap();
    tables_owner.set_username("relayer_owner_test").unwrap();
    sqlx::query(
        "DO $$ BEGIN CREATE ROLE relayer_owner_test LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE audit_log OWNER TO relayer_owner_test")
        .execute(&admin)
        .await
        .unwrap();
    let (ok, out) = serve_as(tables_owner.to_string()).await;
    assert!(!ok, "serve ran as the audit log's owner");
    assert!(out.contains("the tables' owner"), "{out}");

    admin.close().await;
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&admin)
        .await
        .unwrap();
}
