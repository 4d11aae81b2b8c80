use clap::Parser;
use relayer::{commands::Cli, config::Env};

#[tokio::main]
async fn main() {
    let env = Env::process();
    relayer::telemetry::init(&env.log_filter());
    relayer::failpoint::arm(env.failpoint());
    if let Err(e) = relayer::commands::run(Cli::parse(), &env).await {
        eprintln!("relayer: {e:#}");
        std::process::exit(1);
    }
}
