//! `celeriac-smtp-sink`: the development mail server. It accepts every message (except for
//! `@reject.test` recipients), saves it as `<queue id>.eml` in `--maildir` and prints a
//! summary line, until Ctrl-C or SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use celeriac_testkit::SmtpSink;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "A local SMTP sink that keeps every message it receives")]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, env = "SMTP_SINK_PORT", default_value_t = 1025)]
    port: u16,
    /// Address to listen on; 0.0.0.0 inside a container.
    #[arg(long, env = "SMTP_SINK_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Folder where each message is saved as `<queue id>.eml` (created if missing).
    #[arg(long, env = "SMTP_SINK_MAILDIR", default_value = "data/mail")]
    maildir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::new(args.bind, args.port);
    let sink = SmtpSink::start_at(addr, Some(args.maildir.clone()))
        .await
        .with_context(|| format!("cannot listen on {addr} with maildir {}", args.maildir.display()))?;
    println!(
        "celeriac-smtp-sink listening on {}, saving to {}",
        sink.addr(),
        args.maildir.display()
    );
    shutdown_signal().await?;
    drop(sink);
    println!("celeriac-smtp-sink stopped");
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is such a thing.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
