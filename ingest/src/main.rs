use clap::Parser;
use ingest::cli::{Cli, Command};

// Parsing and classifying many small JSON documents is allocation-bound; mimalloc halves the
// time glibc's allocator takes there (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A missing .env is normal; variables already set in the environment win over it.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = service_kit::telemetry::init(cli.log_format) {
        eprintln!("ingest: cannot start logging: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let outcome = match cli.command.unwrap_or_default() {
        Command::Serve => ingest::cli::serve(&cli.database, cli.serve).await,
        Command::Migrate => ingest::cli::migrate(&cli.database).await,
        Command::Maintain => ingest::cli::maintain(&cli.database, &cli.serve).await,
        Command::Simulate(args) => ingest::simulate::command(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %service_kit::telemetry::error_chain(&*e), "ingest failed");
            std::process::ExitCode::FAILURE
        }
    }
}
