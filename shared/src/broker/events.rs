//! The fan-out of task events: the gateway hears about every state change of the namespace on
//! one pub/sub subscription and hands each to the requests waiting on that task.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError};
use crate::reconnect::Backoff;

/// A fan-out of the namespace's event channel: each message is a task id whose state or
/// progress changed. An empty message means "re-read everything" (sent after a reconnect,
/// when changes may have been missed).
#[derive(Clone)]
pub struct TaskEvents {
    sender: broadcast::Sender<Arc<str>>,
}

impl TaskEvents {
    /// Subscribes in the background until `stop` fires, re-subscribing after outages.
    pub fn spawn(broker: &Broker, stop: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(4096);
        let events = Self { sender: sender.clone() };
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    ended = Self::pump(&broker, &sender, &mut backoff) => {
                        if let Err(e) = ended {
                            tracing::warn!(error = %e, "event subscription lost; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
        });
        events
    }

    async fn pump(broker: &Broker, sender: &broadcast::Sender<Arc<str>>, backoff: &mut Backoff) -> Result<(), BrokerError> {
        use futures::StreamExt;
        let mut pubsub = broker.pubsub().await?;
        pubsub.subscribe(broker.keys().events_channel()).await?;
        backoff.reset();
        let _ = sender.send(Arc::from(""));
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            // A message names one task, or several separated by spaces (a batch).
            if let Ok(ids) = msg.get_payload::<String>() {
                for id in ids.split(' ').filter(|id| !id.is_empty()) {
                    let _ = sender.send(Arc::from(id));
                }
            }
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }
}

/// Waits until `rx` carries news about `id` (or a resync marker, or a lag: then something
/// may have been missed, so the caller re-reads).
pub async fn broadcast_recv(rx: &mut broadcast::Receiver<Arc<str>>, id: &str) {
    loop {
        match rx.recv().await {
            Ok(m) if m.is_empty() || *m == *id => return,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
