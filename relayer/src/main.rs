use std::sync::Arc;

use clap::{Parser, Subcommand};
use relayer::{
    chain::rpc::RpcChain,
    config::{self, Env},
    executor::{ChainExecutor, ExecutorConfig},
    startup::{self, Application, Role},
    worker::Simulate,
};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "relayer", version, about = "openclaw-escrow relayer", after_help = config::env_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the SQL migrations to DATABASE_URL.
    Migrate,
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
    /// Print an operator API token signed with ACCESS_JWT_SECRET.
    Token {
        /// Who the token is for (shows in the relayer's logs).
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
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
        /// The relayer's address (its KMS public key), which must have signed the checkpoints.
        #[arg(long)]
        pubkey: anchor_lang::prelude::Pubkey,
    },
}

#[derive(Subcommand)]
enum SignerCommand {
    /// Print the signer's address, sign a probe and verify it; exit 1 with the reason on failure.
    Check,
}

#[tokio::main]
async fn main() {
    relayer::telemetry::init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("relayer: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::process();
    match cli.command {
        Command::Migrate => {
            let db = env.database()?;
            let pool = relayer::db::pool(&db.url)?;
            relayer::db::MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Signer {
            command: SignerCommand::Check,
        } => {
            let config = env.signer()?;
            let expected = env.relayer_address()?;
            let signer = relayer::signer::connect(&config, expected, false).await?;
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
        Command::Audit { command } => audit(&env, command).await,
        Command::Token { subject, ttl_secs } => {
            let secret = env.required("ACCESS_JWT_SECRET", "the secret relayer serve uses")?;
            println!(
                "{}",
                relayer::auth::issue(secret.as_bytes(), &subject, ttl_secs)
            );
            Ok(())
        }
        Command::Serve { role } => {
            if let Some(step) = relayer::failpoint::armed() {
                tracing::warn!(
                    step,
                    "RELAYER_FAILPOINT is set: this process aborts at that step (fault-injection tests only)"
                );
            }
            let kv = relayer::secrets::KvSource::from_env(&env)?;
            let config = match &kv {
                None => env.config()?,
                Some(kv) => {
                    // The KV secret's values stand in for their environment variables.
                    let stored = kv.read().await?;
                    relayer::config::Env(|name: &str| {
                        stored
                            .get(name)
                            .cloned()
                            .or_else(|| std::env::var(name).ok())
                    })
                    .config()?
                }
            };
            let app = match env.chain()? {
                None => {
                    if config.execute {
                        anyhow::bail!("configuration: OPENCLAW_EXECUTE=true needs CLUSTER (the chain to act on)");
                    }
                    tracing::info!("no CLUSTER: jobs are recorded, nothing is simulated or sent");
                    Application::build(config, role, Arc::new(Simulate)).await?
                }
                Some(chain_settings) => {
                    let expected = env.relayer_address()?;
                    if config.execute && expected.is_none() {
                        anyhow::bail!(
                            "configuration: RELAYER_ADDRESS is required with OPENCLAW_EXECUTE=true (relayer signer check prints it)"
                        );
                    }
                    let signer =
                        relayer::signer::connect(&env.signer()?, expected, config.execute).await?;
                    let pool = relayer::db::pool(&config.database.url)?;
                    relayer::audit::append_now(
                        &pool,
                        "signer_check",
                        None,
                        serde_json::json!({ "address": signer.pubkey().to_string(),
                                            "expected": expected.map(|e| e.to_string()),
                                            "execute": config.execute }),
                    )
                    .await?;
                    let checkpoint_every = std::time::Duration::from_secs(env.parsed(
                        "AUDIT_CHECKPOINT_SECS",
                        300,
                        "seconds",
                    )?);
                    let chain: Arc<dyn relayer::chain::Chain> =
                        Arc::new(RpcChain::new(&chain_settings.cluster));
                    let checkpoint_signer = signer.clone();
                    let executor = ChainExecutor {
                        pool,
                        chain: chain.clone(),
                        signer,
                        config: ExecutorConfig {
                            execute: config.execute,
                            confirm_window: std::time::Duration::from_secs(60),
                            poll: chain_settings.confirm_poll,
                            max_attempts: config.queue.max_attempts,
                            priority_fee_micro_lamports: chain_settings.priority_fee_micro_lamports,
                        },
                    };
                    tracing::info!(cluster = %chain_settings.cluster, execute = config.execute, "acting on-chain");
                    Application::build(config, role, Arc::new(executor))
                        .await?
                        .with_chain(chain.clone())
                        .with_reconciler(chain, chain_settings.reconcile_interval)
                        .with_audit_checkpoints(checkpoint_signer, checkpoint_every)
                }
            };
            let app = match kv {
                Some(kv) => app.with_secret_refresh(kv),
                None => app,
            };
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
    use relayer::audit::{self, verify, Record};
    match command {
        AuditCommand::Export { out } => {
            let pool = relayer::db::pool(&env.database()?.url)?;
            let mut lines = String::new();
            let mut after = 0;
            loop {
                let page = audit::entries_after(&pool, after, relayer::routes::audit::PAGE).await?;
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
        AuditCommand::Verify { file, url, pubkey } => {
            let records = match (file, url) {
                (Some(path), _) => verify::parse_export(
                    &std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                )?,
                (None, Some(url)) => fetch_log(url.trim_end_matches('/')).await?,
                (None, None) => anyhow::bail!("give --file or --url"),
            };
            let report = verify::verify(&records, &pubkey)
                .map_err(|finding| anyhow::anyhow!("audit log INVALID: {finding}"))?;
            println!(
                "audit log valid: {} entries, hash chain intact; {} checkpoints signed by {pubkey}, the latest covering {} entries",
                report.entries, report.checkpoints, report.signed_size
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
async fn fetch_log(base: &str) -> anyhow::Result<Vec<relayer::audit::Record>> {
    use relayer::audit::{Checkpoint, Entry, Record};
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
