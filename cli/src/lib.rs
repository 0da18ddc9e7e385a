//! The `celeriac` command-line tool: operators call, inspect and steer a Celeriac gateway
//! from a terminal, over its HTTP API only (no Redis access, no library of the server).
//! [`run`] parses nothing: `main` hands it the parsed [`args::Cli`] and exits with its code.

pub mod args;
pub mod client;
pub mod commands;
pub mod error;
pub mod follow;
pub mod model;
pub mod output;
pub mod sse;
pub mod top;

use std::time::Duration;

use clap::CommandFactory;

use tokio::runtime::Runtime;

use crate::args::{Cli, Command, GatewayCommand};
use crate::client::Gateway;
use crate::commands::{actions, call, queues, schedules, tasks, workers};
use crate::error::CliError;

/// What every command needs: the gateway and the output form.
#[derive(Debug)]
pub struct Context {
    pub gateway: Gateway,
    /// Print the gateway's JSON instead of tables.
    pub json: bool,
}

/// Runs the command; the process's exit code. Errors are printed as one line on stderr.
pub fn run(cli: Cli) -> i32 {
    match execute(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("celeriac: {e}");
            e.exit_code()
        }
    }
}

fn execute(cli: Cli) -> Result<(), CliError> {
    let connect = || -> Result<(Gateway, Runtime), CliError> {
        let gateway = Gateway::new(&cli.url, cli.token.clone(), Duration::from_secs_f64(cli.timeout))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
        Ok((gateway, runtime))
    };
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "celeriac", &mut std::io::stdout());
            Ok(())
        }
        Command::Top { interval } => {
            let (gateway, runtime) = connect()?;
            top::run(&runtime, &gateway, Duration::from_secs_f64(interval))
        }
        Command::Gateway(command) => {
            let (gateway, runtime) = connect()?;
            let ctx = Context { gateway, json: cli.json };
            runtime.block_on(dispatch(&ctx, command))
        }
    }
}

async fn dispatch(ctx: &Context, command: GatewayCommand) -> Result<(), CliError> {
    use GatewayCommand as C;
    match command {
        C::Call(args) => call::run(ctx, *args).await,
        C::Status { id } => tasks::status(ctx, &id).await,
        C::Tasks(args) => tasks::list(ctx, *args).await,
        C::Queues => queues::list(ctx).await,
        C::Workers => workers::list(ctx).await,
        C::Schedules { action } => schedules::run(ctx, action).await,
        C::Pause { queue } => queues::set_paused(ctx, &queue, true).await,
        C::Resume { queue } => queues::set_paused(ctx, &queue, false).await,
        C::Purge { queue, yes } => queues::purge(ctx, &queue, yes).await,
        C::Retry(args) => match (args.id, args.dead) {
            (_, Some(queue)) => actions::retry_dead(ctx, &queue).await,
            (Some(id), None) => actions::retry(ctx, &id).await,
            (None, None) => Err(CliError::Usage("retry needs a task id or --dead QUEUE".into())),
        },
        C::Revoke { id, terminate } => actions::revoke(ctx, &id, terminate).await,
    }
}
