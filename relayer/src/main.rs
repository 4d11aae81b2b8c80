use std::sync::Arc;

use clap::{Parser, Subcommand};
use relayer::{
    config::{self, Env},
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
            if config.execute {
                anyhow::bail!("OPENCLAW_EXECUTE=true needs the on-chain signer, which this build does not have yet; unset it to simulate");
            }
            let app = Application::build(config, role, Arc::new(Simulate)).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::shutdown_on_signal(shutdown.clone()));
            app.run(shutdown).await
        }
    }
}
