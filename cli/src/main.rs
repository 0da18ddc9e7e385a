//! `celeriac`: the operator's command-line tool (see `cli/README.md`).

use clap::Parser;

fn main() {
    let cli = celeriac_cli::args::Cli::parse();
    std::process::exit(celeriac_cli::run(cli));
}
