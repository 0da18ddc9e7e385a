//! Listens to the namespace's control channel and acts on commands for runs in this process:
//! `revoke` fires the run's cancellation token, and with `terminate` stops the run.

use celeriac::reconnect::Backoff;
use std::sync::Arc;

use celeriac::broker::control;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            ended = listen(&shared, &mut backoff) => if let Err(e) = ended {
                tracing::warn!(error = %e, "control channel lost; reconnecting");
            },
            _ = stop.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_wait()) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn listen(shared: &Shared, backoff: &mut Backoff) -> Result<(), celeriac::BrokerError> {
    let mut pubsub = shared.broker.pubsub().await?;
    pubsub.subscribe(shared.broker.keys().control_channel()).await?;
    backoff.reset();
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Ok(text) = msg.get_payload::<String>() else { continue };
        if let Some((id, terminate)) = control::parse_revoke(&text)
            && let Some(run) = shared.running.lock().expect("running lock").get(&id)
        {
            tracing::info!(task_id = %id, terminate, "revoked while running");
            run.revoked.store(true, std::sync::atomic::Ordering::Relaxed);
            run.cancel.cancel();
            if terminate {
                run.terminate.cancel();
            }
        }
    }
    Ok(())
}
