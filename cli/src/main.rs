use std::process::ExitCode;

use clap::Parser;
use escrow_chain::rpc::RpcChain;
use escrow_cli::{config, run, Cli, Signing};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start(cli: Cli) -> anyhow::Result<()> {
    let settings = config::SolanaConfig::load(cli.config.as_deref())?;
    let (url, keypair_path) =
        config::resolve(cli.url.as_deref(), cli.keypair.as_deref(), &settings)?;
    let keypair = match (&cli.unsigned, cli.command.signs()) {
        (None, true) => Some(
            solana_keypair::read_keypair_file(&keypair_path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read keypair {}: {e} (use --keypair, or `solana config set --keypair`)",
                    keypair_path.display()
                )
            })?,
        ),
        _ => None,
    };
    let signing = match (&keypair, cli.unsigned) {
        (Some(k), _) => Some(Signing::Keypair(k)),
        (None, Some(address)) => Some(Signing::Elsewhere(address)),
        (None, None) => None,
    };
    let chain = RpcChain::new(&url);
    run(&cli.command, &chain, signing, &mut std::io::stdout())
        .await
        .map_err(|e| match e.downcast_ref::<escrow_chain::ChainError>() {
            Some(_) => e.context(format!("cannot use the cluster at {url} (check --url)")),
            None => e,
        })
}
