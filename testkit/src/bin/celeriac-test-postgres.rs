//! `celeriac-test-postgres`: a throwaway PostgreSQL for the test harnesses written in other
//! languages (the browser tests' `harness.mjs`, the Python suites' `celeriac_stack.py`), so
//! that every harness starts PostgreSQL the one way [`PostgresServer`] does: a cluster in a
//! temporary folder, on 127.0.0.1 and a free port, run as the `postgres` user when root.
//!
//! It creates the database `--database`, prints its URL as its first line on stdout, and
//! stops the server and removes its folder on SIGTERM, Ctrl-C, or when its standard input
//! closes (the harness that started it has ended, however it ended).

use celeriac_testkit::PostgresServer;
use clap::Parser;
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(version, about = "A throwaway PostgreSQL on a free loopback port, for tests")]
struct Args {
    /// The database to create (1 to 63 of a-z, 0-9 and '_', starting with a letter).
    #[arg(long, default_value = "celeriac", value_parser = database_name)]
    database: String,
}

fn database_name(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let valid =
        chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid && name.len() <= 63 {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} must be 1 to 63 characters of a-z, 0-9 and '_', starting with a letter"
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = PostgresServer::start();
    server.psql("postgres", &format!("CREATE DATABASE {}", args.database));
    println!("{}", server.url(&args.database));
    until_told_to_stop().await?;
    drop(server);
    // Not a return: the runtime would wait for the blocking read of standard input.
    std::process::exit(0);
}

/// Resolves on SIGTERM, Ctrl-C, or the end of standard input.
async fn until_told_to_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdin = tokio::io::stdin();
    let stdin_closed = async {
        let mut buf = [0u8; 64];
        while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
        _ = stdin_closed => {}
    }
    Ok(())
}
