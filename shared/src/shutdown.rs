//! The stop signal of every binary: SIGTERM (a deploy, `docker stop`) or SIGINT (Ctrl-C).
//! Processes take it as a token, never as a global, so tests can stop them the same way.

use tokio_util::sync::CancellationToken;

/// A token that fires on the first SIGTERM or SIGINT.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("stop signal received");
        fire.cancel();
    });
    token
}
