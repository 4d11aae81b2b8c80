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
        Command::Token { subject, ttl_secs } => {
            let secret = env.required("ACCESS_JWT_SECRET", "the secret relayer serve uses")?;
            println!(
                "{}",
                relayer::auth::issue(secret.as_bytes(), &subject, ttl_secs)
            );
            Ok(())
        }
        Command::Serve { role } => {
            let config = env.config()?;
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
                    let chain: Arc<dyn relayer::chain::Chain> =
                        Arc::new(RpcChain::new(&chain_settings.cluster));
                    let executor = ChainExecutor {
                        pool: relayer::db::pool(&config.database.url)?,
                        chain: chain.clone(),
                        signer,
                        config: ExecutorConfig {
                            execute: config.execute,
                            confirm_window: std::time::Duration::from_secs(60),
                            poll: std::time::Duration::from_millis(500),
                            max_attempts: config.queue.max_attempts,
                            priority_fee_micro_lamports: chain_settings.priority_fee_micro_lamports,
                        },
                    };
                    tracing::info!(cluster = %chain_settings.cluster, execute = config.execute, "acting on-chain");
                    Application::build(config, role, Arc::new(executor))
                        .await?
                        .with_chain(chain.clone())
                        .with_reconciler(chain, chain_settings.reconcile_interval)
                }
            };
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::shutdown_on_signal(shutdown.clone()));
            app.run(shutdown).await
        }
    }
}
