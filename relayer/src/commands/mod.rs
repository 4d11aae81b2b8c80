//! The `relayer` command line: what each subcommand does with the configuration.
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod token;

use crate::{
    config::{self, Config, Env},
    startup::{self, Role},
};

#[derive(Parser)]
#[command(name = "relayer", version, about = "openclaw-escrow relayer", after_help = config::vars::help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply the SQL migrations as the schema's owner: DATABASE_OWNER_URL, which then grants
    /// DATABASE_URL's role what `relayer serve` needs (creating it, with the URL's password, when
    /// missing); without it, DATABASE_URL.
    Migrate {
        /// Grant ROLE what `relayer serve` needs and nothing more instead (created without a
        /// password when missing). See SECURITY.md.
        #[arg(long, value_name = "ROLE")]
        app_role: Option<String>,
    },
    /// Serve webhooks and the operator API, and run job workers.
    Serve {
        /// Run only one side, to scale HTTP and workers separately.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// The signed audit log: export and verify.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signer tools.
    Signer {
        #[command(subcommand)]
        command: SignerCommand,
    },
    /// Operator API tokens: issue one, or revoke one.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Write the audit log and its checkpoints as JSON lines (reads DATABASE_URL).
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Check an audit log (an export file, or a live relayer's public endpoints) against the
    /// relayer's public key; exit 1 naming the first bad entry or checkpoint.
    Verify {
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        file: Option<std::path::PathBuf>,
        /// The relayer's base URL, e.g. https://escrow.example.com
        #[arg(long)]
        url: Option<String>,
        /// The relayer's address (its KMS public key), which must have signed the checkpoints;
        /// repeat it for each key it has used, oldest first, when the key was rotated.
        #[arg(long = "pubkey", required = true)]
        pubkeys: Vec<anchor_lang::prelude::Pubkey>,
    },
}

#[derive(Subcommand)]
pub enum SignerCommand {
    /// Print the signer's address, sign a probe and verify it; exit 1 with the reason on failure.
    Check,
}

/// Runs one command; configuration comes from `env` (the process environment in `main`).
pub async fn run(cli: Cli, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate { app_role } => {
            let (url, granted) = env.migration()?;
            let pool = crate::db::pool(&url)?;
            crate::db::MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            tracing::info!("migrations applied");
            let role = match (app_role, granted) {
                (Some(name), _) => Some((name, None)),
                (None, Some(role)) => Some((role.name, role.password)),
                (None, None) => None,
            };
            if let Some((role, password)) = role {
                crate::db::grant_app_role(&pool, &role, password.as_ref()).await?;
                tracing::info!(%role, "serve's role has what it needs and nothing more");
            }
            Ok(())
        }
        Command::Signer {
            command: SignerCommand::Check,
        } => {
            let expected = env.relayer_address()?;
            let signer = crate::signer::connect(&env.signer(false)?, expected).await?;
            println!("address: {}", signer.pubkey());
            let probe = format!(
                "openclaw-escrow signer check {}",
                chrono::Utc::now().to_rfc3339()
            );
            signer.sign(probe.as_bytes()).await?;
            println!("probe signed and verified against {}", signer.pubkey());
            if expected.is_none() {
                println!(
                    "set RELAYER_ADDRESS={} so the relayer refuses any other key",
                    signer.pubkey()
                );
            }
            Ok(())
        }
        Command::Audit { command } => audit(env, command).await,
        Command::Token { command } => token::run(command, env).await,
        Command::Serve { role } => {
            if let Some(step) = crate::failpoint::armed() {
                tracing::warn!(
                    step,
                    "RELAYER_FAILPOINT is set: this process aborts at that step (fault-injection tests only)"
                );
            }
            let config = Config::load(env).await?;
            let app = startup::serve(config, role).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::shutdown_on_signal(shutdown.clone()));
            app.run(shutdown).await
        }
    }
}

async fn audit(
    env: &Env<impl Fn(&str) -> Option<String>>,
    command: AuditCommand,
) -> anyhow::Result<()> {
    use crate::audit::{self, verify, Record};
    match command {
        AuditCommand::Export { out } => {
            let pool = crate::db::pool(&env.database()?.url)?;
            let mut lines = String::new();
            let mut after = 0;
            loop {
                let page = audit::entries_after(&pool, after, crate::routes::audit::PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for e in page {
                    lines += &serde_json::to_string(&Record::Entry(e))?;
                    lines.push('\n');
                }
            }
            for c in audit::checkpoints(&pool).await? {
                lines += &serde_json::to_string(&Record::Checkpoint(c))?;
                lines.push('\n');
            }
            match out {
                Some(path) => std::fs::write(&path, lines)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                None => print!("{lines}"),
            }
            Ok(())
        }
        AuditCommand::Verify { file, url, pubkeys } => {
            let records = match (file, url) {
                (Some(path), _) => verify::parse_export(
                    &std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                )?,
                (None, Some(url)) => fetch_log(url.trim_end_matches('/')).await?,
                (None, None) => anyhow::bail!("give --file or --url"),
            };
            let report = verify::verify(&records, &pubkeys)
                .map_err(|finding| anyhow::anyhow!("audit log INVALID: {finding}"))?;
            println!(
                "audit log valid: {} entries, hash chain intact; {} checkpoints signed by {}, the latest covering {} entries",
                report.entries,
                report.checkpoints,
                pubkeys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" then "),
                report.signed_size
            );
            if report.signed_size < report.entries as i64 {
                println!(
                    "note: entries after {} are not covered by a checkpoint yet",
                    report.signed_size
                );
            }
            Ok(())
        }
    }
}

/// Reads a live relayer's public audit endpoints, page by page.
async fn fetch_log(base: &str) -> anyhow::Result<Vec<crate::audit::Record>> {
    use crate::audit::{Checkpoint, Entry, Record};
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let resp = http.get(&path).send().await?.error_for_status()?;
            anyhow::Ok(resp.bytes().await?)
        }
    };
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page: Vec<Entry> =
            serde_json::from_slice(&get(format!("{base}/v1/audit/entries?after={after}")).await?)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        records.extend(page.into_iter().map(Record::Entry));
    }
    let checkpoints: Vec<Checkpoint> =
        serde_json::from_slice(&get(format!("{base}/v1/audit/checkpoints")).await?)?;
    records.extend(checkpoints.into_iter().map(Record::Checkpoint));
    Ok(records)
}
