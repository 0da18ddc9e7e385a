//! `celeriac-worker --queues emails,reports --concurrency 8`: runs the built-in tasks.

use clap::Parser;

/// jemalloc, as the gateway and the archiver: a batch of tasks is many small, short-lived
/// allocations (ids, specs, results), which glibc's allocator serves at a higher cost.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Threads of the async runtime the tasks run on (default: `worker.threads`, else one per
    /// core). One suits I/O-bound tasks beside a Redis on the same few cores.
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let Args {
        queues,
        concurrency,
        order,
        threads,
    } = Args::parse();
    let options = celeriac_worker::cli::WorkerOptions {
        queues,
        concurrency,
        order,
        threads,
    };
    celeriac_worker::cli::worker_main(options, celeriac_worker::tasks::builtin_registry)
}
