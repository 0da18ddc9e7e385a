//! `celeriac-worker --queues emails,reports --concurrency 8`: runs the built-in tasks.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "Celeriac worker: runs tasks from the named queues")]
struct Args {
    /// Queues to consume, comma-separated (default: from the settings).
    #[arg(long, short = 'Q', value_delimiter = ',')]
    queues: Vec<String>,
    /// Tasks run at once (default: from the settings).
    #[arg(long, short = 'c')]
    concurrency: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    celeriac_worker::cli::run_worker(args.queues, args.concurrency, celeriac_worker::tasks::builtin_registry).await
}
