//! `celeriac-worker --queues emails,reports --concurrency 8`: runs the built-in tasks.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "Celeriac worker: runs tasks from the named queues")]
struct Args {
    /// Queues to consume, comma-separated (default: from the settings); `name=weight` entries
    /// (`critical=6,default=3,low=1`) make the order weighted.
    #[arg(long, short = 'Q', value_delimiter = ',')]
    queues: Vec<String>,
    /// Tasks run at once (default: from the settings).
    #[arg(long, short = 'c')]
    concurrency: Option<usize>,
    /// How the queues share the slots: fair, strict (the first always first) or weighted.
    #[arg(long)]
    order: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    celeriac_worker::cli::run_worker_with(args.queues, args.concurrency, args.order, celeriac_worker::tasks::builtin_registry).await
}
