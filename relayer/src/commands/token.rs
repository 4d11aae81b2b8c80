//! `relayer token issue|revoke`: operator API tokens for the people and systems that hold
//! `ACCESS_JWT_SECRET`'s trust.
use clap::Subcommand;
use serde_json::json;

use crate::config::Env;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a new token signed with ACCESS_JWT_SECRET (its id and expiry go to stderr).
    Issue {
        /// Who the token is for (it shows in the relayer's logs, and behind the audit log's
        /// operator commitments).
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds, at most ACCESS_JWT_MAX_TTL_SECS.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Refuse a token from now on, on every relayer sharing DATABASE_URL: give the token itself
    /// (checked against the secrets, expired or not) or its id.
    Revoke {
        #[arg(long, conflicts_with = "jti", required_unless_present = "jti")]
        token: Option<String>,
        #[arg(long)]
        jti: Option<String>,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub async fn run(
    command: TokenCommand,
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> anyhow::Result<()> {
    let rules = env.tokens()?;
    match command {
        TokenCommand::Issue { subject, ttl_secs } => {
            anyhow::ensure!(
                !subject.trim().is_empty() && !subject.chars().any(char::is_control),
                "--subject must name who the token is for"
            );
            anyhow::ensure!(
                ttl_secs > 0 && ttl_secs <= rules.max_ttl.as_secs(),
                "--ttl-secs must be between 1 and ACCESS_JWT_MAX_TTL_SECS ({})",
                rules.max_ttl.as_secs()
            );
            let secret = env.jwt_secret("ACCESS_JWT_SECRET")?;
            let (token, claims) = crate::auth::issue(secret.expose(), &rules, &subject, ttl_secs);
            eprintln!("jti {} expires {}", claims.jti, claims.exp);
            println!("{token}");
            Ok(())
        }
        TokenCommand::Revoke { token, jti, reason } => {
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            let (jti, expires) = match (token, jti) {
                (Some(token), _) => {
                    let secrets = env.secrets()?;
                    let keys: Vec<&[u8]> = std::iter::once(&secrets.jwt)
                        .chain(secrets.jwt_previous.as_ref())
                        .map(|s| s.expose())
                        .collect();
                    let claims = crate::auth::verify(&token, &keys, &rules, now, false)
                        .ok_or_else(|| {
                            anyhow::anyhow!("--token is not a token of this relayer's secrets")
                        })?;
                    (claims.jti, claims.exp)
                }
                // A bare id: no token of it lives longer than the maximum lifetime from now.
                (None, Some(jti)) => (jti, now + rules.max_ttl.as_secs()),
                (None, None) => anyhow::bail!("give --token or --jti"),
            };
            anyhow::ensure!(
                !jti.is_empty() && jti.len() <= 128 && !jti.chars().any(char::is_control),
                "--jti must be 1 to 128 printable characters"
            );
            anyhow::ensure!(
                reason.len() <= 200 && !reason.chars().any(char::is_control),
                "--reason must be at most 200 printable characters"
            );
            let pool = crate::db::pool(&env.database()?.url)?;
            let mut tx = pool.begin().await?;
            let expires_at = chrono::DateTime::from_timestamp(expires as i64, 0)
                .ok_or_else(|| anyhow::anyhow!("the token's exp is out of range"))?;
            let revoked = sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(&jti)
            .bind(expires_at)
            .bind(&reason)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if revoked {
                crate::audit::append(
                    &mut tx,
                    "token_revoked",
                    None,
                    json!({ "jti": jti, "expires_at": expires_at }),
                )
                .await?;
            }
            tx.commit().await?;
            println!(
                "token {jti} {}",
                if revoked {
                    "revoked: refused from now on"
                } else {
                    "was revoked already"
                }
            );
            Ok(())
        }
    }
}
